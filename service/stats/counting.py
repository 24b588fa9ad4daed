"""The true counts of the published tables, computed in the database as known on a day.

Each person is counted once: identifications name the person record of their day, and
records linked later are followed only when the link was known on `known_on`. A table's
population is the persons with at least one event of its kind in the period (an
identification, a referral sent, a service given ...); their traits come from their first
counted identification (in the period for the identification tables; up to the period's end
for the others: age at identification, region, country) and from the surviving person record
(gender, nationality). Cases that neither a consent nor a legal basis lets statistics count,
and cases screened as not a victim, are left out and counted as excluded.

These are TRUE counts: they are never returned to anyone before disclosure control.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from itertools import pairwise
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity import service as capacity_service
from service.cases import service as case_service
from service.cases.rules import ExploitationForm, VictimStatus
from service.consent import service as consent_service
from service.core.db import hours_between, in_transaction, is_read_only
from service.core.types import UTCDateTime
from service.identity import service as identity_service
from service.legal import service as legal_service
from service.legal.rules import Outcome
from service.persons import service as person_service
from service.persons.rules import ADULT_AGE, PERU
from service.protection import service as protection_service
from service.protection.rules import CustodyPlace
from service.reference import service as reference_service
from service.referrals import service as referral_service
from service.repatriation import service as repatriation_service
from service.stats.catalogue import (
    ABROAD,
    OTHER,
    PUBLISHED_COUNTRIES,
    PUBLISHED_NATIONALITIES,
    REFERRAL_OUTCOMES,
    SENTENCE_BANDS,
    UNKNOWN,
    By,
    CatalogueTable,
    ExclusionReason,
    Measure,
    Population,
)
from service.stats.rules import PERU_AGE_BANDS

COUNTED = "counted"
SEXUAL_FORMS = (
    ExploitationForm.sexual_exploitation.value,
    ExploitationForm.child_sex_tourism.value,
)
LABOUR_FORMS = (ExploitationForm.forced_labour.value,)
OTHER_FORMS = tuple(
    f.value for f in ExploitationForm if f.value not in (*SEXUAL_FORMS, *LABOUR_FORMS)
)
# Peru's days: UTC-5 all year (no daylight saving since 1994). A period's days are Peru's.
PERU_TIME = timezone(timedelta(hours=-5))
# Dimensions read from the population's event rather than from the person.
EVENT_DIMENSIONS = {
    By.institution: "institution",
    By.receiving_institution: "receiving_institution",
    By.referral_outcome: "referral_outcome",
    By.purpose: "purpose",
    By.service: "service",
    By.facility_kind: "facility_kind",
    By.unmet_reason: "unmet_reason",
    By.restitution_paid: "restitution_paid",
    By.direction: "direction",
    By.residency: "residency",
}
DEFENDANT_POPULATIONS = (Population.defendants, Population.convicted)


@dataclass(frozen=True)
class Scope:
    """The period a table covers (Peru's days, inclusive) and the moment it is known on."""

    start: date
    end: date
    known_on: datetime

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time(), PERU_TIME)

    @property
    def ends_before(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), PERU_TIME)


@dataclass(frozen=True)
class TrueTable:
    """A table's true counts: never published as such (see the disclosure rules)."""

    code: str
    dimensions: tuple[By, ...]
    cells: Mapping[tuple[str, ...], int]
    # The de-duplicated number of units (persons, or defendants) the table is about: for a
    # multi-response table the cells add up to more.
    total: int
    unit: str
    excluded: Mapping[ExclusionReason, int]
    measures: Mapping[Measure, float | None]
    # For a table of rates: each cell's population (its region's, in `census_year`).
    denominators: Mapping[tuple[str, ...], int] | None = None
    census_year: int | None = None


async def _run(session: AsyncSession, stmt: sa.Executable) -> sa.CursorResult[Any]:
    """Run a Core select on the session's connection (SQLModel's `exec` types ORM selects)."""
    connection = await session.connection()
    result: sa.CursorResult[Any] = await connection.execute(stmt)
    return result


def _moment(value: datetime) -> sa.BindParameter[datetime]:
    return sa.literal(value, UTCDateTime())


