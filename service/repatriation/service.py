"""Asylum claims and residency of foreign victims, and repatriations in both directions.

Non-refoulement holds under concurrency: recording an asylum claim, planning a return and
recording its arrival each lock the case first, so a claim recorded while a return is being
planned either comes first (and the return is refused) or comes after (and cancels it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.cases import service as case_service
from service.cases.rules import CaseStatus, InvolvementBasis
from service.consent import service as consent_service
from service.consent.rules import ConsentPurpose
from service.core.db import table_of
from service.core.errors import InvalidInput
from service.core.plausibility import refuse_implausible
from service.core.security import Actor
from service.core.time import utcnow
from service.identity import service as identity_service
from service.identity.exceptions import UnknownOrganization
from service.persons import service as person_service
from service.persons.rules import PERU, is_foreign
from service.reference.service import region_exists
from service.repatriation import rules
from service.repatriation.exceptions import (
    CaseClosedForRepatriation,
    ConsentRequired,
    InvalidRepatriation,
    NonRefoulement,
    NotAForeignNational,
    NotAPeruvianAbroad,
    RepatriationAlreadyPlanned,
    RepatriationNotFound,
    RepatriationNotPlanned,
)
from service.repatriation.models import (
    AsylumClaimStatusRecord,
    Repatriation,
    ResidencyStatusRecord,
)
from service.repatriation.rules import (
    AsylumClaimStatus,
    CancelReason,
    RepatriationDirection,
    RepatriationStatus,
    ResidencyStatus,
)
from service.repatriation.schemas import (
    AsylumClaimCreate,
    AsylumClaimHistory,
    RepatriationArrival,
    RepatriationCreate,
    RepatriationPublic,
    ResidencyCreate,
    ResidencyHistory,
)

if TYPE_CHECKING:
    from service.cases.models import CaseFile


async def _nationality(session: AsyncSession, case: CaseFile) -> str | None:
    return (await person_service.get_person(session, case.person_id)).nationality


async def _require_foreign(session: AsyncSession, case: CaseFile, what: str) -> str:
    nationality = await _nationality(session, case)
    if not is_foreign(nationality):
        raise NotAForeignNational(
            f"{what} concerns a foreign national; the person's nationality is"
            f" {nationality or 'not recorded'}."
        )
    assert nationality is not None
    return nationality


async def _lock(session: AsyncSession, case: CaseFile) -> CaseFile:
    locked = await case_service.lock_case(session, case.id)
    assert locked is not None
    return locked


# Asylum claims and residency: the same dated history, one table each

StatusRecord = TypeVar("StatusRecord", AsylumClaimStatusRecord, ResidencyStatusRecord)


async def _history(
    session: AsyncSession, model: type[StatusRecord], case_id: uuid.UUID
) -> list[StatusRecord]:
    """A status's history, oldest first (by effective_on, then recorded_at)."""
    rows = await session.exec(
        select(model)
        .where(col(model.case_id) == case_id)
        .order_by(col(model.effective_on), col(model.recorded_at), col(model.id))
    )
    return list(rows.all())


async def _record_status(
    session: AsyncSession,
    *,
    actor: Actor,
    case: CaseFile,
    entry: StatusRecord,
    action: str,
    id_field: str,
) -> StatusRecord:
    session.add(entry)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action=action,
        entity_type="case",
        entity_id=case.id,
        changes={
            id_field: {"to": str(entry.id)},
            "status": {"to": entry.status},
            "effective_on": {"to": str(entry.effective_on)},
        },
    )
    return entry


async def _history_view(session: AsyncSession, history: Sequence[StatusRecord]) -> dict[str, Any]:
    """The history as shown, with the entry in force (`rules.current`)."""
    codes = await identity_service.organization_codes(session, [e.organization_id for e in history])
    shown = {
        e.id: {
            "id": e.id,
            "status": e.status,
            "effective_on": e.effective_on,
            "organization": codes[e.organization_id],
            "recorded_at": e.recorded_at,
        }
        for e in history
    }
    current = rules.current(history)
    return {
        "current": shown[current.id] if current is not None else None,
        "history": list(shown.values()),
    }


