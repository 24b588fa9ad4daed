"""One replication: draw every arrival up front (numpy), then run the event loop.

Random numbers: replication r of seed s uses, for arrival stream j, the stream
`SeedSequence(s, spawn_key=(r, j))` (what `SeedSequence(s).spawn` would hand out), drawing in a
fixed order: arrival times, raid sizes, profiles, ages, then one stay per person for each
stay distribution, then transfers. A replication's numbers depend only on (seed, r, j): the
same whatever the number of workers, and common to scenarios that share the seed and the
stream (common random numbers: changing beds changes no random number).

The loop holds the departures, the ends of patience and the openings of facilities in one
heap, and takes arrivals from a sorted list. A freed bed goes to the first eligible person
on the waitlist in `rules.priority` order, as `capacity/service/waitlist.py` does.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from service.simulation.model import LOST, UNMET_REASONS, Model, Stream
from service.simulation.scenario import Stay
from service.simulation.scenario import (
    DAYS_PER_YEAR,
    Exponential,
    Fixed,
    Gamma,
    Lognormal,
    lognormal_parameters,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Events on the heap: (time, what, who); at equal times departures come first.
DEPART, OPEN, END = 0, 1, 2
# Outcomes of a person.
WAITING, PLACED, UNMET, LOST_WAITING = 0, 1, 2, 3
MONTH = DAYS_PER_YEAR / 12


@dataclass(frozen=True)
class Draws:
    """Every arrival of a replication, in time order."""

    times: FloatArray
    kinds: IntArray
    stays: FloatArray  # (stay distributions, people)
    transfer_stays: FloatArray | None  # stays after a transfer, or None without transfers


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
    """Poisson event times on [0, end), thinned by the monthly multipliers."""
    if stream.seasonality is None:
        n = rng.poisson(stream.rate_per_day * end)
        return np.sort(rng.uniform(0.0, end, n))
    season = np.asarray(stream.seasonality) / np.mean(stream.seasonality)
    peak = float(season.max())
    n = rng.poisson(stream.rate_per_day * peak * end)
    times = np.sort(rng.uniform(0.0, end, n))
    month = ((times % DAYS_PER_YEAR) // MONTH).astype(np.int64).clip(0, 11)
    keep = rng.uniform(0.0, peak, n) < season[month]
    return times[keep]


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


def draw(model: Model, replication: int) -> Draws:
    """Every arrival of one replication, with its kind and its possible stays.

    Streams: (replication, 0, stream) for the arrivals of each stream (times, raid sizes,
    profiles, ages); (replication, 1, distribution) for one stay per person of each stay
    distribution; (replication, 2) for transfers."""
    seed, end = model.scenario.seed, model.end
    times, kinds = [], []
    for stream in model.streams:
        rng = _rng(seed, replication, 0, stream.index)
        t = _times(rng, stream, end)
        if stream.raid_size is not None:
            t = np.repeat(t, _raid_sizes(rng, stream.raid_size, len(t)))
        n = len(t)
        profile = np.searchsorted(stream.cumulative_weights, rng.uniform(0.0, 1.0, n), "right")
        profile = np.minimum(profile, len(stream.cumulative_weights) - 1)
        first, low = stream.first_kind[profile], stream.low_age[profile]
        spread = stream.high_age[profile] - low + 1
        times.append(t)
        kinds.append(first + np.floor(rng.uniform(0.0, 1.0, n) * spread).astype(np.int64))
    all_times = np.concatenate(times)
    order = np.argsort(all_times, kind="stable")
    n = len(all_times)
    stays = np.stack(
        [_stays(_rng(seed, replication, 1, d), s, n) for d, s in enumerate(model.stays)]
    )
    moves = None
    if model.scenario.transfer_probability > 0:
        rng = _rng(seed, replication, 2)
        moved = rng.uniform(0.0, 1.0, n) < model.scenario.transfer_probability
        moves = np.where(moved, _stays(rng, model.scenario.length_of_stay, n), 0.0)
    return Draws(
        times=all_times[order],
        kinds=np.concatenate(kinds)[order],
        stays=stays,
        transfer_stays=moves,
    )


def run(model: Model, replication: int, *, occupancy_every: float | None = None) -> Replication:
    """Simulate one replication; `occupancy_every` (days) samples beds in use for charts."""
    draws = draw(model, replication)
    n = len(draws.times)
    times: list[float] = draws.times.tolist()
    # People no open facility can take are an unmet need on arrival: the loop never sees them.
    period_of = np.searchsorted(model.period_begins, draws.times, "right") - 1
    unmet = model.unmet_table[period_of, draws.kinds]
    eligible = np.flatnonzero(unmet < 0)
    queue: list[int] = eligible.tolist()
    queue_times: list[float] = draws.times[eligible].tolist()
    queue_times.append(math.inf)
    kinds: list[int] = draws.kinds.tolist()
    stays: list[list[float]] = draws.stays.tolist()
    moves: list[float] | None = (
        draws.transfer_stays.tolist() if draws.transfer_stays is not None else None
    )
    stay_of = model.stay_of_facility
    patience = model.patience
    prefix = model.waitlist_prefix
    free = list(model.beds)
    periods = model.periods
    prefs = periods[0].preferences
    group_of = periods[0].group_of_kind
    serves = periods[0].groups_of_facility

    outcome = [WAITING] * n
    first = [PLACED] * n  # PLACED, or WAITING when every eligible facility was full
    wait = [0.0] * n
    facility = [-1] * n
    segments: list[tuple[int, float, float]] = []  # (facility, from, to) of every stay
    transfers = 0

    heap: list[tuple[float, int, int]] = [(model.end, END, -1)]
    heap.extend((p.begins, OPEN, n_p) for n_p, p in enumerate(periods) if n_p)
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop
    # The waitlist: a heap of (priority key, person) per set of eligible facilities. A person
    # whose patience ran out is found lost when met (nothing else depends on when).
    groups: list[list[tuple[tuple[object, ...], int]]] = [[] for _ in periods[0].group_sets]
    waiting = 0

    def offer(f: int, now: float) -> None:
        nonlocal waiting
        while free[f] > 0 and waiting:
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
            wait[person] = now - times[person]
            free[f] -= 1
            leave = now + stays[stay_of[f]][person]
            facility[person] = f
            outcome[person] = PLACED
            segments.append((f, now, leave))
            push(heap, (leave, DEPART, person))

    q, events = 0, len(queue)
    t = queue_times[0]
    while True:
        if t < heap[0][0]:
            i = queue[q]
            kind = kinds[i]
            for f in prefs[kind]:
                if free[f]:
                    free[f] -= 1
                    leave = t + stays[stay_of[f]][i]
                    facility[i] = f
                    outcome[i] = PLACED
                    segments.append((f, t, leave))
                    push(heap, (leave, DEPART, i))
                    break
            else:
                first[i] = WAITING
                if patience[kind]:
                    waiting += 1
                    push(groups[group_of[kind]], (prefix[kind] + (t, i), i))
                else:
                    outcome[i] = LOST_WAITING
            q += 1
            t = queue_times[q]
            continue
        now, what, person = pop(heap)
        events += 1
        if what == DEPART:
            f = facility[person]
            free[f] += 1
            if moves is not None and moves[person]:
                stay, moves[person] = moves[person], 0.0
                for g in prefs[kinds[person]]:
                    if g != f and free[g]:
                        free[g] -= 1
                        facility[person] = g
                        segments.append((g, now, now + stay))
                        push(heap, (now + stay, DEPART, person))
                        transfers += 1
                        break
            if waiting:
                offer(f, now)
        elif what == OPEN:
            period = periods[person]
            prefs, group_of, serves = (
                period.preferences,
                period.group_of_kind,
                period.groups_of_facility,
            )
            still = [entry for group in groups for entry in group if outcome[entry[1]] == WAITING]
            groups = [[] for _ in period.group_sets]
            for entry in still:
                push(groups[group_of[kinds[entry[1]]]], entry)
            for f in period.opened:
                offer(f, now)
        else:
            break
    unmet_list: list[int] = unmet.tolist()
    return _totals(
        model, draws, events, outcome, first, unmet_list, wait, segments, transfers, occupancy_every
    )


def _totals(
    model: Model,
    draws: Draws,
    events: int,
    outcome_list: list[int],
    first_list: list[int],
    unmet_list: list[int],
    wait_list: list[float],
    segments: list[tuple[int, float, float]],
    transfers: int,
    occupancy_every: float | None,
) -> Replication:
    start, end = model.warmup, model.end
    times = draws.times
    measured = (times >= start) & (times < end)
    cls = model.class_of_kind[draws.kinds][measured]
    outcome = np.asarray(outcome_list, dtype=np.int64)
    wait = np.asarray(wait_list)
    # Waiters whose patience ran out before the end, never met again, were lost then.
    patience = model.patience_array[draws.kinds]
    expired = (outcome == WAITING) & (times + patience < end)
    outcome[expired] = LOST_WAITING
    wait[expired] = patience[expired]
    unmet = np.asarray(unmet_list, dtype=np.int64)
    outcome[unmet >= 0] = UNMET
    reason = np.where(outcome == LOST_WAITING, LOST, unmet)[measured]
    first = np.asarray(first_list, dtype=np.int64)
    first[unmet >= 0] = UNMET
    first, outcome, wait = first[measured], outcome[measured], wait[measured]

    def by_class(mask: npt.NDArray[np.bool_]) -> IntArray:
        return np.bincount(cls[mask], minlength=2).astype(np.int64)

    ended_wait = (first == WAITING) & ((outcome == PLACED) | (outcome == LOST_WAITING))
    lost = outcome == LOST_WAITING
    placed = outcome == PLACED
    years = model.years
    year = np.minimum(((times[measured] - start) // DAYS_PER_YEAR).astype(np.int64), years - 1)

    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 3)
    used = np.clip(seg[:, 2], start, end) - np.clip(seg[:, 1], start, end)
    bed_days = np.bincount(seg[:, 0].astype(np.int64), weights=used, minlength=len(model.beds))

    occupancy = None
    if occupancy_every:
        samples = np.arange(start, end, occupancy_every)
        occupancy = np.zeros((len(model.beds), len(samples)), dtype=np.int64)
        for f in range(len(model.beds)):
            mine = seg[seg[:, 0] == f]
            begun = np.searchsorted(np.sort(mine[:, 1]), samples, side="right")
            ended = np.searchsorted(np.sort(mine[:, 2]), samples, side="right")
            occupancy[f] = begun - ended

    return Replication(
        arrivals=by_class(np.ones_like(placed)),
        placed=by_class(placed),
        no_bed=by_class(first != PLACED),
        full=by_class(first == WAITING),
        lost=by_class(lost),
        still_waiting=by_class(outcome == WAITING),
        waited=by_class(ended_wait),
        wait_days=np.bincount(cls[ended_wait], weights=wait[ended_wait], minlength=2),
        waits_minor=wait[ended_wait & (cls == 0)],
        waits_adult=wait[ended_wait & (cls == 1)],
        unmet=np.bincount(reason[reason >= 0], minlength=len(UNMET_REASONS)).astype(np.int64),
        bed_days=bed_days,
        year_arrivals=np.bincount(year, minlength=years).astype(np.int64),
        year_without_bed=np.bincount(year[~placed], minlength=years).astype(np.int64),
        transfers=transfers,
        events=events,
        occupancy=occupancy,
    )