def _scoped(scope: Scope, *, from_start: bool) -> sa.Select[Any]:
    """Identifications recorded by `known_on`, made in the period (`from_start`) or up to its
    end, with the person they count as (`root_id`), their case's standing (counted,
    not_a_victim or no_consent_or_basis) and whether it is `counted`."""
    ids = case_service.identifications_known_on(
        scope.known_on,
        identified_from=scope.start if from_start else date.min,
        identified_to=scope.end,
    ).subquery("ident")
    roots = person_service.person_roots_on(scope.known_on)
    countable = consent_service.cases_countable_on(scope.known_on).subquery("countable")
    status = case_service.victim_status_on(ids.c.case_id, scope.known_on)
    not_a_victim = ExclusionReason.not_a_victim.value
    standing = sa.case(
        (status == VictimStatus.not_a_victim.value, not_a_victim),
        (countable.c.case_id.is_not(None), COUNTED),
        else_=ExclusionReason.no_consent_or_basis.value,
    )
    # The same as standing == COUNTED, but as plain predicates the planner can estimate: a
    # filter on the CASE is guessed to keep a handful of rows, and the joins on persons that
    # follow then go through nested loops, quadratic over a million identifications.
    counted = sa.and_(
        countable.c.case_id.is_not(None),
        status.is_distinct_from(VictimStatus.not_a_victim.value),
    )
    return (
        sa.select(ids, roots.c.root_id, standing.label("standing"), counted.label("counted"))
        .join(roots, roots.c.person_id == ids.c.person_id)
        .outerjoin(countable, countable.c.case_id == ids.c.case_id)
    )


def _persons(scoped: sa.FromClause, scope: Scope, *, from_start: bool) -> sa.Select[Any]:
    """One row per counted person with the raw traits the person dimensions are built from:
    from their first counted identification in the period (`from_start`) or up to its end."""
    kept: list[sa.ColumnElement[bool]] = [scoped.c.counted]
    if from_start:
        kept.append(scoped.c.identified_on >= scope.start)
    counted = sa.select(scoped).where(*kept).subquery("counted")
    first = sa.select(
        counted.c.root_id,
        counted.c.region,
        counted.c.exploitation_country,
        counted.c.person_age,
        sa.func.row_number()
        .over(
            partition_by=counted.c.root_id,
            order_by=(counted.c.identified_on, counted.c.created_at, counted.c.identification_id),
        )
        .label("n"),
    ).subquery("first")
    forms = case_service.exploitation_known_on(scope.known_on).subquery("forms")
    kinds = (
        sa.select(
            counted.c.root_id,
            sa.func.max(sa.case((forms.c.form.in_(SEXUAL_FORMS), 1), else_=0)).label("sexual"),
            sa.func.max(sa.case((forms.c.form.in_(LABOUR_FORMS), 1), else_=0)).label("labour"),
            sa.func.min(sa.case((forms.c.form.in_(LABOUR_FORMS), forms.c.sector))).label("sector"),
            sa.func.max(sa.case((forms.c.form.in_(OTHER_FORMS), 1), else_=0)).label("other"),
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
            sa.func.coalesce(kinds.c.other, 0).label("other"),
            kinds.c.sector,
        )
        .join(traits, traits.c.person_id == first.c.root_id)
        .outerjoin(kinds, kinds.c.root_id == first.c.root_id)
        .where(first.c.n == 1)
    )


def _case_standing(scoped: sa.FromClause) -> sa.Select[Any]:
    """Each case identified up to the period's end with the person it counts as and its
    standing."""
    return sa.select(
        scoped.c.case_id, scoped.c.root_id, scoped.c.standing, scoped.c.counted
    ).distinct()


