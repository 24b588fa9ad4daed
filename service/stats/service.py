"""The true counts of the published tables, computed in the database as known on a day.

Each person is counted once: identifications name the person record of their day, and
records linked later are followed only when the link was known on `known_on`. A person's
traits come from their first counted identification in the period (its region, country and
age on that day) and from the surviving person record (gender, nationality); the forms of
exploitation are those of all their counted identifications; institutions are a
multi-response breakdown. Cases that neither a consent nor a legal basis lets statistics
count, and cases screened as not a victim, are left out and counted as excluded.

These are TRUE counts: they are never returned to anyone before disclosure control.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from service.cases import service as case_service
from service.cases.rules import ExploitationForm, VictimStatus
from service.consent import service as consent_service
from service.identity import service as identity_service
from service.persons import service as person_service
from service.persons.rules import PERU
from service.stats.catalogue import (
    ADULT_AGE,
    AGE_BANDS,
    UNKNOWN,
    Dimension,
    ExclusionReason,
    TableSpec,
)

COUNTED = "counted"
SEXUAL_FORMS = (
    ExploitationForm.sexual_exploitation.value,
    ExploitationForm.child_sex_tourism.value,
)
LABOUR_FORMS = (ExploitationForm.forced_labour.value,)


@dataclass(frozen=True)
class Scope:
    """Which identifications a table counts, and as known on which moment."""

    identified_from: date
    identified_to: date
    known_on: datetime


@dataclass(frozen=True)
class TrueTable:
    """A table's true counts: never published as such (see the disclosure rules)."""

    code: str
    dimensions: tuple[Dimension, ...]
    cells: Mapping[tuple[str, ...], int]
    # The de-duplicated number of persons the table is about (for a multi-response table
    # the cells add up to more).
    persons: int
    excluded: Mapping[ExclusionReason, int]


async def _run(session: AsyncSession, stmt: sa.Executable) -> sa.CursorResult[Any]:
    """Run a Core select on the session's connection (SQLModel's `exec` types ORM selects)."""
    connection = await session.connection()
    result: sa.CursorResult[Any] = await connection.execute(stmt)
    return result


def _scoped(scope: Scope) -> sa.Subquery:
    """Every identification in scope with the person it counts as and its standing:
    counted, not_a_victim or no_consent_or_basis."""
    ids = case_service.identifications_known_on(
        scope.known_on, identified_from=scope.identified_from, identified_to=scope.identified_to
    ).subquery("ident")
    roots = person_service.person_roots_on(scope.known_on)
    countable = consent_service.cases_countable_on(scope.known_on)
    status = case_service.victim_status_on(ids.c.case_id, scope.known_on)
    standing = sa.case(
        (status == VictimStatus.not_a_victim.value, ExclusionReason.not_a_victim.value),
        (ids.c.case_id.in_(countable), COUNTED),
        else_=ExclusionReason.no_consent_or_basis.value,
    )
    return (
        sa.select(ids, roots.c.root_id, standing.label("standing"))
        .join(roots, roots.c.person_id == ids.c.person_id)
        .subquery("scoped")
    )


def _persons(scoped: sa.Subquery, scope: Scope) -> sa.Subquery:
    """One row per counted person with the raw traits the dimensions are built from."""
    counted = sa.select(scoped).where(scoped.c.standing == COUNTED).subquery("counted")
    first = (
        sa.select(
            counted.c.root_id,
            counted.c.region,
            counted.c.exploitation_country,
            counted.c.person_age,
            sa.func.row_number()
            .over(
                partition_by=counted.c.root_id,
                order_by=(
                    counted.c.identified_on,
                    counted.c.created_at,
                    counted.c.identification_id,
                ),
            )
            .label("n"),
        )
    ).subquery("first")
    forms = case_service.exploitation_known_on(scope.known_on).subquery("forms")
    kinds = (
        sa.select(
            counted.c.root_id,
            sa.func.max(sa.case((forms.c.form.in_(SEXUAL_FORMS), 1), else_=0)).label("sexual"),
            sa.func.max(sa.case((forms.c.form.in_(LABOUR_FORMS), 1), else_=0)).label("labour"),
            sa.func.min(sa.case((forms.c.form.in_(LABOUR_FORMS), forms.c.sector))).label("sector"),
        )
        .join(forms, forms.c.identification_id == counted.c.identification_id)
        .group_by(counted.c.root_id)
    ).subquery("kinds")
    traits = person_service.person_traits().subquery("traits")
    return (
        sa.select(
            first.c.root_id,
            first.c.region,
            first.c.exploitation_country,
            first.c.person_age,
            traits.c.gender,
            traits.c.nationality,
            sa.func.coalesce(kinds.c.sexual, 0).label("sexual"),
            sa.func.coalesce(kinds.c.labour, 0).label("labour"),
            kinds.c.sector,
        )
        .join(traits, traits.c.person_id == first.c.root_id)
        .outerjoin(kinds, kinds.c.root_id == first.c.root_id)
        .where(first.c.n == 1)
        .subquery("person_row")
    )


