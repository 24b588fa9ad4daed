"""Referrals: sending, answering (accepting starts care only for care purposes), cancelling
by the sender or by the system (a case closed, consent withdrawn or refused), expiring."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.alerts import service as alert_service
from service.alerts.rules import AlertKind
from service.audit.service import record_event
from service.cases import service as case_service
from service.cases.rules import InvolvementBasis, TransitionTrigger
from service.consent import service as consent_service
from service.core.crypto import Keyring
from service.core.db import UNIT, for_update, joined_records, one_of, split_aggregate, table_of
from service.core.metrics import GaugeReading, Sample
from service.core.pagination import PageParams, keyset, page_of
from service.core.preconditions import IfMatch, check_version
from service.core.security import Actor
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity import rules as identity_rules
from service.identity import service as identity_service
from service.identity.exceptions import UnknownOrganization
from service.identity.service import get_organizations, get_organizations_by_code
from service.persons import service as person_service
from service.referrals import rules
from service.referrals.exceptions import (
    IllegalReferralChange,
    OverrideNotPermitted,
    ReferralNotCoveredByConsent,
    ReferralNotFound,
)
from service.referrals.models import Referral, ReferralStatusChange
from service.referrals.schemas import ReferralCreate, ReferralPublic

if TYPE_CHECKING:
    from service.cases.models import CaseFile


async def send_referral(
    session: AsyncSession,
    *,
    actor: Actor,
    settings: Settings,
    keyring: Keyring,
    case: CaseFile,
    data: ReferralCreate,
) -> Referral:
    """Refer the person to another organization, within the consent or with a justified override."""
    orgs = await get_organizations_by_code(session, [data.to_org])
    to_org = orgs.get(data.to_org)
    if to_org is None:
        raise UnknownOrganization("to_org", "no organization has this code")
    if to_org.id == actor.organization_id:
        raise UnknownOrganization("to_org", "an organization does not refer to itself")
    override_id = None
    covered = await consent_service.sharing_allowed(
        session, case_id=case.id, organization_id=to_org.id, organization_code=to_org.code
    )
    if not covered:
        if data.consent_override_justification is None:
            raise ReferralNotCoveredByConsent(
                f"No active consent lets the person's data go to {to_org.code}; record consent"
                " or, with the consent:override permission, a justification.",
            )
        if not identity_rules.has_permission(
            actor.role, identity_rules.Permission.consent_override
        ):
            raise OverrideNotPermitted(f"The role {actor.role!r} may not override consent.")
        sealed = await person_service.seal_for_person(
            session,
            keyring=keyring,
            person_id=case.person_id,
            payload={"justification": data.consent_override_justification},
        )
        override = await consent_service.record_override(
            session,
            actor=actor,
            case_id=case.id,
            organization_id=to_org.id,
            justification_ciphertext=sealed,
        )
        override_id = override.id
    now = utcnow()
    referral = Referral(
        case_id=case.id,
        from_org_id=actor.organization_id,
        to_org_id=to_org.id,
        purpose=data.purpose.value,
        status=rules.ReferralStatus.requested.value,
        consent_override_id=override_id,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
        due_at=rules.due_at(now, data.purpose, settings.referral_deadline_hours),
    )
    session.add(referral)
    await session.flush()
    session.add(
        ReferralStatusChange(
            referral_id=referral.id, to_status=referral.status, actor_user_id=actor.user_id
        )
    )
    record_event(
        session,
        actor=actor,
        action="referral.sent",
        entity_type="case",
        entity_id=case.id,
        changes={
            "referral_id": {"to": str(referral.id)},
            "to_org": {"to": to_org.code},
            "purpose": {"to": referral.purpose},
            "consent_overridden": {"to": override_id is not None},
        },
    )
    await case_service.advance_case(
        session, actor=actor, case_id=case.id, trigger=TransitionTrigger.referral_sent
    )
    return referral


async def _change(
    session: AsyncSession,
    *,
    actor: Actor | None,
    referral: Referral,
    action: rules.ReferralAction,
    side: rules.Side,
    reason_code: rules.SystemReason | None = None,
    reason_ciphertext: bytes | None = None,
) -> Referral:
    """Move the referral on, with the system's reason code or the caseworker's sealed reason;
    the audit event says which code, or only that a reason was given."""
    try:
        to = rules.next_status(rules.ReferralStatus(referral.status), action, side)
    except rules.IllegalReferralAction as exc:
        raise IllegalReferralChange(str(exc), allowed_actions=exc.allowed) from exc
    session.add(
        ReferralStatusChange(
            referral_id=referral.id,
            from_status=referral.status,
            to_status=to.value,
            reason_code=reason_code,
            reason_ciphertext=reason_ciphertext,
            actor_user_id=actor.user_id if actor else None,
        )
    )
    changes: dict[str, dict[str, object]] = {
        "referral_id": {"to": str(referral.id)},
        "status": {"from": referral.status, "to": to.value},
    }
    if reason_code is not None:
        changes["reason_code"] = {"to": reason_code.value}
    if reason_ciphertext is not None:
        changes["reason"] = {"changed": True}
    record_event(
        session,
        actor=actor,
        action=f"referral.{to.value}",
        entity_type="case",
        entity_id=referral.case_id,
        changes=changes,
    )
    referral.status, referral.updated_at = to.value, utcnow()
    if reason_code is not None or reason_ciphertext is not None:
        referral.reason_code = reason_code.value if reason_code else None
        referral.reason_ciphertext = reason_ciphertext
    session.add(referral)
    await session.flush()
    if action is not rules.ReferralAction.expire:
        await alert_service.resolve_alerts_of(
            session, actor=actor, kind=AlertKind.referral_overdue, source_id=referral.id
        )
    return referral


async def get_referral_for(
    session: AsyncSession, *, actor: Actor, referral_id: uuid.UUID, lock: bool = True
) -> tuple[Referral, rules.Side]:
    """A referral the actor's organization sent or received, locked unless `lock` is False
    (a read); 404 otherwise."""
    stmt = select(Referral).where(
        Referral.id == referral_id,
        sa.or_(
            col(Referral.from_org_id) == actor.organization_id,
            col(Referral.to_org_id) == actor.organization_id,
        ),
    )
    referral = (await session.exec(for_update(stmt, session) if lock else stmt)).first()
    if referral is None:
        raise ReferralNotFound("No such referral is visible to your organization.")
    side = rules.Side.receiver if referral.to_org_id == actor.organization_id else rules.Side.sender
    return referral, side


async def _require_consent_still_covers(session: AsyncSession, referral: Referral) -> None:
    """Accepting shares the person's data with the receiver: the consent that covered the
    referral when it was sent must still cover it (a refusal since withdrew it), unless it
    was sent under a justified override."""
    if referral.consent_override_id is not None:
        return
    receiver = (await get_organizations(session, [referral.to_org_id]))[referral.to_org_id]
    if not await consent_service.sharing_allowed(
        session,
        case_id=referral.case_id,
        organization_id=receiver.id,
        organization_code=receiver.code,
    ):
        raise ReferralNotCoveredByConsent(
            f"The person's consent no longer lets her data go to {receiver.code}; the sender"
            " may cancel the referral, or send it again with a justified override.",
        )


async def act_on_referral(
    session: AsyncSession,
    *,
    actor: Actor,
    referral_id: uuid.UUID,
    action: rules.ReferralAction,
    keyring: Keyring,
    reason: str | None = None,
    if_match: IfMatch | None = None,
) -> Referral:
    """Accept, reject, start, complete or cancel, as the actor's side may. Accepting involves
    the receiving organization; the case is in care only when the purpose starts care. With
    If-Match, only if the referral is still as the actor read it: of two caseworkers answering
    at once, the second finds it changed (412)."""
    referral, side = await get_referral_for(session, actor=actor, referral_id=referral_id)
    check_version(if_match, referral)
    sealed = None
    if reason is not None:
        # Free text may name people: sealed under the person's data key, shown to the parties.
        persons = await case_service.persons_of_cases(session, [referral.case_id])
        sealed = await person_service.seal_for_person(
            session,
            keyring=keyring,
            person_id=persons[referral.case_id],
            payload={"reason": reason},
        )
    await _change(
        session,
        actor=actor,
        referral=referral,
        action=action,
        side=side,
        reason_ciphertext=sealed,
    )
    if action is rules.ReferralAction.accept:
        # After the status check, so a referral that cannot be accepted says why; the refusal
        # rolls the whole request back.
        await _require_consent_still_covers(session, referral)
        await case_service.involve(
            session,
            actor=actor,
            case_id=referral.case_id,
            organization_id=referral.to_org_id,
            basis=InvolvementBasis.referral,
            source_id=referral.id,
        )
        if rules.starts_care(rules.ReferralPurpose(referral.purpose)):
            await case_service.advance_case(
                session,
                actor=actor,
                case_id=referral.case_id,
                trigger=TransitionTrigger.care_started,
            )
    elif action is rules.ReferralAction.cancel:
        await case_service.end_involvement(
            session,
            actor=actor,
            case_id=referral.case_id,
            organization_id=referral.to_org_id,
            basis=InvolvementBasis.referral,
            source_id=referral.id,
        )
    return referral


async def cancel_uncovered_referrals(
    session: AsyncSession,
    *,
    actor: Actor,
    case_id: uuid.UUID,
    share_with: Sequence[str] | None,
    reason: rules.SystemReason,
) -> int:
    """Cancel the case's pending referrals (to these organizations; None: to any) that no
    consent in force or override covers any more; returns how many."""
    stmt = select(Referral).where(
        Referral.case_id == case_id,
        Referral.status == rules.ReferralStatus.requested.value,
        col(Referral.consent_override_id).is_(None),
    )
    if share_with is not None:
        named = await get_organizations_by_code(session, share_with)
        stmt = stmt.where(col(Referral.to_org_id).in_([o.id for o in named.values()]))
    pending = (
        await session.exec(
            for_update(stmt.order_by(col(Referral.created_at), col(Referral.id)), session)
        )
    ).all()
    if not pending:
        return 0
    orgs = await get_organizations(session, [r.to_org_id for r in pending])
    covered = await consent_service.organizations_covered(
        session, case_id=case_id, organizations={o.id: o.code for o in orgs.values()}
    )
    cancelled = 0
    for referral in pending:
        if referral.to_org_id in covered:
            continue
        await _change(
            session,
            actor=actor,
            referral=referral,
            action=rules.ReferralAction.cancel,
            side=rules.Side.sender,
            reason_code=reason,
        )
        cancelled += 1
    return cancelled


async def cancel_requested_referrals(
    session: AsyncSession, *, actor: Actor | None, case_id: uuid.UUID, reason: rules.SystemReason
) -> list[Referral]:
    """Cancel every referral of the case still waiting for an answer (the case closed)."""
    pending = (
        await session.exec(
            for_update(
                select(Referral)
                .where(
                    Referral.case_id == case_id,
                    Referral.status == rules.ReferralStatus.requested.value,
                )
                .order_by(col(Referral.created_at), col(Referral.id)),
                session,
            )
        )
    ).all()
    for referral in pending:
        await _change(
            session,
            actor=actor,
            referral=referral,
            action=rules.ReferralAction.cancel,
            side=rules.Side.system,
            reason_code=reason,
        )
    return list(pending)


async def expire_overdue_referrals(
    session: AsyncSession, *, now: datetime | None = None, limit: int = 200
) -> int:
    """Expire up to `limit` referrals left unanswered past their deadline, oldest deadline
    first, and alert the sender; returns how many (the sweep repeats while it is `limit`)."""
    moment = now or utcnow()
    overdue = (
        await session.exec(
            for_update(
                select(Referral)
                .where(
                    Referral.status == rules.ReferralStatus.requested.value,
                    col(Referral.due_at) < moment,
                )
                .order_by(col(Referral.due_at), col(Referral.id))
                .limit(limit),
                session,
                skip_locked=True,
            )
        )
    ).all()
    for referral in overdue:
        await _change(
            session,
            actor=None,
            referral=referral,
            action=rules.ReferralAction.expire,
            side=rules.Side.system,
            reason_code=rules.SystemReason.unanswered_past_deadline,
        )
        await alert_service.open_alert(
            session,
            actor=None,
            case_id=referral.case_id,
            kind=AlertKind.referral_overdue,
            source_id=referral.id,
            organization_id=referral.from_org_id,
        )
    return len(overdue)


async def list_referrals(
    session: AsyncSession,
    *,
    actor: Actor,
    direction: str,
    statuses: Sequence[rules.ReferralStatus],
    page: PageParams,
    case_id: uuid.UUID | None = None,
) -> tuple[list[Referral], str | None]:
    """The organization's inbox (incoming) or outbox (outgoing), newest first."""
    column = Referral.to_org_id if direction == "incoming" else Referral.from_org_id
    stmt = select(Referral).where(column == actor.organization_id)
    if statuses:
        stmt = stmt.where(col(Referral.status).in_([s.value for s in statuses]))
    if case_id is not None:
        stmt = stmt.where(Referral.case_id == case_id)
    stmt = keyset(stmt, sort=col(Referral.created_at), tiebreak=col(Referral.id), page=page)
    return page_of((await session.exec(stmt)).all(), page, lambda r: (r.created_at, r.id))


