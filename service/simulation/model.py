"""A scenario compiled for the event loop: each kind of person's placement decided once per
period by the live placement rules, so the loop only looks for a free bed.

Eligibility and preference do not depend on occupancy, so `choose_facility` on empty
facilities gives, for each kind of person, either the unmet need (with its reason) or the
eligible facilities in order of preference; with beds taken, `choose_facility` places in the
first of those with a free bed, which is what the loop does (a test checks the two agree on
random occupancies). Periods change only when a facility opens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from service.capacity import rules
from service.simulation.scenario import (
    DAYS_PER_YEAR,
    Exponential,
    Fixed,
    Profile,
    Raids,
    Scenario,
    Stay,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
UNMET_REASONS: tuple[rules.UnmetReason, ...] = tuple(rules.UnmetReason)
LOST = UNMET_REASONS.index(rules.UnmetReason.waited_too_long)
NO_LIMIT = float("inf")


@dataclass(frozen=True)
class PersonKind:
    """One kind of person: the needs the rules look at, and the waitlist fields."""

    needs: rules.Needs
    risk_level: int
    stream: int

    @property
    def minor(self) -> bool:
        return self.needs.minor


@dataclass(frozen=True)
class Period:
    """From `begins` (days) on: per kind, facility indices in order of preference (empty:
    unmet need) and the unmet reason's index (-1 when some facility is eligible)."""

    begins: float
    opened: tuple[int, ...]
    preferences: tuple[tuple[int, ...], ...]
    unmet: tuple[int, ...]
    # The waitlist's groups: people who may use the same set of facilities wait together.
    group_sets: tuple[tuple[int, ...], ...]
    group_of_kind: tuple[int, ...]
    groups_of_facility: tuple[tuple[int, ...], ...]
    reach: tuple[int, ...]  # per kind, a bit per eligible facility


@dataclass(frozen=True)
class Stream:
    """An arrival stream, with its kinds of person numbered from `first_kind`."""

    index: int
    rate_per_day: float  # people (singles) or raids per day, averaged over the year
    seasonality: tuple[float, ...] | None
    raid_size: (
        tuple[str, float, int, int] | None
    )  # ("pareto", alpha, min, max) | ("fixed", v, v, v)
    profile_weights: tuple[float, ...]
    profile_first_kind: tuple[int, ...]
    # The stream's kinds are numbered first, first + 1, ...; a uniform draw picks one by
    # these cumulative probabilities (a profile's weight shared equally among its ages).
    first: int
    cumulative_kinds: FloatArray


@dataclass(frozen=True)
class Model:
    scenario: Scenario
    codes: tuple[str, ...]
    beds: tuple[int, ...]
    stay_of_facility: tuple[int, ...]
    stays: tuple[Stay, ...]
    kinds: tuple[PersonKind, ...]
    streams: tuple[Stream, ...]
    periods: tuple[Period, ...]
    max_wait: tuple[float, float]  # (minor, adult); 0 no waiting, inf no limit
    patience: tuple[float, ...]  # the maximum wait of each kind of person
    patience_array: FloatArray
    class_of_kind: IntArray  # 0 minor, 1 adult
    period_begins: FloatArray
    unmet_table: IntArray  # (period, kind): the unmet reason's index, -1 when eligible
    waitlist_prefix: tuple[tuple[object, ...], ...]

    @property
    def warmup(self) -> float:
        return self.scenario.warmup_days

    @property
    def end(self) -> float:
        return self.scenario.warmup_days + self.scenario.horizon_days

    @property
    def years(self) -> int:
        return max(1, round(self.scenario.horizon_days / DAYS_PER_YEAR))


