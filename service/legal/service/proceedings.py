"""Criminal proceedings: the complaint, its victims' cases, its defendants and their outcomes.

Who records what (organization kinds of service/identity):
- a prosecutor organization (MP) opens a proceeding with victims' cases it can see; that
  organization, the proceeding's prosecutor, adds cases and defendants, moves the status
  forward up to trial (naming the court, an organization of kind judiciary), and may close a
  defendant's case before trial (dismissed, or suspended for insufficient evidence);
- the court (PJ) named at trial records the outcomes at trial, convictions with their
  sentences and fines, and moves the status to decided.
Writing also needs `cases:write`; a step by anyone else who can see the proceeding is 403.

Who reads: the proceeding's prosecutor and court, and any organization that sees at least
one of its linked cases. The cases listed are only those the reader can see. Linking a case
involves the prosecutor, and the court once named, in it (basis `proceeding`, source = the
link), so both keep seeing the victims' cases while the proceeding lasts.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.cases import service as case_service
from service.cases.rules import InvolvementBasis
from service.core.db import for_update
from service.core.errors import InvalidInput
from service.core.pagination import PageParams, keyset, page_of
from service.core.plausibility import refuse_implausible
from service.core.preconditions import IfMatch, check_version, touch
from service.core.security import Actor
from service.core.time import utcnow
from service.identity import service as identity_service
from service.identity.rules import OrganizationKind
from service.legal import rules
from service.legal.exceptions import (
    CaseAlreadyLinked,
    CourtOnly,
    ProceedingExists,
    ProceedingNotFound,
    ProceedingStageConflict,
    ProsecutorOnly,
    StatusNotForward,
)
from service.legal.models import (
    Defendant,
    Proceeding,
    ProceedingCase,
    ProceedingStatusChange,
)
from service.legal.schemas import (
    DefendantPublic,
    ProceedingCaseCreate,
    ProceedingCasePublic,
    ProceedingCreate,
    ProceedingPublic,
    Sentence,
    StatusChange,
    StatusChangePublic,
)
from service.reference import service as reference_service

YEAR = 12


def visible_proceeding(organization_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """The proceedings an organization may read, as SQL: it is their prosecutor or court, or
    it sees one of their linked cases."""
    return sa.or_(
        col(Proceeding.prosecutor_organization_id) == organization_id,
        col(Proceeding.court_organization_id) == organization_id,
        sa.exists().where(
            col(ProceedingCase.proceeding_id) == col(Proceeding.id),
            col(ProceedingCase.case_id).in_(case_service.visible_case_ids(organization_id)),
        ),
    )


async def get_proceeding_for(
    session: AsyncSession, *, actor: Actor, proceeding_id: uuid.UUID, lock: bool = False
) -> Proceeding:
    """The proceeding if the actor's organization may read it; ProceedingNotFound otherwise.
    With `lock`, the row is locked until the transaction ends (steps that change it)."""
    stmt = select(Proceeding).where(
        Proceeding.id == proceeding_id, visible_proceeding(actor.organization_id)
    )
    if lock:
        stmt = for_update(stmt, session)
    proceeding = (await session.exec(stmt)).first()
    if proceeding is None:
        raise ProceedingNotFound("No such proceeding is visible to your organization.")
    return proceeding


async def lock_proceeding_for_change(
    session: AsyncSession, *, actor: Actor, proceeding_id: uuid.UUID, if_match: IfMatch | None
) -> Proceeding:
    """Lock a proceeding about to change, compare the caller's If-Match with its version
    under the lock (412 when stale), and count the change in its version: its ETag covers
    its status and court, its cases and its defendants with their outcomes."""
    proceeding = await get_proceeding_for(
        session, actor=actor, proceeding_id=proceeding_id, lock=True
    )
    check_version(if_match, proceeding)
    touch(proceeding, "status")
    session.add(proceeding)
    return proceeding


def require_prosecutor(proceeding: Proceeding, actor: Actor) -> None:
    if actor.organization_id != proceeding.prosecutor_organization_id:
        raise ProsecutorOnly("Only the proceeding's prosecutor organization records this.")


def require_court(proceeding: Proceeding, actor: Actor) -> None:
    if actor.organization_id != proceeding.court_organization_id:
        raise CourtOnly("Only the proceeding's court records this.")


def require_open(proceeding: Proceeding) -> None:
    if proceeding.status == rules.ProceedingStatus.decided.value:
        raise ProceedingStageConflict("The proceeding has been decided.")


async def _require_visible_cases(
    session: AsyncSession, *, actor: Actor, links: Sequence[ProceedingCaseCreate], field: str
) -> None:
    """Every case named must be visible to the actor: 422 naming the first that is not."""
    visible = await case_service.cases_involving(
        session, organization_id=actor.organization_id, case_ids=[c.case_id for c in links]
    )
    for i, link in enumerate(links):
        if link.case_id not in visible:
            where = f"{field}.{i}.case_id" if field == "cases" else "case_id"
            raise InvalidInput(where, "no case with this id is visible to your organization")


async def _link_case(
    session: AsyncSession, *, actor: Actor, proceeding: Proceeding, data: ProceedingCaseCreate
) -> ProceedingCase:
    """Link a victim's case; the prosecutor and the court (once named) become involved."""
    link = ProceedingCase(
        proceeding_id=proceeding.id,
        case_id=data.case_id,
        offence_on=data.offence_on,
        linked_by=actor.user_id,
    )
    savepoint = await session.begin_nested()
    try:
        session.add(link)
        await session.flush()
    except IntegrityError:
        await savepoint.rollback()
        raise CaseAlreadyLinked("The case is already in this proceeding.") from None
    await savepoint.commit()
    record_event(
        session,
        actor=actor,
        action="proceeding.case_linked",
        entity_type="case",
        entity_id=data.case_id,
        changes={
            "proceeding_id": {"to": str(proceeding.id)},
            "link_id": {"to": str(link.id)},
            "offence_on": {"to": data.offence_on},
        },
    )
    for organization_id in (
        proceeding.prosecutor_organization_id,
        proceeding.court_organization_id,
    ):
        if organization_id is not None:
            await case_service.involve(
                session,
                actor=actor,
                case_id=data.case_id,
                organization_id=organization_id,
                basis=InvolvementBasis.proceeding,
                source_id=link.id,
            )
    return link


