"""Column types shared by every domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AfterValidator, AwareDatetime
from sqlalchemy.engine import Dialect
from sqlmodel import SQLModel

# Constraint names are set before the first table is declared: every models module imports
# this module, so Alembic sees the same names on SQLite and on PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite stores it naive, in UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC datetime is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The instants Ruta can hold: wide enough for any record, narrow enough that converting to UTC
# or adding a few days never overflows (year 1 with a +01:00 offset is before datetime.min).
EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)


def _within_instant_range(value: datetime) -> datetime:
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST_INSTANT <= in_utc < LATEST_INSTANT:
        raise ValueError("must lie between 1900-01-01 and 8999-12-31 (UTC)")
    return value


# An aware date-time within the range above: a 422 naming the field instead of an overflow.
Instant = Annotated[AwareDatetime, AfterValidator(_within_instant_range)]


def code_column(length: int = 32) -> sa.String:
    """A plain string column for enum codes (portable; no database enum types)."""
    return sa.String(length)
