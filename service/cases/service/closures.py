"""How each case stands for retention: open, or closed since when and why."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from service.cases.models import CaseFile, CaseTransition
from service.cases.rules import CaseStatus
from service.core.db import table_of


@dataclass(frozen=True)
class CaseClosure:
    """A case's person record and, when the case is closed, its latest closure."""

    case_id: uuid.UUID
    person_id: uuid.UUID
    closed: bool
    closed_at: datetime | None
    reason: str | None


async def case_closures(session: AsyncSession) -> list[CaseClosure]:
    """Every case with its person record and, if it is closed, when and why it last closed:
    one statement (a closed case's latest transition to `closed`)."""
    case = table_of(CaseFile)
    transition = table_of(CaseTransition)
    latest = (
        sa.select(
            transition.c.case_id,
            transition.c.at,
            transition.c.reason,
            sa.func.row_number()
            .over(
                partition_by=transition.c.case_id,
                order_by=(transition.c.at.desc(), transition.c.id.desc()),
            )
            .label("rank"),
        )
        .where(transition.c.to_status == CaseStatus.closed.value)
        .subquery("latest_closure")
    )
    connection = await session.connection()
    rows = await connection.execute(
        sa.select(case.c.id, case.c.person_id, case.c.status, latest.c.at, latest.c.reason)
        .select_from(case)
        .outerjoin(latest, sa.and_(latest.c.case_id == case.c.id, latest.c.rank == 1))
        .order_by(case.c.id)
    )
    return [
        CaseClosure(
            case_id=row.id,
            person_id=row.person_id,
            closed=row.status == CaseStatus.closed.value,
            closed_at=row.at if row.status == CaseStatus.closed.value else None,
            reason=row.reason if row.status == CaseStatus.closed.value else None,
        )
        for row in rows
    ]