class _Bases:
    """What every table of one count reads, computed once: the scoped identifications (up to
    the period's end), the counted persons (of the period, or up to its end) and the cases'
    standing, each kept in a temporary table for the transaction's statements that follow.
    Plain SQL on both databases; dropped by `drop` (a rolled back transaction takes them).

    A read-only database (the statistics replica, a hot standby) refuses even temporary
    tables: there each is a common table expression of every statement that reads it,
    computed again by each table's statement, with the same counts."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope
        self._prefix = f"stats_{uuid.uuid4().hex[:12]}"
        self._temporary = not is_read_only(session)
        if self._temporary and not in_transaction(session):
            # Each statement would be a transaction of its own: a count interrupted half
            # way would leave its tables behind on a pooled connection.
            raise RuntimeError("Counting needs a transaction: mark the GET endpoint `writes`.")
        self._kept: dict[str, sa.FromClause] = {}
        self._created: list[sa.Table] = []

    async def _keep(self, name: str, build: Callable[[], sa.Select[Any]]) -> sa.FromClause:
        if name not in self._kept:
            if self._temporary:
                table = await _temporary(self.session, f"{self._prefix}_{name}", build())
                self._created.append(table)
                self._kept[name] = table
            else:
                self._kept[name] = build().cte(f"base_{name}")
        return self._kept[name]

    async def scoped(self) -> sa.FromClause:
        return await self._keep("scoped", lambda: _scoped(self.scope, from_start=False))

    async def persons(self, *, from_start: bool) -> sa.FromClause:
        scoped = await self.scoped()
        return await self._keep(
            "persons_period" if from_start else "persons",
            lambda: _persons(scoped, self.scope, from_start=from_start),
        )

    async def cases(self) -> sa.FromClause:
        scoped = await self.scoped()
        return await self._keep("cases", lambda: _case_standing(scoped))

    async def drop(self) -> None:
        connection = await self.session.connection()
        for table in reversed(self._created):
            await connection.execute(sa.schema.DropTable(table))
        self._created.clear()
        self._kept.clear()


class _CreateTemporaryAs(sa.sql.expression.Executable, sa.sql.expression.ClauseElement):
    """CREATE TEMPORARY TABLE name AS <select>: the same words on SQLite and PostgreSQL."""

    inherit_cache = False

    def __init__(self, name: str, select: sa.Select[Any]) -> None:
        self.name = name
        self.select = select


@compiles(_CreateTemporaryAs)
def _compile_create_temporary_as(
    element: _CreateTemporaryAs, compiler: SQLCompiler, **kw: Any
) -> str:
    name = compiler.preparer.quote(element.name)
    return f"CREATE TEMPORARY TABLE {name} AS {compiler.process(element.select, **kw)}"


async def _temporary(session: AsyncSession, name: str, select: sa.Select[Any]) -> sa.Table:
    """Keep the select's rows in a temporary table of this connection, with statistics for
    the planner (nothing analyzes a temporary table by itself)."""
    connection = await session.connection()
    await connection.execute(_CreateTemporaryAs(name, select))
    table = sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in select.selected_columns),
        prefixes=["TEMPORARY"],
    )
    await connection.execute(
        sa.text(f"ANALYZE {connection.dialect.identifier_preparer.quote(name)}")
    )
    return table


def _event_rows(spec: CatalogueTable, scope: Scope) -> sa.Subquery:
    """The population's events in the period (other than identifications): `case_id` and the
    event's own dimensions and measures."""
    start, before = scope.starts_at, scope.ends_before
    match spec.population:
        case Population.referred:
            sent = referral_service.referrals_known_on(
                scope.known_on, sent_from=start, sent_before=before
            ).subquery("sent")
            codes = identity_service.select_organization_codes().subquery("org")
            outcome = sa.case(
                *((sent.c.status == status, group) for status, group in REFERRAL_OUTCOMES.items()),
                else_=UNKNOWN,
            )
            stmt = sa.select(
                sent.c.case_id,
                codes.c.code.label("receiving_institution"),
                outcome.label("referral_outcome"),
                sent.c.purpose.label("purpose"),
            ).join(codes, codes.c.organization_id == sent.c.to_org_id)
        case Population.assisted:
            given = protection_service.assistance_known_on(
                scope.known_on, provided_from=scope.start, provided_to=scope.end
            ).subquery("given")
            stmt = sa.select(given.c.case_id, given.c.kind.label("service"))
        case Population.sheltered:
            stays = _stays(scope)
            stmt = sa.select(stays.c.case_id, stays.c.facility_kind, stays.c.nights)
        case Population.unmet_need:
            needs = capacity_service.unmet_needs_known_on(
                scope.known_on, recorded_from=start, recorded_before=before
            ).subquery("needs")
            stmt = sa.select(needs.c.case_id, needs.c.reason.label("unmet_reason"))
        case Population.restitution:
            orders = legal_service.restitution_known_on(
                scope.known_on, ordered_from=scope.start, ordered_to=scope.end
            ).subquery("orders")
            status = sa.case(
                (orders.c.paid >= orders.c.ordered, "paid"),
                (orders.c.paid > 0, "partly_paid"),
                else_="unpaid",
            )
            stmt = sa.select(
                orders.c.case_id,
                status.label("restitution_paid"),
                orders.c.ordered,
                orders.c.paid,
            )
        case Population.repatriated:
            trips = repatriation_service.repatriations_known_on(
                scope.known_on, arrived_from=scope.start, arrived_to=scope.end
            ).subquery("trips")
            stmt = sa.select(trips.c.case_id, trips.c.direction.label("direction"))
        case Population.residency_granted:
            granted = repatriation_service.residency_granted_known_on(
                scope.known_on, granted_from=scope.start, granted_to=scope.end
            ).subquery("granted")
            stmt = sa.select(granted.c.case_id, granted.c.status.label("residency"))
        case Population.held:
            held = _held(scope)
            stmt = sa.select(held.c.case_id, held.c.hours)
        case _:
            raise ValueError(f"no population {spec.population}")
    return stmt.subquery("event_rows")


