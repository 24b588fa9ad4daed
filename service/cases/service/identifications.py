"""Opening a case with its identification, further identifications, corrections, and the
case as involved organizations see it.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.rules import change_set
from service.audit.service import record_event
from service.cases import rules
from service.cases.exceptions import (
    IDENTIFICATION_DATE_ERRORS,
    CaseNotFound,
    InvalidPlaceOfExploitation,
    NotAnIdentifier,
    UnknownRegion,
)
from service.cases.models import (
    CaseFile,
    CaseInvolvement,
    Identification,
    IdentificationExploitation,
    IdentificationRoute,
)
from service.cases.rules import CaseStatus, IdentificationContext, InvolvementBasis, VictimStatus
from service.cases.schemas import (
    AllowedTransition,
    CaseCreate,
    CaseFilters,
    CaseSummary,
    CaseUpdate,
    Exploitation,
    IdentificationFields,
    MigrationRoute,
)
from service.cases.service.access import (
    lock_case_for_change,
    new_involvement,
    stamp_change,
    visible_to,
)
from service.cases.service.location import (
    correct_location,
    location_audited,
    location_in_view,
    sealed_location,
)
from service.cases.service.person import age_of_person_on
from service.core.crypto import Keyring
from service.core.db import (
    UNIT,
    Database,
    Rows,
    insert_rows,
    instance_row,
    joined_records,
    persistent,
    row_of,
    session_rows,
    split_aggregate,
    table_of,
)
from service.core.errors import InvalidInput
from service.core.pagination import PageParams, keyset, page_of
from service.core.preconditions import IfMatch
from service.core.security import Actor
from service.core.time import utcnow
from service.identity.service import organization_code_of
from service.persons import service as person_service
from service.persons.rules import StoredAge, is_foreign, minor_on_date
from service.persons.schemas import PossibleDuplicate
from service.reference.service import region_exists


async def _require_place(session: AsyncSession, data: IdentificationFields) -> None:
    """A plausible day, and exactly one place of exploitation: a known Peruvian region or a
    foreign country."""
    problem = rules.identified_on_problem(data.identified_on, today=utcnow().date())
    if problem is not None:
        refused, message = IDENTIFICATION_DATE_ERRORS[problem]
        raise refused(message)
    error = rules.place_of_exploitation_error(
        region=data.region, country=data.exploitation_country, context=data.context
    )
    if error is not None:
        raise InvalidPlaceOfExploitation(*error)
    if data.region is not None and not await region_exists(session, data.region):
        raise UnknownRegion("region", "not an INEI ubigeo department code")


def _route_legs(route: MigrationRoute | None) -> list[tuple[str, rules.RouteRole]]:
    if route is None:
        return []
    return rules.route_legs(
        origin=route.origin, transit=list(route.transit), destination=route.destination
    )


def _route_rows(identification_id: uuid.UUID, route: MigrationRoute | None) -> list[dict[str, Any]]:
    return [
        row_of(
            IdentificationRoute,
            identification_id=identification_id,
            position=position,
            country=country,
            role=role.value,
        )
        for position, (country, role) in enumerate(_route_legs(route))
    ]


def _exploitation_rows(
    identification_id: uuid.UUID, items: Sequence[Exploitation]
) -> list[dict[str, Any]]:
    return [
        row_of(
            IdentificationExploitation,
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
        "exploitation_country": data.exploitation_country,
        "route": [{"country": c, "role": r.value} for c, r in _route_legs(data.route)],
        "context": data.context.value,
        "place": data.place,
        "operation_ref": data.operation_ref,
        "indicators": list(data.indicators),
        "exploitation": [e.model_dump(mode="json") for e in data.exploitation],
    }


async def _add_identification(
    session: AsyncSession,
    *,
    actor: Actor,
    case: CaseFile,
    data: IdentificationFields,
    new_person: bool = False,
    along: Sequence[Rows] = (),
) -> None:
    """The identification of a case whose place the caller has checked (`_require_place`);
    `new_person`: the person was created by this identification. Its rows are inserted with
    `along` (rows they may refer to, first) in one statement on PostgreSQL
    (core.db.insert_rows): nothing reads them back as instances in the request."""
    case_id = case.id
    identification = row_of(
        Identification,
        case_id=case_id,
        person_id=case.person_id,
        person_age=await age_of_person_on(
            session, case.person_id, data.identified_on, first_identification=new_person
        ),
        organization_id=actor.organization_id,
        identified_by=actor.user_id,
        identified_on=data.identified_on,
        region=data.region,
        exploitation_country=data.exploitation_country,
        place=data.place,
        context=data.context.value,
        operation_ref=data.operation_ref,
        indicators=list(data.indicators),
    )
    identification_id: uuid.UUID = identification["id"]
    await insert_rows(
        session,
        *along,
        Rows(Identification, [identification]),
        Rows(IdentificationExploitation, _exploitation_rows(identification_id, data.exploitation)),
        Rows(IdentificationRoute, _route_rows(identification_id, data.route)),
        new_involvement(
            session,
            actor=actor,
            case_id=case_id,
            organization_id=actor.organization_id,
            basis=InvolvementBasis.identified,
            source_id=identification_id,
        ),
    )
    record_event(
        session,
        actor=actor,
        action="identification.created",
        entity_type="case",
        entity_id=case_id,
        changes=change_set(
            None, {"identification_id": str(identification_id), **_identification_facts(data)}
        ),
    )


async def create_case(
    session: AsyncSession, *, actor: Actor, keyring: Keyring, data: CaseCreate
) -> tuple[CaseFile, list[PossibleDuplicate]]:
    """Open a case with its first identification; report records of the same person."""
    await _require_place(session, data)
    person, duplicates, identity = await person_service.identify_person(
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
        current_location_ciphertext=await sealed_location(
            session, keyring, person.id, data.current_location
        ),
    )
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
                "person": "[encrypted]",
            },
        )
        | location_audited(case.current_location_ciphertext is not None),
    )
    await _add_identification(
        session,
        actor=actor,
        case=case,
        data=data,
        new_person=not any(d.linked for d in duplicates),
        along=[*identity, instance_row(case)],
    )
    persistent(session, case)
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
    session: AsyncSession,
    *,
    actor: Actor,
    case: CaseFile,
    data: IdentificationFields,
    if_match: IfMatch | None = None,
) -> None:
    """Record that the actor's organization also identified the person of this case."""
    await _require_place(session, data)
    case = await lock_case_for_change(session, case, if_match=if_match)
    await _add_identification(session, actor=actor, case=case, data=data)
    # Dated by lock_case_for_change: its version (ETag) moves with the new identification,
    # once the change is flushed (the identification's rows were not: Core inserts).
    await session.flush()


