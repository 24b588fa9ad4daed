"""The waitlist: who waits for a bed, in what order, and who gets a bed when one frees.

A request waits, then ends placed, withdrawn (with a reason) or expired; a case waits at
most once (a partial unique index). The order is `rules.WAITLIST_ORDER`, the one definition
that `rules.priority` also uses. A freed bed goes to the first eligible waiting person,
however far down the list: the list is read in keyset pages, never whole, and each
candidate is checked with the same pure eligibility rule as a placement, on the person's
age on the day of placement. Requests that can never be served (a closed case, a person
already in a bed) are withdrawn as they are met, and the offer reports them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.capacity import rules
from service.capacity.exceptions import RequestNotFound, RequestNotWaiting
from service.capacity.models import (
    Facility,
    PlacementRequest,
    PlacementRequestRiskChange,
    UnmetNeed,
)
from service.capacity.schemas import PlacementRequestPublic
from service.capacity.service import beds
from service.cases import service as case_service
from service.cases.rules import CaseStatus
from service.consent import service as consent_service
from service.consent.rules import ConsentPurpose
from service.core.crypto import Keyring
from service.core.db import for_update
from service.core.pagination import lexicographic
from service.core.security import Actor
from service.core.time import utcnow
from service.persons import service as person_service

if TYPE_CHECKING:
    from service.cases.models import CaseFile

PAGE = 100
WAITING = rules.RequestStatus.waiting.value


def _order() -> list[tuple[Any, bool]]:
    """`rules.WAITLIST_ORDER` as (column, descending) pairs."""
    return [(col(getattr(PlacementRequest, name)), desc) for name, desc in rules.WAITLIST_ORDER]


def order_by() -> list[Any]:
    """The SQL ORDER BY of the waitlist, built from `rules.WAITLIST_ORDER`."""
    return [c.desc() if desc else c.asc() for c, desc in _order()]


def _key(request: PlacementRequest) -> list[Any]:
    return [getattr(request, name) for name, _ in rules.WAITLIST_ORDER]


def entry(request: PlacementRequest) -> rules.WaitlistEntry:
    return rules.WaitlistEntry(
        id=request.id,
        minor=request.minor,
        risk_level=request.risk_level,
        requested_at=request.requested_at,
    )


async def position(session: AsyncSession, request: PlacementRequest) -> int:
    """1 + how many waiting requests come before this one in the waitlist order."""
    ahead = lexicographic(_order(), _key(request), before=True)
    count = (
        await session.exec(
            select(func.count())
            .select_from(PlacementRequest)
            .where(PlacementRequest.status == WAITING, ahead)
        )
    ).one()
    return int(count) + 1


async def waiting_request_of(session: AsyncSession, case_id: uuid.UUID) -> PlacementRequest | None:
    return (
        await session.exec(
            select(PlacementRequest).where(
                PlacementRequest.case_id == case_id, PlacementRequest.status == WAITING
            )
        )
    ).first()


async def is_waiting(session: AsyncSession, case_id: uuid.UUID) -> bool:
    """Whether the case has a request waiting for a bed."""
    return await waiting_request_of(session, case_id) is not None


async def enqueue(
    session: AsyncSession,
    *,
    actor: Actor,
    case_id: uuid.UUID,
    needs: rules.Needs,
    facility_id: uuid.UUID | None,
    risk_level: int,
) -> PlacementRequest:
    """The case's waiting request: the one it has, or a new one at its place in the order."""
    request = await waiting_request_of(session, case_id)
    if request is not None:
        return request
    request = PlacementRequest(
        case_id=case_id,
        facility_id=facility_id,
        status=WAITING,
        minor=needs.minor,
        risk_level=risk_level,
        needs=beds.needs_json(needs),
        region=needs.region,
        requested_by=actor.user_id,
    )
    session.add(request)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="placement.waitlisted",
        entity_type="case",
        entity_id=case_id,
        changes={"request_id": {"to": str(request.id)}, "risk_level": {"to": risk_level}},
    )
    return request


async def _end_request(
    session: AsyncSession,
    *,
    actor: Actor | None,
    request: PlacementRequest,
    status: rules.RequestStatus,
    reason: rules.WithdrawReason | None = None,
    placement_id: uuid.UUID | None = None,
) -> None:
    request.status, request.resolved_at = status.value, utcnow()
    request.end_reason = reason.value if reason else None
    request.placement_id = placement_id
    session.add(request)
    await session.flush()
    changes: dict[str, Any] = {
        "request_id": {"to": str(request.id)},
        "status": {"from": WAITING, "to": status.value},
    }
    if reason is not None:
        changes["reason"] = {"to": reason.value}
    record_event(
        session,
        actor=actor,
        action=f"waitlist.{status.value}",
        entity_type="case",
        entity_id=request.case_id,
        changes=changes,
    )