async def _events(spec: CatalogueTable, scope: Scope, bases: _Bases) -> sa.Select[Any]:
    """The population's events: `root_id`, `standing`, `counted` and the event's own
    dimensions."""
    if spec.population is Population.identified:
        scoped = await bases.scoped()
        codes = identity_service.select_organization_codes().subquery("org")
        return (
            sa.select(
                scoped.c.root_id,
                scoped.c.standing,
                scoped.c.counted,
                codes.c.code.label("institution"),
            )
            .join(codes, codes.c.organization_id == scoped.c.organization_id)
            .where(scoped.c.identified_on >= scope.start)
        )
    cases = await bases.cases()
    rows = _event_rows(spec, scope)
    own = [c for c in rows.c if c.name != "case_id"]
    return sa.select(cases.c.root_id, cases.c.standing, cases.c.counted, *own).join(
        cases, cases.c.case_id == rows.c.case_id
    )


def _stays(scope: Scope) -> sa.Subquery:
    """Stays in a bed overlapping the period, with the nights spent in it within the period
    (a stay still going on is counted up to `known_on` or the period's end)."""
    stays = capacity_service.placements_known_on(
        scope.known_on, during_from=scope.starts_at, during_before=scope.ends_before
    ).subquery("stays")
    start, before = _moment(scope.starts_at), _moment(scope.ends_before)
    horizon = _moment(min(scope.known_on, scope.ends_before))
    begins = sa.case((stays.c.placed_at < start, start), else_=stays.c.placed_at)
    ends = sa.case(
        (stays.c.ended_at.is_(None), horizon),
        (stays.c.ended_at > before, before),
        else_=stays.c.ended_at,
    )
    nights = hours_between(begins, ends) / 24.0
    return sa.select(
        stays.c.case_id,
        stays.c.facility_kind,
        sa.case((nights > 0, nights), else_=0).label("nights"),
    ).subquery("stays_in_period")


def _held(scope: Scope) -> sa.Subquery:
    """Children's custody periods in police stations that began in the period, with the
    hours held when the period had ended (NULL while still held, as then known)."""
    custody = protection_service.custody_known_on(
        scope.known_on, started_from=scope.starts_at, started_before=scope.ends_before
    ).subquery("custody")
    return (
        sa.select(
            custody.c.case_id,
            hours_between(custody.c.start_at, custody.c.end_at).label("hours"),
        )
        .where(
            custody.c.minor.is_(True),
            custody.c.place_kind == CustodyPlace.police_station.value,
        )
        .subquery("held")
    )


