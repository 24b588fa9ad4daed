"""Replications on a process pool (or any executor: a Dask cluster's for sweeps that
outgrow one machine), their totals, and what a planner reads from them.

Replication r's random numbers depend on (seed, r) alone and totals are combined in
replication order, so a result is bit-identical whatever the executor and the number of
workers.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from service.capacity.rules import UnmetReason
from service.simulation import stats
from service.simulation.engine import Replication, run
from service.simulation.model import (
    UNMET_REASONS,
    Model,
    compile_scenario,
    stay_is_exponential,
    stay_mean,
)
from service.simulation.scenario import DAYS_PER_YEAR, Raids, Scenario

Progress = Callable[[int], None]
YEAR_WITHOUT_BED = 0.10  # "a year with more than 10% of victims without a bed"


def _chunk(model: Model, first: int, last: int, occupancy_every: float | None) -> list[Replication]:
    return [run(model, r, occupancy_every=occupancy_every) for r in range(first, last)]


def replicate(
    model: Model,
    *,
    replications: int | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    occupancy_every: float | None = None,
    executor: Executor | None = None,
) -> list[Replication]:
    """Run the replications, on `workers` processes (default: the machine's cores), or in
    chunks on `executor` (e.g. `distributed.Client(address).get_executor()`), `workers`
    then being how many it runs at once."""
    total = replications or model.scenario.replications
    workers = max(1, min(workers or os.cpu_count() or 1, total))
    size = max(1, math.ceil(total / (workers * 8)))
    bounds = [(a, min(a + size, total)) for a in range(0, total, size)]
    results: list[Replication] = []
    if executor is not None:
        return _collect(executor, model, bounds, occupancy_every, progress)
    if workers == 1:
        for a, b in bounds:
            results.extend(_chunk(model, a, b, occupancy_every))
            if progress:
                progress(b - a)
        return results
    # fork where there is one: workers start at once with everything imported (spawn and
    # forkserver re-import the caller's main module: the whole app for `ruta`). Callers are
    # the single-threaded CLI and benchmarks; workers only compute, taking no lock.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return _collect(pool, model, bounds, occupancy_every, progress)


def _collect(
    executor: Executor,
    model: Model,
    bounds: list[tuple[int, int]],
    occupancy_every: float | None,
    progress: Progress | None,
) -> list[Replication]:
    """Submit every chunk, then gather them in replication order."""
    futures = [executor.submit(_chunk, model, a, b, occupancy_every) for a, b in bounds]
    results: list[Replication] = []
    for (a, b), future in zip(bounds, futures, strict=True):
        results.extend(future.result())
        if progress:
            progress(b - a)
    return results


@dataclass(frozen=True)
class Waits:
    """Waits that ended (in a bed or given up), in days, for one class of person."""

    held_in: str
    waited: int
    mean: stats.Estimate
    p90: float
    max: float


@dataclass(frozen=True)
class Summary:
    scenario: str
    replications: int
    arrivals_per_year: float
    placement_rate: stats.Estimate
    placement_rate_eligible: stats.Estimate  # among people some facility could take
    no_bed: stats.Estimate  # probability of finding no bed on arrival
    all_full: stats.Estimate  # eligible, but every eligible facility full (the queueing part)
    lost: stats.Estimate
    unmet: dict[str, stats.Estimate]  # per arrival, by reason
    waits: dict[str, Waits]  # "minor", "adult"
    occupancy: dict[str, stats.Estimate]
    still_waiting: int
    transfers: int
    years_over_10pct: stats.Estimate
    events: int
    analytic: dict[str, float]
    runs: list[Replication]


def _col(runs: list[Replication], name: str) -> npt.NDArray[Any]:
    return np.asarray([getattr(r, name) for r in runs])


def summarize(model: Model, runs: list[Replication]) -> Summary:
    """Estimates and intervals from the replications' totals."""
    arrivals = _col(runs, "arrivals").sum(axis=1)
    unmet = _col(runs, "unmet")
    eligibility_unmet = (
        unmet.sum(axis=1) - unmet[:, UNMET_REASONS.index(UnmetReason.waited_too_long)]
    )
    placed = _col(runs, "placed").sum(axis=1)
    scenario = model.scenario
    waits = {}
    for c, name in enumerate(("minor", "adult")):
        pooled = np.concatenate([r.waits_minor if c == 0 else r.waits_adult for r in runs])
        waited = _col(runs, "waited")[:, c]
        held = scenario.waiting.held_in.minor if c == 0 else scenario.waiting.held_in.adult
        waits[name] = Waits(
            held_in=held.value,
            waited=int(waited.sum()),
            mean=stats.ratio(_col(runs, "wait_days")[:, c], waited),
            p90=stats.quantile(pooled, 0.9),
            max=float(pooled.max()) if len(pooled) else math.nan,
        )
    window = np.full(len(runs), scenario.horizon_days)
    bed_days = _col(runs, "bed_days")
    occupancy = {
        code: stats.ratio(bed_days[:, f], window * beds) if beds else stats.ratio([0], [0])
        for f, (code, beds) in enumerate(zip(model.codes, model.beds, strict=True))
    }
    year_arrivals = _col(runs, "year_arrivals").ravel()
    year_without = _col(runs, "year_without_bed").ravel()
    bad_years = (year_without > YEAR_WITHOUT_BED * year_arrivals).astype(np.float64)
    return Summary(
        scenario=scenario.name,
        replications=len(runs),
        arrivals_per_year=float(arrivals.mean()) * DAYS_PER_YEAR / scenario.horizon_days,
        placement_rate=stats.ratio(placed, arrivals),
        placement_rate_eligible=stats.ratio(placed, arrivals - eligibility_unmet),
        no_bed=stats.ratio(_col(runs, "no_bed").sum(axis=1), arrivals),
        all_full=stats.ratio(_col(runs, "full").sum(axis=1), arrivals),
        lost=stats.ratio(_col(runs, "lost").sum(axis=1), arrivals),
        unmet={
            reason.value: stats.ratio(unmet[:, n], arrivals)
            for n, reason in enumerate(UNMET_REASONS)
            if unmet[:, n].any()
        },
        waits=waits,
        occupancy=occupancy,
        still_waiting=int(_col(runs, "still_waiting").sum()),
        transfers=int(sum(r.transfers for r in runs)),
        years_over_10pct=stats.ratio(bad_years, np.ones_like(bad_years)),
        events=int(sum(r.events for r in runs)),
        analytic=analytic(model),
        runs=runs,
    )


def simulate(
    scenario: Scenario,
    *,
    replications: int | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    occupancy_every: float | None = None,
    executor: Executor | None = None,
) -> Summary:
    """Compile, replicate and summarize a scenario."""
    model = compile_scenario(scenario)
    runs = replicate(
        model,
        replications=replications,
        workers=workers,
        progress=progress,
        occupancy_every=occupancy_every,
        executor=executor,
    )
    return summarize(model, runs)


def analytic(model: Model) -> dict[str, float]:
    """The closed-form answers where the scenario reduces to one: a single facility that
    everyone may use, Poisson arrivals without raids or seasons, no transfers. With no
    waiting, Erlang B (any stay distribution); waiting without limit and exponential stays,
    Erlang C, and the priority classes' waits (Cobham)."""
    scenario = model.scenario
    if (
        len(model.beds) != 1
        or len(model.periods) != 1
        or scenario.transfer_probability
        or any(isinstance(s, Raids) or s.seasonality for s in scenario.arrivals)
        or any(p != (0,) for p in model.periods[0].preferences)
    ):
        return {}
    servers, stay = model.beds[0], model.stays[model.stay_of_facility[0]]
    rate = sum(s.rate_per_day for s in model.streams)
    load = rate * stay_mean(stay)
    answer = {"offered_load_erlangs": load}
    if model.max_wait == (0.0, 0.0):
        blocked = stats.erlang_b(servers, load)
        answer |= {"no_bed": blocked, "placement_rate": 1 - blocked, "all_full": blocked}
    elif model.max_wait == (math.inf, math.inf) and stay_is_exponential(stay) and load < servers:
        waits = stats.erlang_c(servers, load)
        answer |= {
            "no_bed": waits,
            "all_full": waits,
            "mean_wait_all_arrivals": stats.mmc_mean_wait(servers, rate, stay_mean(stay)),
        }
        classes = priority_classes(model)
        if len(classes) > 1:
            per_class = stats.priority_mean_waits(servers, list(classes.values()), stay_mean(stay))
            answer |= {f"mean_wait_{name}": w for name, w in zip(classes, per_class, strict=True)}
    return answer


def priority_classes(model: Model) -> dict[str, float]:
    """Arrival rate per day of each waitlist class (minor, risk), in waitlist order."""
    rates: dict[tuple[bool, int], float] = {}
    for stream in model.streams:
        for weight, first in zip(stream.profile_weights, stream.profile_first_kind, strict=True):
            kind = model.kinds[first]
            key = (kind.minor, kind.risk_level)
            rates[key] = rates.get(key, 0.0) + stream.rate_per_day * weight
    ordered = sorted(rates, key=lambda k: (-int(k[0]), -k[1]))
    return {f"{'minor' if m else 'adult'}_risk{r}": rates[(m, r)] for m, r in ordered}


@dataclass(frozen=True)
class BedsSearch:
    facility: str
    target: float
    beds: int | None  # the fewest beds that reach the target; None if none up to the cap
    tried: dict[int, Summary]


def beds_for_target(
    scenario: Scenario,
    *,
    facility: str,
    target: float,
    replications: int | None = None,
    workers: int | None = None,
    cap: int = 2000,
    executor: Executor | None = None,
) -> BedsSearch:
    """The fewest beds at `facility` for which the placement rate among the people some
    facility can take reaches `target`, by doubling then bisection; every try uses the same
    random numbers (common random numbers), so the rate is monotone in the beds in practice."""
    tried: dict[int, Summary] = {}

    def rate(beds: int) -> float:
        if beds not in tried:
            tried[beds] = simulate(
                scenario.with_beds(facility, beds),
                replications=replications,
                workers=workers,
                executor=executor,
            )
        return tried[beds].placement_rate_eligible.value

    current = next(f.beds for f in scenario.facilities if f.code == facility)
    low, high = -1, max(current, 1)
    while rate(high) < target:
        low, high = high, high * 2
        if high > cap:
            return BedsSearch(facility, target, None, tried)
    while high - low > 1:
        middle = (low + high) // 2
        if middle >= 0 and rate(middle) >= target:
            high = middle
        else:
            low = middle
    return BedsSearch(facility, target, high, tried)