async def withdraw_waiting_of_case(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case_id: uuid.UUID,
    reason: rules.WithdrawReason,
) -> PlacementRequest | None:
    """Withdraw the case's waiting request, if it has one (placed directly, case closed)."""
    request = (
        await session.exec(
            for_update(
                select(PlacementRequest).where(
                    PlacementRequest.case_id == case_id, PlacementRequest.status == WAITING
                ),
                session,
            )
        )
    ).first()
    if request is not None:
        await _end_request(
            session,
            actor=actor,
            request=request,
            status=rules.RequestStatus.withdrawn,
            reason=reason,
        )
    return request


async def get_request_for(
    session: AsyncSession, *, actor: Actor, request_id: uuid.UUID, lock: bool = False
) -> PlacementRequest:
    """A request of a case visible to the actor; its own 404 otherwise."""
    not_found = RequestNotFound(
        f"No placement request {request_id} is visible to your organization."
    )
    stmt = select(PlacementRequest).where(PlacementRequest.id == request_id)
    request = (await session.exec(for_update(stmt, session) if lock else stmt)).first()
    if request is None:
        raise not_found
    await case_service.require_visible_case(
        session, actor=actor, case_id=request.case_id, otherwise=not_found
    )
    return request


def _require_waiting(request: PlacementRequest) -> None:
    if request.status != WAITING:
        raise RequestNotWaiting(f"This request is {request.status}, no longer waiting.")


async def withdraw_request(
    session: AsyncSession,
    *,
    actor: Actor,
    request_id: uuid.UUID,
    reason: rules.WithdrawReason,
) -> PlacementRequest:
    """A caseworker takes the person off the waitlist, with a reason."""
    request = await get_request_for(session, actor=actor, request_id=request_id, lock=True)
    _require_waiting(request)
    await _end_request(
        session, actor=actor, request=request, status=rules.RequestStatus.withdrawn, reason=reason
    )
    return request


async def change_risk(
    session: AsyncSession,
    *,
    actor: Actor,
    request_id: uuid.UUID,
    keyring: Keyring,
    risk_level: int,
    reason: str,
) -> PlacementRequest:
    """A waiting person's risk changed: the new level re-orders the list; dated, audited.
    The reason may name people: it is sealed under the person's data key, and the audit
    records only that one was given."""
    request = await get_request_for(session, actor=actor, request_id=request_id, lock=True)
    _require_waiting(request)
    if request.risk_level == risk_level:
        return request
    persons = await case_service.persons_of_cases(session, [request.case_id])
    sealed = await person_service.seal_for_person(
        session, keyring=keyring, person_id=persons[request.case_id], payload={"reason": reason}
    )
    session.add(
        PlacementRequestRiskChange(
            request_id=request.id,
            from_level=request.risk_level,
            to_level=risk_level,
            reason_ciphertext=sealed,
            changed_by=actor.user_id,
        )
    )
    record_event(
        session,
        actor=actor,
        action="waitlist.risk_changed",
        entity_type="case",
        entity_id=request.case_id,
        changes={
            "request_id": {"to": str(request.id)},
            "risk_level": {"from": request.risk_level, "to": risk_level},
            "reason": {"changed": True},
        },
    )
    request.risk_level = risk_level
    session.add(request)
    await session.flush()
    return request


async def expire_waiting_requests(
    session: AsyncSession, *, max_days: int, limit: int = 200, now: datetime | None = None
) -> int:
    """Requests that waited longer than `max_days` expire, oldest first, at most `limit` per
    call: each becomes an unmet need (`waited_too_long`), counted, never silently dropped."""
    moment = now or utcnow()
    stale = (
        await session.exec(
            for_update(
                select(PlacementRequest)
                .where(
                    PlacementRequest.status == WAITING,
                    col(PlacementRequest.requested_at) < moment - timedelta(days=max_days),
                )
                .order_by(col(PlacementRequest.requested_at), col(PlacementRequest.id))
                .limit(limit),
                session,
                skip_locked=True,
            )
        )
    ).all()
    for request in stale:
        needs = beds.needs_from_json(request.needs)
        choice = rules.Choice(
            rules.PlacementOutcome.unmet_need, unmet_reason=rules.UnmetReason.waited_too_long
        )
        decision = beds.decision_for(
            request.case_id,
            needs,
            choice,
            reason=f"waited more than {max_days} days without a bed",
        )
        session.add(decision)
        await session.flush()
        session.add(
            UnmetNeed(
                case_id=request.case_id,
                reason=rules.UnmetReason.waited_too_long.value,
                region=request.region,
                needs=request.needs,
                decision_id=decision.id,
            )
        )
        await _end_request(session, actor=None, request=request, status=rules.RequestStatus.expired)
    return len(stale)


@dataclass
class OfferReport:
    """The requests an offer of free beds passed over because they could never be served
    (withdrawn with that reason)."""

    skipped: list[tuple[uuid.UUID, rules.WithdrawReason]] = field(default_factory=list)


