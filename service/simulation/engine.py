"""One replication: draw every arrival up front (numpy), then run the event loop.

Random numbers: replication r of seed s draws from independent streams
`SeedSequence(s, spawn_key=(r, ...))` (the children `SeedSequence(s).spawn` would hand out,
and theirs): one per arrival stream, one for stays, one for transfers (see `draw`). They
depend only on (seed, r): the same whatever the number of workers, and common to scenarios
that share the seed (common random numbers: changing beds or facilities changes no random
number; changing one arrival stream changes only that stream's arrivals and the stays).

The loop takes arrivals from a sorted list; each facility keeps a heap of the times its beds
free (see `run`). A freed bed goes to the first eligible person on the waitlist in
`rules.priority` order, as `capacity/service/waitlist.py` does.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from service.simulation.model import LOST, UNMET_REASONS, Model, Stream
from service.simulation.scenario import (
    DAYS_PER_YEAR,
    Exponential,
    Gamma,
    Lognormal,
    Stay,
    lognormal_parameters,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Dated events: (time, what, which); at equal times a transfer comes before an opening.
TRANSFER, OPEN, END = 0, 1, 2
# What became of a person who found every eligible bed full (NONE: never waited).
NONE, WAITING, PLACED, LOST_WAITING = 0, 1, 2, 3
MONTH = DAYS_PER_YEAR / 12


@dataclass(frozen=True)
class Draws:
    """Every arrival of a replication, in time order."""

    times: FloatArray
    kinds: IntArray
    stays: FloatArray  # (stay distributions, people)
    transfer_stays: FloatArray | None  # stays after a transfer, or None without transfers
    # Per facility, when the beds occupied at time 0 free (the scenario's census).
    initial: tuple[FloatArray, ...] = ()


@dataclass
class Replication:
    """Totals of one replication over the measured window: by class 0 = minor, 1 = adult.

    Arrivals are counted when they arrive inside the window; their outcome is followed to
    the end of the run (a person still waiting then is `still_waiting`)."""

    arrivals: IntArray
    placed: IntArray
    no_bed: IntArray  # found no free eligible bed on arrival (waitlisted or unmet need)
    full: IntArray  # eligible somewhere, every eligible facility full on arrival
    lost: IntArray  # gave up waiting (unmet need "waited_too_long")
    still_waiting: IntArray
    waited: IntArray  # waits that ended, in a bed or lost
    wait_days: FloatArray
    waits_minor: FloatArray
    waits_adult: FloatArray
    unmet: IntArray  # by UNMET_REASONS
    bed_days: FloatArray  # by facility
    year_arrivals: IntArray
    year_without_bed: IntArray
    transfers: int
    events: int
    occupancy: IntArray | None = field(default=None)  # (facility, sample) when asked


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def _times(rng: np.random.Generator, stream: Stream, end: float) -> FloatArray:
    """Poisson event times on [0, end), thinned by the monthly multipliers; unsorted."""
    if stream.seasonality is None:
        return rng.uniform(0.0, end, rng.poisson(stream.rate_per_day * end))
    season = np.asarray(stream.seasonality) / np.mean(stream.seasonality)
    peak = float(season.max())
    n = rng.poisson(stream.rate_per_day * peak * end)
    times = rng.uniform(0.0, end, n)
    month = ((times % DAYS_PER_YEAR) // MONTH).astype(np.int64).clip(0, 11)
    keep = rng.uniform(0.0, peak, n) < season[month]
    kept: FloatArray = times[keep]
    return kept


def _raid_sizes(rng: np.random.Generator, size: tuple[str, float, int, int], n: int) -> IntArray:
    name, alpha, low, high = size
    if name == "fixed":
        return np.full(n, low, dtype=np.int64)
    u = rng.uniform(0.0, 1.0, n)
    sizes = np.floor(low * (1.0 - u) ** (-1.0 / alpha))
    return np.minimum(sizes, high).astype(np.int64)


def _stays(rng: np.random.Generator, stay: Stay, n: int) -> FloatArray:
    if isinstance(stay, Exponential):
        return rng.exponential(stay.mean, n)
    if isinstance(stay, Lognormal):
        mu, sigma = lognormal_parameters(stay.mean, stay.sd)
        return rng.lognormal(mu, sigma, n)
    if isinstance(stay, Gamma):
        shape = (stay.mean / stay.sd) ** 2
        return rng.gamma(shape, stay.mean / shape, n)
    return np.full(n, stay.value)


def _residual_stays(rng: np.random.Generator, stay: Stay, n: int) -> FloatArray:
    """What remains of the stays in progress at a moment in the steady state: a uniform
    fraction of a length-biased stay (the inspection paradox), whose mean is
    E[S^2] / (2 E[S])."""
    if isinstance(stay, Exponential):  # memoryless: a fresh stay
        return rng.exponential(stay.mean, n)
    if isinstance(stay, Lognormal):  # length-biased lognormal: mu + sigma^2
        mu, sigma = lognormal_parameters(stay.mean, stay.sd)
        biased = rng.lognormal(mu + sigma**2, sigma, n)
    elif isinstance(stay, Gamma):  # length-biased gamma: shape + 1
        shape = (stay.mean / stay.sd) ** 2
        biased = rng.gamma(shape + 1, stay.mean / shape, n)
    else:
        biased = np.full(n, stay.value)
    residual: FloatArray = biased * rng.uniform(0.0, 1.0, n)
    return residual


def draw(model: Model, replication: int) -> Draws:
    """Every arrival of one replication, with its kind and its possible stays.

    Streams: (replication, 0, stream) for the arrivals of each stream (times, raid sizes,
    then one uniform per person that picks the kind, profile and age at once);
    (replication, 1) for one stay per person of each stay distribution, in order;
    (replication, 2) for transfers; (replication, 3, facility) for what remains of the
    stays of the beds occupied at time 0."""
    seed, end = model.scenario.seed, model.end
    times, kinds = [], []
    for stream in model.streams:
        rng = _rng(seed, replication, 0, stream.index)
        t = _times(rng, stream, end)
        if stream.raid_size is not None:
            t = np.repeat(t, _raid_sizes(rng, stream.raid_size, len(t)))
        pick = np.searchsorted(stream.cumulative_kinds, rng.uniform(0.0, 1.0, len(t)), "right")
        times.append(t)
        kinds.append(np.minimum(pick, len(stream.cumulative_kinds) - 1) + stream.first)
    all_times = np.concatenate(times)
    order = np.argsort(all_times, kind="stable")
    n = len(all_times)
    rng = _rng(seed, replication, 1)
    stays = np.stack([_stays(rng, s, n) for s in model.stays])
    moves = None
    if model.scenario.transfer_probability > 0:
        rng = _rng(seed, replication, 2)
        moved = rng.uniform(0.0, 1.0, n) < model.scenario.transfer_probability
        moves = np.where(moved, _stays(rng, model.scenario.length_of_stay, n), 0.0)
    initial = tuple(
        _residual_stays(
            _rng(seed, replication, 3, f),
            model.stays[model.stay_of_facility[f]],
            facility.occupied,
        )
        if facility.occupied
        else np.empty(0)
        for f, facility in enumerate(model.scenario.facilities)
    )
    return Draws(
        times=all_times[order],
        kinds=np.concatenate(kinds)[order],
        stays=stays,
        transfer_stays=moves,
        initial=initial,
    )


def run(model: Model, replication: int, *, occupancy_every: float | None = None) -> Replication:
    """Simulate one replication; `occupancy_every` (days) samples beds in use for charts.

    Each facility keeps a heap of the times its beds free. While nobody waits, a departure
    changes nothing but the count of free beds, so it is taken off the heap only when an
    arrival looks at that facility (a bed that freed before now is free now). While someone
    waits, departures are taken strictly in time order and each freed bed is offered to the
    waitlist at the moment it frees. Openings and transfers are dated events in a small heap.
    """
    draws = draw(model, replication)
    n = len(draws.times)
    times: list[float] = draws.times.tolist()
    # People no open facility can take are an unmet need on arrival: the loop never sees them.
    period_of = np.searchsorted(model.period_begins, draws.times, "right") - 1
    unmet = model.unmet_table[period_of, draws.kinds]
    eligible = np.flatnonzero(unmet < 0)
    queue: list[int] = eligible.tolist()
    kinds: list[int] = draws.kinds.tolist()
    stays: list[list[float]] = draws.stays.tolist()
    stay_at = [stays[d] for d in model.stay_of_facility]
    moves: list[float] | None = (
        draws.transfer_stays.tolist() if draws.transfer_stays is not None else None
    )
    patience = model.patience
    prefix = model.waitlist_prefix
    beds = model.beds
    end = model.end
    periods = model.periods
    prefs = periods[0].preferences
    group_of = periods[0].group_of_kind
    serves = periods[0].groups_of_facility

    outcome = [NONE] * n  # NONE unless the person ever waited
    wait = [0.0] * n
    facility = [-1] * n  # where the person was placed first
    moved: list[tuple[int, float, float]] = []  # (facility, from, to) of stays after a transfer
    # Per facility, when its occupied beds free: first the beds occupied at time 0.
    busy: list[list[float]] = [sorted(leave.tolist()) for leave in draws.initial] or [
        [] for _ in beds
    ]
    dated: list[tuple[float, int, int]] = [(math.inf, END, -1)]  # openings and transfers
    dated.extend((p.begins, OPEN, n_p) for n_p, p in enumerate(periods) if n_p)
    push, pop = heapq.heappush, heapq.heappop
    heapq.heapify(dated)
    # The waitlist: a heap of (priority key, person) per set of eligible facilities. A person
    # whose patience ran out is found lost when met (nothing else depends on when).
    groups: list[list[tuple[tuple[object, ...], int]]] = [[] for _ in periods[0].group_sets]
    waiting = 0
    # Never later than the earliest time a bed frees, anywhere.
    soonest_free = min((b[0] for b in busy if b), default=math.inf)
    full = 0  # bit f set when facility f is full; exact while someone waits
    reach = periods[0].reach

    def offer(f: int, now: float) -> None:
        """Give facility f's free beds to the first eligible people on the waitlist."""
        nonlocal waiting, soonest_free, full
        b = busy[f]
        while len(b) < beds[f] and waiting:
            best: list[tuple[tuple[object, ...], int]] | None = None
            for g in serves[f]:
                group = groups[g]
                while group:
                    person = group[0][1]
                    if outcome[person] != WAITING:
                        pop(group)
                    elif times[person] + patience[kinds[person]] < now:
                        outcome[person] = LOST_WAITING
                        wait[person] = patience[kinds[person]]
                        waiting -= 1
                        pop(group)
                    else:
                        break
                if group and (best is None or group[0] < best[0]):
                    best = group
            if best is None:
                return
            person = pop(best)[1]
            waiting -= 1
            outcome[person] = PLACED
            wait[person] = now - times[person]
            facility[person] = f
            leave = now + stay_at[f][person]
            push(b, leave)
            if len(b) == beds[f]:
                full |= 1 << f
            if leave < soonest_free:
                soonest_free = leave
            if moves is not None and moves[person]:
                push(dated, (leave, TRANSFER, person))

    def transfer(person: int, now: float) -> None:
        """The person leaves for another eligible facility with a free bed, if one has."""
        nonlocal soonest_free, full
        assert moves is not None
        stay = moves[person]
        leaving = facility[person]
        for g in prefs[kinds[person]]:
            b = busy[g]
            while b and b[0] <= now:
                pop(b)
                full &= ~(1 << g)
            if g != leaving and len(b) < beds[g]:
                push(b, now + stay)
                if len(b) == beds[g]:
                    full |= 1 << g
                soonest_free = min(soonest_free, now + stay)
                moved.append((g, now, now + stay))
                return

    def advance(until: float) -> None:
        """Everything dated before `until`, in time order: freed beds offered to the waiting
        (only while someone waits), facilities opening, transfers."""
        nonlocal prefs, group_of, serves, groups, soonest_free, full, reach
        while True:
            soonest, f = until, -1
            if waiting and soonest_free <= until:
                soonest_free = math.inf
                for g, b in enumerate(busy):
                    if b and b[0] < soonest_free:
                        soonest_free, f = b[0], g
                if soonest_free <= until:
                    soonest = soonest_free
                else:
                    f = -1
            if dated[0][0] < soonest or (f < 0 and dated[0][0] <= until):
                now, what, which = pop(dated)
                if what == TRANSFER:
                    transfer(which, now)
                    continue
                period = periods[which]
                prefs, group_of = period.preferences, period.group_of_kind
                serves = period.groups_of_facility
                reach = period.reach
                still = [e for group in groups for e in group if outcome[e[1]] == WAITING]
                groups = [[] for _ in period.group_sets]
                for entry in still:
                    push(groups[group_of[kinds[entry[1]]]], entry)
                for g in period.opened:
                    offer(g, now)
                continue
            if f < 0:
                return
            pop(busy[f])
            full &= ~(1 << f)
            offer(f, soonest)

    for i in queue:
        t = times[i]
        kind = kinds[i]
        if waiting:
            # Someone waits, so every bed freed up to now has been taken in time order: the
            # bit mask of full facilities is exact and most arrivals need only it.
            if soonest_free <= t or dated[0][0] <= t:
                advance(t)
            if waiting and not reach[kind] & ~full:
                outcome[i] = WAITING
                waiting += 1
                push(groups[group_of[kind]], (prefix[kind] + (t, i), i))
                continue
        elif dated[0][0] <= t:
            advance(t)
        for f in prefs[kind]:
            b = busy[f]
            while b and b[0] <= t:
                pop(b)
            if len(b) < beds[f]:
                facility[i] = f
                leave = t + stay_at[f][i]
                push(b, leave)
                if waiting and len(b) == beds[f]:  # (recomputed when someone starts waiting)
                    full |= 1 << f
                if leave < soonest_free:
                    soonest_free = leave
                if moves is not None and moves[i]:
                    push(dated, (leave, TRANSFER, i))
                break
        else:
            if not patience[kind]:
                outcome[i] = LOST_WAITING
                continue
            if not waiting:  # from now on beds free in time order: none may be stale
                full = 0
                for f, b in enumerate(busy):
                    while b and b[0] <= t:
                        pop(b)
                    if len(b) >= beds[f]:
                        full |= 1 << f
            waiting += 1
            outcome[i] = WAITING
            push(groups[group_of[kind]], (prefix[kind] + (t, i), i))
    advance(end)
    return _totals(model, draws, unmet, outcome, wait, facility, moved, occupancy_every)


