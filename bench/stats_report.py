"""The annual statistics report over 1,000,000 synthetic cases on PostgreSQL, computed in the
database, against the same counts written as plain SQL GROUP BY queries, in one run.

Every catalogue table is counted with its default breakdown by `counting.count_tables` (the
part of a release that touches the data; disclosure control then works on the few hundred
cells) and by a hand-written query; both must give the same cells. Printed: the median time
of each over several rounds, their ratio (goal: at most 2x the plain SQL) and the peak memory
of the process (goal: under 300 MB).

The cases: `--base` cases written through the services (`ruta demo generate`), then copied
in the database until there are `--cases` (the bulk path, `clone_cases`): every row a
service wrote about a case, copied with fresh keys, so each copy is another person with the
same non-identifying facts. Identifying data (encrypted identities, blind indexes) and audit
events are not copied: the statistics never read them.

    python bench/stats_report.py [--cases 1000000] [--base 2000] [--rounds 3] [--keep]
    python bench/stats_report.py --database ruta_bench_xxxxxxxx [--rounds 3]   (a kept one)

Needs PostgreSQL: RUTA_BENCH_DATABASE_URL (a server URL; a throwaway database is created and
dropped), default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import service.models  # noqa: F401  (every table in the metadata)
from service.core import migrations
from service.core.db import Database
from service.core.security import Security
from service.core.settings import Settings
from service.core.time import utcnow
from service.main import open_database
from service.pathway import demo
from service.pathway import seed as reference_seed
from service.stats.catalogue import CATALOGUE, breakdown
from service.stats.counting import Scope, count_tables

Cells = dict[tuple[str, ...], int]

# What a copy leaves out: identifying data (a copy is nobody), the audit trail, and what
# belongs to no case.
NOT_COPIED = frozenset(
    {"person_identity", "person_key", "person_blind_index", "person_identifier_claim"}
)
# Values unique across rows that are not keys: made unique per copy.
UNIQUE_TEXT = {"proceeding": ("complaint_number",)}


def _copied_tables() -> list[sa.Table]:
    """The tables holding a case's rows, parents first: case_file, person, proceeding (linked
    to its cases by proceeding_case) and every table with a foreign key to one of them
    (transitively)."""
    copied: list[sa.Table] = []
    names = {"case_file", "person", "proceeding"}
    for table in SQLModel.metadata.sorted_tables:
        if table.name in NOT_COPIED:
            continue
        parents = {fk.column.table.name for fk in table.foreign_keys} - {table.name}
        if table.name in names or parents & names:
            names.add(table.name)
            copied.append(table)
    return copied


def _copy_expression(table: sa.Table, column: sa.Column[Any], copied: set[str]) -> str:
    name = f'"{column.name}"'
    targets = {fk.column.table.name for fk in column.foreign_keys}
    if isinstance(column.type, sa.Uuid) and (column.primary_key or targets & copied):
        # A key of a copied row, or a reference to one: the same new key in every table.
        return f"md5({name}::text || ':' || copy)::uuid"
    if column.name in UNIQUE_TEXT.get(table.name, ()):
        return f"{name} || '-' || copy"
    return name


async def clone_cases(connection: AsyncConnection, *, copies: int) -> int:
    """Copy every case's rows `copies` times (the bulk path): one INSERT ... SELECT per table,
    each copy's keys derived from the original's. Returns the cases there are afterwards."""
    tables = _copied_tables()
    names = {t.name for t in tables}
    for table in tables:
        columns = [
            c
            for c in table.columns
            if not (c.primary_key and c.autoincrement is True and not isinstance(c.type, sa.Uuid))
        ]
        target = ", ".join(f'"{c.name}"' for c in columns)
        values = ", ".join(_copy_expression(table, c, names) for c in columns)
        # Names from the metadata, never from input.
        insert = (
            f'INSERT INTO "{table.name}" ({target})'  # noqa: S608
            f' SELECT {values} FROM "{table.name}", generate_series(1, :copies) AS copy'
        )
        await connection.execute(sa.text(insert), {"copies": copies})
    return int((await connection.execute(sa.text("SELECT count(*) FROM case_file"))).scalar_one())


# The same counts, written plainly on the data as it stands (the synthetic data has no late
# corrections or links, so "as known on now" is the current state).
PLAIN_PERSONS = """
WITH countable AS (
    SELECT c.case_id FROM consent c
    WHERE c.covers_statistics AND c.revoked_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM consent r
                      WHERE r.case_id = c.case_id AND r.refused AND r.version > c.version)
    UNION
    SELECT case_id FROM statistics_basis WHERE withdrawn_at IS NULL
),
screened AS (
    SELECT DISTINCT ON (case_id) case_id, victim_status FROM screening
    ORDER BY case_id, screened_at DESC, id DESC
),
counted AS (
    SELECT i.*, coalesce(p.merged_into, p.id) AS root
    FROM identification i
    JOIN person p ON p.id = i.person_id
    JOIN countable k ON k.case_id = i.case_id
    WHERE i.identified_on <= :end AND i.identified_on >= :first
      AND NOT EXISTS (SELECT 1 FROM screened s
                      WHERE s.case_id = i.case_id AND s.victim_status = 'not_a_victim')
),
first AS (
    SELECT DISTINCT ON (root) root, region, exploitation_country, person_age FROM counted
    ORDER BY root, identified_on, created_at, id
),
forms AS (
    SELECT c.root,
           bool_or(e.form IN ('sexual_exploitation', 'child_sex_tourism')) AS sexual,
           bool_or(e.form = 'forced_labour') AS labour,
           min(e.sector) FILTER (WHERE e.form = 'forced_labour') AS sector
    FROM counted c
    JOIN identification_exploitation e ON e.identification_id = c.id AND e.superseded_at IS NULL
    GROUP BY c.root
),
persons AS (
    SELECT f.root, f.region, f.person_age, p.gender, p.nationality,
           CASE WHEN f.person_age IS NULL THEN 'unknown'
                WHEN f.person_age < 18 THEN 'minor' ELSE 'adult' END AS minor,
           CASE WHEN k.sexual AND k.labour THEN 'both' WHEN k.sexual THEN 'sexual'
                WHEN k.labour THEN 'labour' ELSE 'other' END AS form
    FROM first f JOIN person p ON p.id = f.root LEFT JOIN forms k ON k.root = f.root
),
cases AS (SELECT DISTINCT case_id, root FROM counted)
"""

AGE_BAND = """CASE WHEN person_age IS NULL THEN 'unknown' WHEN person_age <= 13 THEN '0-13'
    WHEN person_age <= 17 THEN '14-17' WHEN person_age <= 29 THEN '18-29' ELSE '30+' END"""

PLAIN: dict[str, tuple[bool, str]] = {
    # code: (identified in the period only, the query after PLAIN_PERSONS)
    "V1": (True, "SELECT minor, gender, count(*) FROM persons GROUP BY 1, 2"),
    "V2": (True, "SELECT form, minor, gender, count(*) FROM persons GROUP BY 1, 2, 3"),
    "V3": (
        True,
        "SELECT CASE WHEN nationality IS NULL THEN 'unknown' WHEN nationality = 'PER'"
        " THEN 'peruvian' ELSE 'foreign' END, minor, gender, count(*) FROM persons"
        " GROUP BY 1, 2, 3",
    ),
    "V4": (
        True,
        "SELECT coalesce(region, 'abroad'), minor, gender, count(*) FROM persons GROUP BY 1, 2, 3",
    ),
    "V5": (
        True,
        "SELECT o.code, p.minor, p.gender, count(DISTINCT c.root) FROM counted c"
        " JOIN organization o ON o.id = c.organization_id JOIN persons p ON p.root = c.root"
        " GROUP BY 1, 2, 3",
    ),
    "V10": (True, f"SELECT {AGE_BAND}, minor, gender, count(*) FROM persons GROUP BY 1, 2, 3"),  # noqa: S608
    "R1": (
        True,
        "SELECT region, count(*) FROM persons WHERE region IS NOT NULL GROUP BY 1",
    ),
    "V6": (
        False,
        "SELECT o.code, CASE r.status WHEN 'requested' THEN 'pending' WHEN 'in_progress'"
        " THEN 'accepted' WHEN 'completed' THEN 'accepted' ELSE r.status END, p.minor, p.gender,"
        " count(DISTINCT c.root) FROM referral r JOIN cases c ON c.case_id = r.case_id"
        " JOIN persons p ON p.root = c.root JOIN organization o ON o.id = r.to_org_id"
        " WHERE r.created_at >= :starts_at AND r.created_at < :ends_before GROUP BY 1, 2, 3, 4",
    ),
    "V7": (
        False,
        "SELECT a.kind, p.minor, p.gender, count(DISTINCT c.root) FROM assistance a"
        " JOIN cases c ON c.case_id = a.case_id JOIN persons p ON p.root = c.root"
        " WHERE a.provided_on BETWEEN :start AND :end AND a.outcome IN ('provided', 'ongoing')"
        " GROUP BY 1, 2, 3",
    ),
    "V8": (
        False,
        "SELECT f.kind, p.minor, p.gender, count(DISTINCT c.root) FROM placement s"
        " JOIN facility f ON f.id = s.facility_id JOIN cases c ON c.case_id = s.case_id"
        " JOIN persons p ON p.root = c.root WHERE s.placed_at < :ends_before"
        " AND (s.ended_at IS NULL OR s.ended_at > :starts_at) GROUP BY 1, 2, 3",
    ),
    "V8U": (
        False,
        "SELECT u.reason, p.minor, p.gender, count(DISTINCT c.root) FROM unmet_need u"
        " JOIN cases c ON c.case_id = u.case_id JOIN persons p ON p.root = c.root"
        " WHERE u.recorded_at >= :starts_at AND u.recorded_at < :ends_before GROUP BY 1, 2, 3",
    ),
    "V9": (
        False,
        "SELECT p.gender, count(DISTINCT c.root) FROM custody_period h"
        " JOIN cases c ON c.case_id = h.case_id JOIN persons p ON p.root = c.root"
        " WHERE h.minor AND h.place_kind = 'police_station' AND h.start_at >= :starts_at"
        " AND h.start_at < :ends_before GROUP BY 1",
    ),
    "RP1": (
        False,
        "SELECT t.direction, p.minor, p.gender, count(DISTINCT c.root) FROM repatriation t"
        " JOIN cases c ON c.case_id = t.case_id JOIN persons p ON p.root = c.root"
        " WHERE t.arrived_on BETWEEN :start AND :end GROUP BY 1, 2, 3",
    ),
    "RS1": (
        False,
        "SELECT r.status, p.minor, p.gender, count(DISTINCT c.root) FROM residency_status r"
        " JOIN cases c ON c.case_id = r.case_id JOIN persons p ON p.root = c.root"
        " WHERE r.status IN ('temporary', 'permanent')"
        " AND r.effective_on BETWEEN :start AND :end GROUP BY 1, 2, 3",
    ),
    "P3": (
        False,
        "SELECT CASE WHEN paid >= amount_soles THEN 'paid' WHEN paid > 0 THEN 'partly_paid'"
        " ELSE 'unpaid' END, p.minor, p.gender, count(DISTINCT c.root) FROM ("
        "  SELECT o.case_id, o.amount_soles, (SELECT coalesce(sum(y.amount_soles), 0)"
        "  FROM restitution_payment y WHERE y.order_id = o.id) AS paid FROM restitution_order o"
        "  WHERE o.ordered_on BETWEEN :start AND :end) r"
        " JOIN cases c ON c.case_id = r.case_id JOIN persons p ON p.root = c.root"
        " GROUP BY 1, 2, 3",
    ),
}
DEFENDANTS = """
WITH d AS (
    SELECT coalesce(d.charge, d.charge_filed) AS charge, d.outcome, d.outcome_on,
           d.sentence_months, d.below_legal_minimum
    FROM defendant d JOIN proceeding p ON p.id = d.proceeding_id
    WHERE p.complaint_filed_on <= :end
)
"""
PLAIN_DEFENDANTS = {
    "P1": "SELECT charge, outcome, count(*) FROM d WHERE outcome = 'ongoing'"
    " OR outcome_on BETWEEN :start AND :end GROUP BY 1, 2",
    "P2": "SELECT CASE WHEN sentence_months IS NULL THEN 'unknown'"
    " WHEN sentence_months < 72 THEN 'under 6' WHEN sentence_months < 96 THEN '6-7'"
    " WHEN sentence_months < 144 THEN '8-11' WHEN sentence_months < 180 THEN '12-14'"
    " ELSE '15+' END, CASE WHEN below_legal_minimum THEN 'yes' ELSE 'no' END, count(*)"
    " FROM d WHERE outcome = 'convicted' AND outcome_on BETWEEN :start AND :end GROUP BY 1, 2",
}


def _params(scope: Scope) -> dict[str, Any]:
    return {
        "start": scope.start,
        "end": scope.end,
        "starts_at": scope.starts_at,
        "ends_before": scope.ends_before,
    }


async def plain_report(db: Database, scope: Scope) -> dict[str, Cells]:
    """Every catalogue table's cells, by the hand-written queries."""
    found: dict[str, Cells] = {}
    async with db.engine.connect() as conn:
        for code in CATALOGUE:
            if code in PLAIN_DEFENDANTS:
                sql, params = DEFENDANTS + PLAIN_DEFENDANTS[code], _params(scope)
            else:
                in_period, query = PLAIN[code]
                first = scope.start if in_period else date.min
                sql, params = PLAIN_PERSONS + query, {**_params(scope), "first": first}
            rows = (await conn.execute(sa.text(sql), params)).all()
            found[code] = {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in rows}
    return found


