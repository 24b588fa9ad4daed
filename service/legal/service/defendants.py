"""A proceeding's defendants and their outcomes, judged by the pure sentencing rule.

Defendants carry no identity: a label (D1, D2 ...), whether they are a public official, the
charge filed and the charge decided. The prosecutor adds them and may close a defendant's
case before trial (dismissed, suspended); the court records the outcomes at trial.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.cases import service as case_service
from service.core.errors import InvalidInput
from service.core.plausibility import refuse_implausible
from service.core.preconditions import IfMatch, check_version, touch
from service.core.security import Actor
from service.core.time import utcnow
from service.legal import rules
from service.legal.exceptions import (
    CourtOnly,
    DefendantNotFound,
    ProceedingNotFound,
    ProceedingStageConflict,
)
from service.legal.models import Defendant, DefendantOutcome, Proceeding, ProceedingCase
from service.legal.schemas import DefendantCreate, OutcomeCreate
from service.legal.service.proceedings import (
    YEAR,
    get_proceeding_for,
    lock_proceeding_for_change,
    require_open,
    require_prosecutor,
)


async def add_defendant(
    session: AsyncSession,
    *,
    actor: Actor,
    proceeding_id: uuid.UUID,
    data: DefendantCreate,
    if_match: IfMatch | None = None,
) -> Defendant:
    """Add a defendant to an undecided proceeding: labelled D1, D2 ... in order, no identity.
    If-Match, when sent, is the proceeding's ETag."""
    # The lock on the proceeding orders concurrent additions: each reads the count after the
    # previous one committed, so labels never collide (the unique constraint is the last guard).
    proceeding = await lock_proceeding_for_change(
        session, actor=actor, proceeding_id=proceeding_id, if_match=if_match
    )
    require_prosecutor(proceeding, actor)
    require_open(proceeding)
    count = (
        await session.exec(
            select(sa.func.count())
            .select_from(Defendant)
            .where(Defendant.proceeding_id == proceeding.id)
        )
    ).one()
    defendant = Defendant(
        proceeding_id=proceeding.id,
        label=rules.defendant_label(count + 1),
        public_official=data.public_official,
        charge_filed=data.charge_filed.value,
        outcome=rules.Outcome.ongoing.value,
        created_by=actor.user_id,
    )
    session.add(defendant)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="proceeding.defendant_added",
        entity_type="proceeding",
        entity_id=proceeding.id,
        changes={
            "defendant_id": {"to": str(defendant.id)},
            "label": {"to": defendant.label},
            "public_official": {"to": defendant.public_official},
            "charge_filed": {"to": defendant.charge_filed},
        },
    )
    return defendant


def _authorize_outcome(proceeding: Proceeding, actor: Actor, outcome: rules.Outcome) -> None:
    """The court decides at trial; the prosecutor may close a defendant's case before."""
    status = rules.ProceedingStatus(proceeding.status)
    if actor.organization_id == proceeding.court_organization_id:
        if status is not rules.ProceedingStatus.trial:
            raise ProceedingStageConflict("The court records outcomes while at trial.")
        return
    if actor.organization_id != proceeding.prosecutor_organization_id or (
        outcome not in rules.PROSECUTOR_OUTCOMES
    ):
        raise CourtOnly("Only the proceeding's court records this outcome.")
    if not rules.before_trial(status):
        raise ProceedingStageConflict("Once at trial, outcomes are the court's to record.")


async def youngest_victim_age(session: AsyncSession, proceeding_id: uuid.UUID) -> int | None:
    """The youngest linked victim's age on the day of the offence against them, by the
    conservative age rule; victims of unknown age are left out, and None when no age is
    known (the sentencing rule then takes the adult minimum)."""
    links = (
        await session.exec(
            select(ProceedingCase).where(ProceedingCase.proceeding_id == proceeding_id)
        )
    ).all()
    ages = [await case_service.person_age_on(session, x.case_id, x.offence_on) for x in links]
    known = [age for age in ages if age is not None]
    return min(known) if known else None


