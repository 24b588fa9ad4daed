"""Cursor pagination over a (sort key, id) pair, and keyset predicates over longer orders."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy as sa
from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy.sql import Select

from service.core.errors import InvalidInput

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S", bound=Select)  # type: ignore[type-arg]

MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    """A page of results; pass `next_cursor` back as `cursor` for the next one."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Absent on the last page.")


class PageParams(BaseModel):
    cursor: str | None = None
    limit: int = 50


async def page_params(
    cursor: Annotated[str | None, Query(description="Opaque cursor from a previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> PageParams:
    # A coroutine: FastAPI would run a plain function in a worker thread at every request.
    return PageParams(cursor=cursor, limit=limit)


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The values encoded in a cursor; a 422 naming `cursor` when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor", "not a cursor returned by this API") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidInput("cursor", "not a cursor returned by this API")
    return values


def keyset(
    stmt: S,
    *,
    sort: Any,
    tiebreak: Any,
    page: PageParams,
    descending: bool = True,
) -> S:
    """Order by (sort, tiebreak), start after the page's cursor, fetch one row more than asked."""
    if page.cursor:
        at_raw, last_raw = decode_cursor(page.cursor, 2)
        try:
            at, last = datetime.fromisoformat(at_raw), uuid.UUID(last_raw)
        except (TypeError, ValueError) as exc:
            raise InvalidInput("cursor", "not a cursor returned by this API") from exc
        if descending:
            after = sa.or_(sort < at, sa.and_(sort == at, tiebreak < last))
        else:
            after = sa.or_(sort > at, sa.and_(sort == at, tiebreak > last))
        stmt = stmt.where(after)
    order = (sort.desc(), tiebreak.desc()) if descending else (sort.asc(), tiebreak.asc())
    return stmt.order_by(*order).limit(page.limit + 1)


def page_of(
    rows: Sequence[R], page: PageParams, key: Callable[[R], tuple[datetime, uuid.UUID]]
) -> tuple[list[R], str | None]:
    """The page's rows and the cursor of the next page (None on the last)."""
    items = list(rows[: page.limit])
    if len(rows) <= page.limit:
        return items, None
    at, last = key(items[-1])
    return items, encode_cursor(at.isoformat(), str(last))


def lexicographic(
    order: Sequence[tuple[Any, bool]], values: Sequence[Any], *, before: bool = False
) -> sa.ColumnElement[bool]:
    """Rows strictly after (or before) `values` in an order of (column, descending) pairs:
    the keyset predicate for an order of several columns with mixed directions."""
    # Bound as parameters of the column's type: booleans compare as values, not as IS TRUE.
    bound = [sa.literal(v, type_=c.type) for (c, _), v in zip(order, values, strict=True)]
    clauses = []
    for i, (column, descending) in enumerate(order):
        same_prefix = [c == v for (c, _), v in zip(order[:i], bound[:i], strict=True)]
        later = column < bound[i] if descending != before else column > bound[i]
        clauses.append(sa.and_(*same_prefix, later))
    return sa.or_(*clauses)
