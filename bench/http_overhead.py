"""Requests per second of Ruta's hot routes against the bare /healthz, one worker, on
PostgreSQL and on SQLite, in one run.

For each database: a fresh database (migrated and seeded), a user of the police (PNP) and one
case it identified, then `ruta serve` with ONE worker (the same settings for every route).
wrk (32 connections, one thread) drives in turn, round after round, alternating the order:

- `healthz`   GET /healthz: the bare FastAPI route, the same middleware;
- `me`        GET /v1/me: an authenticated route that reads nothing more (the principal,
              cached as in production): for reference, the floor of every authenticated
              route, what the bearer token, the dependencies and the session cost; no goal;
- `case`      GET /v1/cases/{id}: an authenticated case read;
- `person`    GET /v1/cases/{id}/person: a read of identifying data (audited: it writes);
- `intake`    POST /v1/cases: an identification with a person (names and a document that
              differ at every request), no Idempotency-Key (keys are optional).

On PostgreSQL each intake run is followed by an ANALYZE, as autovacuum would follow it on a
server that runs it (see `_analyze`). Requests that fail (not 2xx/3xx, or no answer in 30 s)
are counted and printed. The figure
per route is the median over rounds of its rate divided by the same round's /healthz rate.
Goals (issue 12): case read >= 0.3 (0.1 as a first step), audited read >= 0.2, intake >= 0.1.

    python bench/http_overhead.py [--rounds 3] [--seconds 10] [--connections 32]
        [--databases postgresql,sqlite]

PostgreSQL: RUTA_TEST_DATABASE_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
(a throwaway database is created beside it). Needs wrk: `apt-get install -y wrk` (Debian),
`brew install wrk` (macOS). The server is the code of this checkout (its directory is put
first on the server's PYTHONPATH): run the file of another checkout to measure that one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault(
    "RUTA_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)

from service.core.security import Security
from service.core.settings import Settings
from service.main import open_database
from tests.support import databases
from tests.support.audit import make_actor
from tests.support.databases import make_settings, migrate_and_seed
from tests.support.load import running_server

ROOT = Path(__file__).resolve().parents[1]
ROUTES = ("healthz", "me", "case", "person", "intake")
_PRINCIPAL_CACHE = Settings.model_fields["principal_cache_seconds"].default
GOALS = {"case": (0.3, 0.1), "person": (0.2, None), "intake": (0.1, None)}

# The case read and the audited read: only headers.
_GET = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {token}"
"""

# An identification of a new person at every request: names and a document of their own,
# so that duplicate detection has real work and no two persons share a document.
_INTAKE = """
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
local prefix = tostring(math.random(100000, 999999))
request = function()
  counter = counter + 1
  local body = string.format([[{{
    "identified_on": "2026-03-01", "region": "17", "place": "Mazuko",
    "context": "police_operation",
    "exploitation": [{{"form": "sexual_exploitation"}}],
    "person": {{"given_name": "Rosa %d", "family_name": "Quispe", "gender": "female",
      "age_estimate": 22, "nationality": "PER",
      "document": {{"type": "dni", "number": "%s%07d"}}}}}}]], counter, prefix, counter)
  return wrk.format(nil, nil, nil, body)
end
"""

_FIRST_CASE = {
    "identified_on": "2026-03-01",
    "region": "17",
    "place": "Mazuko",
    "context": "police_operation",
    "exploitation": [{"form": "sexual_exploitation"}],
    "person": {
        "given_name": "Ana",
        "family_name": "Mamani",
        "gender": "female",
        "age_estimate": 19,
        "nationality": "PER",
        "document": {"type": "dni", "number": "40000001"},
    },
}


async def _prepare(kind: str, var_dir: Path) -> tuple[Settings, str]:
    """A fresh database of this kind, migrated and seeded, and a police user's token."""
    databases.ON_POSTGRES = kind == "postgresql"
    url = await databases.create_database(var_dir)
    # The service's own principal cache (the test settings turn it off).
    settings = make_settings(
        url, var_dir, db_pool_size=10, principal_cache_seconds=_PRINCIPAL_CACHE
    )
    await migrate_and_seed(settings)
    db = open_database(settings)
    security = Security.from_settings(settings)
    police = await make_actor(db, security)
    await db.dispose()
    token = security.tokens.issue(
        user_id=police.user_id, organization_code="PNP", role="identifier"
    )
    return settings, token


async def _analyze(settings: Settings) -> None:
    """What autovacuum does as tables grow (this machine's PostgreSQL runs with it off): an
    intake round adds thousands of rows, and PostgreSQL re-plans a connection's cached
    statements only when their tables' statistics change. Without it, the audited read's
    plan, made when the tables held a row, scanned the whole person table at every read
    after the first intake round (its rate fell by two fifths; bench/RESULTS.md)."""
    db = open_database(settings)
    try:
        async with db.engine.connect() as connection:
            await connection.exec_driver_sql("ANALYZE")
            await connection.commit()
    finally:
        await db.dispose()


