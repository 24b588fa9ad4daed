"""The simulator against queueing theory and against Ciw, with fixed seeds.

Each check allows |z| < 3.5, z = (simulated - exact) / standard error of the simulated ratio
of totals across replications."""

from __future__ import annotations

import itertools

import ciw
import numpy as np
import pytest

from service.simulation import runner, stats
from service.simulation.engine import draw, run
from service.simulation.model import compile_scenario
from tests.simulation.support import one_facility

Z = 3.5


@pytest.mark.parametrize(
    ("beds", "load"),
    [(1, 0.5), (1, 2.0), (5, 3.0), (5, 8.0), (28, 20.0), (28, 24.0), (28, 35.0)],
)
def test_loss_system_blocks_as_erlang_b(beds: int, load: float) -> None:
    summary = runner.simulate(one_facility(beds=beds, load=load), workers=1)

    exact = stats.erlang_b(beds, load)
    assert summary.analytic["no_bed"] == pytest.approx(exact)
    assert abs(summary.no_bed.z(exact)) < Z, (summary.no_bed, exact)


def test_erlang_b_for_28_beds_at_24_erlangs_is_0_0666() -> None:
    assert stats.erlang_b(28, 24.0) == pytest.approx(0.0666, abs=5e-5)


@pytest.mark.parametrize(
    "stay",
    [
        {"distribution": "lognormal", "mean": 30, "sd": 45},
        {"distribution": "fixed", "value": 30},
        {"distribution": "gamma", "mean": 30, "sd": 10},
    ],
)
def test_blocking_is_insensitive_to_the_stay_distribution(stay: dict[str, object]) -> None:
    summary = runner.simulate(one_facility(beds=28, load=24.0, stay=stay), workers=1)

    assert abs(summary.no_bed.z(stats.erlang_b(28, 24.0))) < Z, summary.no_bed


def test_beds_in_use_obey_littles_law() -> None:
    model = compile_scenario(one_facility(beds=10, load=9.0))
    runs = runner.replicate(model, workers=1)

    # L (mean beds in use, from the time people spent in beds) = lambda (placements a day)
    # x W (their mean stay, 30 days), per replication and in total.
    horizon = model.scenario.horizon_days
    in_use = np.asarray([r.bed_days[0] / horizon for r in runs])
    placed_per_day = np.asarray([r.placed.sum() / horizon for r in runs])
    assert in_use.mean() == pytest.approx(placed_per_day.mean() * 30, rel=0.02)
    assert in_use.mean() == pytest.approx(9.0 * (1 - stats.erlang_b(10, 9.0)), rel=0.02)


def test_waiting_without_limit_matches_erlang_c() -> None:
    summary = runner.simulate(one_facility(beds=10, load=8.0, max_wait=None), workers=1)
    runs = summary.runs

    assert abs(summary.no_bed.z(stats.erlang_c(10, 8.0))) < Z, summary.no_bed
    mean_wait = stats.ratio([r.wait_days.sum() for r in runs], [r.arrivals.sum() for r in runs])
    exact = stats.mmc_mean_wait(10, 8.0 / 30, 30)
    assert summary.analytic["mean_wait_all_arrivals"] == pytest.approx(exact)
    assert abs(mean_wait.z(exact)) < Z, (mean_wait, exact)
    assert summary.still_waiting < 0.01 * sum(r.arrivals.sum() for r in runs)


def test_children_wait_first_as_the_priority_queue_formula_says() -> None:
    mix = [
        {"weight": 0.3, "age": 15, "gender": "female", "exploitation": ["forced_labour"]},
        {"weight": 0.7, "age": 30, "gender": "female", "exploitation": ["forced_labour"]},
    ]
    summary = runner.simulate(one_facility(beds=10, load=8.5, max_wait=None, mix=mix), workers=1)
    runs = summary.runs

    minor_exact, adult_exact = stats.priority_mean_waits(10, [0.3 * 8.5 / 30, 0.7 * 8.5 / 30], 30)
    assert summary.analytic["mean_wait_minor_risk1"] == pytest.approx(minor_exact)
    for c, exact in ((0, minor_exact), (1, adult_exact)):
        simulated = stats.ratio([r.wait_days[c] for r in runs], [r.arrivals[c] for r in runs])
        assert abs(simulated.z(exact)) < Z, (c, simulated, exact)
    assert minor_exact < adult_exact / 2


class _Stays(ciw.dists.Distribution):  # type: ignore[misc]
    """Ciw's service times: the stay our engine drew for the same person."""

    def __init__(self, stays: list[float]) -> None:
        super().__init__()
        self.stays = stays

    def sample(self, t: float | None = None, ind: ciw.Individual | None = None) -> float:
        assert ind is not None
        stay: float = self.stays[ind.id_number - 1]
        return stay


def test_loss_system_matches_ciw_on_the_same_random_numbers() -> None:
    model = compile_scenario(one_facility(beds=5, load=4.0, horizon_days=2000, warmup_days=0))
    for replication in range(3):
        draws = draw(model, replication)
        times = draws.times.tolist()
        gaps = [times[0]] + [b - a for a, b in itertools.pairwise(times)]
        network = ciw.create_network(
            arrival_distributions=[ciw.dists.Sequential([*gaps, 1e9])],
            service_distributions=[_Stays(draws.stays[0].tolist())],
            number_of_servers=[5],
            queue_capacities=[0],
        )
        ciw.seed(0)
        simulation = ciw.Simulation(network)
        simulation.simulate_until_max_time(model.end)
        records = simulation.get_all_records()
        ciw_blocked = sum(1 for r in records if r.record_type == "rejection")

        ours = run(model, replication)

        assert ours.arrivals.sum() == len(times)
        assert ours.no_bed.sum() == ciw_blocked > 20
        assert ours.placed.sum() == len(times) - ciw_blocked
