"""Audit appends per second with 32 concurrent writers on PostgreSQL, against the same writes
without auditing, in one run.

Each writer runs real write transactions through the service layer: a case opened by an
identification (a case, an identification, its exploitation row and an involvement), which
with auditing also appends three chained audit events. The baseline is the same
transactions with the audit hook removed. Modes alternate over several rounds on a shared,
noisy machine; the reported figure is the median ratio audited / unaudited.

    python bench/audit_append.py [--rounds 3] [--seconds 8] [--processes 4] [--tasks 8]

Needs PostgreSQL: RUTA_BENCH_DATABASE_URL (a server URL; a throwaway database is created),
default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.audit import service as audit_service
from service.cases import service as case_service
from service.cases.schemas import CaseCreate
from service.core import migrations
from service.core.crypto import Keyring
from service.core.security import Actor, Security
from service.core.settings import Settings
from service.identity import service as identity_service
from service.identity.rules import Role
from service.main import audit_keys, open_database
from service.pathway import seed as reference_seed

EVENTS_PER_TRANSACTION = 3
BODY = CaseCreate.model_validate(
    {
        "identified_on": date(2026, 3, 1).isoformat(),
        "region": "17",
        "place": "Mazuko",
        "context": "police_operation",
        "exploitation": [{"form": "sexual_exploitation"}],
        "person": {"gender": "female", "age_estimate": 22, "nationality": "PER"},
    }
)


def _settings(url: str, var_dir: Path, pool: int) -> Settings:
    return Settings.model_validate(
        {
            "environment": "test",
            "database_url": url,
            "var_dir": var_dir,
            "secret_key": "bench-secret-key-bench-secret-key-bench",
            "audit_key": "bench-audit-key",
            "master_key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            "blind_index_key": "bench-blind-index-key",
            "db_pool_size": pool,
        }
    )


def _worker(
    url: str, var_dir: str, actor: dict[str, str], tasks: int, seconds: float, audited: bool
) -> int:
    """One process: `tasks` writers looping for `seconds`; returns transactions committed."""
    if not audited:
        event.remove(Session, "before_commit", audit_service._append_pending)
        setattr(case_service, "record_event", lambda *a, **k: None)  # noqa: B010
    settings = _settings(url, Path(var_dir), tasks)
    who = Actor(
        user_id=uuid.UUID(actor["user_id"]),
        username=actor["username"],
        organization_id=uuid.UUID(actor["organization_id"]),
        organization_code=actor["organization_code"],
        role=actor["role"],
    )

    async def run() -> int:
        db = open_database(settings)
        keyring = Keyring(settings)
        deadline = time.perf_counter() + seconds

        async def writer() -> int:
            done = 0
            while time.perf_counter() < deadline:
                async with db.session() as session:
                    await case_service.create_case(session, actor=who, keyring=keyring, data=BODY)
                done += 1
            return done

        try:
            return sum(await asyncio.gather(*(writer() for _ in range(tasks))))
        finally:
            await db.dispose()

    return asyncio.run(run())


async def _prepare(settings: Settings) -> dict[str, str]:
    await asyncio.to_thread(migrations.upgrade, settings)
    db = open_database(settings)
    async with db.session() as session:
        await reference_seed.seed(session)
        user = await identity_service.create_user(
            session,
            security=Security.from_settings(settings),
            actor=None,
            username="bench-writer",
            organization_code="PNP",
            role=Role.identifier,
            password=None,
        )
        org = await identity_service.get_organization_by_code(session, "PNP")
    await db.dispose()
    return {
        "user_id": str(user.id),
        "username": user.username,
        "organization_id": str(org.id),
        "organization_code": "PNP",
        "role": user.role,
    }


async def _verify(settings: Settings) -> audit_service.VerificationReport:
    db = open_database(settings)
    async with db.session(write=False) as session:
        report = await audit_service.verify_chains(session, keys=audit_keys(settings))
    await db.dispose()
    return report


def _admin_dsn(url: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database="postgres")
        .render_as_string(hide_password=False)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=8, help="writers per process")
    args = parser.parse_args()
    server = os.environ.get(
        "RUTA_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    name = f"ruta_bench_{uuid.uuid4().hex[:8]}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    var_dir = Path("bench/out")
    var_dir.mkdir(parents=True, exist_ok=True)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(_admin_dsn(server))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        settings = _settings(url, var_dir, 4)
        actor = asyncio.run(_prepare(settings))
        writers = args.processes * args.tasks
        rows: list[dict[str, Any]] = []
        spawn = multiprocessing.get_context("spawn")
        # A fresh process per run: the unaudited mode removes the audit hook from its process.
        with ProcessPoolExecutor(args.processes, mp_context=spawn, max_tasks_per_child=1) as pool:
            for round_no in range(1, args.rounds + 1):
                rates: dict[str, float] = {}
                for mode in ("unaudited", "audited") if round_no % 2 else ("audited", "unaudited"):
                    futures = [
                        pool.submit(
                            _worker,
                            url,
                            str(var_dir),
                            actor,
                            args.tasks,
                            args.seconds,
                            mode == "audited",
                        )
                        for _ in range(args.processes)
                    ]
                    rates[mode] = sum(f.result() for f in futures) / args.seconds
                ratio = rates["audited"] / rates["unaudited"]
                rows.append({"round": round_no, **rates, "ratio": ratio})
                print(
                    f"round {round_no}: audited {rates['audited']:.0f} tx/s"
                    f" ({rates['audited'] * EVENTS_PER_TRANSACTION:.0f} events/s),"
                    f" unaudited {rates['unaudited']:.0f} tx/s, ratio {ratio:.2f}",
                    flush=True,
                )
        report = asyncio.run(_verify(settings))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    median = statistics.median(r["ratio"] for r in rows)
    print(
        json.dumps(
            {
                "writers": writers,
                "rounds": rows,
                "median_ratio": round(median, 3),
                "chain_verified": report.ok,
                "events": report.events,
            }
        )
    )
    print(
        f"audit_append: {writers} writers, median ratio audited/unaudited = {median:.2f}"
        f" (goal >= 0.5); chain verified: {report.ok} ({report.events} events)"
    )
    if not report.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