def _dimension(person: sa.FromClause, dimension: By) -> sa.ColumnElement[str]:
    """The SQL of a person dimension's category for a person row."""
    age = person.c.person_age
    match dimension:
        case By.region:
            return sa.func.coalesce(person.c.region, ABROAD)
        case By.country_of_exploitation:
            country = sa.func.coalesce(person.c.exploitation_country, PERU)
            return sa.case((country.in_(PUBLISHED_COUNTRIES), country), else_=OTHER)
        case By.nationality_group:
            return sa.case(
                (person.c.nationality.is_(None), UNKNOWN),
                (person.c.nationality == PERU, "peruvian"),
                else_="foreign",
            )
        case By.nationality:
            return sa.case(
                (person.c.nationality.is_(None), UNKNOWN),
                (person.c.nationality.in_(PUBLISHED_NATIONALITIES), person.c.nationality),
                else_=OTHER,
            )
        case By.age_band:
            whens: list[tuple[sa.ColumnElement[bool], str]] = [(age.is_(None), UNKNOWN)]
            whens += [
                (age <= band.highest, band.label)
                for band in PERU_AGE_BANDS
                if band.highest is not None
            ]
            return sa.case(*whens, else_=PERU_AGE_BANDS[-1].label)
        case By.minor:
            return sa.case((age.is_(None), UNKNOWN), (age < ADULT_AGE, "minor"), else_="adult")
        case By.gender:
            return person.c.gender
        case By.form:
            sexual, labour = person.c.sexual == 1, person.c.labour == 1
            return sa.case(
                (sa.and_(sexual, labour), "both"),
                (sexual, "sexual"),
                (labour, "labour"),
                else_="other",
            )
        case By.sector:
            return sa.func.coalesce(person.c.sector, "none")
    raise ValueError(f"{dimension} is not a person dimension")


# Sums over a table's counted events, by measure: (measure, event column, decimals).
SUMS = (
    (Measure.bed_nights, "nights", 1),
    (Measure.ordered_soles, "ordered", 2),
    (Measure.paid_soles, "paid", 2),
)
CELL, TOTAL_PART = "cell", "total"


def _sums(spec: CatalogueTable) -> list[tuple[Measure, str, int]]:
    return [s for s in SUMS if s[0] in spec.measures]


async def _hours(session: AsyncSession, counted: sa.CTE) -> dict[Measure, float | None]:
    """Ended periods, median and p90 of the hours held, over the counted events."""
    ended = sa.select(counted.c.hours).where(counted.c.hours.is_not(None)).subquery("ended")
    ranked = sa.select(
        ended.c.hours,
        sa.func.row_number().over(order_by=ended.c.hours).label("rank"),
        sa.func.count().over().label("n"),
    ).subquery("ranked")
    rows = (await _run(session, sa.select(ranked.c.hours, ranked.c.rank, ranked.c.n))).all()
    n = int(rows[0].n) if rows else 0
    by_rank = {int(r.rank): float(r.hours) for r in rows}
    return {
        Measure.periods_ended: float(n),
        Measure.hours_median: _nearest_rank(by_rank, n, 0.5),
        Measure.hours_p90: _nearest_rank(by_rank, n, 0.9),
    }


