"""Who may see a case, and which organizations are involved in it.

The access rule: a user sees a case only while their organization is involved in it, that
is while a `case_involvement` row links the two and has not ended. Organizations become
involved by identifying the person, receiving a referral, housing the person or defending
them; the domains that do those things call `involve` and `end_involvement`. Any other
case does not exist for the caller (404), so its existence is not disclosed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.cases.exceptions import (
    CaseNotFound,
)
from service.cases.models import (
    CaseFile,
    CaseInvolvement,
)
from service.cases.rules import InvolvementBasis
from service.core.db import Rows, for_update, insert_rows, row_of, table_of
from service.core.errors import ProblemError
from service.core.preconditions import IfMatch, check_version
from service.core.security import Actor
from service.core.time import utcnow


def visible_to(organization_id: uuid.UUID | sa.BindParameter[uuid.UUID]) -> sa.ColumnElement[bool]:
    """The access rule, as SQL: the case has an open involvement of this organization."""
    return sa.exists().where(
        col(CaseInvolvement.case_id) == col(CaseFile.id),
        col(CaseInvolvement.organization_id) == organization_id,
        col(CaseInvolvement.ended_at).is_(None),
    )


async def get_case_for(session: AsyncSession, *, actor: Actor, case_id: uuid.UUID) -> CaseFile:
    """The case if the actor's organization is involved in it; CaseNotFound otherwise."""
    stmt = select(CaseFile).where(CaseFile.id == case_id, visible_to(actor.organization_id))
    case = (await session.exec(stmt)).first()
    if case is None:
        raise CaseNotFound()
    return case


async def _open_involvements(
    session: AsyncSession,
    case_id: uuid.UUID,
    organization_id: uuid.UUID,
    basis: InvolvementBasis,
    source_id: uuid.UUID | None,
) -> Sequence[CaseInvolvement]:
    """The open involvements of one organization in a case, for one basis and source."""
    return (
        await session.exec(
            select(CaseInvolvement).where(
                CaseInvolvement.case_id == case_id,
                CaseInvolvement.organization_id == organization_id,
                CaseInvolvement.basis == basis.value,
                CaseInvolvement.source_id == source_id,
                col(CaseInvolvement.ended_at).is_(None),
            )
        )
    ).all()


async def involve(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case_id: uuid.UUID,
    organization_id: uuid.UUID,
    basis: InvolvementBasis,
    source_id: uuid.UUID | None = None,
) -> None:
    """Make an organization involved in a case (idempotent per basis and source). A Core
    insert (core.db.insert_rows): the case must be in the database already."""
    if await _open_involvements(session, case_id, organization_id, basis, source_id):
        return
    await insert_rows(
        session,
        new_involvement(
            session,
            actor=actor,
            case_id=case_id,
            organization_id=organization_id,
            basis=basis,
            source_id=source_id,
        ),
    )


def new_involvement(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case_id: uuid.UUID,
    organization_id: uuid.UUID,
    basis: InvolvementBasis,
    source_id: uuid.UUID | None = None,
) -> Rows:
    """The row of an involvement that cannot exist yet (its source was created in this
    transaction), its start audited, for the caller to insert with its own rows
    (`insert_rows`); `involve` otherwise."""
    involvement = row_of(
        CaseInvolvement,
        case_id=case_id,
        organization_id=organization_id,
        basis=basis.value,
        source_id=source_id,
    )
    record_event(
        session,
        actor=actor,
        action="case.involvement_started",
        entity_type="case",
        entity_id=case_id,
        changes={
            "organization_id": {"to": str(organization_id)},
            "basis": {"to": basis.value},
            "source_id": {"to": str(source_id) if source_id else None},
        },
    )
    return Rows(CaseInvolvement, [involvement])


async def end_involvement(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case_id: uuid.UUID,
    organization_id: uuid.UUID,
    basis: InvolvementBasis,
    source_id: uuid.UUID | None = None,
) -> None:
    """End an organization's involvement of one basis and source; history is kept."""
    rows = await _open_involvements(session, case_id, organization_id, basis, source_id)
    now = utcnow()
    for row in rows:
        row.ended_at = now
        session.add(row)
        record_event(
            session,
            actor=actor,
            action="case.involvement_ended",
            entity_type="case",
            entity_id=case_id,
            changes={
                "organization_id": {"from": str(organization_id)},
                "basis": {"from": basis.value},
            },
        )
    await session.flush()


async def require_visible_case(
    session: AsyncSession, *, actor: Actor, case_id: uuid.UUID, otherwise: ProblemError
) -> CaseFile:
    """The access rule for records that hang off a case (a consent, a custody period, a
    placement): the case must be visible, or the record answers its own 404."""
    try:
        return await get_case_for(session, actor=actor, case_id=case_id)
    except CaseNotFound as exc:
        raise otherwise from exc


def visible_case_ids(organization_id: uuid.UUID) -> sa.Select[tuple[uuid.UUID]]:
    """The access rule as a subquery of case ids, for other domains' records that hang off a
    case (alerts, placements): `col(X.case_id).in_(visible_case_ids(org))`."""
    return sa.select(table_of(CaseInvolvement).c.case_id).where(
        col(CaseInvolvement.organization_id) == organization_id,
        col(CaseInvolvement.ended_at).is_(None),
    )


async def cases_involving(
    session: AsyncSession, *, organization_id: uuid.UUID, case_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these cases the organization is involved in now (one query)."""
    if not case_ids:
        return set()
    rows = await session.exec(
        select(CaseInvolvement.case_id)
        .where(
            col(CaseInvolvement.case_id).in_(list(case_ids)),
            CaseInvolvement.organization_id == organization_id,
            col(CaseInvolvement.ended_at).is_(None),
        )
        .distinct()
    )
    return set(rows.all())


async def persons_of_cases(
    session: AsyncSession, case_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """The person of each of these cases (case id -> person id), in one query: to seal or open
    free text about the person under her data key."""
    if not case_ids:
        return {}
    rows = await session.exec(
        select(CaseFile.id, CaseFile.person_id).where(col(CaseFile.id).in_(set(case_ids)))
    )
    return dict(rows.all())


async def lock_case(
    session: AsyncSession, case_id: uuid.UUID, *, skip_locked: bool = False
) -> CaseFile | None:
    """Lock the case row until the transaction ends and read it as it is now. With
    `skip_locked`, a case another transaction holds is None instead of a wait."""
    stmt = select(CaseFile).where(CaseFile.id == case_id)
    return (await session.exec(for_update(stmt, session, skip_locked=skip_locked))).first()


async def lock_case_for_change(
    session: AsyncSession, case: CaseFile, *, if_match: IfMatch | None, stamp: bool = True
) -> CaseFile:
    """Lock a case about to change through its own routes and compare the caller's If-Match
    with its version under the lock (412 when stale): of two writers holding the same ETag,
    the second waits for the first to commit and then finds its tag stale. The change dates
    the case (`stamp_change`), which moves its version (its ETag); `stamp=False` leaves that
    to the caller, for a change that may turn out to change nothing."""
    locked = await lock_case(session, case.id)
    if locked is None:
        raise CaseNotFound()
    check_version(if_match, locked)
    if stamp:
        stamp_change(session, locked)
    return locked


def stamp_change(session: AsyncSession, case: CaseFile) -> None:
    """Date a change of the case: its version (its ETag) moves."""
    case.updated_at = utcnow()
    session.add(case)