def _dimension(person: sa.Subquery, dimension: Dimension) -> sa.ColumnElement[str]:
    """The SQL of a dimension's category for a person row."""
    age = person.c.person_age
    match dimension:
        case Dimension.region:
            return sa.func.coalesce(person.c.region, "abroad")
        case Dimension.country_of_exploitation:
            return sa.func.coalesce(person.c.exploitation_country, PERU)
        case Dimension.nationality_group:
            return sa.case(
                (person.c.nationality.is_(None), UNKNOWN),
                (person.c.nationality == PERU, "peruvian"),
                else_="foreign",
            )
        case Dimension.nationality:
            return sa.func.coalesce(person.c.nationality, UNKNOWN)
        case Dimension.age_band:
            whens: list[tuple[sa.ColumnElement[bool], str]] = [(age.is_(None), UNKNOWN)]
            whens += [(age <= high, label) for label, _low, high in AGE_BANDS if high is not None]
            return sa.case(*whens, else_=AGE_BANDS[-1][0])
        case Dimension.minor:
            return sa.case((age.is_(None), UNKNOWN), (age < ADULT_AGE, "minor"), else_="adult")
        case Dimension.gender:
            return person.c.gender
        case Dimension.form:
            sexual, labour = person.c.sexual == 1, person.c.labour == 1
            return sa.case(
                (sa.and_(sexual, labour), "both"),
                (sexual, "sexual"),
                (labour, "labour"),
                else_="other",
            )
        case Dimension.sector:
            return sa.func.coalesce(person.c.sector, "none")
        case Dimension.institution:
            raise ValueError("institution is a multi-response dimension")


async def _excluded(session: AsyncSession, scoped: sa.Subquery) -> dict[ExclusionReason, int]:
    """How many persons in scope no table counts, by reason: not a victim when every case of
    theirs in scope was screened so, no consent or basis otherwise."""
    per_person = (
        sa.select(
            scoped.c.root_id,
            sa.func.max(sa.case((scoped.c.standing == COUNTED, 1), else_=0)).label("counted"),
            sa.func.max(
                sa.case(
                    (scoped.c.standing == ExclusionReason.no_consent_or_basis.value, 1), else_=0
                )
            ).label("no_basis"),
        ).group_by(scoped.c.root_id)
    ).subquery("per_person")
    reason = sa.case(
        (per_person.c.no_basis == 1, ExclusionReason.no_consent_or_basis.value),
        else_=ExclusionReason.not_a_victim.value,
    ).label("reason")
    rows = await _run(
        session,
        sa.select(reason, sa.func.count().label("persons"))
        .where(per_person.c.counted == 0)
        .group_by(reason),
    )
    found: dict[ExclusionReason, int] = {}
    for row in rows:
        found[ExclusionReason(row.reason)] = int(row.persons)
    return {r: found.get(r, 0) for r in ExclusionReason}


async def count_table(
    session: AsyncSession, *, spec: TableSpec, dimensions: tuple[Dimension, ...], scope: Scope
) -> TrueTable:
    """The true counts of one table broken down by `dimensions` (catalogue.breakdown), one
    GROUP BY in the database."""
    scoped = _scoped(scope)
    person = _persons(scoped, scope)
    columns: list[sa.ColumnElement[str]] = []
    source: sa.FromClause = person
    for d in dimensions:
        if d is Dimension.institution:
            codes = identity_service.organization_codes().subquery("org")
            by_org = (
                sa.select(scoped.c.root_id, codes.c.code)
                .join(codes, codes.c.organization_id == scoped.c.organization_id)
                .where(scoped.c.standing == COUNTED)
                .distinct()
            ).subquery("by_org")
            source = source.join(by_org, by_org.c.root_id == person.c.root_id)
            columns.append(by_org.c.code)
        else:
            columns.append(_dimension(person, d))
    labelled = [c.label(d.value) for c, d in zip(columns, dimensions, strict=True)]
    rows = (
        await _run(
            session, sa.select(*labelled, sa.func.count()).select_from(source).group_by(*labelled)
        )
    ).all()
    cells = {tuple(str(row[i]) for i in range(len(dimensions))): int(row[-1]) for row in rows}
    persons = (await _run(session, sa.select(sa.func.count()).select_from(person))).scalar_one()
    return TrueTable(
        code=spec.code,
        dimensions=dimensions,
        cells=cells,
        persons=int(persons),
        excluded=await _excluded(session, scoped),
    )