async def service_report(db: Database, scope: Scope) -> dict[str, Cells]:
    """Every catalogue table's cells, by `count_tables` with each table's default breakdown
    (as a release counts them: the counted persons once for all tables)."""
    async with db.session(write=False) as session:
        tables = await count_tables(
            session,
            tables=[(spec, breakdown(spec, None)) for spec in CATALOGUE.values()],
            scope=scope,
        )
    return {table.code: dict(table.cells) for table in tables}


def _nonzero(cells: Mapping[tuple[str, ...], int]) -> Cells:
    return {k: v for k, v in cells.items() if v}


def differences(ours: dict[str, Cells], plain: dict[str, Cells]) -> list[str]:
    """The tables whose non-zero cells differ between the two reports."""
    return [code for code in CATALOGUE if _nonzero(ours[code]) != _nonzero(plain[code])]


def _settings(url: str, var_dir: Path) -> Settings:
    return Settings.model_validate(
        {
            "environment": "test",
            "database_url": url,
            "var_dir": var_dir,
            "secret_key": "bench-secret-key-bench-secret-key-bench",
            "audit_key": "bench-audit-key",
            "master_key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            "blind_index_key": "bench-blind-index-key",
            "argon2_time_cost": 1,
            "argon2_memory_cost_kib": 1024,
            "db_pool_size": 2,
            "referral_sweep_seconds": 0,
        }
    )


