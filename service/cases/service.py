"""Cases and identifications, and the one access rule every case route goes through.

The access rule: a user sees a case only while their organization is involved in it, that
is while a `case_involvement` row links the two and has not ended. Organizations become
involved by identifying the person, receiving a referral, housing the person or defending
them; the domains that do those things call `involve` and `end_involvement`. Any other
case does not exist for the caller (404), so its existence is not disclosed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.rules import change_set
from service.audit.service import record_event
from service.cases import rules
from service.cases.exceptions import (
    CaseNotFound,
    IdentifyingDataNotShared,
    IllegalCaseTransition,
    NotAnIdentifier,
    UnknownRegion,
)
from service.cases.models import (
    CaseFile,
    CaseInvolvement,
    CaseTransition,
    Identification,
    IdentificationExploitation,
    Screening,
)
from service.cases.rules import CaseStatus, InvolvementBasis, VictimStatus
from service.cases.schemas import (
    AllowedTransition,
    CaseCreate,
    CaseFilters,
    CasePublic,
    CaseSummary,
    CaseUpdate,
    Exploitation,
    IdentificationFields,
    IdentificationPublic,
    PlacementProfile,
    ScreeningCreate,
    SuggestedReferral,
    TransitionRequest,
)
from service.consent import service as consent_service
from service.core.crypto import Keyring
from service.core.errors import InvalidInput, ProblemError
from service.core.pagination import PageParams, keyset, page_of
from service.core.security import Actor
from service.core.time import today, utcnow
from service.identity.service import get_organizations
from service.persons import service as person_service
from service.persons.rules import age_now, is_foreign
from service.persons.schemas import PersonIdentifying, PossibleDuplicate
from service.reference.service import region_exists


def visible_to(organization_id: uuid.UUID) -> sa.ColumnElement[bool]:
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
        raise CaseNotFound(f"No case {case_id} is visible to your organization.")
    return case


async def involve(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case_id: uuid.UUID,
    organization_id: uuid.UUID,
    basis: InvolvementBasis,
    source_id: uuid.UUID | None = None,
) -> CaseInvolvement:
    """Make an organization involved in a case (idempotent per basis and source)."""
    existing = (
        await session.exec(
            select(CaseInvolvement).where(
                CaseInvolvement.case_id == case_id,
                CaseInvolvement.organization_id == organization_id,
                CaseInvolvement.basis == basis.value,
                CaseInvolvement.source_id == source_id,
                col(CaseInvolvement.ended_at).is_(None),
            )
        )
    ).first()
    if existing is not None:
        return existing
    involvement = CaseInvolvement(
        case_id=case_id, organization_id=organization_id, basis=basis.value, source_id=source_id
    )
    session.add(involvement)
    await session.flush()
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
    return involvement


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
    rows = (
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


async def _require_region(session: AsyncSession, code: str) -> None:
    if not await region_exists(session, code):
        raise UnknownRegion("region", f"{code!r} is not an INEI ubigeo department code")


def _exploitation_rows(
    identification_id: uuid.UUID, items: Sequence[Exploitation]
) -> list[IdentificationExploitation]:
    return [
        IdentificationExploitation(
            identification_id=identification_id,
            form=item.form.value,
            sector=item.sector.value if item.sector else None,
        )
        for item in items
    ]


def _identification_facts(data: IdentificationFields) -> dict[str, object]:
    return {
        "identified_on": data.identified_on,
        "region": data.region,
        "context": data.context.value,
        "place": data.place,
        "operation_ref": data.operation_ref,
        "indicators": list(data.indicators),
        "exploitation": [e.model_dump(mode="json") for e in data.exploitation],
    }


async def _add_identification(
    session: AsyncSession, *, actor: Actor, case_id: uuid.UUID, data: IdentificationFields
) -> Identification:
    await _require_region(session, data.region)
    identification = Identification(
        case_id=case_id,
        organization_id=actor.organization_id,
        identified_by=actor.user_id,
        identified_on=data.identified_on,
        region=data.region,
        place=data.place,
        context=data.context.value,
        operation_ref=data.operation_ref,
        indicators=list(data.indicators),
    )
    session.add(identification)
    await session.flush()
    session.add_all(_exploitation_rows(identification.id, data.exploitation))
    await involve(
        session,
        actor=actor,
        case_id=case_id,
        organization_id=actor.organization_id,
        basis=InvolvementBasis.identified,
        source_id=identification.id,
    )
    record_event(
        session,
        actor=actor,
        action="identification.created",
        entity_type="case",
        entity_id=case_id,
        changes=change_set(
            None, {"identification_id": str(identification.id), **_identification_facts(data)}
        ),
    )
    return identification


async def create_case(
    session: AsyncSession, *, actor: Actor, keyring: Keyring, data: CaseCreate
) -> tuple[CaseFile, list[PossibleDuplicate]]:
    """Open a case with its first identification; report records of the same person."""
    await _require_region(session, data.region)
    person, duplicates = await person_service.identify_person(
        session,
        keyring=keyring,
        organization_id=actor.organization_id,
        data=data.person,
        identified_on=data.identified_on,
    )
    case = CaseFile(
        person_id=person.id,
        status=CaseStatus.identified.value,
        victim_status=VictimStatus.suspected.value,
        current_location=data.current_location,
    )
    session.add(case)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="case.created",
        entity_type="case",
        entity_id=case.id,
        changes=change_set(
            None,
            {
                "person_id": str(person.id),
                "status": case.status,
                "victim_status": case.victim_status,
                "current_location": case.current_location,
                "person": "[encrypted]",
            },
        ),
    )
    await _add_identification(session, actor=actor, case_id=case.id, data=data)
    if duplicates:
        record_event(
            session,
            actor=actor,
            action="person.possible_duplicate",
            entity_type="case",
            entity_id=case.id,
            changes={
                "candidates": {
                    "to": [d.model_dump(mode="json") for d in duplicates],
                }
            },
        )
    return case, duplicates


async def add_identification(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: IdentificationFields
) -> Identification:
    """Record that the actor's organization also identified the person of this case."""
    identification = await _add_identification(session, actor=actor, case_id=case.id, data=data)
    case.updated_at = utcnow()
    session.add(case)
    return identification