async def _organization_kind(session: AsyncSession, organization_id: uuid.UUID) -> str | None:
    org = (await identity_service.get_organizations(session, [organization_id])).get(
        organization_id
    )
    return org.kind if org is not None else None


async def _add_status_change(
    session: AsyncSession, *, actor: Actor, proceeding: Proceeding, effective_on: date
) -> None:
    """The dated history row of the proceeding's (new) status."""
    session.add(
        ProceedingStatusChange(
            proceeding_id=proceeding.id,
            status=proceeding.status,
            effective_on=effective_on,
            organization_id=actor.organization_id,
            recorded_by=actor.user_id,
        )
    )
    await session.flush()


async def create_proceeding(
    session: AsyncSession, *, actor: Actor, data: ProceedingCreate
) -> Proceeding:
    """Open a proceeding at a prosecutor office, with the victims' cases it concerns; the
    actor's organization, which must be a prosecutor organization, is its prosecutor."""
    if await _organization_kind(session, actor.organization_id) != OrganizationKind.prosecutor:
        raise ProsecutorOnly("Only a prosecutor organization opens a proceeding.")
    refuse_implausible(
        rules.proceeding_days_problem(
            data.complaint_filed_on, [c.offence_on for c in data.cases], today=utcnow().date()
        )
    )
    if not await reference_service.prosecutor_office_exists(session, data.prosecutor_office):
        raise InvalidInput("prosecutor_office", "not a known prosecutor office code")
    await _require_visible_cases(session, actor=actor, links=data.cases, field="cases")
    proceeding = Proceeding(
        complaint_number=data.complaint_number,
        prosecutor_office=data.prosecutor_office,
        prosecutor_organization_id=actor.organization_id,
        complaint_filed_on=data.complaint_filed_on,
        status=rules.ProceedingStatus.complaint.value,
        created_by=actor.user_id,
    )
    savepoint = await session.begin_nested()
    try:
        session.add(proceeding)
        await session.flush()
    except IntegrityError:
        await savepoint.rollback()
        raise ProceedingExists(
            "This complaint already has a proceeding at this prosecutor office."
        ) from None
    await savepoint.commit()
    await _add_status_change(
        session, actor=actor, proceeding=proceeding, effective_on=data.complaint_filed_on
    )
    record_event(
        session,
        actor=actor,
        action="proceeding.created",
        entity_type="proceeding",
        entity_id=proceeding.id,
        changes={
            "complaint_number": {"to": proceeding.complaint_number},
            "prosecutor_office": {"to": proceeding.prosecutor_office},
            "complaint_filed_on": {"to": proceeding.complaint_filed_on},
            "status": {"to": proceeding.status},
        },
    )
    for link in data.cases:
        await _link_case(session, actor=actor, proceeding=proceeding, data=link)
    return proceeding


