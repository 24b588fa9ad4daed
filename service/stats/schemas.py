"""The catalogue, published tables and releases as the API shows them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, StringConstraints, WithJsonSchema, model_validator

from service.core.schemas import Date, DateTime, Lax, RequestModel, WholeNumber, decimal_string
from service.stats.catalogue import By

# The years a release may cover: Ruta keeps no case before the pathway existed.
FIRST_YEAR, LAST_YEAR = 2000, 2100


class CatalogueEntry(BaseModel):
    code: str
    title: str
    unit: str
    population: str
    dimensions: list[By] = Field(description="What the table may be broken down by (two at most)")
    default_by: list[By]
    always: list[By] = Field(description="Dimensions always present besides the chosen ones")
    measures: list[str]
    rates: bool


class Period(BaseModel):
    start: date
    end: date


class TableDimension(BaseModel):
    name: str
    categories: list[str]


class Shown(BaseModel):
    value: int | float


class Suppressed(BaseModel):
    suppressed: Literal[True] = True


class ShownCell(BaseModel):
    coordinates: dict[str, str] = Field(description="A category, or `total`, per dimension")
    value: int
    rate_per_100k: float | None = None


class SuppressedCell(BaseModel):
    coordinates: dict[str, str]
    suppressed: Literal[True] = True


Method = Literal["suppression", "dp"]
# Sent as a string ("0.5"), from more than 0 to 100, at most six decimals.
Epsilon = Annotated[
    Decimal,
    Lax,
    decimal_string(integer_digits=3, decimal_places=6),
    Field(gt=0, le=100, decimal_places=6),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(?!0+(\.0+)?$)(100(\.0{1,6})?|[1-9]?\d(\.\d{1,6})?)$",
            "maxLength": 10,
        }
    ),
]


class Disclosure(BaseModel):
    method: Method = "suppression"
    k: int = Field(description="Counts from 1 to k - 1 are hidden; zero is shown")
    epsilon: str | None = Field(
        default=None, description="dp: the epsilon this table spent (its noise's 1/scale)"
    )
    note: str


class PublishedTable(BaseModel):
    """A table as published: no count from 1 to 10, and none recoverable from the others."""

    code: str
    title: str
    unit: str
    measure: str = Field(
        description="What the cells count over which period: two tables of a release with the"
        " same measure publish the same number for the same categories, hidden in both or in"
        " neither"
    )
    period: Period
    known_on: datetime
    dimensions: list[TableDimension]
    cells: list[ShownCell | SuppressedCell]
    total: Shown | Suppressed = Field(
        description="The units counted, each once (for a table where a unit may fall in"
        " several cells, the cells add up to more)"
    )
    excluded: dict[str, int] = Field(
        description="Persons left out, by reason: no consent to statistics nor a legal basis,"
        " or screened as not a victim"
    )
    measures: dict[str, Shown | Suppressed]
    census_year: int | None = None
    disclosure: Disclosure


# A catalogue table's code (V1, P2, RP1 ...).
TABLE_CODE_PATTERN = r"^[A-Z][A-Z0-9]{0,7}$"


class TableRequest(RequestModel):
    code: Annotated[str, StringConstraints(pattern=TABLE_CODE_PATTERN, max_length=8)]
    by: list[Annotated[By, Lax]] | None = Field(
        default=None, max_length=8, description="At most two dimensions of the table"
    )


class ReleaseCreate(RequestModel):
    """A release: tables of one period, published together so that no number they share
    is shown in one and hidden in another."""

    year: Annotated[int, Field(ge=FIRST_YEAR, le=LAST_YEAR), WholeNumber] | None = None
    start: Date | None = None
    end: Date | None = None
    tables: list[TableRequest] | None = Field(
        default=None,
        max_length=40,
        description="Default: the whole catalogue (dp: its tables where each unit is in one cell)",
    )
    known_on: DateTime | None = Field(
        default=None, description="Count as known at this moment (default: now)"
    )
    method: Method = Field(
        default="suppression",
        description="suppression: true counts, small ones hidden; dp: discrete Laplace noise"
        " on the counts, then hidden by the noisy counts (needs year and epsilon)",
    )
    epsilon: Epsilon | None = Field(
        default=None,
        description="dp: the privacy budget this release spends, shared equally by its"
        " tables, out of its year's (RUTA_DP_EPSILON_PER_YEAR)",
    )

    @model_validator(mode="after")
    def _dp_needs_year_and_epsilon(self) -> Self:
        if self.method == "dp" and (self.epsilon is None or self.year is None):
            raise ValueError("a dp release needs year and epsilon")
        if self.method == "suppression" and self.epsilon is not None:
            raise ValueError("epsilon is for dp releases")
        return self

    @model_validator(mode="after")
    def _one_period(self) -> Self:
        if (self.year is None) == (self.start is None and self.end is None):
            raise ValueError("give year, or start and end")
        if self.year is None and (self.start is None or self.end is None):
            raise ValueError("give both start and end")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("end is before start")
        return self


class ReleaseSummary(BaseModel):
    id: uuid.UUID
    period: Period
    known_on: datetime
    codes: list[str]
    digest: str
    method: Method = "suppression"
    epsilon: str | None = None
    created_at: datetime


class ReleasePublic(ReleaseSummary):
    tables: list[PublishedTable]


class ReleaseVerification(BaseModel):
    id: uuid.UUID
    reproduced: bool
    digest: str
    recomputed_digest: str | None = Field(
        description="None for a dp release: its noise is drawn once and cannot be redrawn"
    )
    note: str | None = None