async def current_asylum_claim(
    session: AsyncSession, case_id: uuid.UUID
) -> AsylumClaimStatus | None:
    """The claim's status in force, or None when none was ever recorded."""
    entry = rules.current(await _history(session, AsylumClaimStatusRecord, case_id))
    return AsylumClaimStatus(entry.status) if entry is not None else None


async def record_asylum_claim(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: AsylumClaimCreate
) -> AsylumClaimStatusRecord:
    """A new status of the person's asylum claim, dated. A pending or recognized claim in
    force cancels a planned return to the country of origin (non-refoulement)."""
    refuse_implausible(rules.status_day_problem(data.effective_on, today=utcnow().date()))
    locked = await _lock(session, case)
    await _require_foreign(session, locked, "An asylum claim")
    entry = await _record_status(
        session,
        actor=actor,
        case=locked,
        entry=AsylumClaimStatusRecord(
            case_id=locked.id,
            status=data.status.value,
            effective_on=data.effective_on,
            organization_id=actor.organization_id,
            recorded_by=actor.user_id,
        ),
        action="asylum_claim.recorded",
        id_field="asylum_claim_id",
    )
    if rules.return_is_refoulement(await current_asylum_claim(session, locked.id)):
        planned = await _planned(session, locked.id)
        if planned is not None and planned.direction == RepatriationDirection.to_country_of_origin:
            await _cancel(
                session, actor=actor, repatriation=planned, reason=CancelReason.asylum_claim
            )
    return entry


async def asylum_claim_view(session: AsyncSession, case_id: uuid.UUID) -> AsylumClaimHistory:
    history = await _history(session, AsylumClaimStatusRecord, case_id)
    return AsylumClaimHistory.model_validate(await _history_view(session, history))


async def record_residency(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: ResidencyCreate
) -> ResidencyStatusRecord:
    """A new status of the person's residency in Peru, dated."""
    refuse_implausible(rules.status_day_problem(data.effective_on, today=utcnow().date()))
    await _require_foreign(session, case, "Residency")
    return await _record_status(
        session,
        actor=actor,
        case=case,
        entry=ResidencyStatusRecord(
            case_id=case.id,
            status=data.status.value,
            effective_on=data.effective_on,
            organization_id=actor.organization_id,
            recorded_by=actor.user_id,
        ),
        action="residency.recorded",
        id_field="residency_id",
    )


async def residency_view(session: AsyncSession, case_id: uuid.UUID) -> ResidencyHistory:
    history = await _history(session, ResidencyStatusRecord, case_id)
    return ResidencyHistory.model_validate(await _history_view(session, history))


# Repatriations


async def repatriations_public(
    session: AsyncSession, rows: Sequence[Repatriation]
) -> list[RepatriationPublic]:
    codes = await identity_service.organization_codes(
        session,
        [
            org
            for r in rows
            for org in (r.organization_id, r.consulate_organization_id, r.receiving_organization_id)
        ],
    )

    def code(org_id: uuid.UUID | None) -> str | None:
        return codes[org_id] if org_id is not None else None

    return [
        RepatriationPublic(
            id=r.id,
            case_id=r.case_id,
            direction=RepatriationDirection(r.direction),
            country=r.country,
            consulate=code(r.consulate_organization_id),
            receiving_organization=code(r.receiving_organization_id),
            arrival_region=r.arrival_region,
            travel_on=r.travel_on,
            status=RepatriationStatus(r.status),
            organization=codes[r.organization_id],
            recorded_at=r.recorded_at,
            travelled_on=r.travelled_on,
            arrived_on=r.arrived_on,
            cancelled_at=r.cancelled_at,
            cancel_reason=CancelReason(r.cancel_reason) if r.cancel_reason else None,
        )
        for r in rows
    ]


async def _planned(session: AsyncSession, case_id: uuid.UUID) -> Repatriation | None:
    return (
        await session.exec(
            select(Repatriation)
            .where(
                Repatriation.case_id == case_id,
                Repatriation.status == RepatriationStatus.planned.value,
            )
            .execution_options(populate_existing=True)
        )
    ).first()


async def _organization_id(session: AsyncSession, field: str, code: str) -> uuid.UUID:
    org = (await identity_service.get_organizations_by_code(session, [code])).get(code)
    if org is None:
        raise UnknownOrganization(field, "no organization has this code")
    return org.id


