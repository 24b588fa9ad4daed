"""Small scenarios whose answers queueing theory knows."""

from __future__ import annotations

from typing import Any

from service.simulation import scenario


def one_facility(
    *,
    beds: int,
    load: float,
    stay: dict[str, Any] | None = None,
    max_wait: float | None = 0,
    horizon_days: float = 3650,
    warmup_days: float = 300,
    replications: int = 20,
    mix: list[dict[str, Any]] | None = None,
    seed: int = 11,
) -> scenario.Scenario:
    """One shelter everyone may use, Poisson arrivals offering `load` erlangs."""
    stay = stay or {"distribution": "exponential", "mean": 30}
    mean = stay.get("mean", stay.get("value"))
    assert isinstance(mean, int | float)
    return scenario.parse(
        {
            "name": "one-facility",
            "horizon_days": horizon_days,
            "warmup_days": warmup_days,
            "replications": replications,
            "seed": seed,
            "facilities": [
                {"code": "F", "region": "15", "kind": "specialized_shelter", "beds": beds}
            ],
            "length_of_stay": stay,
            "arrivals": [
                {"kind": "singles", "region": "15", "per_year": load / mean * 365},
            ],
            "mixes": {
                "default": mix
                or [{"weight": 1, "age": 30, "gender": "female", "exploitation": ["forced_labour"]}]
            },
            "waiting": {"max_wait_days": {"minor": max_wait, "adult": max_wait}},
        }
    )