async def _exploitation_of(
    session: AsyncSession, identification_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Exploitation]]:
    result: dict[uuid.UUID, list[Exploitation]] = {i: [] for i in identification_ids}
    if not identification_ids:
        return result
    rows = await session.exec(
        select(IdentificationExploitation)
        .where(col(IdentificationExploitation.identification_id).in_(identification_ids))
        .order_by(col(IdentificationExploitation.form), col(IdentificationExploitation.sector))
    )
    for row in rows.all():
        result[row.identification_id].append(
            Exploitation.model_validate({"form": row.form, "sector": row.sector})
        )
    return result


async def _latest_identification_by(
    session: AsyncSession, *, case_id: uuid.UUID, organization_id: uuid.UUID
) -> Identification:
    identification = (
        await session.exec(
            select(Identification)
            .where(
                Identification.case_id == case_id, Identification.organization_id == organization_id
            )
            .order_by(col(Identification.created_at).desc())
        )
    ).first()
    if identification is None:
        raise NotAnIdentifier("Your organization has not identified the person of this case.")
    return identification


async def correct_case(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: CaseUpdate
) -> CaseFile:
    """Correct the actor's latest identification and where the person is now; audited."""
    fields = data.model_fields_set
    if not fields:
        raise InvalidInput("body", "name at least one field to correct")
    for name in fields - {"operation_ref", "current_location"}:
        if getattr(data, name) is None:
            raise InvalidInput(name, "may not be null")
    if data.is_witness is not None and data.is_witness != case.is_witness:
        record_event(
            session,
            actor=actor,
            action="case.updated",
            entity_type="case",
            entity_id=case.id,
            changes=change_set({"is_witness": case.is_witness}, {"is_witness": data.is_witness}),
        )
        case.is_witness = data.is_witness
    if "current_location" in fields and case.current_location != data.current_location:
        record_event(
            session,
            actor=actor,
            action="case.updated",
            entity_type="case",
            entity_id=case.id,
            changes=change_set(
                {"current_location": case.current_location},
                {"current_location": data.current_location},
            ),
        )
        case.current_location = data.current_location
    if fields - {"current_location", "is_witness"}:
        identification = await _latest_identification_by(
            session, case_id=case.id, organization_id=actor.organization_id
        )
        exploitation = (await _exploitation_of(session, [identification.id]))[identification.id]
        before = {
            "place": identification.place,
            "operation_ref": identification.operation_ref,
            "indicators": identification.indicators,
            "exploitation": [e.model_dump(mode="json") for e in exploitation],
        }
        if "place" in fields and data.place is not None:
            identification.place = data.place
        if "operation_ref" in fields:
            identification.operation_ref = data.operation_ref
        if "indicators" in fields and data.indicators is not None:
            identification.indicators = list(data.indicators)
        if "exploitation" in fields and data.exploitation is not None:
            exploitation = list(data.exploitation)
            await session.exec(
                sa.delete(IdentificationExploitation).where(
                    col(IdentificationExploitation.identification_id) == identification.id
                )
            )
            session.add_all(_exploitation_rows(identification.id, exploitation))
        session.add(identification)
        after = {
            "place": identification.place,
            "operation_ref": identification.operation_ref,
            "indicators": identification.indicators,
            "exploitation": [e.model_dump(mode="json") for e in exploitation],
        }
        changes = change_set(before, after)
        if changes:
            record_event(
                session,
                actor=actor,
                action="identification.corrected",
                entity_type="case",
                entity_id=case.id,
                changes={"identification_id": {"to": str(identification.id)}, **changes},
            )
    case.updated_at = utcnow()
    session.add(case)
    await session.flush()
    return case


