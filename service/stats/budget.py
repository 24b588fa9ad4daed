"""The differential-privacy budget: each release year may spend at most its epsilon
(RUTA_DP_EPSILON_PER_YEAR) over all its dp releases, because every release about the same
persons tells a little more about each of them (sequential composition). Spent by a
conditional UPDATE that never passes the budget, whoever asks and however many at once;
each spend is kept in a ledger."""

from __future__ import annotations

import uuid
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.db import insert_ignoring_conflicts, table_of
from service.core.security import Actor
from service.stats.exceptions import PrivacyBudgetSpent
from service.stats.models import PrivacyBudget, PrivacyBudgetSpend

MICRO = 1_000_000


def to_micro(epsilon: Decimal) -> int:
    """An epsilon (at most six decimals, as the schema and settings allow) in millionths."""
    micro = epsilon * MICRO
    if micro != micro.to_integral_value():
        raise ValueError(f"epsilon {epsilon} has more than six decimals")
    return int(micro)


async def spend(session: AsyncSession, *, year: int, epsilon: Decimal, per_year: Decimal) -> None:
    """Take `epsilon` from the year's budget, or refuse (409) when it would pass it."""
    await insert_ignoring_conflicts(
        session, table_of(PrivacyBudget), [{"year": year, "spent_micro": 0}], on=["year"]
    )
    asked, limit = to_micro(epsilon), to_micro(per_year)
    spent = col(PrivacyBudget.spent_micro)
    result = await session.exec(
        sa.update(PrivacyBudget)
        .where(col(PrivacyBudget.year) == year, spent + asked <= limit)
        .values(spent_micro=spent + asked)
    )
    if result.rowcount != 1:
        already = (
            await session.exec(select(PrivacyBudget.spent_micro).where(PrivacyBudget.year == year))
        ).one()
        raise PrivacyBudgetSpent(
            f"{year} has spent epsilon {Decimal(already) / MICRO} of its {per_year}:"
            f" {epsilon} more would pass it."
        )


def record_spend(
    session: AsyncSession, *, actor: Actor, year: int, epsilon: Decimal, release_id: uuid.UUID
) -> None:
    """The ledger line of a dp release (once the release row exists)."""
    session.add(
        PrivacyBudgetSpend(
            year=year,
            release_id=release_id,
            epsilon=str(epsilon),
            epsilon_micro=to_micro(epsilon),
            created_by=actor.user_id,
        )
    )


async def spent(session: AsyncSession, year: int) -> Decimal:
    """The epsilon a year has spent so far."""
    row = (
        await session.exec(select(PrivacyBudget.spent_micro).where(PrivacyBudget.year == year))
    ).first()
    return Decimal(row or 0) / MICRO