async def _reason_of(
    session: AsyncSession, keyring: Keyring, referral: Referral, person_id: uuid.UUID
) -> str | None:
    """The system's code, or the caseworker's text opened with the person's key (None once
    the person was erased)."""
    if referral.reason_ciphertext is None:
        return referral.reason_code
    opened = await person_service.open_for_person(
        session, keyring=keyring, person_id=person_id, sealed=referral.reason_ciphertext
    )
    return None if opened is None else str(opened["reason"])


async def referral_public(
    session: AsyncSession, *, keyring: Keyring, referrals: Sequence[Referral]
) -> list[ReferralPublic]:
    """The referrals as their two organizations see them (the only callers: every route
    reads them through `get_referral_for` or the organization's own inbox or outbox), with
    the reason in clear."""
    orgs = await get_organizations(
        session, [r.from_org_id for r in referrals] + [r.to_org_id for r in referrals]
    )
    persons = await case_service.persons_of_cases(
        session, [r.case_id for r in referrals if r.reason_ciphertext is not None]
    )
    reasons = [
        await _reason_of(session, keyring, r, persons[r.case_id])
        if r.reason_ciphertext is not None
        else r.reason_code
        for r in referrals
    ]
    return [
        ReferralPublic(
            id=r.id,
            case_id=r.case_id,
            from_org=orgs[r.from_org_id].code,
            to_org=orgs[r.to_org_id].code,
            purpose=rules.ReferralPurpose(r.purpose),
            status=rules.ReferralStatus(r.status),
            reason=reason,
            consent_overridden=r.consent_override_id is not None,
            created_at=r.created_at,
            due_at=r.due_at,
            updated_at=r.updated_at,
        )
        for r, reason in zip(referrals, reasons, strict=True)
    ]