def _wrk(url: str, script: Path, *, seconds: int, connections: int) -> tuple[float, int]:
    """Requests per second of one wrk run, and how many requests failed (an answer other than
    2xx/3xx, or no answer within 30 s)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise SystemExit(f"wrk printed no rate:\n{out}")
    bad = (int(failed.group(1)) if failed else 0) + (
        sum(int(n) for n in errors.groups()) if errors else 0
    )
    return float(match.group(1)), bad


def bench(kind: str, rounds: int, seconds: int, connections: int) -> dict[str, Any]:
    var_dir = Path(tempfile.mkdtemp(prefix="ruta-bench-"))
    settings, token = asyncio.run(_prepare(kind, var_dir))
    scripts = {
        "healthz": var_dir / "healthz.lua",
        "get": var_dir / "get.lua",
        "intake": var_dir / "intake.lua",
    }
    scripts["healthz"].write_text('wrk.method = "GET"\n')
    scripts["get"].write_text(_GET.format(token=token))
    scripts["intake"].write_text(_INTAKE.format(token=token))
    rates: dict[str, list[float]] = {route: [] for route in ROUTES}
    failures = dict.fromkeys(ROUTES, 0)
    try:
        with running_server(settings, workers=1) as base:
            auth = {"Authorization": f"Bearer {token}"}
            created = httpx.post(f"{base}/v1/cases", json=_FIRST_CASE, headers=auth, timeout=30)
            created.raise_for_status()
            case_id = created.json()["id"]
            targets = {
                "healthz": (f"{base}/healthz", scripts["healthz"]),
                "me": (f"{base}/v1/me", scripts["get"]),
                "case": (f"{base}/v1/cases/{case_id}", scripts["get"]),
                "person": (f"{base}/v1/cases/{case_id}/person", scripts["get"]),
                "intake": (f"{base}/v1/cases", scripts["intake"]),
            }
            for url, script in targets.values():  # warm every path once
                if _wrk(url, script, seconds=1, connections=4)[1]:
                    raise SystemExit(f"{url}: requests fail")
            for round_no in range(rounds):
                order = ROUTES if round_no % 2 == 0 else tuple(reversed(ROUTES))
                for route in order:
                    url, script = targets[route]
                    rate, bad = _wrk(url, script, seconds=seconds, connections=connections)
                    rates[route].append(rate)
                    failures[route] += bad
                    if route == "intake" and kind == "postgresql":
                        asyncio.run(_analyze(settings))
                print(
                    f"  {kind} round {round_no + 1}: "
                    + ", ".join(f"{r} {rates[r][-1]:,.0f}/s" for r in ROUTES),
                    flush=True,
                )
    finally:
        asyncio.run(databases.drop_database(settings.database_url))
        shutil.rmtree(var_dir, ignore_errors=True)
    ratios = {
        route: statistics.median(
            rate / health for rate, health in zip(rates[route], rates["healthz"], strict=True)
        )
        for route in ROUTES
        if route != "healthz"
    }
    return {
        "rates": {r: statistics.median(v) for r, v in rates.items()},
        "ratios": ratios,
        "failures": failures,
    }


def _verdict(route: str, ratio: float) -> str:
    if route not in GOALS:
        return "reference: no goal"
    goal, first_step = GOALS[route]
    if ratio >= goal:
        return f"goal >= {goal}: met"
    if first_step is not None and ratio >= first_step:
        return f"goal >= {goal}: first step (>= {first_step}) met"
    return f"goal >= {goal}: NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--databases", default="postgresql,sqlite")
    args = parser.parse_args()
    # The server runs this checkout's code, whatever is installed and wherever the command
    # was typed: `python -m service` puts the working directory first on its path, before
    # PYTHONPATH (until 2026-11-29 a run from another checkout's directory measured that one).
    os.chdir(ROOT)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk (Debian), brew install wrk (macOS)")
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}; one worker, wrk -t1 -c{args.connections} "
        f"-d{args.seconds}s, {args.rounds} rounds; code {ROOT} ({_commit()})",
        flush=True,
    )
    results = {}
    for kind in args.databases.split(","):
        results[kind] = bench(kind, args.rounds, args.seconds, args.connections)
    print()
    print("| database | route | req/s (median) | ratio to /healthz (median) | failed | verdict |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind, result in results.items():
        rates, ratios, failures = result["rates"], result["ratios"], result["failures"]
        print(f"| {kind} | healthz | {rates['healthz']:,.0f} | 1 | {failures['healthz']} | |")
        for route in ROUTES[1:]:
            print(
                f"| {kind} | {route} | {rates[route]:,.0f} | {ratios[route]:.3f} | "
                f"{failures[route]} | {_verdict(route, ratios[route])} |"
            )


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


if __name__ == "__main__":
    main()
