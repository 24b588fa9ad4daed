"""A scenario calibrated from the recorded data (`ruta simulate --from-db --year 2016`).

Everything is aggregated in the database, through the domains' own SQL (identifications,
forms of exploitation, person traits, placements, custody, the facility census); one row
comes back per region and month, per operation, per kind of person or per facility, never
one per case. Each person counts once: their first identification of the year. Persons
identified abroad (no region) are left out: they arrive in Peru by repatriation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity import service as capacity_service
from service.capacity.rules import FacilityStatus
from service.cases import service as case_service
from service.cases.rules import ExploitationForm
from service.core.db import hours_between
from service.core.time import utcnow
from service.persons import service as person_service
from service.planning import rules
from service.protection import service as protection_service
from service.protection.rules import CustodyPlace
from service.simulation.scenario import Scenario, parse

# Peru's days: UTC-5 all year.
PERU_TIME = timezone(timedelta(hours=-5))
HORIZON_DAYS = 365
REPLICATIONS = 100


class CalibrationError(ValueError):
    """The records cannot make a scenario (no identification in the year, no facility)."""


@dataclass(frozen=True)
class Calibration:
    """The scenario and what it was calibrated from."""

    scenario: Scenario
    persons: int
    operations: int
    stays: int


async def _rows(session: AsyncSession, stmt: sa.Select[Any]) -> list[Any]:
    connection = await session.connection()
    return list((await connection.execute(stmt)).all())


def _moment(day: date) -> datetime:
    """The first moment of a day of Peru's."""
    return datetime.combine(day, time(), PERU_TIME)


def _firsts(year: int, known_on: datetime) -> sa.Subquery:
    """Each person's first identification of the year in Peru."""
    ids = case_service.identifications_known_on(
        known_on, identified_from=date(year, 1, 1), identified_to=date(year, 12, 31)
    ).subquery("ident")
    n = (
        sa.func.row_number()
        .over(
            partition_by=ids.c.person_id,
            order_by=(ids.c.identified_on, ids.c.created_at, ids.c.identification_id),
        )
        .label("n")
    )
    ranked = sa.select(ids, n).where(ids.c.region.is_not(None)).subquery("ranked")
    return sa.select(ranked).where(ranked.c.n == 1).subquery("firsts")


async def _arrivals(
    session: AsyncSession, firsts: sa.Subquery
) -> tuple[list[dict[str, Any]], int, int]:
    """Singles per region (with their months) and operations per region (with their sizes
    and months): the scenario's arrival streams, the persons and the operations."""
    month = sa.extract("month", firsts.c.identified_on)
    singles = await _rows(
        session,
        sa.select(firsts.c.region, month.label("month"), sa.func.count().label("n"))
        .where(firsts.c.operation_ref.is_(None))
        .group_by(firsts.c.region, month),
    )
    operations = await _rows(
        session,
        sa.select(
            firsts.c.region,
            sa.extract("month", sa.func.min(firsts.c.identified_on)).label("month"),
            sa.func.count().label("size"),
        )
        .where(firsts.c.operation_ref.is_not(None))
        .group_by(firsts.c.region, firsts.c.operation_ref),
    )
    alone: dict[str, dict[int, int]] = defaultdict(dict)
    for region, m, count in singles:
        alone[region][int(m)] = int(count)
    raids: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for region, m, size in operations:
        raids[region].append((int(m), int(size)))
    streams: list[dict[str, Any]] = []
    for region in sorted(set(alone) | set(raids)):
        if region in alone:
            streams.append(
                {
                    "kind": "singles",
                    "region": region,
                    "per_year": float(sum(alone[region].values())),
                    "seasonality": rules.seasonality(alone[region]),
                    "mix": "calibrated",
                }
            )
        if region in raids:
            by_month: dict[int, int] = defaultdict(int)
            for m, _ in raids[region]:
                by_month[m] += 1
            streams.append(
                {
                    "kind": "raids",
                    "region": region,
                    "raids_per_year": float(len(raids[region])),
                    "size": rules.raid_size([size for _, size in raids[region]]),
                    "seasonality": rules.seasonality(by_month),
                    "mix": "calibrated",
                }
            )
    persons = sum(sum(m.values()) for m in alone.values()) + sum(
        size for ops in raids.values() for _, size in ops
    )
    return streams, persons, sum(len(ops) for ops in raids.values())


async def _mix(session: AsyncSession, firsts: sa.Subquery, known_on: datetime) -> list[Any]:
    """The kinds of person identified, by age band, gender, nationality and forms."""
    forms = case_service.exploitation_known_on(known_on).subquery("forms")
    per_identification = (
        sa.select(
            forms.c.identification_id,
            sa.func.min(forms.c.form).label("first_form"),
            sa.func.max(forms.c.form).label("last_form"),
        )
        .group_by(forms.c.identification_id)
        .subquery("person_forms")
    )
    traits = person_service.person_traits().subquery("traits")
    band = sa.case(
        *(
            (firsts.c.person_age.between(low, high), n)
            for n, (low, high) in enumerate(rules.AGE_BANDS)
        ),
        else_=-1,
    ).label("band")
    keys = (
        band,
        traits.c.gender,
        traits.c.nationality,
        per_identification.c.first_form,
        per_identification.c.last_form,
    )
    rows = await _rows(
        session,
        sa.select(*keys, sa.func.count().label("n"))
        .select_from(firsts)
        .join(traits, traits.c.person_id == firsts.c.person_id)
        .outerjoin(
            per_identification,
            per_identification.c.identification_id == firsts.c.identification_id,
        )
        .group_by(*keys)
        .order_by(*keys),
    )
    return [
        {
            "weight": int(n),
            "age": list(rules.AGE_BANDS[b]) if b >= 0 else None,
            "gender": gender,
            "exploitation": sorted({first or ExploitationForm.other, last or first or "other"}),
            "nationality": nationality,
        }
        for b, gender, nationality, first, last, n in rows
    ]


