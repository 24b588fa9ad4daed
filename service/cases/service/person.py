"""The case's person: identifying data for those allowed, linking duplicates, and the
non-identifying facts other domains need (age on a date, what a bed must fit).
"""

from __future__ import annotations

import functools
import uuid
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import AuditAppender, new_event, queue_event, record_event
from service.cases import rules
from service.cases.exceptions import CaseNotFound, IdentifyingDataNotShared
from service.cases.models import (
    CaseFile,
    Identification,
    IdentificationExploitation,
)
from service.cases.schemas import (
    PlacementProfile,
)
from service.cases.service.access import lock_case_for_change, visible_to
from service.consent import service as consent_service
from service.core.crypto import Keyring
from service.core.db import Database, table_of
from service.core.preconditions import IfMatch
from service.core.security import Actor
from service.identity.service import get_organizations
from service.persons import service as person_service
from service.persons.rules import StoredAge, age_on_date, minor_on_date
from service.persons.schemas import PersonIdentifying

if TYPE_CHECKING:
    from service.persons.models import Person


@functools.cache
def _person_read_statement() -> sa.Select[Any]:
    """The identifying records of the person of the case `:case_id` (newest first; one row
    with NULL records once she was erased), only if the organization `:organization_id` is
    involved in the case (the access rule), with whether that organization identified her
    (`identified`) and who she is (`case_person_id`). No row: the case is not visible. Built
    once: a request only binds its ids."""
    case, ident = table_of(CaseFile), table_of(Identification)
    case_id = sa.bindparam("case_id", type_=sa.Uuid())
    organization_id = sa.bindparam("organization_id", type_=sa.Uuid())
    visible = (
        sa.select(
            case.c.person_id.label("case_person_id"),
            # Among the organizations that identified in this case (by the bound case id,
            # its few identifications by their index). An EXISTS correlated with the case row
            # was planned as a hashed scan of every identification the organization ever made
            # (2 ms with 6,000, growing with them); one naming the organization too still
            # read the organization's whole index entry when statistics lagged.
            organization_id.in_(
                sa.select(ident.c.organization_id).where(ident.c.case_id == case_id)
            ).label("identified"),
        )
        .where(case.c.id == case_id, visible_to(organization_id))
        .subquery("visible_case")
    )
    # The case's person, found once by the database (an uncorrelated subquery).
    person_id = sa.select(case.c.person_id).where(case.c.id == case_id).scalar_subquery()
    records = person_service.identifying_records_of(person_id)
    return (
        sa.select(visible, records)
        .select_from(visible.outerjoin(records, sa.true()))
        .order_by(records.c.recorded_at.desc())
    )


async def read_person(
    db: Database, audit: AuditAppender, *, actor: Actor, keyring: Keyring, case_id: uuid.UUID
) -> PersonIdentifying:
    """The person's identifying data, for the identifying organization or one the consent
    covers; every read is audited, its event committed before the data is returned. The
    access rule, whether the caller identified her and her records are one statement
    (`_person_read_statement`), sent without a session. For the organization that identified
    her, that is all: the event, the read's only write, goes to the worker's audit appender,
    which commits it with the events of the reads running at the same moment. Otherwise
    (the consent to ask, or no records: why?) a transaction of its own reads what it must
    and records the event."""
    params = {"case_id": case_id, "organization_id": actor.organization_id}
    rows = await db.fetch(_person_read_statement(), params)
    if not rows:
        raise CaseNotFound()
    person_id: uuid.UUID = rows[0].case_person_id
    records = [row for row in rows if row.owner is not None]
    event = new_event(
        actor=actor,
        action="person.viewed",
        entity_type="person",
        entity_id=person_id,
        changes={"case_id": {"to": str(case_id)}},
    )
    if rows[0].identified and records:
        identifying = person_service.opened_identifying(
            keyring=keyring, person_id=person_id, records=records
        )
        await audit.append(event)
        return identifying
    async with db.session() as session:
        if not rows[0].identified and not (
            await consent_service.sharing_allowed(
                session,
                case_id=case_id,
                organization_id=actor.organization_id,
                organization_code=actor.organization_code,
            )
        ):
            raise IdentifyingDataNotShared(
                "The person has not consented to share identifying data with your organization."
            )
        identifying = await person_service.identifying_from(
            session, keyring=keyring, person_id=person_id, records=records
        )
        queue_event(session, event)
    return identifying