async def exploitation_countries(session: AsyncSession, case_id: uuid.UUID) -> list[str]:
    """The foreign countries where the case's identifications place the exploitation, in
    the order the identifications happened (the latest last)."""
    rows = await session.exec(
        select(Identification.exploitation_country)
        .where(
            Identification.case_id == case_id,
            col(Identification.exploitation_country).is_not(None),
        )
        .order_by(col(Identification.identified_on), col(Identification.created_at))
    )
    return [country for country in rows.all() if country is not None]


async def _exploitation_of(
    session: AsyncSession, identification_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Exploitation]]:
    result: dict[uuid.UUID, list[Exploitation]] = {i: [] for i in identification_ids}
    if not identification_ids:
        return result
    rows = await session.exec(
        select(IdentificationExploitation)
        .where(
            col(IdentificationExploitation.identification_id).in_(identification_ids),
            col(IdentificationExploitation.superseded_at).is_(None),
        )
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
    session: AsyncSession,
    *,
    actor: Actor,
    keyring: Keyring,
    case: CaseFile,
    data: CaseUpdate,
    if_match: IfMatch,
) -> CaseFile:
    """Correct the actor's latest identification and where the person is now, if the case is
    still as the actor last read it (If-Match); audited."""
    fields = data.model_fields_set
    if not fields:
        raise InvalidInput("body", "name at least one field to correct")
    for name in fields - {"operation_ref", "current_location"}:
        if getattr(data, name) is None:
            raise InvalidInput(name, "may not be null")
    # Dated (its ETag moved) only if something changes: the same values again change nothing.
    case = await lock_case_for_change(session, case, if_match=if_match, stamp=False)
    changed = False
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
        changed = True
    if "current_location" in fields:
        changed |= await correct_location(
            session, actor=actor, keyring=keyring, case=case, to=data.current_location
        )
    if fields - {"current_location", "is_witness"}:
        changed |= await _correct_identification(session, actor=actor, case=case, data=data)
    if changed:
        stamp_change(session, case)
        await session.flush()
    return case