def _not_for_return(data: RepatriationCreate) -> None:
    for field in ("consulate", "receiving_organization", "arrival_region"):
        if getattr(data, field) is not None:
            raise InvalidRepatriation(
                field,
                "a return to the country of origin names nothing of Peru's side: only"
                " country and travel_on",
            )


async def _to_peru(
    session: AsyncSession, *, case: CaseFile, data: RepatriationCreate
) -> dict[str, object]:
    """The columns of a repatriation to Peru, checked: a Peruvian exploited abroad, from a
    country where she was exploited, through a consulate, to an organization and region."""
    countries = await case_service.exploitation_countries(session, case.id)
    error = rules.to_peru_error(
        nationality=await _nationality(session, case), exploitation_countries=countries
    )
    if error is not None:
        raise NotAPeruvianAbroad(f"{error}.")
    country = data.country or countries[-1]
    country_error = rules.to_peru_country_error(country, countries)
    if country_error is not None:
        raise InvalidRepatriation("country", country_error)
    consulate, receiving, region = data.consulate, data.receiving_organization, data.arrival_region
    for field, value in (
        ("consulate", consulate),
        ("receiving_organization", receiving),
        ("arrival_region", region),
    ):
        if value is None:
            raise InvalidRepatriation(field, "required for a repatriation to Peru", type="missing")
    assert consulate is not None
    assert receiving is not None
    assert region is not None
    if not await region_exists(session, region):
        raise InvalidInput("arrival_region", "not an INEI ubigeo department code")
    return {
        "country": country,
        "consulate_organization_id": await _organization_id(session, "consulate", consulate),
        "receiving_organization_id": await _organization_id(
            session, "receiving_organization", receiving
        ),
        "arrival_region": region,
    }


async def _require_return_allowed(session: AsyncSession, case_id: uuid.UUID) -> None:
    """A return to the country of origin: never while the asylum claim in force is pending
    or recognized, and only with the person's consent in force naming repatriation."""
    claim = await current_asylum_claim(session, case_id)
    if rules.return_is_refoulement(claim):
        raise NonRefoulement(
            f"The person's asylum claim is {claim}: she may not be returned to her country"
            " (non-refoulement).",
            asylum_claim=str(claim),
        )
    if not await consent_service.consented_to(
        session, case_id=case_id, purpose=ConsentPurpose.repatriation
    ):
        raise ConsentRequired(
            "A return to the country of origin needs the person's consent in force naming the"
            " purpose 'repatriation'."
        )


async def plan_repatriation(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: RepatriationCreate
) -> Repatriation:
    """Plan a repatriation. To Peru: the receiving organization becomes involved in the
    case, and a bed is sought in the arrival region. To the country of origin: refused while
    the asylum claim is pending or recognized, or without consent."""
    refuse_implausible(rules.travel_day_problem(data.travel_on, today=utcnow().date()))
    locked = await _lock(session, case)
    if locked.status == CaseStatus.closed.value:
        raise CaseClosedForRepatriation("A closed case is not repatriated; reopen it first.")
    if data.direction is RepatriationDirection.to_peru:
        columns = await _to_peru(session, case=locked, data=data)
    else:
        _not_for_return(data)
        nationality = await _require_foreign(session, locked, "A return to the country of origin")
        columns = {"country": data.country or nationality}
        if columns["country"] == PERU:
            raise InvalidRepatriation("country", "a return to the country of origin leaves Peru")
        await _require_return_allowed(session, locked.id)
    if await _planned(session, locked.id) is not None:
        raise RepatriationAlreadyPlanned(
            "The case already has a planned repatriation: record its arrival or cancel it first."
        )
    repatriation = Repatriation.model_validate(
        {
            "case_id": locked.id,
            "direction": data.direction.value,
            "travel_on": data.travel_on,
            "status": RepatriationStatus.planned.value,
            "organization_id": actor.organization_id,
            "recorded_by": actor.user_id,
            **columns,
        }
    )
    # The partial unique index is the last guard of one planned repatriation per case.
    savepoint = await session.begin_nested()
    try:
        session.add(repatriation)
        await session.flush()
    except IntegrityError:
        await savepoint.rollback()
        raise RepatriationAlreadyPlanned(
            "The case already has a planned repatriation: record its arrival or cancel it first."
        ) from None
    await savepoint.commit()
    record_event(
        session,
        actor=actor,
        action="repatriation.planned",
        entity_type="case",
        entity_id=locked.id,
        changes={
            "repatriation_id": {"to": str(repatriation.id)},
            "direction": {"to": repatriation.direction},
            "country": {"to": repatriation.country},
            "consulate_organization_id": {"to": _str(repatriation.consulate_organization_id)},
            "receiving_organization_id": {"to": _str(repatriation.receiving_organization_id)},
            "arrival_region": {"to": repatriation.arrival_region},
            "travel_on": {"to": str(repatriation.travel_on)},
        },
    )
    if repatriation.receiving_organization_id is not None:
        await case_service.involve(
            session,
            actor=actor,
            case_id=locked.id,
            organization_id=repatriation.receiving_organization_id,
            basis=InvolvementBasis.repatriation,
            source_id=repatriation.id,
        )
    return repatriation


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


