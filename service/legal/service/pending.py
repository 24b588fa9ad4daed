"""Which cases still have legal work under way: what retention must wait for."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.db import table_of
from service.legal.models import LegalAidAssignment, Proceeding, ProceedingCase
from service.legal.rules import ProceedingStatus


async def cases_in_legal_work(session: AsyncSession) -> set[uuid.UUID]:
    """Cases in a criminal proceeding not yet decided, or with a public defender still
    assigned (restitution, appeals): the person may still be needed in court."""
    proceeding = table_of(Proceeding)
    linked = table_of(ProceedingCase)
    assignment = table_of(LegalAidAssignment)
    connection = await session.connection()
    in_proceedings = await connection.execute(
        sa.select(linked.c.case_id)
        .join(proceeding, proceeding.c.id == linked.c.proceeding_id)
        .where(proceeding.c.status != ProceedingStatus.decided.value)
    )
    defended = await connection.execute(
        sa.select(assignment.c.case_id).where(assignment.c.ended_at.is_(None))
    )
    return {row.case_id for row in in_proceedings} | {row.case_id for row in defended}