async def _correct_identification(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: CaseUpdate
) -> bool:
    """Correct the actor's latest identification of the case with the fields `data` names;
    audited. Whether anything changed."""
    fields = data.model_fields_set
    identification = await _latest_identification_by(
        session, case_id=case.id, organization_id=actor.organization_id
    )
    exploitation = (await _exploitation_of(session, [identification.id]))[identification.id]
    place = data.place if "place" in fields and data.place is not None else identification.place
    operation_ref = (
        data.operation_ref if "operation_ref" in fields else identification.operation_ref
    )
    indicators = (
        list(data.indicators)
        if "indicators" in fields and data.indicators is not None
        else identification.indicators
    )
    forms = (
        list(data.exploitation)
        if "exploitation" in fields and data.exploitation is not None
        else exploitation
    )
    before = {
        "place": identification.place,
        "operation_ref": identification.operation_ref,
        "indicators": identification.indicators,
        "exploitation": [e.model_dump(mode="json") for e in exploitation],
    }
    after = {
        "place": place,
        "operation_ref": operation_ref,
        "indicators": indicators,
        "exploitation": [e.model_dump(mode="json") for e in forms],
    }
    changes = change_set(before, after)
    if not changes:
        return False
    identification.place = place
    identification.operation_ref = operation_ref
    identification.indicators = indicators
    if after["exploitation"] != before["exploitation"]:
        # Superseded, not deleted: the forms known before the correction stay countable.
        await session.exec(
            sa.update(IdentificationExploitation)
            .where(
                col(IdentificationExploitation.identification_id) == identification.id,
                col(IdentificationExploitation.superseded_at).is_(None),
            )
            .values(superseded_at=utcnow())
        )
        forms_now = _exploitation_rows(identification.id, forms)
        await insert_rows(session, Rows(IdentificationExploitation, forms_now))
    session.add(identification)
    record_event(
        session,
        actor=actor,
        action="identification.corrected",
        entity_type="case",
        entity_id=case.id,
        changes={"identification_id": {"to": str(identification.id)}, **changes},
    )
    return True


