"""Recording assistance, custody periods and punitive measures; the alerts they raise."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.alerts import service as alert_service
from service.alerts.rules import AlertKind
from service.audit.service import record_event
from service.capacity import service as capacity_service
from service.cases import service as case_service
from service.cases.rules import TransitionTrigger
from service.core.db import for_update, table_of
from service.core.plausibility import refuse_implausible
from service.core.security import Actor
from service.core.time import utcnow
from service.protection import rules
from service.protection.exceptions import CustodyAlreadyEnded, CustodyNotFound
from service.protection.models import Assistance, CustodyPeriod, NonPunishmentRecord
from service.protection.schemas import (
    AssistanceCreate,
    CustodyCreate,
    CustodyPublic,
    NonPunishmentCreate,
)

if TYPE_CHECKING:
    from service.cases.models import CaseFile


async def record_assistance(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: AssistanceCreate
) -> Assistance:
    """A service given to the person by the actor's organization; care has begun."""
    refuse_implausible(rules.assistance_day_problem(data.provided_on, today=utcnow().date()))
    assistance = Assistance(
        case_id=case.id,
        kind=data.kind.value,
        organization_id=actor.organization_id,
        provided_by=actor.user_id,
        provided_on=data.provided_on,
        outcome=data.outcome.value,
    )
    session.add(assistance)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="assistance.recorded",
        entity_type="case",
        entity_id=case.id,
        changes={
            "assistance_id": {"to": str(assistance.id)},
            "kind": {"to": assistance.kind},
            "outcome": {"to": assistance.outcome},
            "provided_on": {"to": str(assistance.provided_on)},
        },
    )
    if data.outcome in {rules.AssistanceOutcome.provided, rules.AssistanceOutcome.ongoing}:
        await case_service.advance_case(
            session, actor=actor, case_id=case.id, trigger=TransitionTrigger.care_started
        )
    return assistance


def custody_public(period: CustodyPeriod) -> CustodyPublic:
    return CustodyPublic(
        id=period.id,
        case_id=period.case_id,
        place_kind=rules.CustodyPlace(period.place_kind),
        start=period.start_at,
        end=period.end_at,
        minor=period.minor,
        hours=round(rules.custody_hours(period.start_at, period.end_at, utcnow()), 2),
    )


async def record_custody(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: CustodyCreate
) -> CustodyPeriod:
    """Where the person is held; a child in a police station opens an alert at once."""
    refuse_implausible(rules.custody_problem(data.start, data.end, now=utcnow()))
    # A child on the day the custody began, however late it is entered; the day as the
    # caller dated it (Peru's day for a Peruvian institution).
    minor = await case_service.person_minor_on(session, case, data.start.date())
    period = CustodyPeriod(
        case_id=case.id,
        place_kind=data.place_kind.value,
        start_at=data.start,
        end_at=data.end,
        end_recorded_at=utcnow() if data.end is not None else None,
        minor=minor,
        recorded_by=actor.user_id,
        organization_id=actor.organization_id,
    )
    session.add(period)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="custody.recorded",
        entity_type="case",
        entity_id=case.id,
        changes={
            "custody_id": {"to": str(period.id)},
            "place_kind": {"to": period.place_kind},
            "start": {"to": period.start_at},
            "end": {"to": period.end_at},
            "minor": {"to": minor},
        },
    )
    if period.end_at is None and rules.custody_alerts(data.place_kind, minor=minor):
        await alert_service.open_alert(
            session,
            actor=actor,
            case_id=case.id,
            kind=AlertKind.minor_in_custody,
            source_id=period.id,
        )
    return period


async def end_custody(
    session: AsyncSession, *, actor: Actor, custody_id: uuid.UUID, end: datetime
) -> CustodyPeriod:
    """The person left custody; its alerts are resolved (a child's once she has a bed)."""
    not_found = CustodyNotFound("No such custody period is visible to your organization.")
    period = await session.get(CustodyPeriod, custody_id)
    if period is None:
        raise not_found
    await case_service.require_visible_case(
        session, actor=actor, case_id=period.case_id, otherwise=not_found
    )
    if period.end_at is not None:
        raise CustodyAlreadyEnded("This custody period already has an end.")
    refuse_implausible(rules.custody_problem(period.start_at, end, now=utcnow()))
    period.end_at = end
    period.end_recorded_at = utcnow()
    session.add(period)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="custody.ended",
        entity_type="case",
        entity_id=period.case_id,
        changes={"custody_id": {"to": str(period.id)}, "end": {"to": period.end_at}},
    )
    await alert_service.resolve_alerts_of(
        session, actor=actor, kind=AlertKind.long_custody, source_id=period.id
    )
    # A child still waiting for a bed keeps the alert open until placed.
    if not await capacity_service.is_waiting(session, period.case_id):
        await alert_service.resolve_alerts_of(
            session, actor=actor, kind=AlertKind.minor_in_custody, source_id=period.id
        )
    return period