def _admin_dsn(url: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database="postgres")
        .render_as_string(hide_password=False)
    )


async def _admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(_admin_dsn(server))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


async def _build(settings: Settings, *, cases: int, base: int, seed: int, year: int) -> int:
    await asyncio.to_thread(migrations.upgrade, settings)
    db = open_database(settings)
    try:
        async with db.session() as session:
            await reference_seed.seed(session)
        base = min(base, cases)
        done = 0

        def progress(step: int) -> None:
            nonlocal done
            done += step
            if done % 500 == 0:
                _say(f"{done}/{base} cases through the services")

        report = await demo.generate(
            db,
            security=Security.from_settings(settings),
            settings=settings,
            cases=base,
            seed=seed,
            year=year,
            progress=progress,
        )
        _say(report.describe())
        copies = math.ceil(cases / base) - 1
        async with db.engine.begin() as conn:
            total = await clone_cases(conn, copies=copies) if copies else base
        _say(f"copied to {total} cases; analysing")
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("VACUUM ANALYZE"))
        return total
    finally:
        await db.dispose()


async def _count_cases(settings: Settings) -> int:
    db = open_database(settings)
    try:
        async with db.engine.connect() as conn:
            return int((await conn.execute(sa.text("SELECT count(*) FROM case_file"))).scalar_one())
    finally:
        await db.dispose()