def _waitlist_prefix(kind: PersonKind) -> tuple[object, ...]:
    """`rules.priority` without its last two fields (request time, request id): computed once
    per kind of person by the live rule; the loop appends the arrival day and the person's
    number, which order the same way as the request's time and id."""
    assert rules.WAITLIST_ORDER[-2:] == (("requested_at", False), ("id", False)), (
        "the waitlist order changed: teach the simulation its new tie-breakers"
    )
    entry = rules.WaitlistEntry(
        id=uuid.UUID(int=0),
        minor=kind.minor,
        risk_level=kind.risk_level,
        requested_at=datetime(2016, 1, 1, tzinfo=UTC),
    )
    return rules.priority(entry)[:-2]


def _views(scenario: Scenario, opened_by: float, warmup: float) -> list[rules.FacilityView]:
    views = []
    for n, f in enumerate(scenario.facilities):
        opens = _opens_at(scenario, n, warmup)
        views.append(
            rules.FacilityView(
                id=uuid.UUID(int=n),
                code=f.code,
                region=f.region,
                kind=f.kind.value,
                status=(
                    rules.FacilityStatus.open if opens <= opened_by else rules.FacilityStatus.closed
                ),
                capacity=f.beds,
                in_use=0,
                min_age=f.min_age,
                max_age=f.max_age,
                genders=frozenset(g.value for g in f.genders),
                exploitation_forms=frozenset(e.value for e in f.exploitation_forms),
                lgbti_specialized=f.lgbti_specialized,
                nationalities=frozenset(f.nationalities),
            )
        )
    return views


def _opens_at(scenario: Scenario, n: int, warmup: float) -> float:
    opens_on = scenario.facilities[n].opens_on
    if opens_on is None:
        return 0.0
    return max(0.0, warmup + (opens_on - scenario.start).days)


def views_at(model: Model, period: int, in_use: list[int]) -> list[rules.FacilityView]:
    """The facilities as the live rules would see them in a period with these beds in use."""
    begins = model.periods[period].begins
    return [
        rules.FacilityView(**{**v.__dict__, "in_use": used})
        for v, used in zip(_views(model.scenario, begins, model.warmup), in_use, strict=True)
    ]


def _period(scenario: Scenario, kinds: list[PersonKind], begins: float) -> Period:
    views = _views(scenario, begins, scenario.warmup_days)
    index = {v.code: n for n, v in enumerate(views)}
    preferences: list[tuple[int, ...]] = []
    unmet: list[int] = []
    for kind in kinds:
        choice = rules.choose_facility(kind.needs, views)
        if choice.outcome is rules.PlacementOutcome.unmet_need:
            assert choice.unmet_reason is not None
            preferences.append(())
            unmet.append(UNMET_REASONS.index(choice.unmet_reason))
        else:
            preferences.append(tuple(index[code] for code in choice.eligible))
            unmet.append(-1)
    opened = tuple(n for n, v in enumerate(views) if v.status == rules.FacilityStatus.open)
    sets: list[tuple[int, ...]] = sorted({tuple(sorted(p)) for p in preferences})
    return Period(
        begins=begins,
        opened=opened,
        preferences=tuple(preferences),
        unmet=tuple(unmet),
        group_sets=tuple(sets),
        group_of_kind=tuple(sets.index(tuple(sorted(p))) for p in preferences),
        groups_of_facility=tuple(
            tuple(g for g, members in enumerate(sets) if f in members) for f in range(len(views))
        ),
        reach=tuple(sum(1 << f for f in p) for p in preferences),
    )


def _kinds_of(profile: Profile, region: str, stream: int) -> list[PersonKind]:
    ages: list[int | None]
    if profile.age is None:
        ages = [None]
    elif isinstance(profile.age, int):
        ages = [profile.age]
    else:
        ages = list(range(profile.age[0], profile.age[1] + 1))
    return [
        PersonKind(
            needs=rules.Needs(
                age=age,
                gender=profile.gender.value,
                exploitation=frozenset(e.value for e in profile.exploitation),
                region=region,
                lgbti_specialized=profile.lgbti_specialized,
                nationality=profile.nationality,
            ),
            risk_level=profile.risk_level,
            stream=stream,
        )
        for age in ages
    ]


