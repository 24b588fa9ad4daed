"""The simulation engine's speed: model events per CPU-second against a minimal heapq loop and
against SimPy on the same loss-system workload, and the wall time of 1,000 replications of
the national reference year (`peru-2016`) on one core.

    python bench/simulation.py [--rounds 5] [--arrivals 200000] [--replications 1000]

Every contender gets the same arrivals and stays (the engine's own draws) and must block the
same people; each round times the three in turn, and the figures are medians over rounds.
Goals (issue 10): at least 0.5x the heapq loop, at least 5x SimPy, 1,000 national years
under 5 s on one core.
"""

from __future__ import annotations

import argparse
import heapq
import statistics
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.simulation import runner, scenario
from service.simulation.engine import draw, run
from service.simulation.model import Model, compile_scenario

BEDS, LOAD, MEAN_STAY = 28, 24.0, 30.0


def loss_model(arrivals: int) -> Model:
    """One 28-bed shelter at 24 erlangs, no waiting: Erlang B's setting."""
    horizon = arrivals / (LOAD / MEAN_STAY)
    return compile_scenario(
        scenario.parse(
            {
                "name": "loss-28-24",
                "horizon_days": horizon,
                "replications": 2,
                "seed": 1,
                "facilities": [
                    {"code": "F", "region": "15", "kind": "specialized_shelter", "beds": BEDS}
                ],
                "length_of_stay": {"distribution": "exponential", "mean": MEAN_STAY},
                "arrivals": [
                    {"kind": "singles", "region": "15", "per_year": LOAD / MEAN_STAY * 365}
                ],
                "mixes": {
                    "default": [
                        {"weight": 1, "age": 30, "gender": "female", "exploitation": ["other"]}
                    ]
                },
                "waiting": {"max_wait_days": {"minor": 0, "adult": 0}},
            }
        )
    )


def ours(model: Model) -> tuple[int, int]:
    """(events, blocked) of the engine: draws, event loop and totals."""
    result = run(model, 0)
    return result.events, int(result.no_bed.sum())


def heapq_loop(model: Model) -> tuple[int, int]:
    """The least a loss system needs: the same draws, a heap of departure times."""
    draws = draw(model, 0)
    times, stays = draws.times.tolist(), draws.stays[0].tolist()
    end = model.end
    busy: list[float] = []
    blocked = events = 0
    for t, stay in zip(times, stays, strict=True):
        while busy and busy[0] <= t:
            heapq.heappop(busy)
            events += 1
        events += 1
        if len(busy) < BEDS:
            heapq.heappush(busy, t + stay)
        else:
            blocked += 1
    events += sum(1 for leave in busy if leave < end)
    return events, blocked


def simpy_model(model: Model) -> tuple[int, int]:
    """SimPy in its usual style: a source process, a Resource, one process per person."""
    draws = draw(model, 0)
    times, stays = draws.times.tolist(), draws.stays[0].tolist()
    env = simpy.Environment()
    beds = simpy.Resource(env, capacity=BEDS)
    counts = {"blocked": 0, "events": 0}

    def person(stay: float) -> Generator[Any, Any, None]:
        with beds.request() as request:
            yield request
            yield env.timeout(stay)
        counts["events"] += 1

    def source() -> Generator[Any, Any, None]:
        previous = 0.0
        for t, stay in zip(times, stays, strict=True):
            yield env.timeout(t - previous)
            previous = t
            counts["events"] += 1
            if beds.count < BEDS:
                env.process(person(stay))
            else:
                counts["blocked"] += 1

    env.process(source())
    env.run(until=model.end)
    return counts["events"], counts["blocked"]


def cpu(work: Callable[[Model], tuple[int, int]], model: Model) -> tuple[float, int, int]:
    start = time.process_time()
    events, blocked = work(model)
    return time.process_time() - start, events, blocked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--arrivals", type=int, default=200_000)
    parser.add_argument("--replications", type=int, default=1000)
    args = parser.parse_args()

    model = loss_model(args.arrivals)
    rates: dict[str, list[float]] = {"engine": [], "heapq": [], "simpy": []}
    vs_heapq, vs_simpy = [], []
    for _ in range(args.rounds):
        seconds, events, blocked = {}, {}, {}
        for name, work in (("engine", ours), ("heapq", heapq_loop), ("simpy", simpy_model)):
            seconds[name], events[name], blocked[name] = cpu(work, model)
            rates[name].append(events[name] / seconds[name])
        assert blocked["engine"] == blocked["heapq"] == blocked["simpy"], blocked
        vs_heapq.append(rates["engine"][-1] / rates["heapq"][-1])
        vs_simpy.append(rates["engine"][-1] / rates["simpy"][-1])
    print(f"loss system, {BEDS} beds at {LOAD} erlangs, ~{args.arrivals:,} arrivals, one run")
    for name, values in rates.items():
        print(f"  {name:7s} {statistics.median(values):12,.0f} events per CPU-second (median)")
    print(f"  engine / heapq loop: {statistics.median(vs_heapq):.2f}  (goal >= 0.5)")
    print(f"  engine / SimPy:      {statistics.median(vs_simpy):.2f}  (goal >= 5)")

    national = compile_scenario(scenario.load("peru-2016"))
    walls, cpus = [], []
    for _ in range(max(1, args.rounds // 2)):
        start, start_cpu = time.perf_counter(), time.process_time()
        runs = runner.replicate(national, replications=args.replications, workers=1)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    per_run = sum(r.events for r in runs) / args.replications
    years = (national.warmup + national.scenario.horizon_days) / 365
    print(
        f"peru-2016: {args.replications} replications on one core, each a national year"
        f" after a {national.warmup:.0f}-day warm-up ({years:.0f} simulated years)"
    )
    print(
        f"  wall {statistics.median(walls):.2f} s, CPU {statistics.median(cpus):.2f} s"
        f" (medians of {len(walls)}; goal < 5 s),"
        f" {per_run:,.0f} events per replication"
    )


if __name__ == "__main__":
    main()