def _totals(
    model: Model,
    draws: Draws,
    unmet: IntArray,
    outcome_list: list[int],
    wait_list: list[float],
    facility_list: list[int],
    moved: list[tuple[int, float, float]],
    occupancy_every: float | None,
) -> Replication:
    start, end = model.warmup, model.end
    times = draws.times
    measured = (times >= start) & (times < end)
    cls = model.class_of_kind[draws.kinds][measured]
    outcome = np.asarray(outcome_list, dtype=np.int64)
    wait = np.asarray(wait_list)
    facility = np.asarray(facility_list, dtype=np.int64)
    # Waiters whose patience ran out before the end, never met again, were lost then.
    patience = model.patience_array[draws.kinds]
    expired = (outcome == WAITING) & (times + patience < end)
    outcome[expired] = LOST_WAITING
    wait[expired] = patience[expired]

    # Every stay, as (facility, from, to): first placements, then stays after a transfer.
    who = np.flatnonzero(facility >= 0)
    first_at = facility[who]
    began = times[who] + wait[who]  # placed on arrival, or when the wait ended
    left = began + draws.stays[np.asarray(model.stay_of_facility)[first_at], who]
    later = np.asarray(moved, dtype=np.float64).reshape(-1, 3)
    # The beds occupied at time 0, from 0 until they free.
    census_f = np.repeat(np.arange(len(draws.initial)), [len(d) for d in draws.initial])
    census_to = np.concatenate([*draws.initial, np.empty(0)])
    seg_f = np.concatenate([first_at, later[:, 0].astype(np.int64), census_f])
    seg_from = np.concatenate([began, later[:, 1], np.zeros(len(census_to))])
    seg_to = np.concatenate([left, later[:, 2], census_to])
    used = np.clip(seg_to, start, end) - np.clip(seg_from, start, end)
    bed_days = np.bincount(seg_f, weights=used, minlength=len(model.beds))
    events = len(times) + int(np.count_nonzero(seg_to < end)) + len(later)

    placed = (facility >= 0)[measured]
    waitlisted = (outcome != NONE)[measured]
    outcome, wait, unmet_m = outcome[measured], wait[measured], unmet[measured]
    lost = outcome == LOST_WAITING
    ended_wait = waitlisted & (placed | lost)
    reason = np.where(lost, LOST, unmet_m)

    def by_class(mask: npt.NDArray[np.bool_]) -> IntArray:
        return np.bincount(cls[mask], minlength=2).astype(np.int64)

    years = model.years
    year = np.minimum(((times[measured] - start) // DAYS_PER_YEAR).astype(np.int64), years - 1)

    occupancy = None
    if occupancy_every:
        samples = np.arange(start, end, occupancy_every)
        occupancy = np.zeros((len(model.beds), len(samples)), dtype=np.int64)
        for f in range(len(model.beds)):
            mine = seg_f == f
            begun = np.searchsorted(np.sort(seg_from[mine]), samples, side="right")
            ended = np.searchsorted(np.sort(seg_to[mine]), samples, side="right")
            occupancy[f] = begun - ended

    return Replication(
        arrivals=by_class(np.ones_like(placed)),
        placed=by_class(placed),
        no_bed=by_class(waitlisted | (unmet_m >= 0)),
        full=by_class(waitlisted),
        lost=by_class(lost),
        still_waiting=by_class(outcome == WAITING),
        waited=by_class(ended_wait),
        wait_days=np.bincount(cls[ended_wait], weights=wait[ended_wait], minlength=2).astype(
            np.float64
        ),
        waits_minor=wait[ended_wait & (cls == 0)],
        waits_adult=wait[ended_wait & (cls == 1)],
        unmet=np.bincount(reason[reason >= 0], minlength=len(UNMET_REASONS)).astype(np.int64),
        bed_days=bed_days.astype(np.float64),
        year_arrivals=np.bincount(year, minlength=years).astype(np.int64),
        year_without_bed=np.bincount(year[~placed], minlength=years).astype(np.int64),
        transfers=len(later),
        events=events,
        occupancy=occupancy,
    )