def compile_scenario(scenario: Scenario) -> Model:
    """Number facilities, kinds of person and stay distributions; decide placements per period."""
    stays: list[Stay] = [scenario.length_of_stay]
    stay_of_facility = []
    for f in scenario.facilities:
        stay = f.length_of_stay or scenario.length_of_stay
        if stay not in stays:
            stays.append(stay)
        stay_of_facility.append(stays.index(stay))

    kinds: list[PersonKind] = []
    streams = []
    for s, arrivals in enumerate(scenario.arrivals):
        profiles = scenario.mixes[arrivals.mix]
        firsts, ages = [], []
        for profile in profiles:
            firsts.append(len(kinds))
            ages.append(
                None
                if profile.age is None
                else (profile.age, profile.age)
                if isinstance(profile.age, int)
                else profile.age
            )
            kinds.extend(_kinds_of(profile, arrivals.region, s))
        total = sum(p.weight for p in profiles)
        if isinstance(arrivals, Raids):
            size = arrivals.size
            raid_size: tuple[str, float, int, int] | None = (
                ("pareto", size.alpha, size.minimum, size.maximum)
                if size.distribution == "pareto"
                else ("fixed", float(size.value), size.value, size.value)
            )
            rate = arrivals.raids_per_year / DAYS_PER_YEAR
        else:
            raid_size, rate = None, arrivals.per_year / DAYS_PER_YEAR
        streams.append(
            Stream(
                index=s,
                rate_per_day=rate,
                seasonality=tuple(arrivals.seasonality) if arrivals.seasonality else None,
                raid_size=raid_size,
                profile_weights=tuple(p.weight / total for p in profiles),
                profile_first_kind=tuple(firsts),
                first=firsts[0],
                cumulative_kinds=np.cumsum(
                    [
                        p.weight / total / (1 if age is None else age[1] - age[0] + 1)
                        for p, age in zip(profiles, ages, strict=True)
                        for _ in range(1 if age is None else age[1] - age[0] + 1)
                    ]
                ),
            )
        )

    openings = sorted(
        {_opens_at(scenario, n, scenario.warmup_days) for n in range(len(scenario.facilities))}
        | {0.0}
    )
    periods = tuple(
        _period(scenario, kinds, begins)
        for begins in openings
        if begins < scenario.warmup_days + scenario.horizon_days
    )
    waits = scenario.waiting.max_wait_days
    max_wait = (
        NO_LIMIT if waits.minor is None else waits.minor,
        NO_LIMIT if waits.adult is None else waits.adult,
    )
    patience = tuple(max_wait[0] if k.minor else max_wait[1] for k in kinds)
    return Model(
        scenario=scenario,
        codes=tuple(f.code for f in scenario.facilities),
        beds=tuple(f.beds for f in scenario.facilities),
        stay_of_facility=tuple(stay_of_facility),
        stays=tuple(stays),
        kinds=tuple(kinds),
        streams=tuple(streams),
        periods=periods,
        max_wait=max_wait,
        patience=patience,
        patience_array=np.asarray(patience, dtype=np.float64),
        class_of_kind=np.asarray([0 if k.minor else 1 for k in kinds], dtype=np.int64),
        period_begins=np.asarray([p.begins for p in periods]),
        unmet_table=np.asarray([p.unmet for p in periods], dtype=np.int64).reshape(
            len(periods), len(kinds)
        ),
        waitlist_prefix=tuple(_waitlist_prefix(k) for k in kinds),
    )


def stay_mean(stay: Stay) -> float:
    """The mean length of stay, in days."""
    return stay.value if isinstance(stay, Fixed) else stay.mean


def stay_is_exponential(stay: Stay) -> bool:
    """Whether stays are exponential (what Erlang C and the priority formula assume)."""
    return isinstance(stay, Exponential)
