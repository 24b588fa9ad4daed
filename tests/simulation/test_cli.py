"""`ruta simulate` as a planner runs it."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from service.cli import app
from tests.simulation.support import one_facility

runner = CliRunner()


def _write(path: Path, horizon_days: float = 720, **changes: object) -> Path:
    data = one_facility(beds=5, load=4.0, horizon_days=horizon_days, replications=6).model_dump(
        mode="json"
    )
    data.update(changes)
    path.write_text(yaml.safe_dump(data))
    return path


def test_prints_estimates_with_the_exact_answer_beside_them(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", str(_write(tmp_path / "s.yaml")), "--workers", "1"])

    assert result.exit_code == 0, result.output
    assert "scenario one-facility" in result.output
    line = next(x for x in result.output.splitlines() if "probability of finding no bed" in x)
    assert "exact  19.91%" in line  # Erlang B(5, 4) = 0.1991
    assert "minors waiting, held in police_station" in result.output


def test_a_bad_scenario_exits_2_naming_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.yaml", warmup_days=-1)

    result = runner.invoke(app, ["simulate", str(path)])

    assert result.exit_code == 2
    assert "warmup_days: Input should be greater than or equal to 0" in result.output


def test_compares_two_scenarios_side_by_side(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.yaml", name="five-beds")
    data = yaml.safe_load(first.read_text())
    data["name"], data["facilities"][0]["beds"] = "eight-beds", 8
    second = tmp_path / "b.yaml"
    second.write_text(yaml.safe_dump(data))

    result = runner.invoke(
        app, ["simulate", str(first), "--compare", str(second), "--workers", "1"]
    )

    assert result.exit_code == 0, result.output
    header = next(x for x in result.output.splitlines() if x.startswith("   "))
    assert header.split() == ["five-beds", "eight-beds"]
    difference = next(x for x in result.output.splitlines() if "difference in placement" in x)
    assert "+" in difference.split("points")[0]


def test_searches_beds_and_draws_charts(tmp_path: Path) -> None:
    chart = tmp_path / "occupancy.png"

    result = runner.invoke(
        app,
        [
            "simulate",
            str(_write(tmp_path / "s.yaml", horizon_days=7300)),
            "--beds-for",
            "0.95",
            "--facility",
            "F",
            "--plot",
            str(chart),
            "--workers",
            "1",
        ],
    )

    assert result.exit_code == 0, result.output
    assert "answer: 8 beds" in result.output  # Erlang B(8, 4) = 0.030, B(7, 4) = 0.0632
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "occupancy-beds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_on_a_dask_scheduler_with_the_same_answer(tmp_path: Path) -> None:
    from distributed import LocalCluster

    path = _write(tmp_path / "s.yaml")
    here = runner.invoke(app, ["simulate", str(path), "--workers", "1"])
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        there = runner.invoke(
            app, ["simulate", str(path), "--dask", cluster.scheduler_address, "--workers", "2"]
        )

    assert here.exit_code == 0, here.output
    assert there.exit_code == 0, there.output
    assert there.output == here.output
