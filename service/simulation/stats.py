"""Estimates across replications, and the queueing formulas that check them: pure.

A rate is estimated as a ratio of totals across replications (sum of placements over sum of
arrivals), never as the average of per-replication ratios, which over-weights replications
with few arrivals. Its confidence interval comes from the delta method (the classical ratio
estimator): with R = sum(y) / sum(x), the residuals y_i - R x_i have mean 0 and
Var(R) ~ var(y - R x) / (n * mean(x)^2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Two-sided 95% Student t quantiles by degrees of freedom; 1.96 beyond 30.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% confidence interval and standard error."""

    value: float
    low: float
    high: float
    se: float

    def z(self, truth: float) -> float:
        """How many standard errors the estimate lies from a known answer."""
        if self.se == 0:
            return 0.0 if self.value == truth else math.inf
        return (self.value - truth) / self.se


Numbers = Sequence[float] | npt.NDArray[np.float64] | npt.NDArray[np.int64]


def ratio(y: Numbers, x: Numbers) -> Estimate:
    """sum(y) / sum(x) over replications, with a delta-method 95% interval."""
    ys, xs = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    n, total = len(xs), float(xs.sum())
    if total == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan)
    r = float(ys.sum()) / total
    if n < 2:
        return Estimate(r, math.nan, math.nan, math.nan)
    residual = ys - r * xs
    se = math.sqrt(float(residual.var(ddof=1)) / n) / (total / n)
    half = t975(n - 1) * se
    return Estimate(r, r - half, r + half, se)


def ratio_difference(y1: Numbers, x1: Numbers, y2: Numbers, x2: Numbers) -> Estimate:
    """sum(y1)/sum(x1) - sum(y2)/sum(x2) on paired replications (common random numbers)."""
    a1, b1 = np.asarray(y1, dtype=np.float64), np.asarray(x1, dtype=np.float64)
    a2, b2 = np.asarray(y2, dtype=np.float64), np.asarray(x2, dtype=np.float64)
    n = len(b1)
    if b1.sum() == 0 or b2.sum() == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan)
    r1, r2 = a1.sum() / b1.sum(), a2.sum() / b2.sum()
    d = float(r1 - r2)
    paired = (a1 - r1 * b1) / b1.mean() - (a2 - r2 * b2) / b2.mean()
    se = math.sqrt(float(paired.var(ddof=1)) / n) if n > 1 else math.nan
    half = t975(n - 1) * se
    return Estimate(d, d - half, d + half, se)


def erlang_b(servers: int, load: float) -> float:
    """Probability that an arrival finds every server busy in M/G/c/c (Erlang's loss formula)."""
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(servers: int, load: float) -> float:
    """Probability of waiting in M/M/c (Erlang C); 1 when the load is at or above capacity."""
    if load >= servers:
        return 1.0
    b = erlang_b(servers, load)
    return servers * b / (servers - load * (1 - b))


def mmc_mean_wait(servers: int, arrival_rate: float, mean_service: float) -> float:
    """Mean wait in queue of M/M/c, every arrival counted."""
    load = arrival_rate * mean_service
    return erlang_c(servers, load) * mean_service / (servers - load)


def priority_mean_waits(
    servers: int, arrival_rates: Sequence[float], mean_service: float
) -> list[float]:
    """Mean wait per class in non-preemptive priority M/M/c, equal service rates, class 0
    first (Cobham): W_k = C / (c mu (1 - s_{k-1}) (1 - s_k)), s_k the load of classes <= k."""
    mu, total = 1.0 / mean_service, sum(arrival_rates)
    c_wait = erlang_c(servers, total * mean_service)
    waits, above = [], 0.0
    for rate in arrival_rates:
        upto = above + rate / (servers * mu)
        waits.append(c_wait / (servers * mu * (1 - above) * (1 - upto)))
        above = upto
    return waits


def quantile(values: npt.NDArray[np.float64], q: float) -> float:
    return float(np.quantile(values, q)) if len(values) else math.nan