async def case_public(session: AsyncSession, case: CaseFile) -> CasePublic:
    """The case as involved organizations see it (no identifying data)."""
    identifications = (
        await session.exec(
            select(Identification)
            .where(Identification.case_id == case.id)
            .order_by(col(Identification.created_at), col(Identification.id))
        )
    ).all()
    involvements = (
        await session.exec(
            select(CaseInvolvement.organization_id).where(
                CaseInvolvement.case_id == case.id, col(CaseInvolvement.ended_at).is_(None)
            )
        )
    ).all()
    orgs = await get_organizations(
        session, [i.organization_id for i in identifications] + list(involvements)
    )
    exploitation = await _exploitation_of(session, [i.id for i in identifications])
    person = await person_service.get_person(session, case.person_id)
    facts = person_service.person_facts(
        person, identified_on=min(i.identified_on for i in identifications)
    )
    status = CaseStatus(case.status)
    return CasePublic(
        id=case.id,
        status=status,
        victim_status=VictimStatus(case.victim_status),
        person_id=case.person_id,
        person=facts,
        is_witness=case.is_witness,
        allowed_transitions=[
            AllowedTransition.model_validate(t) for t in rules.allowed_transitions(status)
        ],
        suggested_referrals=[
            SuggestedReferral(to_org=org, purpose=purpose)
            for org, purpose in rules.suggested_referrals(
                foreign=is_foreign(person.nationality), minor=facts.minor, witness=case.is_witness
            )
        ]
        if status is not CaseStatus.closed
        else [],
        current_location=case.current_location,
        involved_organizations=sorted({orgs[o].code for o in involvements if o in orgs}),
        identifications=[
            IdentificationPublic(
                id=i.id,
                organization=orgs[i.organization_id].code,
                identified_on=i.identified_on,
                region=i.region,
                place=i.place,
                context=i.context,  # type: ignore[arg-type]
                operation_ref=i.operation_ref,
                exploitation=exploitation[i.id],
                indicators=i.indicators,
                created_at=i.created_at,
            )
            for i in identifications
        ],
        created_at=case.created_at,
        updated_at=case.updated_at,
    )