async def get_defendant_for(
    session: AsyncSession, *, actor: Actor, defendant_id: uuid.UUID, lock: bool = False
) -> tuple[Defendant, Proceeding]:
    """A defendant of a proceeding the actor's organization may read, with the proceeding
    (locked with `lock`, which orders every change of its defendants); DefendantNotFound
    otherwise."""
    defendant = await session.get(Defendant, defendant_id)
    not_found = DefendantNotFound("No such defendant is visible to your organization.")
    if defendant is None:
        raise not_found
    try:
        proceeding = await get_proceeding_for(
            session, actor=actor, proceeding_id=defendant.proceeding_id, lock=lock
        )
    except ProceedingNotFound as exc:
        raise not_found from exc
    if lock:
        # Read before the lock: as the last writer under the same lock left it.
        await session.refresh(defendant)
    return defendant, proceeding


async def record_outcome(
    session: AsyncSession,
    *,
    actor: Actor,
    defendant_id: uuid.UUID,
    data: OutcomeCreate,
    if_match: IfMatch | None = None,
) -> Defendant:
    """Record a defendant's outcome (dated history; the defendant's columns hold the latest).
    A conviction is judged by the pure sentencing rule against the youngest victim's age on
    the day of the offence: below the legal minimum, charge reduced; the flags and the rule's
    version are stored with it."""
    defendant, proceeding = await get_defendant_for(
        session, actor=actor, defendant_id=defendant_id, lock=True
    )
    check_version(if_match, defendant)
    _authorize_outcome(proceeding, actor, data.outcome)
    sentence_months = (
        data.sentence.years * YEAR + data.sentence.months if data.sentence is not None else None
    )
    reason = rules.outcome_error(
        data.outcome, sentence_months=sentence_months, fine_soles=data.fine_soles
    )
    if reason is not None:
        raise InvalidInput(
            "outcome" if data.outcome is rules.Outcome.ongoing else "sentence", reason
        )
    refuse_implausible(
        rules.step_day_problem(
            "outcome_on",
            data.outcome_on,
            after_field="the complaint",
            after=proceeding.complaint_filed_on,
            today=utcnow().date(),
        )
    )
    charge_filed = rules.Charge(defendant.charge_filed)
    charge = data.charge or (charge_filed if data.outcome is rules.Outcome.convicted else None)
    age = (
        await youngest_victim_age(session, proceeding.id)
        if data.outcome is rules.Outcome.convicted
        else None
    )
    flags = rules.judge_outcome(
        outcome=data.outcome,
        charge_filed=charge_filed,
        charge=charge,
        sentence_months=sentence_months,
        youngest_victim_age=age,
    )
    previous = defendant.outcome
    defendant.outcome, defendant.outcome_on = data.outcome.value, data.outcome_on
    defendant.charge = charge.value if charge is not None else None
    defendant.sentence_months, defendant.fine_soles = sentence_months, data.fine_soles
    defendant.below_legal_minimum = flags.below_legal_minimum
    defendant.charge_reduced = flags.charge_reduced
    defendant.rule_version = flags.rule_version
    session.add(defendant)
    # The proceeding as read lists its defendants' outcomes: its ETag moves too.
    touch(proceeding, "status")
    session.add(proceeding)
    session.add(
        DefendantOutcome(
            defendant_id=defendant.id,
            outcome=defendant.outcome,
            outcome_on=data.outcome_on,
            charge=defendant.charge,
            sentence_months=sentence_months,
            fine_soles=data.fine_soles,
            below_legal_minimum=flags.below_legal_minimum,
            charge_reduced=flags.charge_reduced,
            rule_version=flags.rule_version,
            organization_id=actor.organization_id,
            recorded_by=actor.user_id,
        )
    )
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="proceeding.outcome_recorded",
        entity_type="proceeding",
        entity_id=proceeding.id,
        changes={
            "defendant_id": {"to": str(defendant.id)},
            "outcome": {"from": previous, "to": defendant.outcome},
            "outcome_on": {"to": data.outcome_on},
            "charge": {"to": defendant.charge},
            "sentence_months": {"to": sentence_months},
            "fine_soles": {"to": str(data.fine_soles) if data.fine_soles is not None else None},
            "below_legal_minimum": {"to": flags.below_legal_minimum},
            "charge_reduced": {"to": flags.charge_reduced},
            "rule_version": {"to": flags.rule_version},
        },
    )
    return defendant