async def get_repatriation_for(
    session: AsyncSession, *, actor: Actor, repatriation_id: uuid.UUID
) -> Repatriation:
    """The repatriation if its case is visible to the actor; RepatriationNotFound otherwise."""
    not_found = RepatriationNotFound(
        f"No repatriation {repatriation_id} is visible to your organization."
    )
    repatriation = await session.get(Repatriation, repatriation_id)
    if repatriation is None:
        raise not_found
    await case_service.require_visible_case(
        session, actor=actor, case_id=repatriation.case_id, otherwise=not_found
    )
    return repatriation


async def _still_planned(session: AsyncSession, repatriation: Repatriation) -> Repatriation:
    """Lock the case, then read the repatriation as it is now: it must still be planned."""
    await case_service.lock_case(session, repatriation.case_id)
    fresh = (
        await session.exec(
            select(Repatriation)
            .where(Repatriation.id == repatriation.id)
            .execution_options(populate_existing=True)
        )
    ).one()
    if fresh.status != RepatriationStatus.planned.value:
        raise RepatriationNotPlanned(f"This repatriation is {fresh.status}.")
    return fresh


async def record_arrival(
    session: AsyncSession, *, actor: Actor, repatriation: Repatriation, data: RepatriationArrival
) -> Repatriation:
    """The person arrived. A return to the country of origin is checked again, now that she
    leaves Ruta's care: no pending or recognized asylum claim, consent still in force."""
    refuse_implausible(
        rules.arrival_days_problem(data.arrived_on, data.travelled_on, today=utcnow().date())
    )
    fresh = await _still_planned(session, repatriation)
    travelled_on = data.travelled_on or fresh.travel_on
    if travelled_on > data.arrived_on:
        raise InvalidInput(
            "arrived_on",
            f"the person travelled on {travelled_on}: give travelled_on if the plan changed",
        )
    if fresh.direction == RepatriationDirection.to_country_of_origin:
        await _require_return_allowed(session, fresh.case_id)
    fresh.status = RepatriationStatus.arrived.value
    fresh.travelled_on = travelled_on
    fresh.arrived_on = data.arrived_on
    fresh.arrival_recorded_by = actor.user_id
    fresh.arrival_recorded_at = utcnow()
    session.add(fresh)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="repatriation.arrived",
        entity_type="case",
        entity_id=fresh.case_id,
        changes={
            "repatriation_id": {"to": str(fresh.id)},
            "status": {"from": RepatriationStatus.planned.value, "to": fresh.status},
            "travelled_on": {"to": str(travelled_on)},
            "arrived_on": {"to": str(data.arrived_on)},
        },
    )
    return fresh


async def _cancel(
    session: AsyncSession, *, actor: Actor, repatriation: Repatriation, reason: CancelReason
) -> None:
    repatriation.status = RepatriationStatus.cancelled.value
    repatriation.cancelled_at = utcnow()
    repatriation.cancelled_by = actor.user_id
    repatriation.cancel_reason = reason.value
    session.add(repatriation)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="repatriation.cancelled",
        entity_type="case",
        entity_id=repatriation.case_id,
        changes={
            "repatriation_id": {"to": str(repatriation.id)},
            "status": {"from": RepatriationStatus.planned.value, "to": repatriation.status},
            "cancel_reason": {"to": reason.value},
        },
    )
    if repatriation.receiving_organization_id is not None:
        await case_service.end_involvement(
            session,
            actor=actor,
            case_id=repatriation.case_id,
            organization_id=repatriation.receiving_organization_id,
            basis=InvolvementBasis.repatriation,
            source_id=repatriation.id,
        )