async def _claim(
    session: AsyncSession, request: PlacementRequest
) -> tuple[PlacementRequest, CaseFile] | None:
    """Lock the request and its case without waiting; None when another transaction holds
    either (it may be waiting for this facility) or the request has just stopped waiting."""
    locked = (
        await session.exec(
            for_update(
                select(PlacementRequest).where(
                    PlacementRequest.id == request.id, PlacementRequest.status == WAITING
                ),
                session,
                skip_locked=True,
            )
        )
    ).first()
    if locked is None:
        return None
    case = await case_service.lock_case(session, locked.case_id, skip_locked=True)
    return (locked, case) if case is not None else None


async def _offer_one(
    session: AsyncSession,
    *,
    actor: Actor | None,
    facility: Facility,
    request: PlacementRequest,
    report: OfferReport,
) -> bool:
    """Try to give the facility's free bed to this request; True when placed."""
    claimed = await _claim(session, request)
    if claimed is None:
        return False
    request, case = claimed
    unservable = None
    if case.status == CaseStatus.closed.value:
        unservable = rules.WithdrawReason.case_closed
    elif await beds.person_has_bed(session, case):
        unservable = rules.WithdrawReason.already_placed
    if unservable is not None:
        await _end_request(
            session,
            actor=actor,
            request=request,
            status=rules.RequestStatus.withdrawn,
            reason=unservable,
        )
        report.skipped.append((request.id, unservable))
        return False
    # Eligibility on the day of placement: the person may have turned 18 while waiting.
    needs = await beds.needs_of(
        session, case, lgbti_specialized=bool(request.needs.get("lgbti_specialized"))
    )
    if rules.ineligibility(needs, beds.view(facility)):
        return False
    if not needs.minor and not await consent_service.consented_to(
        session, case_id=case.id, purpose=ConsentPurpose.services
    ):
        # Her consent to services was withdrawn while she waited: she keeps her place, and
        # is not put in a bed until she consents again.
        return False
    choice = rules.Choice(
        rules.PlacementOutcome.placed, facility_id=facility.id, eligible=(facility.code,)
    )
    decision = beds.decision_for(
        case.id,
        needs,
        choice,
        reason=f"a bed freed at {facility.code}; first eligible on the waitlist",
    )
    session.add(decision)
    await session.flush()
    placement = await beds.occupy(
        session, actor=actor, case_id=case.id, facility=facility, decision=decision, hold_hours=None
    )
    await _end_request(
        session,
        actor=actor,
        request=request,
        status=rules.RequestStatus.placed,
        placement_id=placement.id,
    )
    return True


async def offer_beds(
    session: AsyncSession, *, actor: Actor | None, facility: Facility
) -> OfferReport:
    """Give a locked facility's free beds to the waiting, in the waitlist order: to the first
    eligible person however far down the list, reading it a page at a time."""
    report = OfferReport()
    if facility.status != rules.FacilityStatus.open.value:
        return report
    stmt = (
        select(PlacementRequest)
        .where(
            PlacementRequest.status == WAITING,
            sa.or_(
                col(PlacementRequest.facility_id).is_(None),
                col(PlacementRequest.facility_id) == facility.id,
            ),
        )
        .order_by(*order_by())
        .limit(PAGE)
    )
    after: list[Any] | None = None
    while beds.view(facility).free > 0:
        page = (
            await session.exec(
                stmt.where(lexicographic(_order(), after)) if after is not None else stmt
            )
        ).all()
        if not page:
            break
        for request in page:
            after = _key(request)
            if rules.ineligibility(beds.needs_from_json(request.needs), beds.view(facility)):
                continue
            if await _offer_one(
                session, actor=actor, facility=facility, request=request, report=report
            ):
                break  # one bed fewer: look again from here
        else:
            if len(page) < PAGE:
                break
    if report.skipped:
        record_event(
            session,
            actor=actor,
            action="waitlist.offer_skipped",
            entity_type="facility",
            entity_id=facility.id,
            changes={
                "skipped": {
                    "to": [{"request_id": str(r), "reason": w.value} for r, w in report.skipped]
                }
            },
        )
    await session.flush()
    return report


async def request_public(
    session: AsyncSession, request: PlacementRequest
) -> PlacementRequestPublic:
    return PlacementRequestPublic(
        id=request.id,
        case_id=request.case_id,
        facility_id=request.facility_id,
        status=rules.RequestStatus(request.status),
        minor=request.minor,
        risk_level=request.risk_level,
        region=request.region,
        requested_at=request.requested_at,
        resolved_at=request.resolved_at,
        placement_id=request.placement_id,
        end_reason=rules.WithdrawReason(request.end_reason) if request.end_reason else None,
        position=await position(session, request) if request.status == WAITING else None,
    )


async def case_requests(session: AsyncSession, case_id: uuid.UUID) -> list[PlacementRequest]:
    """Every placement request of a case, newest first."""
    rows = await session.exec(
        select(PlacementRequest)
        .where(PlacementRequest.case_id == case_id)
        .order_by(col(PlacementRequest.requested_at).desc(), col(PlacementRequest.id))
    )
    return list(rows.all())