def _nearest_rank(by_rank: Mapping[int, float], n: int, p: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least p of them at or below)."""
    if n == 0:
        return None
    rank = max(1, -(-int(p * 1000) * n // 1000))  # ceil(p * n) without float error
    return round(by_rank[rank], 1)


async def count_tables(
    session: AsyncSession,
    *,
    tables: Sequence[tuple[CatalogueTable, tuple[By, ...]]],
    scope: Scope,
) -> list[TrueTable]:
    """The true counts of several tables, each broken down by its dimensions
    (catalogue.breakdown), over the same counted persons: computed once, in the database,
    for all of them; then one statement per table gives its cells, total and excluded."""
    bases = _Bases(session, scope)
    counted = [
        await _count(session, spec=spec, dimensions=dimensions, scope=scope, bases=bases)
        for spec, dimensions in tables
    ]
    await bases.drop()
    return counted


async def count_table(
    session: AsyncSession, *, spec: CatalogueTable, dimensions: tuple[By, ...], scope: Scope
) -> TrueTable:
    """The true counts of one table broken down by `dimensions` (catalogue.breakdown): one
    GROUP BY in the database, persons counted distinct in every cell."""
    [table] = await count_tables(session, tables=[(spec, dimensions)], scope=scope)
    return table


async def _count(
    session: AsyncSession,
    *,
    spec: CatalogueTable,
    dimensions: tuple[By, ...],
    scope: Scope,
    bases: _Bases,
) -> TrueTable:
    if spec.population in DEFENDANT_POPULATIONS:
        return await _count_defendants(session, spec=spec, dimensions=dimensions, scope=scope)
    person = await bases.persons(from_start=spec.population is Population.identified)
    events = (await _events(spec, scope, bases)).cte("events")
    sums = _sums(spec)
    own = [c for c in events.c if c.name not in ("root_id", "standing", "counted")]
    counted = (
        sa.select(
            events.c.root_id,
            *(
                (
                    events.c[EVENT_DIMENSIONS[d]]
                    if d in EVENT_DIMENSIONS
                    else _dimension(person, d)
                ).label(f"d{i}")
                for i, d in enumerate(dimensions)
            ),
            *own,
        )
        .join(person, person.c.root_id == events.c.root_id)
        .where(events.c.counted)
    ).cte("counted_events")
    keys = [counted.c[f"d{i}"] for i in range(len(dimensions))]
    persons = sa.func.count(sa.distinct(counted.c.root_id)).label("n")
    nothing = [sa.null().label(f"d{i}") for i in range(len(dimensions))]
    no_sums = [sa.cast(sa.null(), sa.Float).label(column) for _, column, _ in sums]
    cells = sa.select(sa.literal(CELL).label("part"), *keys, persons, *no_sums).group_by(*keys)
    total = sa.select(
        sa.literal(TOTAL_PART).label("part"),
        *nothing,
        persons,
        *(sa.cast(sa.func.sum(counted.c[column]), sa.Float).label(column) for _, column, _ in sums),
    )
    # Persons of the population no cell counts: not a victim when every case of theirs in it
    # was screened so, no consent or basis otherwise.
    per_person = (
        sa.select(
            events.c.root_id,
            sa.func.max(sa.case((events.c.standing == COUNTED, 1), else_=0)).label("counted"),
            sa.func.max(
                sa.case(
                    (events.c.standing == ExclusionReason.no_consent_or_basis.value, 1), else_=0
                )
            ).label("no_basis"),
        ).group_by(events.c.root_id)
    ).subquery("per_person")
    reason = sa.case(
        (per_person.c.no_basis == 1, ExclusionReason.no_consent_or_basis.value),
        else_=ExclusionReason.not_a_victim.value,
    )
    excluded = (
        sa.select(reason.label("part"), *nothing, sa.func.count().label("n"), *no_sums)
        .where(per_person.c.counted == 0)
        .group_by(reason)
    )
    cell_counts: dict[tuple[str, ...], int] = {}
    found: dict[ExclusionReason, int] = {}
    persons_total = 0
    measures: dict[Measure, float | None] = {}
    for row in await _run(session, sa.union_all(cells, total, excluded)):
        if row.part == CELL:
            cell_counts[tuple(str(row[1 + i]) for i in range(len(dimensions)))] = int(row.n)
        elif row.part == TOTAL_PART:
            persons_total = int(row.n)
            for measure, column, decimals in sums:
                measures[measure] = round(float(row._mapping[column] or 0), decimals)
        else:
            found[ExclusionReason(row.part)] = int(row.n)
    if Measure.hours_median in spec.measures or Measure.hours_p90 in spec.measures:
        measures |= await _hours(session, counted)
    denominators: dict[tuple[str, ...], int] | None = None
    census_year: int | None = None
    if spec.rates:
        # Every region has a rate, zero included; persons exploited abroad have none.
        populations = (
            await _run(session, reference_service.populations_for(scope.start.year))
        ).all()
        denominators = {(str(row.region),): int(row.population) for row in populations}
        census_year = max((int(row.census_year) for row in populations), default=None)
        cell_counts = {cell: cell_counts.get(cell, 0) for cell in denominators}
    return TrueTable(
        code=spec.code,
        dimensions=dimensions,
        cells=cell_counts,
        total=persons_total,
        unit=spec.unit,
        excluded={r: found.get(r, 0) for r in ExclusionReason},
        measures=measures,
        denominators=denominators,
        census_year=census_year,
    )


def _yes_no(flag: sa.ColumnElement[bool]) -> sa.ColumnElement[str]:
    return sa.case((flag.is_(True), "yes"), else_="no")


def _sentence_band(months: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    whens = [(months < floor, label) for (label, _), (_, floor) in pairwise(SENTENCE_BANDS)]
    return sa.case((months.is_(None), UNKNOWN), *whens, else_=SENTENCE_BANDS[-1][0])


async def _count_defendants(
    session: AsyncSession, *, spec: CatalogueTable, dimensions: tuple[By, ...], scope: Scope
) -> TrueTable:
    """Defendants by their outcome at the end of the period: not persons, so no consent
    applies (court decisions are public) and nobody is excluded."""
    d = legal_service.defendants_known_on(scope.known_on, as_of=scope.end).subquery("d")
    decided_in_period = sa.and_(d.c.outcome_on >= scope.start, d.c.outcome_on <= scope.end)
    if spec.population is Population.convicted:
        where = sa.and_(d.c.outcome == Outcome.convicted.value, decided_in_period)
    else:
        where = sa.or_(d.c.outcome == Outcome.ongoing.value, decided_in_period)
    columns: dict[By, sa.ColumnElement[str]] = {
        By.charge: d.c.charge,
        By.outcome: d.c.outcome,
        By.public_official: _yes_no(d.c.public_official),
        By.sentence_band: _sentence_band(d.c.sentence_months),
        By.below_legal_minimum: _yes_no(d.c.below_legal_minimum),
        By.charge_reduced: _yes_no(d.c.charge_reduced),
    }
    keys = [columns[dim].label(f"d{i}") for i, dim in enumerate(dimensions)]
    cells_part = (
        sa.select(
            sa.literal(CELL).label("part"),
            *keys,
            sa.func.count().label("n"),
            sa.cast(sa.null(), sa.Integer).label("proceedings"),
        )
        .where(where)
        .group_by(*keys)
    )
    total_part = sa.select(
        sa.literal(TOTAL_PART).label("part"),
        *(sa.null().label(f"d{i}") for i in range(len(dimensions))),
        sa.func.count().label("n"),
        sa.func.count(sa.distinct(d.c.proceeding_id)).label("proceedings"),
    ).where(where)
    cells: dict[tuple[str, ...], int] = {}
    defendants = proceedings = 0
    for row in await _run(session, sa.union_all(cells_part, total_part)):
        if row.part == CELL:
            cells[tuple(str(row[1 + i]) for i in range(len(dimensions)))] = int(row.n)
        else:
            defendants, proceedings = int(row.n), int(row.proceedings)
    measures: dict[Measure, float | None] = {}
    if Measure.proceedings in spec.measures:
        measures[Measure.proceedings] = float(proceedings)
    return TrueTable(
        code=spec.code,
        dimensions=dimensions,
        cells=cells,
        total=defendants,
        unit=spec.unit,
        excluded=dict.fromkeys(ExclusionReason, 0),
        measures=measures,
    )


@dataclass(frozen=True)
class CountedPerson:
    """A person counted in the period's identification tables, each once, with the traits
    the tables break them down by (true data: only ever published anonymized)."""

    age: int | None
    gender: str | None
    nationality: str | None
    # Where the person was exploited: PER, or the foreign country.
    country_of_exploitation: str
    sexual: bool
    labour: bool
    other: bool
    sector: str | None


async def counted_persons(session: AsyncSession, *, scope: Scope) -> list[CountedPerson]:
    """The persons V1 counts for the scope (each once, consent or basis checked), with
    their traits: for person-level exports, which anonymize them before anything leaves."""
    person = _persons(
        _scoped(scope, from_start=True).subquery("scoped"), scope, from_start=True
    ).subquery("person_row")
    rows = await _run(
        session,
        sa.select(
            person.c.person_age,
            person.c.gender,
            person.c.nationality,
            sa.func.coalesce(person.c.exploitation_country, PERU).label("country"),
            person.c.sexual,
            person.c.labour,
            person.c.other,
            person.c.sector,
        ),
    )
    return [
        CountedPerson(
            age=None if row.person_age is None else int(row.person_age),
            gender=row.gender,
            nationality=row.nationality,
            country_of_exploitation=str(row.country),
            sexual=bool(row.sexual),
            labour=bool(row.labour),
            other=bool(row.other),
            sector=row.sector,
        )
        for row in rows
    ]