async def link_case_person(
    session: AsyncSession,
    *,
    actor: Actor,
    case: CaseFile,
    candidate_id: uuid.UUID,
    if_match: IfMatch | None = None,
) -> CaseFile:
    """Record that this case's person is the same as an earlier record (a listed candidate)."""
    case = await lock_case_for_change(session, case, if_match=if_match)
    previous = case.person_id
    candidate = await person_service.link_person(
        session, person_id=previous, candidate_id=candidate_id
    )
    case.person_id = candidate.id  # dated by lock_case_for_change
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


async def _stored_age(
    session: AsyncSession, person: Person, *, first_identified_on: date | None = None
) -> StoredAge:
    """What is kept of the person's age. The day it refers to is that of the identification
    that first recorded the person (in whichever case), not the earliest date a later entry
    claims; `first_identified_on` while that first identification is being recorded."""
    first = (
        await session.exec(
            select(col(Identification.identified_on))
            .join(CaseFile, col(CaseFile.id) == col(Identification.case_id))
            .where(CaseFile.person_id == person.id)
            .order_by(col(Identification.created_at), col(Identification.id))
            .limit(1)
        )
    ).first()
    day = first if first is not None else first_identified_on
    if day is None:
        raise LookupError(f"person {person.id} has no identification yet")
    return _age_of(person, day)


async def age_of_person_on(
    session: AsyncSession, person_id: uuid.UUID, on: date, *, first_identification: bool = False
) -> int | None:
    """The person's age in completed years on a day (the youngest the records allow), None
    when unknown. While the person's first identification is being recorded, `on` is its
    day; `first_identification` says so when the caller knows (the person is new), and
    spares looking for an earlier one."""
    person = await person_service.get_person(session, person_id)
    if first_identification:
        return age_on_date(_age_of(person, on), on)
    return age_on_date(await _stored_age(session, person, first_identified_on=on), on)


def _age_of(person: Person, identified_on: date) -> StoredAge:
    return StoredAge(
        age_at_identification=person.age_at_identification,
        age_is_estimate=person.age_is_estimate,
        birth_year=person.birth_year,
        identified_on=identified_on,
    )


async def person_age_on(session: AsyncSession, case_id: uuid.UUID, on: date) -> int | None:
    """The age in completed years the case's person had on a day: the youngest the records
    allow (an open birthday counts as the latest one possible); None when unknown."""
    case = await session.get(CaseFile, case_id)
    if case is None:
        return None
    person = await person_service.get_person(session, case.person_id)
    return age_on_date(await _stored_age(session, person), on)


async def person_minor_on(session: AsyncSession, case: CaseFile, on: date) -> bool:
    """Whether the case's person was (or may have been) a child on the day of an event: a
    custody's start, an identification, a placement. Unknown age counts as a child."""
    person = await person_service.get_person(session, case.person_id)
    return minor_on_date(await _stored_age(session, person), on)


async def placement_profile(
    session: AsyncSession, case: CaseFile, *, on: date, repatriation_region: str | None = None
) -> PlacementProfile:
    """What a bed must fit, nothing identifying: age on the day of placement `on`, gender,
    forms of exploitation, and the region where a bed is sought (`rules.placement_region`;
    `repatriation_region` is where a repatriation to Peru brings the person, if one does)."""
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
                ),
                col(IdentificationExploitation.superseded_at).is_(None),
            )
        )
    ).all()
    person = await person_service.get_person(session, case.person_id)
    age = age_on_date(await _stored_age(session, person), on)
    identifier = (await get_organizations(session, [identifications[-1].organization_id])).get(
        identifications[-1].organization_id
    )
    region = rules.placement_region(
        [i.region for i in identifications],
        identifier_region=identifier.region if identifier is not None else None,
        repatriation_region=repatriation_region,
    )
    return PlacementProfile(
        age=age,
        gender=person.gender,
        exploitation=frozenset(forms),
        region=region,
        nationality=person.nationality,
    )


def case_ids_of_same_person(case: CaseFile) -> sa.Select[tuple[uuid.UUID]]:
    """The ids of every case about this case's person, linked records included, as a
    subquery for `in_` (no round trip of its own)."""
    cases = table_of(CaseFile)
    return sa.select(cases.c.id).where(
        cases.c.person_id.in_(person_service.same_person_ids(case.person_id))
    )