async def list_cases(
    session: AsyncSession, *, actor: Actor, filters: CaseFilters, page: PageParams
) -> tuple[list[CaseSummary], str | None]:
    """Cases visible to the actor's organization, newest first, filtered."""
    first = (
        select(
            Identification.case_id,
            sa.func.min(Identification.identified_on).label("first_on"),
        )
        .group_by(col(Identification.case_id))
        .subquery()
    )
    stmt = (
        select(CaseFile, first.c.first_on)
        .join(first, first.c.case_id == col(CaseFile.id))
        .where(visible_to(actor.organization_id))
    )
    if filters.status is not None:
        stmt = stmt.where(CaseFile.status == filters.status.value)
    matching = select(Identification.id).where(col(Identification.case_id) == col(CaseFile.id))
    constrained = False
    if filters.region is not None:
        matching, constrained = matching.where(Identification.region == filters.region), True
    if filters.identified_from is not None:
        matching = matching.where(col(Identification.identified_on) >= filters.identified_from)
        constrained = True
    if filters.identified_to is not None:
        matching = matching.where(col(Identification.identified_on) <= filters.identified_to)
        constrained = True
    if filters.exploitation is not None:
        matching = matching.where(
            sa.exists().where(
                col(IdentificationExploitation.identification_id) == col(Identification.id),
                col(IdentificationExploitation.form) == filters.exploitation.value,
            )
        )
        constrained = True
    if constrained:
        stmt = stmt.where(matching.exists())
    stmt = keyset(stmt, sort=col(CaseFile.created_at), tiebreak=col(CaseFile.id), page=page)
    rows, next_cursor = page_of(
        (await session.exec(stmt)).all(), page, lambda r: (r[0].created_at, r[0].id)
    )
    regions = await _first_regions(session, [case.id for case, _ in rows])
    return [
        CaseSummary(
            id=case.id,
            status=CaseStatus(case.status),
            victim_status=VictimStatus(case.victim_status),
            first_identified_on=first_on
            if isinstance(first_on, date)
            else date.fromisoformat(str(first_on)),
            region=regions[case.id],
            created_at=case.created_at,
        )
        for case, first_on in rows
    ], next_cursor


async def _first_regions(
    session: AsyncSession, case_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not case_ids:
        return {}
    rows = await session.exec(
        select(Identification.case_id, Identification.region)
        .where(col(Identification.case_id).in_(case_ids))
        .order_by(col(Identification.identified_on).desc(), col(Identification.created_at).desc())
    )
    result: dict[uuid.UUID, str] = {}
    for case_id, region in rows.all():
        result[case_id] = region  # ascending overwrite leaves the earliest
    return result


async def _record_transition(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case: CaseFile,
    to: CaseStatus,
    reason: str | None,
    trigger: rules.TransitionTrigger,
) -> CaseTransition:
    transition = CaseTransition(
        case_id=case.id,
        from_status=case.status,
        to_status=to.value,
        reason=reason,
        trigger=trigger.value,
        actor_user_id=actor.user_id if actor else None,
        organization_id=actor.organization_id if actor else None,
    )
    session.add(transition)
    record_event(
        session,
        actor=actor,
        action="case.transitioned",
        entity_type="case",
        entity_id=case.id,
        changes={
            "status": {"from": case.status, "to": to.value},
            "reason": {"to": reason},
            "trigger": {"to": trigger.value},
        },
    )
    case.status, case.updated_at = to.value, utcnow()
    session.add(case)
    await session.flush()
    return transition


async def transition_case(
    session: AsyncSession, *, actor: Actor, case: CaseFile, request: TransitionRequest
) -> CaseTransition:
    """Close or reopen a case, as the state machine allows; 409 lists what is allowed."""
    try:
        rules.check_requested_transition(
            CaseStatus(case.status),
            request.to,
            request.reason,
            victim_status=VictimStatus(case.victim_status),
        )
    except rules.IllegalTransition as exc:
        raise IllegalCaseTransition(str(exc), allowed=exc.allowed) from exc
    return await _record_transition(
        session,
        actor=actor,
        case=case,
        to=request.to,
        reason=request.reason,
        trigger=rules.TransitionTrigger.requested,
    )


async def advance_case(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case_id: uuid.UUID,
    trigger: rules.TransitionTrigger,
) -> None:
    """Move a case forward because of a pathway event (a referral sent, care begun)."""
    case = await session.get(CaseFile, case_id)
    assert case is not None
    to = rules.status_after(CaseStatus(case.status), trigger)
    if to is not None:
        await _record_transition(
            session, actor=actor, case=case, to=to, reason=None, trigger=trigger
        )


async def list_transitions(session: AsyncSession, case: CaseFile) -> Sequence[CaseTransition]:
    return (
        await session.exec(
            select(CaseTransition)
            .where(CaseTransition.case_id == case.id)
            .order_by(col(CaseTransition.at), col(CaseTransition.id))
        )
    ).all()


async def screen_case(
    session: AsyncSession, *, actor: Actor, keyring: Keyring, case: CaseFile, data: ScreeningCreate
) -> Screening:
    """Decide victim status; the deciding organization is the actor's."""
    notes = None
    if data.notes:
        notes = await person_service.seal_for_person(
            session, keyring=keyring, person_id=case.person_id, payload={"notes": data.notes}
        )
    screening = Screening(
        case_id=case.id,
        victim_status=data.victim_status,
        organization_id=actor.organization_id,
        screened_by=actor.user_id,
        notes_ciphertext=notes,
    )
    session.add(screening)
    record_event(
        session,
        actor=actor,
        action="case.screened",
        entity_type="case",
        entity_id=case.id,
        changes={
            "victim_status": {"from": case.victim_status, "to": data.victim_status},
            "notes": {"changed": notes is not None},
        },
    )
    case.victim_status, case.updated_at = data.victim_status, utcnow()
    session.add(case)
    await session.flush()
    return screening


async def _identified_by(
    session: AsyncSession, case_id: uuid.UUID, organization_id: uuid.UUID
) -> bool:
    row = (
        await session.exec(
            select(Identification.id).where(
                Identification.case_id == case_id, Identification.organization_id == organization_id
            )
        )
    ).first()
    return row is not None


async def read_person(
    session: AsyncSession, *, actor: Actor, keyring: Keyring, case: CaseFile
) -> PersonIdentifying:
    """The person's identifying data, for the identifying organization or one the consent
    covers; every read is audited."""
    if not await _identified_by(session, case.id, actor.organization_id) and not (
        await consent_service.sharing_allowed(
            session,
            case_id=case.id,
            organization_id=actor.organization_id,
            organization_code=actor.organization_code,
        )
    ):
        raise IdentifyingDataNotShared(
            "The person has not consented to share identifying data with your organization."
        )
    identifying = await person_service.read_identifying(
        session, keyring=keyring, person_id=case.person_id
    )
    record_event(
        session,
        actor=actor,
        action="person.viewed",
        entity_type="person",
        entity_id=case.person_id,
        changes={"case_id": {"to": str(case.id)}},
    )
    return identifying


async def link_case_person(
    session: AsyncSession, *, actor: Actor, case: CaseFile, candidate_id: uuid.UUID
) -> CaseFile:
    """Record that this case's person is the same as an earlier record (a listed candidate)."""
    previous = case.person_id
    candidate = await person_service.link_person(
        session, person_id=previous, candidate_id=candidate_id
    )
    case.person_id, case.updated_at = candidate.id, utcnow()
    session.add(case)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="person.linked",
        entity_type="case",
        entity_id=case.id,
        changes={"person_id": {"from": str(previous), "to": str(candidate.id)}},
    )
    return case