async def cancel_repatriation(
    session: AsyncSession, *, actor: Actor, repatriation: Repatriation, reason: CancelReason
) -> Repatriation:
    """A planned repatriation that will not happen; a receiving organization stops being
    involved through it."""
    fresh = await _still_planned(session, repatriation)
    await _cancel(session, actor=actor, repatriation=fresh, reason=reason)
    return fresh


async def cancel_planned_of_case(
    session: AsyncSession, *, actor: Actor, case_id: uuid.UUID, reason: CancelReason
) -> None:
    """Cancel the case's planned repatriation, if any (the closing flow: a closed case
    travels nowhere)."""
    planned = await _planned(session, case_id)
    if planned is not None:
        await _cancel(session, actor=actor, repatriation=planned, reason=reason)


async def cancel_return_without_consent(
    session: AsyncSession, *, actor: Actor, case_id: uuid.UUID
) -> None:
    """Cancel the case's planned return to her country of origin when no consent in force
    names repatriation any more (the consent flow: she withdrew or refused it). A journey to
    Peru needs no such consent and stays planned."""
    planned = await _planned(session, case_id)
    if planned is None or planned.direction != RepatriationDirection.to_country_of_origin:
        return
    if not await consent_service.consented_to(
        session, case_id=case_id, purpose=ConsentPurpose.repatriation
    ):
        await _cancel(
            session, actor=actor, repatriation=planned, reason=CancelReason.consent_withdrawn
        )


async def list_repatriations(session: AsyncSession, case_id: uuid.UUID) -> list[Repatriation]:
    """The case's repatriations, oldest first."""
    rows = await session.exec(
        select(Repatriation)
        .where(Repatriation.case_id == case_id)
        .order_by(col(Repatriation.recorded_at), col(Repatriation.id))
    )
    return list(rows.all())


async def arrival_region(session: AsyncSession, case_id: uuid.UUID) -> str | None:
    """Where the latest repatriation to Peru (planned or arrived) brings the person: the
    region where she is offered a bed. None when no such repatriation exists."""
    return (
        await session.exec(
            select(Repatriation.arrival_region)
            .where(
                Repatriation.case_id == case_id,
                Repatriation.direction == RepatriationDirection.to_peru.value,
                Repatriation.status != RepatriationStatus.cancelled.value,
            )
            .order_by(col(Repatriation.recorded_at).desc(), col(Repatriation.id).desc())
        )
    ).first()


def repatriations_known_on(
    known_on: datetime, *, arrived_from: date, arrived_to: date
) -> sa.Select[tuple[uuid.UUID, str, str]]:
    """Repatriations that arrived between two days (inclusive), their arrival recorded by
    `known_on`: `case_id`, `direction`, `country`. As SQL, for the statistics."""
    trip = table_of(Repatriation)
    return sa.select(trip.c.case_id, trip.c.direction, trip.c.country).where(
        trip.c.arrived_on >= arrived_from,
        trip.c.arrived_on <= arrived_to,
        trip.c.arrival_recorded_at <= known_on,
    )


def residency_granted_known_on(
    known_on: datetime, *, granted_from: date, granted_to: date
) -> sa.Select[tuple[uuid.UUID, str]]:
    """Residency granted (temporary or permanent) with effect between two days (inclusive),
    recorded by `known_on`: `case_id`, `status`. As SQL, for the statistics."""
    residency = table_of(ResidencyStatusRecord)
    return sa.select(residency.c.case_id, residency.c.status).where(
        residency.c.status.in_([ResidencyStatus.temporary.value, ResidencyStatus.permanent.value]),
        residency.c.effective_on >= granted_from,
        residency.c.effective_on <= granted_to,
        residency.c.recorded_at <= known_on,
    )
