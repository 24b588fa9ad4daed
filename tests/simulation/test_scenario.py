"""Scenario files: what a planner gets back for a bad one, and the shipped reference."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.simulation import scenario


def _reference() -> dict[str, Any]:
    text = resources.files("service.simulation").joinpath("scenarios/peru-2016.yaml").read_text()
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def _problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(scenario.ScenarioError) as caught:
        scenario.parse(data)
    return dict(caught.value.problems)


def test_each_bad_field_is_named_with_its_reason() -> None:
    data = _reference()
    data["facilities"][1]["beds"] = -3
    data["facilities"][2]["region"] = "99"
    data["arrivals"][7]["size"]["alpha"] = 0
    data["arrivals"][0]["seasonality"] = [1, 2]
    data["mixes"]["default"][0]["gender"] = "robot"
    data["waiting"]["max_wait_days"]["minor"] = -1
    data["replications"] = 1

    problems = _problems(data)

    assert set(problems) == {
        "facilities[1].beds",
        "facilities[2].region",
        "arrivals[7].size.alpha",
        "arrivals[0].seasonality",
        "mixes.default[0].gender",
        "waiting.max_wait_days.minor",
        "replications",
    }
    assert "greater than or equal to 0" in problems["facilities[1].beds"]
    assert "unknown region '99'" in problems["facilities[2].region"]
    assert "twelve monthly multipliers" in problems["arrivals[0].seasonality"]


def test_unknown_fields_are_refused_not_ignored() -> None:
    data = _reference()
    data["facilities"][0]["bed"] = 16
    data["horizon"] = 365

    problems = _problems(data)

    assert problems == {
        "facilities[0].bed": "Extra inputs are not permitted",
        "horizon": "Extra inputs are not permitted",
    }


def test_a_mix_that_does_not_exist_is_refused() -> None:
    data = _reference()
    data["arrivals"][0]["mix"] = "nobody"

    assert "which mixes does not define" in _problems(data)["scenario"]


def test_a_scenario_loads_from_json_as_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "peru.json"
    path.write_text(json.dumps(_reference(), default=str))

    assert scenario.load(path) == scenario.load("peru-2016")


def test_a_missing_file_is_a_scenario_error() -> None:
    with pytest.raises(scenario.ScenarioError, match="no file"):
        scenario.load("nowhere.yaml")


def test_the_reference_scenario_keeps_the_seeded_facilities_and_2016_volumes() -> None:
    peru = scenario.load("peru-2016")
    seed = tomllib.loads(
        resources.files("service.reference").joinpath("peru-2017.toml").read_text()
    )

    seeded = {f["code"]: f for f in seed["facility"]}
    for facility in peru.facilities:
        row = seeded.pop(facility.code)
        assert (facility.beds, facility.region, facility.kind.value) == (
            row["capacity"],
            row["region"],
            row["kind"],
        )
        assert (facility.min_age, facility.max_age) == (row["min_age"], row["max_age"])
        assert sorted(g.value for g in facility.genders) == sorted(row["genders"])
        assert sorted(e.value for e in facility.exploitation_forms) == sorted(
            row["exploitation_forms"]
        )
    assert seeded == {}
    specialized = [f.beds for f in peru.facilities if f.kind.value == "specialized_shelter"]
    assert specialized == [16, 12]
    assert not any("male" in f.genders and f.max_age >= 18 for f in peru.facilities)
    singles = sum(a.per_year for a in peru.arrivals if a.kind == "singles")
    raids = [a for a in peru.arrivals if a.kind == "raids"]
    assert singles == 834
    assert [r.region for r in raids] == ["17"]
