"""Placements per second under contention on one facility, against the uncontended rate, on
SQLite and on PostgreSQL, in one run.

A real `ruta serve --workers 4` server; 4 client processes with 16 requests in flight each.
Contended: every request asks for a bed in the same facility (every request locks the same
row). Uncontended: the same number of requests, each for a bed in a facility of its own.
Every request places (capacity is sized to the requests), so both measure placements. Modes
alternate over rounds with fresh cases; the figure is the median ratio contended/uncontended.

    python bench/placement_contention.py [--rounds 3] [--requests 400]
        [--databases sqlite,postgresql]

PostgreSQL: RUTA_TEST_DATABASE_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
(a throwaway database is created beside it). The harness (server, load, fixtures) is the one
the tests use: tests/support.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault(
    "RUTA_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)

from service.capacity import service as capacity_service
from service.capacity.rules import FacilityKind
from service.capacity.schemas import FacilityCreate
from service.core.security import Actor, Security
from service.core.settings import Settings
from service.main import open_database
from tests.support import databases
from tests.support.audit import create_cases, make_actor
from tests.support.databases import make_settings, migrate_and_seed, query
from tests.support.load import fire_from_processes, running_server


async def _facility(settings: Settings, capacity: int) -> str:
    db = open_database(settings)
    async with db.session() as session:
        facility = await capacity_service.create_facility(
            session,
            actor=None,
            data=FacilityCreate(
                code=f"B-{uuid.uuid4().hex[:10].upper()}",
                name="bench",
                operator="MIMP",
                region="17",
                kind=FacilityKind.ngo_shelter,
                capacity=capacity,
            ),
        )
    await db.dispose()
    return str(facility.id)


async def _new_cases(settings: Settings, actors: tuple[Actor, Actor], count: int) -> list[str]:
    """Cases the police identified and referred for shelter to MIMP, which accepted."""
    police, shelter = actors
    db = open_database(settings)
    before = {str(uuid.UUID(str(c))) for (c,) in await query(db, "SELECT id FROM case_file")}
    await create_cases(db, police, count, shelter=shelter)
    after = [str(uuid.UUID(str(c))) for (c,) in await query(db, "SELECT id FROM case_file")]
    await db.dispose()
    return [c for c in after if c not in before]


def _measure(url: str, token: str, requests: list[tuple[str, dict[str, Any]]]) -> float:
    answers, seconds = fire_from_processes(url, token, requests, processes=4, concurrency=16)
    failed = [a for a in answers if a != (201, "placed")]
    if failed:
        raise SystemExit(f"requests did not all place: {failed[:5]}")
    return len(answers) / seconds


async def _prepare(kind: str, var_dir: Path) -> tuple[Settings, tuple[Actor, Actor], str]:
    databases.ON_POSTGRES = kind == "postgresql"
    url = await databases.create_database(var_dir)
    settings = make_settings(url, var_dir, db_pool_size=8)
    await migrate_and_seed(settings)
    db = open_database(settings)
    security = Security.from_settings(settings)
    police = await make_actor(db, security)
    # MIMP places: it runs the facilities and accepted the shelter referrals.
    shelter = await make_actor(db, security, org="MIMP")
    await db.dispose()
    token = security.tokens.issue(
        user_id=shelter.user_id, organization_code="MIMP", role="identifier"
    )
    return settings, (police, shelter), token


def bench(kind: str, rounds: int, requests: int) -> dict[str, Any]:
    var_dir = Path(tempfile.mkdtemp(prefix="ruta-bench-"))
    settings, actors, token = asyncio.run(_prepare(kind, var_dir))
    rows = []
    try:
        with running_server(settings, workers=4) as url:
            for round_no in range(1, rounds + 1):
                rates = {}
                order = (
                    ("contended", "uncontended") if round_no % 2 else ("uncontended", "contended")
                )
                for mode in order:
                    cases = asyncio.run(_new_cases(settings, actors, requests))
                    if mode == "contended":
                        one = asyncio.run(_facility(settings, requests))
                        targets = [one] * requests
                    else:
                        targets = [asyncio.run(_facility(settings, 1)) for _ in range(requests)]
                    body = [
                        (f"/v1/cases/{c}/placements", {"facility_id": f})
                        for c, f in zip(cases, targets, strict=True)
                    ]
                    rates[mode] = _measure(url, token, body)
                ratio = rates["contended"] / rates["uncontended"]
                rows.append({"round": round_no, **rates, "ratio": ratio})
                print(
                    f"{kind} round {round_no}: contended {rates['contended']:.0f}/s,"
                    f" uncontended {rates['uncontended']:.0f}/s, ratio {ratio:.2f}",
                    flush=True,
                )
    finally:
        asyncio.run(databases.drop_database(settings.database_url))
    return {
        "database": kind,
        "rounds": rows,
        "median_ratio": statistics.median(r["ratio"] for r in rows),
        "median_contended": statistics.median(r["contended"] for r in rows),
        "median_uncontended": statistics.median(r["uncontended"] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    results = [bench(kind, args.rounds, args.requests) for kind in args.databases.split(",")]
    print(json.dumps(results, indent=1))
    for r in results:
        print(
            f"placement_contention[{r['database']}]: contended {r['median_contended']:.0f}/s,"
            f" uncontended {r['median_uncontended']:.0f}/s, median ratio {r['median_ratio']:.2f}"
        )


if __name__ == "__main__":
    main()