async def person_is_minor(session: AsyncSession, case: CaseFile) -> bool:
    """Whether the case's person is (conservatively) a child today."""
    first_on = (
        await session.exec(
            select(sa.func.min(Identification.identified_on)).where(
                Identification.case_id == case.id
            )
        )
    ).one()
    person = await person_service.get_person(session, case.person_id)
    identified_on = first_on if isinstance(first_on, date) else date.fromisoformat(str(first_on))
    return person_service.person_facts(person, identified_on=identified_on).minor


async def placement_profile(session: AsyncSession, case: CaseFile) -> PlacementProfile:
    """What a bed must fit, nothing identifying: age now, gender, forms of exploitation, and
    the region where the person was last identified."""
    identifications = (
        await session.exec(
            select(Identification)
            .where(Identification.case_id == case.id)
            .order_by(col(Identification.identified_on), col(Identification.created_at))
        )
    ).all()
    forms = (
        await session.exec(
            select(IdentificationExploitation.form).where(
                col(IdentificationExploitation.identification_id).in_(
                    [i.id for i in identifications]
                )
            )
        )
    ).all()
    person = await person_service.get_person(session, case.person_id)
    age = age_now(person.age_at_identification, identifications[0].identified_on, today())
    return PlacementProfile(
        age=age,
        gender=person.gender,
        exploitation=frozenset(forms),
        region=identifications[-1].region,
        nationality=person.nationality,
    )


async def require_visible_case(
    session: AsyncSession, *, actor: Actor, case_id: uuid.UUID, otherwise: ProblemError
) -> CaseFile:
    """The access rule for records that hang off a case (a consent, a custody period, a
    placement): the case must be visible, or the record answers its own 404."""
    try:
        return await get_case_for(session, actor=actor, case_id=case_id)
    except CaseNotFound as exc:
        raise otherwise from exc
