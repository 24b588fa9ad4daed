"""The base of every request schema, and the field types request schemas are made of.

Request bodies are read strictly: a JSON string is never taken for a number or a boolean,
a number never for a date, and a field the schema does not name is refused. FastAPI
validates the decoded JSON in pydantic's Python mode, where strict mode would also refuse
the ISO strings that are the wire form of dates, datetimes, UUIDs, enums and decimals; those
types are declared lax here, behind a check that the input is such a string (or, from
Python callers, already the value). Every limit is expressed in the JSON Schema (maxLength,
pattern, format), so a client generating data from openapi.json sends what the server
accepts, and what it refuses is visible there.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from service.core.types import Instant


class RequestModel(BaseModel):
    """Base of every request body: strict types, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


# C0 and C1 control characters, DEL included. Free text may keep tab, line feed and
# carriage return; nothing else in the range is ever accepted.
_CONTROL = r"\x00-\x1F\x7F-\x9F"
_CONTROL_BUT_LINE_BREAKS = r"\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F"


def _whole_number(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3, as JSON Schema's "integer" says; 3.5,
    "3" and true are not integers, and strict validation refuses them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer of a request body. Bounds of an optional one go before it, inside the Annotated
# (`Annotated[int, Field(ge=0), WholeNumber] | None`), or the contract loses them.
WholeNumber = BeforeValidator(_whole_number)
Int = Annotated[int, WholeNumber]


# Enums and literals are strings on the wire: lax for them takes the value, never a number.
Lax = Strict(False)


def _not_blank(refused: str) -> str:
    """A pattern: none of the `refused` characters, and one at least that is not a space."""
    return rf"^[^{refused}]*[^\s{refused}][^{refused}]*$"


@dataclass(frozen=True)
class _PlainText:
    """Text of a bounded length with none of the `refused` characters, not blank; stripped
    once accepted. The limits apply to the text as sent, and the JSON Schema states them
    (maxLength, pattern); the messages say what is wrong without quoting the text."""

    max_length: int
    refused: str
    min_length: int = 1

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        inner = handler(source)
        if inner["type"] != "str":
            raise TypeError("plain text constrains a str")
        text = cast(dict[str, Any], inner)
        text["min_length"], text["max_length"] = self.min_length, self.max_length
        return core_schema.no_info_after_validator_function(
            self._check, cast(core_schema.CoreSchema, text)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = _not_blank(self.refused)
        return json_schema

    def _check(self, value: str) -> str:
        if re.search(f"[{self.refused}]", value):
            raise PydanticCustomError(
                "string_control_character", "String should contain no control character"
            )
        if not value.strip():
            raise PydanticCustomError("string_blank", "String should not be blank")
        return value.strip()


def single_line(max_length: int, *, min_length: int = 1) -> _PlainText:
    """Text on one line: no control character, not blank."""
    return _PlainText(max_length, _CONTROL, min_length)


def multi_line(max_length: int, *, min_length: int = 1) -> _PlainText:
    """Free text: tab and line breaks allowed, no other control character, not blank."""
    return _PlainText(max_length, _CONTROL_BUT_LINE_BREAKS, min_length)


# A short identifier: a reason code, the code of an office, a scenario's name. Patterns of
# codes exclude every control character by construction.
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
# The code of an organization (MIMP, PNP-DIRCTPTIM, RREE ...).
OrgCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9-]{1,31}$", max_length=32)]
RegionCode = Annotated[
    str,
    StringConstraints(pattern=r"^\d{2}$", max_length=2),
    Field(description="INEI ubigeo department code"),
]
CountryCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$", max_length=3),
    Field(description="ISO 3166-1 alpha-3"),
]
LanguageCode = Annotated[
    str, StringConstraints(pattern=r"^[a-z]{2,3}$", max_length=3), Field(description="ISO 639")
]
# A person's name, a place, an offence: one line.
Name = Annotated[str, single_line(200)]
# Free text: a note, a justification.
Text = Annotated[str, multi_line(2000)]


def _wire_string(
    kind: str, message: str, shape: re.Pattern[str], instance: type | tuple[type, ...]
) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, instance) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and shape.fullmatch(value):
            return value
        raise PydanticCustomError(kind, message)

    return BeforeValidator(check)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})")
_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

# A calendar day, sent as YYYY-MM-DD (never a number of seconds).
Date = Annotated[
    date,
    Strict(False),
    _wire_string(
        "date_type",
        "Input should be a date as YYYY-MM-DD",
        _DATE,
        date,
    ),
]
# An instant with its UTC offset, sent as RFC 3339 (never a number of seconds).
# An instant in Ruta's range (core.types.Instant: no overflow converting to UTC), sent as a string.
DateTime = Annotated[
    Instant,
    Strict(False),
    _wire_string(
        "datetime_type",
        "Input should be an RFC 3339 date-time with its offset, e.g. 2024-05-01T09:30:00-05:00",
        _DATETIME,
        datetime,
    ),
]
Id = Annotated[
    uuid.UUID,
    Strict(False),
    _wire_string(
        "uuid_type", "Input should be a UUID, 8-4-4-4-12 hexadecimal digits", _UUID, uuid.UUID
    ),
]


def _decimal_digits(integer_digits: int, decimal_places: int) -> str:
    return rf"(0|[1-9]\d{{0,{integer_digits - 1}}})(\.\d{{1,{decimal_places}}})?"


def decimal_string(*, integer_digits: int, decimal_places: int) -> Any:
    """A decimal sent as a string ("1500.00"), so that no client rounds it through a float."""
    shape = re.compile(_decimal_digits(integer_digits, decimal_places))
    return _wire_string(
        "decimal_type", "Input should be a decimal number as a string", shape, Decimal
    )


def positive_decimal_schema(*, integer_digits: int, decimal_places: int) -> WithJsonSchema:
    """The schema of a positive decimal_string: how many digits it may have, and not zero."""
    digits = _decimal_digits(integer_digits, decimal_places)
    return WithJsonSchema(
        {
            "type": "string",
            "pattern": rf"^(?!0+(\.0+)?$){digits}$",
            "maxLength": integer_digits + 1 + decimal_places,
        }
    )