async def _stays(
    session: AsyncSession, year: int, known_on: datetime
) -> tuple[dict[str, Any] | None, dict[Any, dict[str, Any]], int]:
    """Lengths of stay from the stays begun in the year that had ended: the national one,
    and each facility's where it has enough of them."""
    stays = capacity_service.placements_known_on(
        known_on, during_from=_moment(date(year, 1, 1)), during_before=_moment(date(year + 1, 1, 1))
    ).subquery("stays")
    days = hours_between(stays.c.placed_at, stays.c.ended_at) / 24.0
    ended = sa.and_(stays.c.ended_at.is_not(None), stays.c.placed_at >= _moment(date(year, 1, 1)))
    measures = (
        sa.func.count().label("n"),
        sa.func.avg(days).label("mean"),
        sa.func.avg(days * days).label("square"),
    )
    [national] = await _rows(session, sa.select(*measures).where(ended))
    each = await _rows(
        session,
        sa.select(stays.c.facility_id, *measures).where(ended).group_by(stays.c.facility_id),
    )

    def _f(value: Any) -> float | None:
        return None if value is None else float(value)

    per_facility = {
        facility_id: stay
        for facility_id, n, mean, square in each
        if n >= rules.MIN_STAYS_PER_FACILITY
        and (stay := rules.stay(int(n), _f(mean), _f(square))) is not None
    }
    n, mean, square = national
    return rules.stay(int(n), _f(mean), _f(square)), per_facility, int(n)


async def _custody(session: AsyncSession, year: int, known_on: datetime) -> str:
    """What the records say of minors held in police stations in the year (for the
    scenario's description: the simulation decides where a waiting minor is held)."""
    custody = protection_service.custody_known_on(
        known_on,
        started_from=_moment(date(year, 1, 1)),
        started_before=_moment(date(year + 1, 1, 1)),
    ).subquery("custody")
    hours = hours_between(custody.c.start_at, custody.c.end_at)
    [(held, mean_hours)] = await _rows(
        session,
        sa.select(sa.func.count(), sa.func.avg(hours)).where(
            custody.c.minor.is_(True), custody.c.place_kind == CustodyPlace.police_station.value
        ),
    )
    if not held:
        return "no minor recorded in a police station"
    mean = "-" if mean_hours is None else f"{float(mean_hours):.1f} hours on average (ended ones)"
    return f"{held} minor(s) recorded in police stations, {mean}"


async def _facilities(
    session: AsyncSession, stays: dict[Any, dict[str, Any]], *, census: bool
) -> list[dict[str, Any]]:
    rows = await _rows(session, capacity_service.facility_census())
    facilities = []
    for row in rows:
        beds = row.capacity if row.status == FacilityStatus.open else 0
        facility: dict[str, Any] = {
            "code": row.code,
            "region": row.region,
            "kind": row.kind,
            "beds": beds,
            "min_age": row.min_age,
            "max_age": row.max_age,
            "genders": row.genders,
            "exploitation_forms": row.exploitation_forms,
            "lgbti_specialized": row.lgbti_specialized,
            "nationalities": row.nationalities,
            "occupied": min(int(row.occupied), beds) if census else 0,
        }
        if row.facility_id in stays:
            facility["length_of_stay"] = stays[row.facility_id]
        facilities.append(facility)
    return facilities


async def calibrate(
    session: AsyncSession,
    *,
    year: int,
    census: bool,
    max_wait_days: int,
    today: date | None = None,
) -> Calibration:
    """A scenario from the year's records: arrivals, raids, the person mix and lengths of
    stay; the facilities as they stand now, from the beds occupied now when `census` (the
    run starts today, without warm-up) or empty (the run is the year, after a year's
    warm-up)."""
    known_on = utcnow()
    firsts = _firsts(year, known_on)
    arrivals, persons, operations = await _arrivals(session, firsts)
    if not arrivals:
        raise CalibrationError(f"no person identified in Peru in {year}: nothing to calibrate")
    mix = await _mix(session, firsts, known_on)
    national, per_facility, stays = await _stays(session, year, known_on)
    facilities = await _facilities(session, per_facility, census=census)
    if not facilities:
        raise CalibrationError("no facility recorded: nothing to place people in")
    custody = await _custody(session, year, known_on)
    start = (today or known_on.date()) if census else date(year, 1, 1)
    stay_note = (
        f"lengths of stay from {stays} stays ended"
        if national is not None
        else "[assumption] 90-day exponential stays: no stay begun in the year has ended"
    )
    description = (
        f"Calibrated from Ruta's records of {year} on {known_on.date()}: {persons} persons "
        f"identified in Peru (each once), {operations} operations; {stay_note}; {custody}. "
        + (
            "Starts today from the beds occupied now."
            if census
            else "[assumption] a year's warm-up from empty beds."
        )
        + " [assumption] the maximum wait is the waitlist's (RUTA_WAITLIST_MAX_DAYS)."
    )
    data = {
        "name": f"from-db-{year}",
        "description": description,
        "start": start.isoformat(),
        "horizon_days": HORIZON_DAYS,
        "warmup_days": 0 if census else HORIZON_DAYS,
        "replications": REPLICATIONS,
        "seed": year,
        "facilities": facilities,
        "length_of_stay": national or rules.ASSUMED_STAY,
        "arrivals": arrivals,
        "mixes": {"calibrated": mix},
        "waiting": {"max_wait_days": {"minor": max_wait_days, "adult": max_wait_days}},
    }
    return Calibration(scenario=parse(data), persons=persons, operations=operations, stays=stays)