async def holds_accepted_referral(
    session: AsyncSession,
    *,
    case_id: uuid.UUID,
    organization_id: uuid.UUID,
    purpose: rules.ReferralPurpose,
) -> bool:
    """Whether the organization received a referral of the case for this purpose and accepted
    it (accepted or in progress: not yet completed, cancelled, rejected or expired)."""
    row = (
        await session.exec(
            select(Referral.id).where(
                Referral.case_id == case_id,
                Referral.to_org_id == organization_id,
                Referral.purpose == purpose.value,
                col(Referral.status).in_(
                    [rules.ReferralStatus.accepted.value, rules.ReferralStatus.in_progress.value]
                ),
            )
        )
    ).first()
    return row is not None


_DEAD = (
    rules.ReferralStatus.rejected.value,
    rules.ReferralStatus.cancelled.value,
    rules.ReferralStatus.expired.value,
)


def live_targets_of(
    case_id: uuid.UUID | sa.BindParameter[uuid.UUID],
) -> sa.ScalarSelect[str | None]:
    """The (organization code, purpose) of the case's referrals not rejected, cancelled or
    expired, as one SQL value for another read to carry in its own statement (no round trip
    of its own); `live_targets_from` reads it."""
    referral = table_of(Referral)
    target = identity_service.organization_code_of(referral.c.to_org_id) + UNIT + referral.c.purpose
    return (
        sa.select(joined_records(target))
        .where(referral.c.case_id == case_id, sa.not_(one_of(referral.c.status, _DEAD)))
        .scalar_subquery()
    )