_CASE_FIELDS = (
    "id",
    "status",
    "victim_status",
    "person_id",
    "is_witness",
    "current_location_ciphertext",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class CaseVersion:
    """Which case, at which version: what its ETag is made of."""

    id: uuid.UUID
    row_version: int


# A case as involved organizations see it, as JSON-able values: CasePublic's fields, in its
# order, nested models as values too (`_view_from`), enums as their values (pydantic-core
# serializes an enum it was not told of slowly: 1.4 µs each). The case read sends them as they are
# (core.http.json_response: the bytes CasePublic would give, tests/cases/test_case_view.py);
# every other route validates them into a CasePublic (pathway.case_view). Building the
# models only to serialize them was a tenth of a case read's instructions.
CaseValues = dict[str, Any]


async def case_public(
    session: AsyncSession,
    case: CaseFile,
    *,
    keyring: Keyring,
    also: Callable[[sa.BindParameter[uuid.UUID]], sa.ColumnElement[Any]] | None = None,
) -> tuple[CaseValues, Any]:
    """The case as involved organizations see it (no identifying data; where the person is
    now opened with the key read in the same statement), read in one statement
    (`_case_view_statement`), as CaseValues. `also` makes a value another domain wants read
    in the same statement, from the case id; it is returned beside the view (None without).
    The case's own fields are the object's, changes not yet flushed included."""
    stmt = _case_view_statement(also, visible=False)
    # Core, not the ORM: rows of plain values, built into the view below.
    rows = await session_rows(session, stmt, {"case_id": case.id})
    fields = {name: getattr(case, name) for name in _CASE_FIELDS}
    location = await location_in_view(
        keyring, rows[0], fields, session=lambda: contextlib.nullcontext(session)
    )
    return _view_from(rows, fields, location), rows[0].also


async def visible_case_public(
    db: Database,
    *,
    actor: Actor,
    keyring: Keyring,
    case_id: uuid.UUID,
    also: Callable[[sa.BindParameter[uuid.UUID]], sa.ColumnElement[Any]] | None = None,
) -> tuple[CaseValues, CaseVersion, Any]:
    """`case_public` of a case the actor's organization is involved in, found and read in
    the same one statement (the access rule is its condition); CaseNotFound otherwise.
    Returns the view, the case's version (its ETag) and the `also` value. Outside any
    transaction and without a session (`Database.fetch`): the route only reads, and this is
    its one statement; a session is opened only for a location sealed for a record since
    linked into the person's."""
    stmt = _case_view_statement(also, visible=True)
    params = {"case_id": case_id, "organization_id": actor.organization_id}
    rows = await db.fetch(stmt, params)
    if not rows:
        raise CaseNotFound()
    first = rows[0]._mapping
    fields = {name: first[f"case_file_{name}"] for name in _CASE_FIELDS}
    location = await location_in_view(
        keyring,
        rows[0],
        fields,
        session=lambda: db.session(write=False, transaction=False),
    )
    view = _view_from(rows, fields, location)
    return view, CaseVersion(id=case_id, row_version=first["case_file_row_version"]), rows[0].also


def _view_from(
    rows: Sequence[sa.Row[Any]], case: Mapping[str, Any], current_location: str | None
) -> CaseValues:
    """The view of the rows of `_case_view_statement` (one per identification), the case's
    own fields and where the person is now (opened), as CaseValues."""
    first = rows[0]
    mapping = first._mapping
    person = {name: mapping[label] for name, label in _FACT_LABELS}
    first_on = min(r.identified_on for r in rows)
    stored_age = StoredAge(
        age_at_identification=person["age_at_identification"],
        age_is_estimate=person["age_is_estimate"],
        birth_year=person["birth_year"],
        identified_on=first.first_recorded if first.first_recorded is not None else first_on,
    )
    # A child when identified is counted and screened as one, however late the entry.
    minor = minor_on_date(stored_age, first_on)
    status = CaseStatus(case["status"])
    return {
        "id": case["id"],
        "status": status.value,  # enums as their values: pydantic-core's inference is slow on them
        "victim_status": VictimStatus(case["victim_status"]).value,
        "person_id": case["person_id"],
        "person": person_service.fact_values(person, minor=minor),
        "is_witness": case["is_witness"],
        "current_location": current_location,
        "involved_organizations": sorted({code for (code,) in split_aggregate(first.involved)}),
        "identifications": [
            {
                "id": i.id,
                "organization": i.organization_code,
                "identified_on": i.identified_on,
                "region": i.region,
                "exploitation_country": i.exploitation_country,
                "route": _route_from(split_aggregate(i.legs)),
                "place": i.place,
                "context": IdentificationContext(i.context).value,
                "operation_ref": i.operation_ref,
                "exploitation": _forms_from(split_aggregate(i.forms)),
                "indicators": i.indicators,
                "created_at": i.created_at,
            }
            for i in rows
        ],
        "allowed_transitions": list(_allowed_transitions(status)),
        "suggested_referrals": [
            {"to_org": org, "purpose": purpose}
            for org, purpose in rules.suggested_referrals(
                foreign=is_foreign(person["nationality"]), minor=minor, witness=case["is_witness"]
            )
        ]
        if status is not CaseStatus.closed
        else [],
        "created_at": case["created_at"],
        "updated_at": case["updated_at"],
    }


# The person's facts as `_case_view_statement` labels them.
_FACT_LABELS = tuple((name, f"facts_{name}") for name in person_service.FACT_COLUMNS)


@functools.cache
def _allowed_transitions(status: CaseStatus) -> tuple[AllowedTransition, ...]:
    """`rules.allowed_transitions`, built once per state (the views share them: frozen)."""
    return tuple(AllowedTransition.model_validate(t) for t in rules.allowed_transitions(status))


@functools.cache
def _case_view_statement(
    also: Callable[[sa.BindParameter[uuid.UUID]], sa.ColumnElement[Any]] | None,
    *,
    visible: bool,
) -> sa.Select[Any]:
    """A row per identification of the case `:case_id`, carrying its forms of exploitation
    and its route, the person's facts, the involved organizations and the person's first
    identification in any case (the day her stored age refers to). With `visible`, only if
    the organization `:organization_id` is involved in the case (the access rule), and with
    the case's own columns (`case_file_<name>`). The person's wrapped data key comes along
    (`key_<name>`, NULL once she was erased), to open where she is now without another round
    trip. Built once: a request only binds its ids."""
    case_id = sa.bindparam("case_id", type_=sa.Uuid())
    ident = table_of(Identification)
    case = table_of(CaseFile)
    exploitation = table_of(IdentificationExploitation)
    route = table_of(IdentificationRoute)
    involvement = table_of(CaseInvolvement)
    # The case's person, found once by the database (an uncorrelated subquery).
    person_id = sa.select(case.c.person_id).where(case.c.id == case_id).scalar_subquery()
    facts = person_service.facts_of(person_id)
    key = person_service.wrapped_key_of(person_id)
    forms = (
        sa.select(
            joined_records(exploitation.c.form + UNIT + sa.func.coalesce(exploitation.c.sector, ""))
        )
        .where(
            exploitation.c.identification_id == ident.c.id,
            exploitation.c.superseded_at.is_(None),
        )
        .scalar_subquery()
    )
    legs = (
        sa.select(
            joined_records(
                sa.cast(route.c.position, sa.String) + UNIT + route.c.role + UNIT + route.c.country
            )
        )
        .where(route.c.identification_id == ident.c.id)
        .scalar_subquery()
    )
    involved = (
        sa.select(joined_records(organization_code_of(involvement.c.organization_id)))
        .where(involvement.c.case_id == case_id, involvement.c.ended_at.is_(None))
        .scalar_subquery()
    )
    earlier, its_case = ident.alias("earlier"), case.alias("its_case")

    def first_of_its_case(column: sa.ColumnElement[Any]) -> sa.ScalarSelect[Any]:
        """`column` of the first identification of `its_case`, by its index."""
        return (
            sa.select(column)
            .where(earlier.c.case_id == its_case.c.id)
            .order_by(earlier.c.created_at, earlier.c.id)
            .limit(1)
            .scalar_subquery()
        )

    # The person's cases by their index, then the first identification of each by theirs
    # (correlated, so that no plan can scan them all): a join of the two was planned as a
    # scan of every identification (0.6 ms with 4,500, growing with the registry).
    first_recorded = (
        sa.select(first_of_its_case(earlier.c.identified_on))
        .where(its_case.c.person_id == person_id)
        .order_by(first_of_its_case(earlier.c.created_at), first_of_its_case(earlier.c.id))
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        sa.select(
            ident,
            organization_code_of(ident.c.organization_id).label("organization_code"),
            forms.label("forms"),
            legs.label("legs"),
            involved.label("involved"),
            first_recorded.label("first_recorded"),
            (also(case_id) if also is not None else sa.null()).label("also"),
            *(c.label(f"facts_{c.name}") for c in facts.c),
            *(c.label(f"key_{c.name}") for c in key.c),
        )
        .where(ident.c.case_id == case_id)
        .order_by(ident.c.created_at, ident.c.id)
    )
    if not visible:
        return stmt.select_from(ident.join(facts, sa.true()).outerjoin(key, sa.true()))
    organization_id = sa.bindparam("organization_id", type_=sa.Uuid())
    return (
        stmt.add_columns(
            *(case.c[name].label(f"case_file_{name}") for name in (*_CASE_FIELDS, "row_version"))
        )
        .select_from(
            ident.join(case, case.c.id == ident.c.case_id)
            .join(facts, sa.true())
            .outerjoin(key, sa.true())
        )
        .where(visible_to(organization_id))
    )


def _forms_from(records: list[list[str]]) -> list[dict[str, str | None]]:
    """The forms of exploitation of an aggregated read (Exploitation's values), ordered by
    form then sector (a form without sector last, as PostgreSQL orders NULL)."""
    pairs = sorted(((form, sector or None) for form, sector in records), key=_form_order)
    return [{"form": f, "sector": s} for f, s in pairs]


def _form_order(pair: tuple[str, str | None]) -> tuple[str, bool, str]:
    form, sector = pair
    return form, sector is None, sector or ""


def _route_from(records: list[list[str]]) -> dict[str, Any] | None:
    """The route of an aggregated read of its legs (position, role, country), as
    MigrationRoute's values."""
    if not records:
        return None
    legs = sorted((int(position), role, country) for position, role, country in records)
    return {
        "origin": next((c for _, r, c in legs if r == rules.RouteRole.origin), None),
        "transit": [c for _, r, c in legs if r == rules.RouteRole.transit],
        "destination": next((c for _, r, c in legs if r == rules.RouteRole.destination), None),
    }


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
    if filters.exploitation_country is not None:
        matching = matching.where(
            Identification.exploitation_country == filters.exploitation_country
        )
        constrained = True
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
                col(IdentificationExploitation.superseded_at).is_(None),
            )
        )
        constrained = True
    if constrained:
        stmt = stmt.where(matching.exists())
    stmt = keyset(stmt, sort=col(CaseFile.created_at), tiebreak=col(CaseFile.id), page=page)
    rows, next_cursor = page_of(
        (await session.exec(stmt)).all(), page, lambda r: (r[0].created_at, r[0].id)
    )
    places = await _first_places(session, [case.id for case, _ in rows])
    return [
        CaseSummary(
            id=case.id,
            status=CaseStatus(case.status),
            victim_status=VictimStatus(case.victim_status),
            first_identified_on=first_on
            if isinstance(first_on, date)
            else date.fromisoformat(str(first_on)),
            region=places[case.id][0],
            exploitation_country=places[case.id][1],
            created_at=case.created_at,
        )
        for case, first_on in rows
    ], next_cursor


async def _first_places(
    session: AsyncSession, case_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[str | None, str | None]]:
    """(region, exploitation_country) of each case's first identification."""
    if not case_ids:
        return {}
    rows = await session.exec(
        select(Identification.case_id, Identification.region, Identification.exploitation_country)
        .where(col(Identification.case_id).in_(case_ids))
        .order_by(col(Identification.identified_on).desc(), col(Identification.created_at).desc())
    )
    result: dict[uuid.UUID, tuple[str | None, str | None]] = {}
    for case_id, region, country in rows.all():
        result[case_id] = (region, country)  # overwriting newest first leaves the earliest
    return result