async def add_case(
    session: AsyncSession,
    *,
    actor: Actor,
    proceeding_id: uuid.UUID,
    data: ProceedingCaseCreate,
    if_match: IfMatch | None = None,
) -> Proceeding:
    """Add a victim's case the prosecutor can see to an undecided proceeding."""
    proceeding = await lock_proceeding_for_change(
        session, actor=actor, proceeding_id=proceeding_id, if_match=if_match
    )
    require_prosecutor(proceeding, actor)
    require_open(proceeding)
    refuse_implausible(
        rules.offence_day_problem(
            data.offence_on,
            complaint_filed_on=proceeding.complaint_filed_on,
            today=utcnow().date(),
        )
    )
    await _require_visible_cases(session, actor=actor, links=[data], field="case_id")
    await _link_case(session, actor=actor, proceeding=proceeding, data=data)
    await session.flush()
    return proceeding


async def _latest_effective_on(session: AsyncSession, proceeding_id: uuid.UUID) -> date:
    return (
        await session.exec(
            select(sa.func.max(ProceedingStatusChange.effective_on)).where(
                ProceedingStatusChange.proceeding_id == proceeding_id
            )
        )
    ).one()


async def _court_for_trial(session: AsyncSession, code: str) -> uuid.UUID:
    org = (await identity_service.get_organizations_by_code(session, [code])).get(code)
    if org is None or org.kind != OrganizationKind.judiciary:
        raise InvalidInput("court", "not the code of an organization of kind judiciary")
    return org.id


async def change_status(
    session: AsyncSession,
    *,
    actor: Actor,
    proceeding_id: uuid.UUID,
    data: StatusChange,
    if_match: IfMatch | None = None,
) -> Proceeding:
    """Move the proceeding forward. The prosecutor moves it up to trial, naming the court,
    which becomes involved in every linked case; the court moves it to decided once no
    defendant's outcome is ongoing."""
    proceeding = await lock_proceeding_for_change(
        session, actor=actor, proceeding_id=proceeding_id, if_match=if_match
    )
    current, to = rules.ProceedingStatus(proceeding.status), data.status
    if to is rules.ProceedingStatus.decided:
        require_court(proceeding, actor)
    else:
        require_prosecutor(proceeding, actor)
    if not rules.status_moves_forward(current, to):
        raise StatusNotForward(f"The proceeding is at {current.value}: it cannot move to {to}.")
    if to is rules.ProceedingStatus.decided:
        await _require_all_decided(session, proceeding.id)
    refuse_implausible(
        rules.step_day_problem(
            "effective_on",
            data.effective_on,
            after_field="the proceeding's last change",
            after=await _latest_effective_on(session, proceeding.id),
            today=utcnow().date(),
        )
    )
    changes: dict[str, object] = {"status": {"from": current.value, "to": to.value}}
    if to is rules.ProceedingStatus.trial:
        assert data.court is not None  # the schema requires it with trial
        proceeding.court_organization_id = await _court_for_trial(session, data.court)
        changes["court_organization_id"] = {"to": str(proceeding.court_organization_id)}
    proceeding.status = to.value
    session.add(proceeding)
    await _add_status_change(
        session, actor=actor, proceeding=proceeding, effective_on=data.effective_on
    )
    record_event(
        session,
        actor=actor,
        action="proceeding.status_changed",
        entity_type="proceeding",
        entity_id=proceeding.id,
        changes={**changes, "effective_on": {"to": data.effective_on}},
    )
    if to is rules.ProceedingStatus.trial:
        await _involve_court(session, actor=actor, proceeding=proceeding)
    await session.flush()
    return proceeding


async def _require_all_decided(session: AsyncSession, proceeding_id: uuid.UUID) -> None:
    outcomes = (
        await session.exec(
            select(Defendant.outcome).where(Defendant.proceeding_id == proceeding_id)
        )
    ).all()
    if not outcomes or rules.Outcome.ongoing.value in outcomes:
        raise ProceedingStageConflict(
            "A proceeding is decided once every defendant has an outcome (and it has one)."
        )


async def _involve_court(session: AsyncSession, *, actor: Actor, proceeding: Proceeding) -> None:
    assert proceeding.court_organization_id is not None
    links = (
        await session.exec(
            select(ProceedingCase).where(ProceedingCase.proceeding_id == proceeding.id)
        )
    ).all()
    for link in links:
        await case_service.involve(
            session,
            actor=actor,
            case_id=link.case_id,
            organization_id=proceeding.court_organization_id,
            basis=InvolvementBasis.proceeding,
            source_id=link.id,
        )


