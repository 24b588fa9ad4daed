"""Publishing the catalogue: true counts (counting.py) under disclosure control
(disclosure.py), one table at a time or as a release whose tables share their margins;
every call audited; releases stored with a digest and reproducible as known on their day."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.core.errors import InvalidInput
from service.core.plausibility import refuse_implausible
from service.core.security import Actor
from service.core.time import utcnow
from service.identity import service as identity_service
from service.reference import service as reference_service
from service.stats import budget, catalogue, counting, rules
from service.stats.catalogue import ABROAD, CATALOGUE, By, CatalogueTable
from service.stats.disclosure import (
    ProtectedTable,
    TableCounts,
    protect_noisy_table,
    protect_release,
    sample_discrete_laplace,
)
from service.stats.exceptions import StatsReleaseNotFound, StatsTableNotFound
from service.stats.models import StatsRelease
from service.stats.rules import K_THRESHOLD, TOTAL, Dimension, TableSpec
from service.stats.schemas import (
    CatalogueEntry,
    Disclosure,
    Period,
    PublishedTable,
    ReleaseCreate,
    ReleasePublic,
    ReleaseSummary,
    ReleaseVerification,
    Shown,
    ShownCell,
    Suppressed,
    SuppressedCell,
    TableDimension,
    TableRequest,
)

DISCLOSURE = Disclosure(
    k=K_THRESHOLD,
    note="Counts from 1 to 10 are hidden, and further cells so that no hidden count can be"
    " recovered from the margins; a figure beside the counts is shown only when at least"
    " 11 units stand behind it.",
)
DP_NOTE = (
    "Differentially private: discrete Laplace noise of scale 1/epsilon was added to every"
    " count, and counts from 1 to 10 of the noisy table are hidden (decided on the noisy"
    " counts only). Figures are not exact; measures are withheld."
)
DP_NOT_REPRODUCIBLE = (
    "A differentially private release cannot be recomputed: its noise was drawn once, from"
    " the operating system's random source, and is kept nowhere. Its digest still identifies"
    " the tables as published."
)
# Dimensions on which one unit may fall in several categories (a person identified by two
# institutions, referred twice ...): their cells count pairs of a unit and a category.
MULTI_RESPONSE = frozenset(counting.EVENT_DIMENSIONS)


def catalogue_entries() -> list[CatalogueEntry]:
    """The fixed catalogue of tables analysts may ask for."""
    return [
        CatalogueEntry(
            code=t.code,
            title=t.title,
            unit=t.unit,
            population=t.population.value,
            dimensions=list(t.dimensions),
            default_by=list(t.default_by),
            always=list(t.always),
            measures=[m.value for m in t.measures],
            rates=t.rates,
        )
        for t in CATALOGUE.values()
    ]


def _entry(code: str) -> CatalogueTable:
    try:
        return CATALOGUE[code]
    except KeyError:
        raise StatsTableNotFound(
            f"No such table; the catalogue has {', '.join(CATALOGUE)}."
        ) from None


def _breakdown(entry: CatalogueTable, by: Sequence[By] | None) -> tuple[By, ...]:
    try:
        return catalogue.breakdown(entry, tuple(by) if by is not None else None)
    except catalogue.ChoiceError as exc:
        raise InvalidInput("by", str(exc)) from None


async def _categories(session: AsyncSession, by: By) -> tuple[str, ...]:
    static = catalogue.static_categories(by)
    if static is not None:
        return static
    if by is By.region:
        return (*(r["code"] for r in reference_service.regions()), ABROAD)
    return tuple(sorted((await identity_service.organization_codes(session)).values()))


def _measure(entry: CatalogueTable, dimensions: Sequence[By], period: Period) -> str:
    """What a table's cells count, so that two tables of a release share exactly the
    numbers they both publish: the population, the multi-response dimensions it is crossed
    with (their cells count pairs), and the period."""
    pairs = sorted(d.value for d in dimensions if d in MULTI_RESPONSE)
    kind = entry.population.value + (f"x{'+'.join(pairs)}" if pairs else "")
    return f"{kind}/{period.start}/{period.end}"


async def _shape(
    session: AsyncSession, entry: CatalogueTable, dimensions: Sequence[By], period: Period
) -> TableSpec:
    return TableSpec(
        name=entry.code,
        measure=_measure(entry, dimensions, period),
        dimensions=tuple([Dimension(d.value, await _categories(session, d)) for d in dimensions]),
        about_persons=catalogue.about_persons(entry),
    )


def _period(data: ReleaseCreate) -> Period:
    if data.year is not None:
        return Period(start=date(data.year, 1, 1), end=date(data.year, 12, 31))
    # The schema's validator asks for both when there is no year.
    assert data.start is not None
    assert data.end is not None
    return Period(start=data.start, end=data.end)


def _public(
    entry: CatalogueTable,
    counted: counting.TrueTable,
    protected: ProtectedTable,
    period: Period,
    known_on: datetime,
    noise: Fraction | None = None,
) -> PublishedTable:
    """A protected table as published; with `noise` (a dp table's epsilon), its exclusions
    are noised as well and its measures (not differentially private) withheld."""
    shape = protected.spec
    cells: list[ShownCell | SuppressedCell] = []
    for cell in shape.cells():
        coordinates = shape.coordinates(cell)
        published = protected.cells[cell]
        if published.value is None:
            cells.append(SuppressedCell(coordinates=coordinates))
            continue
        rate = None
        if counted.denominators is not None and TOTAL not in cell:
            population = counted.denominators.get(cell)
            rate = round(published.value * 100_000 / population, 2) if population else None
        cells.append(ShownCell(coordinates=coordinates, value=published.value, rate_per_100k=rate))
    grand = protected.cells[tuple(TOTAL for _ in shape.dimensions)]
    multi = any(By(d.name) in MULTI_RESPONSE for d in shape.dimensions)
    # The total of a table where each unit is in one cell is its grand total cell, shown or
    # hidden with it; otherwise the de-duplicated count, shown when big enough.
    if multi:
        enough = counted.total >= K_THRESHOLD or counted.total == 0
        total: Shown | Suppressed = Shown(value=counted.total) if enough else Suppressed()
    else:
        total = Suppressed() if grand.value is None else Shown(value=grand.value)
    figures_shown = noise is None and grand.value is not None and counted.total >= K_THRESHOLD
    measures: dict[str, Shown | Suppressed] = {
        m.value: Shown(value=v) if figures_shown and v is not None else Suppressed()
        for m, v in counted.measures.items()
    }
    excluded = {reason.value: n for reason, n in counted.excluded.items()}
    disclosure = DISCLOSURE
    if noise is not None:
        # The excluded are persons of the population too, each in exactly one reason or
        # one cell: noised with the table's epsilon, they spend nothing more.
        excluded = {r: max(0, n + sample_discrete_laplace(noise)) for r, n in excluded.items()}
        disclosure = Disclosure(
            method="dp",
            k=K_THRESHOLD,
            epsilon=_decimal_text(noise),
            note=DP_NOTE,
        )
    return PublishedTable(
        code=entry.code,
        title=entry.title,
        unit=entry.unit,
        measure=shape.measure,
        period=period,
        known_on=known_on,
        dimensions=[
            TableDimension(name=d.name, categories=list(d.categories)) for d in shape.dimensions
        ],
        cells=cells,
        total=total,
        excluded=excluded,
        measures=measures,
        census_year=counted.census_year,
        disclosure=disclosure,
    )


async def _publish(
    session: AsyncSession,
    requests: Sequence[TableRequest],
    period: Period,
    known_on: datetime,
    *,
    epsilon: Fraction | None = None,
) -> list[PublishedTable]:
    """Count every table asked for and protect them together; with `epsilon`, noise each
    table with an equal share of it and suppress by the noisy counts only."""
    scope = counting.Scope(start=period.start, end=period.end, known_on=known_on)
    entries: list[tuple[CatalogueTable, counting.TrueTable]] = []
    shapes: list[TableCounts] = []
    asked = [(_entry(r.code), _breakdown(_entry(r.code), r.by)) for r in requests]
    # Every table over the same counted persons, computed once for the release.
    tables = await counting.count_tables(session, tables=asked, scope=scope)
    for (entry, dimensions), counted in zip(asked, tables, strict=True):
        shape = await _shape(session, entry, dimensions, period)
        categories = [set(d.categories) for d in shape.dimensions]
        for cell in counted.cells:
            stray = [v for v, known in zip(cell, categories, strict=True) if v not in known]
            if stray:
                raise RuntimeError(f"{entry.code}: categories outside the catalogue: {stray}")
        entries.append((entry, counted))
        shapes.append(TableCounts(shape, counted.cells))
    if epsilon is None:
        protected = protect_release(shapes)
        share = None
    else:
        # Every table counts the same persons again: their epsilons add up (sequential
        # composition). Each table's hidden cells are decided by its own noisy counts, so
        # nothing links them to the true ones; tables need not agree with one another.
        share = epsilon / len(shapes)
        protected = [protect_noisy_table(t.spec, t.counts, epsilon=share) for t in shapes]
    return [
        _public(entry, counted, table, period, known_on, share)
        for (entry, counted), table in zip(entries, protected, strict=True)
    ]


async def publish_table(
    session: AsyncSession,
    *,
    actor: Actor,
    code: str,
    by: Sequence[By] | None,
    period: Period,
    known_on: datetime | None = None,
    reading: AsyncSession | None = None,
) -> PublishedTable:
    """One table of the catalogue, published on its own; the call is audited (in `session`).
    Counted in `reading` (the statistics replica) when given, else in `session`."""
    refuse_implausible(rules.release_problem(period.start, period.end, known_on, now=utcnow()))
    moment = known_on or utcnow()
    request = TableRequest(code=code, by=list(by) if by is not None else None)
    [table] = await _publish(reading or session, [request], period, moment)
    record_event(
        session,
        actor=actor,
        action="stats.table_published",
        entity_type="stats_table",
        entity_id=code,
        changes={
            "by": {"to": [d.name for d in table.dimensions]},
            "period": {"to": [str(period.start), str(period.end)]},
            "known_on": {"to": moment},
        },
    )
    return table


def _digest(tables: Sequence[PublishedTable]) -> str:
    canonical = json.dumps(
        [t.model_dump(mode="json") for t in tables], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _default_requests() -> list[TableRequest]:
    return [TableRequest(code=code) for code in CATALOGUE]


def _partitioning(requests: Sequence[TableRequest]) -> list[TableRequest]:
    """The tables a dp release may hold: those where each unit falls in one interior cell
    (the noise's scale assumes one person changes one count by one)."""
    for request in requests:
        dimensions = _breakdown(_entry(request.code), request.by)
        multi = [d.value for d in dimensions if d in MULTI_RESPONSE]
        if multi:
            raise InvalidInput(
                "tables",
                f"{request.code} by {', '.join(multi)} counts a person in several cells:"
                " not in a dp release",
            )
    return list(requests)


def _dp_defaults() -> list[TableRequest]:
    """The catalogue's tables whose default breakdown counts each unit in one cell."""
    return [
        TableRequest(code=code)
        for code, entry in CATALOGUE.items()
        if not any(d in MULTI_RESPONSE for d in catalogue.breakdown(entry, None))
    ]


def _decimal_text(value: Fraction) -> str:
    """An epsilon share for people: six significant decimals (the exact value is used)."""
    return f"{float(value):.6g}"


async def create_release(
    session: AsyncSession,
    *,
    actor: Actor,
    data: ReleaseCreate,
    epsilon_per_year: Decimal | None = None,
    reading: AsyncSession | None = None,
) -> ReleasePublic:
    """Publish tables together (by default the whole catalogue) and keep them, with their
    parameters and a digest; audited. A dp release first spends its epsilon from its year's
    budget (`epsilon_per_year`), or is refused. Counted in `reading` (the statistics
    replica) when given; the release, its audit event and the budget go to `session`."""
    period = _period(data)
    refuse_implausible(rules.release_problem(period.start, period.end, data.known_on, now=utcnow()))
    known_on = data.known_on or utcnow()
    epsilon: Fraction | None = None
    if data.method == "dp":
        assert data.epsilon is not None  # the schema's validator asks for it
        assert data.year is not None
        if epsilon_per_year is None:
            raise RuntimeError("a dp release needs the year's budget")
        requests = _partitioning(data.tables) if data.tables else _dp_defaults()
        await budget.spend(session, year=data.year, epsilon=data.epsilon, per_year=epsilon_per_year)
        epsilon = Fraction(data.epsilon)
    else:
        requests = data.tables or _default_requests()
    tables = await _publish(reading or session, requests, period, known_on, epsilon=epsilon)
    release = StatsRelease(
        period_start=period.start,
        period_end=period.end,
        known_on=known_on,
        parameters=[r.model_dump(mode="json") for r in requests],
        tables=[t.model_dump(mode="json") for t in tables],
        digest=_digest(tables),
        method=data.method,
        epsilon=None if data.epsilon is None else str(data.epsilon),
        created_by=actor.user_id,
        organization_id=actor.organization_id,
    )
    session.add(release)
    await session.flush()
    if data.epsilon is not None and data.year is not None:
        budget.record_spend(
            session, actor=actor, year=data.year, epsilon=data.epsilon, release_id=release.id
        )
    record_event(
        session,
        actor=actor,
        action="stats.release_published",
        entity_type="stats_release",
        entity_id=release.id,
        changes={
            "codes": {"to": [r.code for r in requests]},
            "period": {"to": [str(period.start), str(period.end)]},
            "known_on": {"to": known_on},
            "digest": {"to": release.digest},
            "method": {"to": release.method},
            "epsilon": {"to": release.epsilon},
        },
    )
    return release_public(release)


def _summary(release: StatsRelease) -> ReleaseSummary:
    return ReleaseSummary(
        id=release.id,
        period=Period(start=release.period_start, end=release.period_end),
        known_on=release.known_on,
        codes=[p["code"] for p in release.parameters],
        digest=release.digest,
        method="dp" if release.method == "dp" else "suppression",
        epsilon=release.epsilon,
        created_at=release.created_at,
    )


def release_public(release: StatsRelease) -> ReleasePublic:
    return ReleasePublic(
        **_summary(release).model_dump(),
        tables=[PublishedTable.model_validate(t) for t in release.tables],
    )


async def get_release(session: AsyncSession, release_id: uuid.UUID) -> StatsRelease:
    release = await session.get(StatsRelease, release_id)
    if release is None:
        raise StatsReleaseNotFound("No such statistics release.")
    return release


async def list_releases(session: AsyncSession) -> list[ReleaseSummary]:
    """Every release, newest first."""
    rows = await session.exec(
        select(StatsRelease).order_by(col(StatsRelease.created_at).desc(), col(StatsRelease.id))
    )
    return [_summary(r) for r in rows.all()]


async def read_release(
    session: AsyncSession, *, actor: Actor, release_id: uuid.UUID
) -> ReleasePublic:
    """A stored release as it was published; the read is audited."""
    release = await get_release(session, release_id)
    record_event(
        session,
        actor=actor,
        action="stats.release_read",
        entity_type="stats_release",
        entity_id=release.id,
    )
    return release_public(release)


async def verify_release(
    session: AsyncSession,
    *,
    actor: Actor,
    release_id: uuid.UUID,
    reading: AsyncSession | None = None,
) -> ReleaseVerification:
    """Recompute a release with its parameters, as known on its day, and compare digests:
    later corrections and late entries must not change a published number. Recomputed in
    `reading` (the statistics replica) when given."""
    release = await get_release(session, release_id)
    if release.method == "dp":
        record_event(
            session,
            actor=actor,
            action="stats.release_verified",
            entity_type="stats_release",
            entity_id=release.id,
            changes={"reproduced": {"to": False}},
        )
        return ReleaseVerification(
            id=release.id,
            reproduced=False,
            digest=release.digest,
            recomputed_digest=None,
            note=DP_NOT_REPRODUCIBLE,
        )
    requests = [TableRequest.model_validate(p) for p in release.parameters]
    period = Period(start=release.period_start, end=release.period_end)
    recomputed = _digest(await _publish(reading or session, requests, period, release.known_on))
    record_event(
        session,
        actor=actor,
        action="stats.release_verified",
        entity_type="stats_release",
        entity_id=release.id,
        changes={"reproduced": {"to": recomputed == release.digest}},
    )
    return ReleaseVerification(
        id=release.id,
        reproduced=recomputed == release.digest,
        digest=release.digest,
        recomputed_digest=recomputed,
    )
