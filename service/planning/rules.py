"""Pure rules of simulation jobs: what one request may ask of the machine, the job's states,
and the results as stored (JSON, without the replications' raw totals)."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from service.simulation import stats
from service.simulation.runner import Summary
from service.simulation.scenario import DAYS_PER_YEAR, FixedSize, Pareto, Raids, Scenario

# One request must not occupy the machine for hours: at 2016 national volumes a replication
# of two simulated years takes a few milliseconds, so these bounds keep a job to minutes.
MAX_REPLICATIONS = 1_000
MAX_SIMULATED_DAYS = 3_650  # warm-up and horizon together: ten years
MAX_PEOPLE = 20_000_000  # expected arrivals over every replication and simulated day

# Charts stored with a finished job, by name (GET /v1/simulations/{id}/charts/{name}.png).
CHARTS = ("occupancy",)


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


UNFINISHED = (JobStatus.queued, JobStatus.running)
INTERRUPTED = "interrupted by a restart: the process running the job stopped"


def _mean_raid_size(size: Pareto | FixedSize) -> float:
    """An upper bound of a raid's mean size (the capped Pareto's mean is below the uncapped
    one, and below the cap)."""
    if isinstance(size, FixedSize):
        return float(size.value)
    uncapped = size.minimum * size.alpha / (size.alpha - 1) if size.alpha > 1 else math.inf
    return float(min(uncapped, size.maximum))


def expected_arrivals_per_year(scenario: Scenario) -> float:
    """People a year the arrival streams bring at most (seasons average to their mean)."""
    total = 0.0
    for stream in scenario.arrivals:
        season = sum(stream.seasonality) / 12 if stream.seasonality else 1.0
        if isinstance(stream, Raids):
            total += stream.raids_per_year * _mean_raid_size(stream.size) * season
        else:
            total += stream.per_year * season
    return total


def size_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """(field, reason) for every bound of one job the scenario exceeds."""
    problems = []
    if scenario.replications > MAX_REPLICATIONS:
        problems.append(("replications", f"at most {MAX_REPLICATIONS:,} replications in one job"))
    days = scenario.warmup_days + scenario.horizon_days
    if days > MAX_SIMULATED_DAYS:
        problems.append(
            (
                "horizon_days",
                f"warmup_days + horizon_days is {days:g}; at most {MAX_SIMULATED_DAYS:,} days",
            )
        )
    people = expected_arrivals_per_year(scenario) * days / DAYS_PER_YEAR * scenario.replications
    if not problems and people > MAX_PEOPLE:
        problems.append(
            (
                "arrivals",
                f"about {people:,.0f} arrivals over all replications; at most "
                f"{MAX_PEOPLE:,} in one job (fewer replications, a shorter horizon or "
                "lower rates)",
            )
        )
    return problems


def _number(value: float) -> float | None:
    """JSON has no NaN nor infinity: an estimate that does not exist is null."""
    return None if math.isnan(value) or math.isinf(value) else float(value)


def _estimate(e: stats.Estimate) -> dict[str, float | None]:
    return {"value": _number(e.value), "low": _number(e.low), "high": _number(e.high)}


def result_of(summary: Summary) -> dict[str, Any]:
    """The estimates a job stores and shows (every interval a 95% confidence interval)."""
    return {
        "scenario": summary.scenario,
        "replications": summary.replications,
        "arrivals_per_year": _number(summary.arrivals_per_year),
        "placement_rate": _estimate(summary.placement_rate),
        "placement_rate_eligible": _estimate(summary.placement_rate_eligible),
        "no_bed": _estimate(summary.no_bed),
        "all_full": _estimate(summary.all_full),
        "lost": _estimate(summary.lost),
        "unmet": {reason: _estimate(e) for reason, e in summary.unmet.items()},
        "waits": {
            name: {
                "held_in": w.held_in,
                "waited": w.waited,
                "mean_days": _estimate(w.mean),
                "p90_days": _number(w.p90),
                "max_days": _number(w.max),
            }
            for name, w in summary.waits.items()
        },
        "occupancy": {code: _estimate(e) for code, e in summary.occupancy.items()},
        "still_waiting": summary.still_waiting,
        "transfers": summary.transfers,
        "years_over_10pct_without_bed": _estimate(summary.years_over_10pct),
        "events": summary.events,
        "analytic": {name: _number(value) for name, value in summary.analytic.items()},
    }


# Calibration from the recorded data (`ruta simulate --from-db`): the pure half.

MIN_STAYS_PER_FACILITY = 5  # fewer ended stays: the facility takes the national length
ASSUMED_STAY = {"distribution": "exponential", "mean": 90.0}  # no stay ended in the year
AGE_BANDS = ((0, 11), (12, 17), (18, 59), (60, 120))


def seasonality(by_month: dict[int, int]) -> list[float] | None:
    """Twelve monthly multipliers averaging 1 from counts by month (1-12); None when the
    counts are flat or absent (a constant rate)."""
    total = sum(by_month.values())
    if not total:
        return None
    multipliers = [round(12 * by_month.get(m, 0) / total, 4) for m in range(1, 13)]
    return None if len(set(multipliers)) == 1 else multipliers


def raid_size(sizes: list[int]) -> dict[str, Any]:
    """The size distribution of the operations seen: a fixed size when all were alike, else
    a Pareto from the smallest, with the tail index by maximum likelihood (Hill) and capped
    at the largest seen."""
    low, high = min(sizes), max(sizes)
    logs = sum(math.log(s / low) for s in sizes)
    if low == high or logs == 0:
        return {"distribution": "fixed", "value": low}
    return {
        "distribution": "pareto",
        "alpha": round(len(sizes) / logs, 4),
        "minimum": low,
        "maximum": high,
    }


def stay(count: int, mean_days: float | None, mean_square: float | None) -> dict[str, Any] | None:
    """A length of stay from the ended stays' count, mean and mean square (days): lognormal
    with their mean and standard deviation, exponential with their mean when they cannot
    give a spread; None without any."""
    if not count or mean_days is None or mean_days <= 0:
        return None
    variance = max((mean_square or 0) - mean_days**2, 0.0) * count / max(count - 1, 1)
    sd = math.sqrt(variance)
    if count < 2 or sd <= 1e-9:
        return {"distribution": "exponential", "mean": round(mean_days, 4)}
    return {"distribution": "lognormal", "mean": round(mean_days, 4), "sd": round(sd, 4)}