def live_targets_from(value: str | None) -> set[tuple[str, str]]:
    """The (organization code, purpose) pairs of a `live_targets_of` value."""
    return {(code, purpose) for code, purpose in split_aggregate(value)}


def referrals_known_on(
    known_on: datetime, *, sent_from: datetime, sent_before: datetime
) -> sa.Select[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str, str]]:
    """Referrals sent in [sent_from, sent_before) and recorded by `known_on`, with the status
    they had on `known_on` (their latest change by then): `referral_id`, `case_id`,
    `to_org_id`, `purpose`, `status`. As SQL, for the statistics."""
    referral, change = table_of(Referral), table_of(ReferralStatusChange)
    status = (
        sa.select(change.c.to_status)
        .where(change.c.referral_id == referral.c.id, change.c.at <= known_on)
        .order_by(change.c.at.desc(), change.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.select(
        referral.c.id.label("referral_id"),
        referral.c.case_id,
        referral.c.to_org_id,
        referral.c.purpose,
        status.label("status"),
    ).where(
        referral.c.created_at >= sent_from,
        referral.c.created_at < sent_before,
        referral.c.created_at <= known_on,
    )


async def missed_deadline_gauge(session: AsyncSession, *, now: datetime) -> GaugeReading:
    """For /metrics: referrals whose answer deadline passed: expired by the sweep, and still
    requested past their deadline (the sweep has not run yet)."""
    expired = rules.ReferralStatus.expired.value
    requested = rules.ReferralStatus.requested.value
    row = (
        await session.exec(
            select(
                sa.func.count().filter(col(Referral.status) == expired),
                sa.func.count().filter(
                    col(Referral.status) == requested, col(Referral.due_at) < now
                ),
            )
        )
    ).one()
    return GaugeReading(
        "ruta_referral_deadlines_missed",
        "Referrals unanswered past their deadline: expired, or overdue and not yet expired.",
        ["state"],
        [Sample({"state": "expired"}, row[0]), Sample({"state": "overdue"}, row[1])],
    )