def _below_target(*, now: datetime, minor_hours: int, adult_hours: int) -> sa.ColumnElement[bool]:
    """Custody still running that has passed a limit its escalation level does not yet
    reflect (the SQL shape of rules.custody_escalation_level, to select only those)."""
    child_held = sa.and_(
        col(CustodyPeriod.minor).is_(True),
        col(CustodyPeriod.place_kind) == rules.CustodyPlace.police_station.value,
    )
    past_minor = col(CustodyPeriod.start_at) < now - timedelta(hours=minor_hours)
    past_adult = col(CustodyPeriod.start_at) < now - timedelta(hours=adult_hours)
    level = col(CustodyPeriod.escalation_level)
    return sa.and_(
        col(CustodyPeriod.end_at).is_(None),
        sa.or_(
            sa.and_(
                child_held, sa.or_(sa.and_(past_minor, level < 1), sa.and_(past_adult, level < 2))
            ),
            sa.and_(sa.not_(child_held), past_adult, level < 1),
        ),
    )


async def escalate_long_custody(
    session: AsyncSession, *, now: datetime, minor_hours: int, adult_hours: int, limit: int = 200
) -> int:
    """Raise again the alert of up to `limit` custody periods held past a limit they had not
    passed before, longest held first: a child past `minor_hours` and again past
    `adult_hours`; anyone else past `adult_hours` opens a long_custody alert. Returns how
    many periods escalated (the sweep repeats while it is `limit`); running it again at the
    same moment escalates nothing."""
    periods = (
        await session.exec(
            for_update(
                select(CustodyPeriod)
                .where(_below_target(now=now, minor_hours=minor_hours, adult_hours=adult_hours))
                .order_by(col(CustodyPeriod.start_at), col(CustodyPeriod.id))
                .limit(limit),
                session,
                skip_locked=True,
            )
        )
    ).all()
    escalated = 0
    for period in periods:
        place = rules.CustodyPlace(period.place_kind)
        level = rules.custody_escalation_level(
            place,
            minor=period.minor,
            held=now - period.start_at,
            minor_hours=minor_hours,
            adult_hours=adult_hours,
        )
        if level <= period.escalation_level:
            continue
        kind = rules.custody_alert_kind(place, minor=period.minor)
        # A child's alert resolved meanwhile (placed in a bed, or by hand) is not reopened;
        # any other person's long custody opens its alert.
        await alert_service.escalate_alert(
            session,
            actor=None,
            case_id=period.case_id,
            kind=kind,
            source_id=period.id,
            level=level,
            at=now,
            open_if_missing=kind is AlertKind.long_custody,
        )
        period.escalation_level = level
        session.add(period)
        escalated += 1
    await session.flush()
    return escalated


async def list_custody(session: AsyncSession, case: CaseFile) -> list[CustodyPeriod]:
    rows = await session.exec(
        select(CustodyPeriod)
        .where(CustodyPeriod.case_id == case.id)
        .order_by(col(CustodyPeriod.start_at))
    )
    return list(rows.all())


async def record_non_punishment(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: NonPunishmentCreate
) -> NonPunishmentRecord:
    """A measure taken against the victim for compelled acts; it opens an alert."""
    refuse_implausible(rules.non_punishment_day_problem(data.occurred_on, today=utcnow().date()))
    record = NonPunishmentRecord(
        case_id=case.id,
        measure=data.measure.value,
        offence=data.offence,
        occurred_on=data.occurred_on,
        authority=data.authority,
        recorded_by=actor.user_id,
        organization_id=actor.organization_id,
    )
    session.add(record)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="non_punishment.recorded",
        entity_type="case",
        entity_id=case.id,
        changes={
            "record_id": {"to": str(record.id)},
            "measure": {"to": record.measure},
            "offence": {"to": record.offence},
            "occurred_on": {"to": str(record.occurred_on)},
        },
    )
    await alert_service.open_alert(
        session, actor=actor, case_id=case.id, kind=AlertKind.non_punishment, source_id=record.id
    )
    return record


def assistance_known_on(
    known_on: datetime, *, provided_from: date, provided_to: date
) -> sa.Select[tuple[uuid.UUID, str]]:
    """Services given (provided or ongoing) between two days, inclusive, recorded by
    `known_on`: `case_id`, `kind`. As SQL, for the statistics."""
    assistance = table_of(Assistance)
    return sa.select(assistance.c.case_id, assistance.c.kind).where(
        assistance.c.provided_on >= provided_from,
        assistance.c.provided_on <= provided_to,
        assistance.c.recorded_at <= known_on,
        assistance.c.outcome.in_(
            [rules.AssistanceOutcome.provided.value, rules.AssistanceOutcome.ongoing.value]
        ),
    )


def custody_known_on(
    known_on: datetime, *, started_from: datetime, started_before: datetime
) -> sa.Select[tuple[uuid.UUID, str, bool, datetime, datetime | None]]:
    """Custody periods that began in [started_from, started_before), recorded by
    `known_on`: `case_id`, `place_kind`, `minor` (on the first day), `start_at`, and
    `end_at` when that end was recorded by `known_on` (NULL: still held, as then known)."""
    custody = table_of(CustodyPeriod)
    end = sa.case((custody.c.end_recorded_at <= known_on, custody.c.end_at))
    return sa.select(
        custody.c.case_id,
        custody.c.place_kind,
        custody.c.minor,
        custody.c.start_at,
        end.label("end_at"),
    ).where(
        custody.c.start_at >= started_from,
        custody.c.start_at < started_before,
        custody.c.recorded_at <= known_on,
    )
