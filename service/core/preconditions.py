"""Concurrent edits: strong ETags from a row's version counter, checked against If-Match.

A versioned row names its `row_version` column as SQLAlchemy's `version_id_col`
(`Versioned`): the ORM bumps it on every UPDATE it flushes, so the resource's ETag changes
with every change of the row. A writer sends the ETag it read in `If-Match`; the service
compares it with the version of the row it has locked (`core.db.for_update`), in the same
transaction as the write, so two writers holding the same ETag cannot both succeed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import sqlalchemy as sa
from fastapi import Depends, Request, Response
from sqlalchemy.orm import declared_attr
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Field, SQLModel

from service.core.errors import ProblemError

ETAG = "ETag"
IF_MATCH = "If-Match"


class PreconditionRequired(ProblemError):
    status = 428
    code = "precondition_required"
    title = "Precondition required"


class PreconditionFailed(ProblemError):
    status = 412
    code = "precondition_failed"
    title = "Precondition failed"


class Versioned(SQLModel):
    """A table whose rows carry a version counter the ORM bumps on every UPDATE of the row
    (and checks in its WHERE clause: a flush of a row changed meanwhile fails)."""

    row_version: int = Field(default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805 (a class attribute)
        table = cls.__table__  # type: ignore[attr-defined]
        assert isinstance(table, sa.Table)
        return {"version_id_col": table.c.row_version}


def touch(row: Versioned, attribute: str) -> None:
    """Count a change to what the row stands for that leaves its own columns as they are (a
    defendant added to a proceeding): the next flush rewrites `attribute` (a column outside
    every key, as it is) and so bumps the version."""
    flag_modified(row, attribute)


class Tagged(Protocol):
    """A versioned row, as far as its ETag is concerned."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def row_version(self) -> int: ...


def etag(row: Tagged) -> str:
    """The strong entity tag of a resource as it is now. It names the resource as well as the
    version, so that a tag read from another resource never matches by accident."""
    return f'"{row.id.hex}.{row.row_version}"'


@dataclass(frozen=True)
class IfMatch:
    """A parsed If-Match header: `*` (any current representation) or a set of strong tags."""

    any: bool
    tags: frozenset[str]

    @classmethod
    def parse(cls, value: str) -> IfMatch:
        """Read the header's list; weak tags (W/) never match, as RFC 9110 requires."""
        items = [item.strip() for item in value.split(",")]
        if "*" in items:
            return cls(any=True, tags=frozenset())
        return cls(any=False, tags=frozenset(i for i in items if i.startswith('"')))

    def check(self, row: Tagged) -> None:
        """PreconditionFailed unless the caller's tag names the row as it is now."""
        if not (self.any or etag(row) in self.tags):
            # The tag the caller sent is not repeated: only that it is stale.
            raise PreconditionFailed(
                "The resource changed since you read it; read it again and resend your change"
                " with its new ETag in If-Match."
            )


def check_version(if_match: IfMatch | None, row: Tagged) -> None:
    """Compare an optional If-Match with the version of a row the caller has locked."""
    if if_match is not None:
        if_match.check(row)


def _header(request: Request) -> IfMatch | None:
    value = request.headers.get(IF_MATCH)
    return IfMatch.parse(value) if value is not None else None


async def optional_if_match(request: Request) -> IfMatch | None:
    """If-Match when the client sent one (POST actions on a versioned resource)."""
    return _header(request)


async def required_if_match(request: Request) -> IfMatch:
    """If-Match, or 428: PATCH and PUT never overwrite a resource blindly."""
    parsed = _header(request)
    if parsed is None:
        raise PreconditionRequired(
            "Send the resource's ETag in If-Match: read it first, then change what you read."
        )
    return parsed


IfMatchDep = Annotated[IfMatch | None, Depends(optional_if_match)]
RequiredIfMatchDep = Annotated[IfMatch, Depends(required_if_match)]


def set_etag(response: Response, row: Tagged) -> None:
    """Give the response the resource's current ETag."""
    response.headers[ETAG] = etag(row)


def _if_match_parameter(*, required: bool) -> dict[str, Any]:
    description = "The ETag of the resource as last read; 412 when it has changed since." + (
        " Required: 428 without it." if required else " Optional."
    )
    return {
        "name": IF_MATCH,
        "in": "header",
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }


def _etag_header() -> dict[str, Any]:
    return {
        ETAG: {
            "description": "The resource's current strong entity tag (for If-Match)",
            "schema": {"type": "string"},
        }
    }


def versioned_read(status: str = "200") -> dict[str, Any]:
    """Route `openapi_extra` declaring the ETag a read (or a creation) returns."""
    return {"responses": {status: {"headers": _etag_header()}}}


def versioned_write(*, status: int = 200, required: bool = False) -> dict[str, Any]:
    """Route keyword arguments (`openapi_extra`) declaring If-Match and the ETag returned.

    The dependency reads the header itself so that a missing one is a 428, not a 422; the
    parameter is declared here instead."""
    return {
        "parameters": [_if_match_parameter(required=required)],
        "responses": {str(status): {"headers": _etag_header()}},
    }
