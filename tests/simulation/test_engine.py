"""The event loop's decisions, its random numbers and its parallel runs."""

from __future__ import annotations

import random
import uuid
from typing import Any

import numpy as np
import pytest

from service.capacity import rules
from service.simulation import runner, scenario, stats
from service.simulation.engine import Replication, draw, run
from service.simulation.model import UNMET_REASONS, compile_scenario, views_at
from tests.simulation.support import one_facility


def _same(a: list[Replication], b: list[Replication]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for name in Replication.__dataclass_fields__:
            left, right = getattr(x, name), getattr(y, name)
            if isinstance(left, np.ndarray):
                assert left.dtype == right.dtype, name
                assert np.array_equal(left, right), name
            else:
                assert left == right, name


def test_results_are_bit_identical_on_one_worker_and_on_two() -> None:
    model = compile_scenario(scenario.load("peru-2016"))

    alone = runner.replicate(model, replications=12, workers=1)
    pooled = runner.replicate(model, replications=12, workers=2)

    _same(alone, pooled)
    one, two = runner.summarize(model, alone), runner.summarize(model, pooled)
    assert one.placement_rate == two.placement_rate
    assert one.waits == two.waits


def test_the_loop_places_where_the_live_rule_chooses() -> None:
    model = compile_scenario(scenario.load("peru-2016"))
    period = model.periods[0]
    chance = random.Random(5)
    for _ in range(300):
        kind = chance.randrange(len(model.kinds))
        in_use = [chance.randint(0, beds) for beds in model.beds]
        views = views_at(model, 0, in_use)
        live = rules.choose_facility(model.kinds[kind].needs, views)

        free = [beds - used for beds, used in zip(model.beds, in_use, strict=True)]
        ours = next((f for f in period.preferences[kind] if free[f]), None)

        if period.unmet[kind] >= 0:
            assert live.outcome is rules.PlacementOutcome.unmet_need
        elif ours is None:
            assert live.outcome is rules.PlacementOutcome.waitlisted
        else:
            assert live.facility_id == uuid.UUID(int=ours)


def _two_facility_scenario(**changes: Any) -> scenario.Scenario:
    data: dict[str, Any] = {
        "name": "loreto",
        "start": "2016-01-01",
        "horizon_days": 730,
        "warmup_days": 0,
        "replications": 4,
        "seed": 3,
        "facilities": [
            {
                "code": "CAR",
                "region": "16",
                "kind": "children_residential_centre",
                "beds": 2,
                "max_age": 17,
            },
            {
                "code": "MEN",
                "region": "16",
                "kind": "ngo_shelter",
                "beds": 5,
                "min_age": 18,
                "genders": ["male"],
                "opens_on": "2017-01-01",
            },
        ],
        "length_of_stay": {"distribution": "fixed", "value": 60},
        "arrivals": [{"kind": "singles", "region": "16", "per_year": 200}],
        "mixes": {
            "default": [
                {"weight": 1, "age": [18, 50], "gender": "male", "exploitation": ["forced_labour"]},
                {
                    "weight": 1,
                    "age": [10, 17],
                    "gender": "female",
                    "exploitation": ["sexual_exploitation"],
                },
            ]
        },
    }
    return scenario.parse(data | changes)


def test_a_shelter_for_adult_men_opening_mid_run_ends_their_unmet_need() -> None:
    model = compile_scenario(_two_facility_scenario())

    assert len(model.periods) == 2
    assert model.periods[1].begins == 366
    runs = runner.replicate(model, workers=1)
    summary = runner.summarize(model, runs)

    men_unmet = summary.unmet["no_facility_for_adult_men"].value
    assert 0.2 < men_unmet < 0.3  # half the people are men, unmet only in the first year
    assert sum(r.bed_days[1] for r in runs) > 0
    assert all(r.bed_days[1] <= 5 * 365 for r in runs)


def test_minors_waiting_are_counted_apart_as_held_in_police_stations() -> None:
    summary = runner.simulate(_two_facility_scenario(), workers=1)

    minors = summary.waits["minor"]
    assert minors.held_in == "police_station"
    assert minors.waited > 0
    assert 0 < minors.mean.value <= minors.max <= 30
    assert summary.waits["adult"].held_in == "own_means"


def test_a_freed_bed_goes_to_a_waiting_child_before_an_adult_who_waited_longer() -> None:
    data = one_facility(
        beds=1,
        load=3.0,
        max_wait=None,
        horizon_days=20000,
        warmup_days=0,
        mix=[
            {"weight": 0.2, "age": 16, "gender": "female", "exploitation": ["forced_labour"]},
            {"weight": 0.8, "age": 30, "gender": "female", "exploitation": ["forced_labour"]},
        ],
    )
    model = compile_scenario(data)
    result = run(model, 0)

    # 3 erlangs on one bed, 0.6 of them children: children are served, adults pile up.
    assert result.placed[0] > 0.9 * result.arrivals[0]
    assert result.still_waiting[1] > 0.5 * result.arrivals[1]


def test_raids_bring_people_in_groups_at_the_rate_asked() -> None:
    data = _two_facility_scenario(
        arrivals=[
            {
                "kind": "raids",
                "region": "16",
                "raids_per_year": 50,
                "size": {"distribution": "fixed", "value": 6},
                "seasonality": [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
            }
        ],
        horizon_days=365,
        replications=200,
    )
    summary = runner.simulate(data, workers=1)

    assert summary.arrivals_per_year == pytest.approx(300, rel=0.03)
    assert all(r.arrivals.sum() % 6 == 0 for r in summary.runs)


def test_more_beds_with_common_random_numbers_never_lower_placement() -> None:
    base = one_facility(beds=5, load=5.0, replications=10)
    fewer, more = (
        runner.simulate(base, workers=1),
        runner.simulate(base.with_beds("F", 6), workers=1),
    )

    arrivals = [r.arrivals.sum() for r in fewer.runs]
    assert arrivals == [r.arrivals.sum() for r in more.runs]  # the same people arrive
    assert all(b.placed.sum() >= a.placed.sum() for a, b in zip(fewer.runs, more.runs, strict=True))


def test_the_bed_search_finds_what_erlang_b_says() -> None:
    search = runner.beds_for_target(
        one_facility(beds=20, load=24.0, replications=10), facility="F", target=0.95
    )

    erlang = next(c for c in range(1, 100) if 1 - stats.erlang_b(c, 24.0) >= 0.95)
    assert search.beds is not None
    assert abs(search.beds - erlang) <= 1
    assert search.tried[search.beds].placement_rate_eligible.value >= 0.95
    assert search.tried[search.beds - 1].placement_rate_eligible.value < 0.95


def test_every_arrival_ends_placed_unmet_lost_or_still_waiting() -> None:
    model = compile_scenario(scenario.load("peru-2016"))
    for replication in range(5):
        r = run(model, replication)

        ended = r.placed.sum() + r.unmet.sum() + r.still_waiting.sum()
        assert ended == r.arrivals.sum()
        assert r.lost.sum() == r.unmet[UNMET_REASONS.index(rules.UnmetReason.waited_too_long)]
        assert (r.waits_minor >= 0).all()
        assert (r.waits_minor <= 30).all()
        assert (r.bed_days <= np.asarray(model.beds) * model.scenario.horizon_days + 1e-6).all()


def test_the_reference_year_leaves_most_victims_without_a_bed_as_the_narrative_does() -> None:
    summary = runner.simulate(scenario.load("peru-2016"), replications=40, workers=1)

    # 1,134 suspected victims; 28 specialized beds and a sample of children's centres.
    assert summary.arrivals_per_year == pytest.approx(1134, rel=0.05)
    assert summary.placement_rate.high < 0.25
    assert summary.unmet["no_facility_for_adult_men"].value > 0.2
    assert summary.unmet["no_lgbti_specialized_service"].value > 0
    assert summary.occupancy["MIMP-HRT-MAZUKO"].value > 0.95
    assert summary.years_over_10pct.value == 1.0


def test_transfers_move_people_to_another_eligible_facility_with_a_free_bed() -> None:
    data = _two_facility_scenario(
        facilities=[
            {"code": "A", "region": "16", "kind": "specialized_shelter", "beds": 3},
            {"code": "B", "region": "16", "kind": "ngo_shelter", "beds": 30},
        ],
        arrivals=[{"kind": "singles", "region": "16", "per_year": 30}],
        transfer_probability=0.5,
    )
    with_transfers = runner.simulate(data, workers=1)
    without = runner.simulate(data.model_copy(update={"transfer_probability": 0}), workers=1)

    assert with_transfers.transfers > 0
    assert without.transfers == 0
    occupied = sum(
        with_transfers.occupancy[code].value * beds for code, beds in (("A", 3), ("B", 30))
    )
    alone = sum(without.occupancy[code].value * beds for code, beds in (("A", 3), ("B", 30)))
    assert occupied > alone  # a transferred person stays on, elsewhere


def test_people_waiting_when_a_facility_opens_are_placed_there_that_day() -> None:
    data = _two_facility_scenario(
        horizon_days=200,
        replications=3,
        facilities=[
            {"code": "FULL", "region": "16", "kind": "specialized_shelter", "beds": 0},
            {
                "code": "NEW",
                "region": "16",
                "kind": "ngo_shelter",
                "beds": 500,
                "opens_on": "2016-04-10",
            },  # day 100
        ],
        mixes={
            "default": [
                {"weight": 1, "age": 30, "gender": "female", "exploitation": ["forced_labour"]}
            ]
        },
        waiting={"max_wait_days": {"minor": None, "adult": None}},
    )
    model = compile_scenario(data)

    assert [p.begins for p in model.periods] == [0, 100]
    for replication in range(3):
        draws_before = int((draw(model, replication).times < 100).sum())
        r = run(model, replication)

        assert r.placed.sum() == r.arrivals.sum()
        assert r.waited.sum() == draws_before  # everyone before day 100 waited, no one after
        assert r.waits_adult.max() <= 100
        assert 35 < r.waits_adult.mean() < 65  # about 100 - (arrival day), arrivals uniform


def _census(
    stay: dict[str, Any], *, beds: int, occupied: int, load: float, horizon_days: float = 3000
) -> scenario.Scenario:
    base = one_facility(
        beds=beds, load=load, stay=stay, horizon_days=horizon_days, warmup_days=0, replications=100
    )
    facility = base.facilities[0].model_copy(update={"occupied": occupied})
    return scenario.parse(base.model_dump() | {"facilities": [facility.model_dump()]})


@pytest.mark.parametrize(
    ("stay", "residual_mean"),
    [
        ({"distribution": "exponential", "mean": 30}, 30.0),
        ({"distribution": "lognormal", "mean": 30, "sd": 45}, (45**2 + 30**2) / 60),
        ({"distribution": "gamma", "mean": 30, "sd": 10}, (10**2 + 30**2) / 60),
        ({"distribution": "fixed", "value": 30}, 15.0),
    ],
)
def test_beds_occupied_at_the_start_free_after_what_remains_of_a_stay(
    stay: dict[str, Any], residual_mean: float
) -> None:
    model = compile_scenario(_census(stay, beds=20, occupied=20, load=0))

    runs = runner.replicate(model, workers=1, occupancy_every=1.0)

    assert all(r.occupancy is not None and r.occupancy[0, 0] == 20 for r in runs)
    per_bed = np.asarray([r.bed_days[0] / 20 for r in runs])
    se = per_bed.std(ddof=1) / np.sqrt(len(per_bed))
    assert abs(per_bed.mean() - residual_mean) < 3.5 * se


def test_a_full_house_at_the_start_turns_people_away_that_an_empty_one_takes() -> None:
    stay = {"distribution": "fixed", "value": 60}
    empty = runner.simulate(_census(stay, beds=10, occupied=0, load=8, horizon_days=60), workers=1)
    full = runner.simulate(_census(stay, beds=10, occupied=10, load=8, horizon_days=60), workers=1)
    assert empty.analytic == full.analytic  # the same system, only its start differs

    assert full.placement_rate.high < empty.placement_rate.low
    assert full.occupancy["F"].low > empty.occupancy["F"].high


def test_a_census_larger_than_the_beds_is_refused() -> None:
    with pytest.raises(scenario.ScenarioError) as refused:
        _census({"distribution": "fixed", "value": 60}, beds=3, occupied=4, load=1)

    assert refused.value.problems == [
        ("facilities[0]", "Value error, occupied must be at most beds")
    ]


def test_results_are_bit_identical_on_a_dask_cluster() -> None:
    """Sweeps that outgrow one machine run on a Dask cluster (here a local one of two worker
    processes): the same replications, bit for bit, as on this machine alone."""
    from distributed import Client, LocalCluster

    model = compile_scenario(scenario.load("peru-2016"))
    alone = runner.replicate(model, replications=6, workers=1)

    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        clustered = runner.replicate(
            model, replications=6, workers=2, executor=client.get_executor()
        )
        workers_used = len(client.scheduler_info()["workers"])

    _same(alone, clustered)
    assert workers_used == 2