def defendant_public(defendant: Defendant) -> DefendantPublic:
    months = defendant.sentence_months
    return DefendantPublic(
        id=defendant.id,
        proceeding_id=defendant.proceeding_id,
        label=defendant.label,
        public_official=defendant.public_official,
        charge_filed=rules.Charge(defendant.charge_filed),
        charge=rules.Charge(defendant.charge) if defendant.charge else None,
        outcome=rules.Outcome(defendant.outcome),
        outcome_on=defendant.outcome_on,
        sentence=Sentence(years=months // YEAR, months=months % YEAR)
        if months is not None
        else None,
        fine_soles=defendant.fine_soles,
        below_legal_minimum=defendant.below_legal_minimum,
        charge_reduced=defendant.charge_reduced,
        rule_version=defendant.rule_version,
    )


async def proceeding_public(
    session: AsyncSession, *, actor: Actor, proceedings: Sequence[Proceeding]
) -> list[ProceedingPublic]:
    """The proceedings as the actor may see them: only the linked cases their organization
    sees, with the count of all. A few queries for the whole page."""
    ids = [p.id for p in proceedings]
    if not ids:
        return []
    changes = (
        await session.exec(
            select(ProceedingStatusChange)
            .where(col(ProceedingStatusChange.proceeding_id).in_(ids))
            .order_by(
                col(ProceedingStatusChange.effective_on), col(ProceedingStatusChange.recorded_at)
            )
        )
    ).all()
    links = (
        await session.exec(
            select(ProceedingCase)
            .where(col(ProceedingCase.proceeding_id).in_(ids))
            .order_by(col(ProceedingCase.linked_at), col(ProceedingCase.id))
        )
    ).all()
    defendants = (
        await session.exec(
            select(Defendant)
            .where(col(Defendant.proceeding_id).in_(ids))
            .order_by(col(Defendant.created_at), col(Defendant.label))
        )
    ).all()
    visible = await case_service.cases_involving(
        session, organization_id=actor.organization_id, case_ids=[x.case_id for x in links]
    )
    codes = await identity_service.organization_codes(
        session,
        [c.organization_id for c in changes]
        + [p.prosecutor_organization_id for p in proceedings]
        + [p.court_organization_id for p in proceedings if p.court_organization_id],
    )
    by_proceeding: dict[uuid.UUID, list[StatusChangePublic]] = defaultdict(list)
    for c in changes:
        by_proceeding[c.proceeding_id].append(
            StatusChangePublic(
                status=rules.ProceedingStatus(c.status),
                effective_on=c.effective_on,
                organization=codes[c.organization_id],
                recorded_at=c.recorded_at,
            )
        )
    cases: dict[uuid.UUID, list[ProceedingCase]] = defaultdict(list)
    for link in links:
        cases[link.proceeding_id].append(link)
    accused: dict[uuid.UUID, list[DefendantPublic]] = defaultdict(list)
    for d in defendants:
        accused[d.proceeding_id].append(defendant_public(d))
    return [
        ProceedingPublic(
            id=p.id,
            complaint_number=p.complaint_number,
            prosecutor_office=p.prosecutor_office,
            prosecutor=codes[p.prosecutor_organization_id],
            court=codes[p.court_organization_id] if p.court_organization_id else None,
            complaint_filed_on=p.complaint_filed_on,
            status=rules.ProceedingStatus(p.status),
            status_history=by_proceeding[p.id],
            cases=[
                ProceedingCasePublic(
                    case_id=x.case_id, offence_on=x.offence_on, linked_at=x.linked_at
                )
                for x in cases[p.id]
                if x.case_id in visible
            ],
            case_count=len(cases[p.id]),
            defendants=accused[p.id],
            created_at=p.created_at,
        )
        for p in proceedings
    ]


async def list_proceedings(
    session: AsyncSession, *, actor: Actor, page: PageParams
) -> tuple[list[Proceeding], str | None]:
    """The proceedings the actor's organization may read, newest first, a page at a time."""
    stmt = keyset(
        select(Proceeding).where(visible_proceeding(actor.organization_id)),
        sort=col(Proceeding.created_at),
        tiebreak=col(Proceeding.id),
        page=page,
    )
    rows = (await session.exec(stmt)).all()
    return page_of(rows, page, lambda p: (p.created_at, p.id))


async def list_case_proceedings(session: AsyncSession, case_id: uuid.UUID) -> list[Proceeding]:
    """The proceedings a (visible) case is linked to, oldest complaint first."""
    stmt = (
        select(Proceeding)
        .join(ProceedingCase, col(ProceedingCase.proceeding_id) == col(Proceeding.id))
        .where(ProceedingCase.case_id == case_id)
        .order_by(col(Proceeding.complaint_filed_on), col(Proceeding.id))
    )
    return list((await session.exec(stmt)).all())


async def linked_case(
    session: AsyncSession, *, proceeding_id: uuid.UUID, case_id: uuid.UUID
) -> ProceedingCase | None:
    """The link of a case to a proceeding, or None when the case is not in it."""
    return (
        await session.exec(
            select(ProceedingCase).where(
                ProceedingCase.proceeding_id == proceeding_id, ProceedingCase.case_id == case_id
            )
        )
    ).first()