async def _measure(settings: Settings, *, year: int, rounds: int) -> dict[str, Any]:
    db = open_database(settings)
    start, _ = demo.period_of(year)
    scope = Scope(start=start, end=date(year, 12, 31), known_on=utcnow())
    timings: dict[str, list[float]] = {"service": [], "plain": []}
    try:
        ours = plain = {}
        for round_no in range(rounds):
            for mode in ("service", "plain") if round_no % 2 == 0 else ("plain", "service"):
                began = time.perf_counter()
                if mode == "service":
                    ours = await service_report(db, scope)
                else:
                    plain = await plain_report(db, scope)
                timings[mode].append(time.perf_counter() - began)
                _say(f"round {round_no + 1} {mode}: {timings[mode][-1]:.1f} s")
        return {"timings": timings, "differ": differences(ours, plain), "report": ours}
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--base", type=int, default=2000, help="cases through the services")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2016)
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    parser.add_argument(
        "--database", help="measure this database kept by an earlier --keep run (no build)"
    )
    args = parser.parse_args()
    server = os.environ.get(
        "RUTA_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    name = args.database or f"ruta_bench_{uuid.uuid4().hex[:8]}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    var_dir = Path("bench/out")
    var_dir.mkdir(parents=True, exist_ok=True)
    settings = _settings(url, var_dir)
    year = demo.default_year()
    built = 0.0
    if args.database:
        total = asyncio.run(_count_cases(settings))
        result = asyncio.run(_measure(settings, year=year, rounds=args.rounds))
    else:
        asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
        # JIT compiles each statement for 2 to 2.5 s at 100,000 cases, more than it saves on
        # these queries: off for both (a deployment setting; see bench/RESULTS.md).
        asyncio.run(_admin(server, f'ALTER DATABASE "{name}" SET jit = off'))
        try:
            built = time.perf_counter()
            total = asyncio.run(
                _build(settings, cases=args.cases, base=args.base, seed=args.seed, year=year)
            )
            built = time.perf_counter() - built
            result = asyncio.run(_measure(settings, year=year, rounds=args.rounds))
        finally:
            if args.keep:
                _say(f"kept {url}")
            else:
                asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    ours = statistics.median(result["timings"]["service"])
    plain = statistics.median(result["timings"]["plain"])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    v1 = sum(result["report"]["V1"].values())
    print(
        f"stats_report: {total} cases"
        + (
            f" (kept database {name})"
            if args.database
            else f" ({args.base} through the services, built in {built:.0f} s)"
        )
        + f", year {year}, {len(CATALOGUE)} tables, {v1} persons in V1;"
        f" count_tables median {ours:.2f} s, plain SQL median {plain:.2f} s,"
        f" ratio {ours / plain:.2f} (goal <= 2); peak memory {peak_mb:.0f} MB (goal < 300);"
        f" same numbers: {not result['differ']}"
        + (f" (differ: {', '.join(result['differ'])})" if result["differ"] else "")
    )
    if result["differ"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
