"""Load: `ruta serve --workers 4` on a fresh PostgreSQL database, driven by many concurrent
clients with a realistic mix, then checked.

Each client, in a loop until the time is up, plays one pathway: the police identify a person
(POST /v1/cases), record her consent and refer her for shelter to MIMP; MIMP answers the
referral (accepts most, rejects some with a reason), reads her identifying data when it
accepts (an audited read, shared by her consent) and asks for a bed in one of a small set
of facilities; the police read the case a few times and list their open alerts. Every POST
carries an Idempotency-Key. Clients run in several processes (asyncio + httpx in each).

Reported: requests per second, p50/p95/p99 latency per operation, answers by status, each
worker's peak memory (VmHWM), and a scrape of GET /metrics taken half way. Checked after
the run (exit 1 if any fails): no server errors, no facility with more active placements
than beds, every referral in a state of the referral rules, and `ruta audit verify`.

    python bench/load.py [--clients 52] [--seconds 60] [--processes 4] [--workers 4]
        [--facilities 4] [--beds 15] [--metrics-out PATH]

PostgreSQL: RUTA_TEST_DATABASE_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
(a throwaway database is created beside it and dropped afterwards). RUTA_RATE_LIMIT_*
variables in the environment reach the server unchanged (raise the limits for a load run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault(
    "RUTA_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)

import httpx

from service.capacity import service as capacity_service
from service.capacity.rules import FacilityKind
from service.capacity.schemas import FacilityCreate
from service.core.security import Security
from service.core.settings import Settings
from service.main import open_database
from service.referrals.rules import ReferralStatus
from tests.support import databases
from tests.support.audit import make_actor
from tests.support.cli import ruta
from tests.support.databases import make_settings, migrate_and_seed, query
from tests.support.factories import case_body
from tests.support.load import from_processes, running_server, server_workers

Sample = tuple[str, int, str, float]  # operation, status (0: no answer), problem code, seconds
ACCEPTED_SHARE = 0.85
CASE_READS = 3


def _client_process(
    url: str, tokens: Sequence[str], share: Sequence[int], seconds: float, facilities: list[str]
) -> list[Sample]:
    """One client process: len(share) concurrent clients, each playing pathways in a loop."""
    police_token, shelter_token = tokens

    async def run() -> list[Sample]:
        samples: list[Sample] = []
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=len(share))
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

            async def call(
                op: str, token: str, method: str, path: str, body: Any = None
            ) -> httpx.Response | None:
                headers = {"Authorization": f"Bearer {token}"}
                if method == "POST":
                    headers["Idempotency-Key"] = str(uuid.uuid4())
                started = time.perf_counter()
                try:
                    response = await http.request(method, path, json=body, headers=headers)
                except httpx.HTTPError as exc:
                    samples.append((op, 0, type(exc).__name__, time.perf_counter() - started))
                    return None
                seconds = time.perf_counter() - started
                code = ""
                if response.headers.get("content-type") == "application/problem+json":
                    code = str(response.json().get("code"))
                samples.append((op, response.status_code, code, seconds))
                return response

            async def pathway(rng: random.Random) -> None:
                case = await call("identification", police_token, "POST", "/v1/cases", case_body())
                if case is None or case.status_code != 201:
                    return
                case_id = case.json()["id"]
                consent = {
                    "purposes": ["services", "data_sharing"],
                    "share_with": ["MIMP"],
                    "language": "es",
                }
                await call(
                    "consent", police_token, "POST", f"/v1/cases/{case_id}/consents", consent
                )
                referral = await call(
                    "referral",
                    police_token,
                    "POST",
                    f"/v1/cases/{case_id}/referrals",
                    {"to_org": "MIMP", "purpose": "shelter"},
                )
                if referral is not None and referral.status_code == 201:
                    referral_id = referral.json()["id"]
                    if rng.random() < ACCEPTED_SHARE:
                        answer = await call(
                            "referral_answer",
                            shelter_token,
                            "POST",
                            f"/v1/referrals/{referral_id}/accept",
                        )
                        if answer is not None and answer.status_code == 200:
                            # The shelter reads who she is (shared by her consent): an
                            # audited read, its event through the worker's audit appender.
                            await call(
                                "person_read",
                                shelter_token,
                                "GET",
                                f"/v1/cases/{case_id}/person",
                            )
                            await call(
                                "placement",
                                shelter_token,
                                "POST",
                                f"/v1/cases/{case_id}/placements",
                                {"facility_id": rng.choice(facilities)},
                            )
                    else:
                        await call(
                            "referral_answer",
                            shelter_token,
                            "POST",
                            f"/v1/referrals/{referral_id}/reject",
                            {"reason": "No bed for this profile in the region this week."},
                        )
                for _ in range(CASE_READS):
                    await call("case_read", police_token, "GET", f"/v1/cases/{case_id}")
                await call("alerts", police_token, "GET", "/v1/alerts")

            async def client(n: int) -> None:
                rng = random.Random(n)
                while time.monotonic() < deadline:
                    await pathway(rng)

            await asyncio.gather(*(client(n) for n in share))
        return samples

    return asyncio.run(run())


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _peak_memory_mb(pids: set[int]) -> dict[int, float]:
    peaks = {}
    for pid in sorted(pids):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks[pid] = int(line.split()[1]) / 1024
    return peaks


async def _prepare(
    var_dir: Path, *, facilities: int, beds: int, pool: int, pool_timeout: float
) -> tuple[Any, list[str], list[str]]:
    url = await databases.create_database(var_dir)
    settings = make_settings(
        url,
        var_dir,
        db_pool_size=pool,
        db_pool_timeout_seconds=pool_timeout,
        # The service's own principal cache (the test settings turn it off).
        principal_cache_seconds=Settings.model_fields["principal_cache_seconds"].default,
    )
    await migrate_and_seed(settings)
    db = open_database(settings)
    security = Security.from_settings(settings)
    police = await make_actor(db, security)
    shelter = await make_actor(db, security, org="MIMP")
    ids = []
    async with db.session() as session:
        for _ in range(facilities):
            facility = await capacity_service.create_facility(
                session,
                actor=None,
                data=FacilityCreate(
                    code=f"LOAD-{uuid.uuid4().hex[:8].upper()}",
                    name="Load bench shelter",
                    operator="MIMP",
                    region="17",
                    kind=FacilityKind.ngo_shelter,
                    capacity=beds,
                ),
            )
            ids.append(str(facility.id))
    await db.dispose()
    tokens = [
        security.tokens.issue(user_id=a.user_id, organization_code=a.organization_code, role=a.role)
        for a in (police, shelter)
    ]
    return settings, tokens, ids


async def _check(settings: Any) -> dict[str, Any]:
    db = open_database(settings)
    try:
        beyond = await query(
            db,
            "SELECT f.code, f.capacity, f.in_use, count(p.id) FROM facility f"
            " LEFT JOIN placement p ON p.facility_id = f.id AND p.status IN ('placed', 'held')"
            " GROUP BY f.id, f.code, f.capacity, f.in_use"
            " HAVING count(p.id) > f.capacity OR f.in_use > f.capacity",
        )
        states = dict(await query(db, "SELECT status, count(*) FROM referral GROUP BY status"))
        [(placed,)] = await query(db, "SELECT count(*) FROM placement WHERE status = 'placed'")
        [(cases,)] = await query(db, "SELECT count(*) FROM case_file")
        [(events,)] = await query(db, "SELECT count(*) FROM audit_event")
    finally:
        await db.dispose()
    return {
        "beyond_capacity": beyond,
        "referral_states": {str(k): v for k, v in states.items()},
        "illegal_states": sorted(set(map(str, states)) - {s.value for s in ReferralStatus}),
        "placed": placed,
        "cases": cases,
        "audit_events": events,
    }


def _scrape_later(url: str, delay: float, out: Path, result: dict[str, Any]) -> threading.Thread:
    def scrape() -> None:
        time.sleep(delay)
        try:
            response = httpx.get(f"{url}/metrics", timeout=30)
        except httpx.HTTPError as exc:
            result["metrics"] = f"no answer: {exc!r}"
            return
        result["metrics_status"] = response.status_code
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(response.text)
        result["metrics"] = response.text

    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    return thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=52)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--facilities", type=int, default=4)
    parser.add_argument("--beds", type=int, default=15)
    parser.add_argument("--pool", type=int, default=13, help="connections per worker")
    parser.add_argument(
        "--pool-timeout",
        type=float,
        default=30,
        help="seconds a request waits for a connection before its 503",
    )
    parser.add_argument("--metrics-out", type=Path, default=Path("var/bench-load-metrics.txt"))
    args = parser.parse_args()

    databases.ON_POSTGRES = True
    var_dir = Path(tempfile.mkdtemp(prefix="ruta-load-"))
    settings, tokens, facilities = asyncio.run(
        _prepare(
            var_dir,
            facilities=args.facilities,
            beds=args.beds,
            pool=args.pool,
            pool_timeout=args.pool_timeout,
        )
    )
    passthrough = {k: v for k, v in os.environ.items() if k.startswith("RUTA_RATE_LIMIT_")}
    scraped: dict[str, Any] = {}
    try:
        with running_server(settings, workers=args.workers, env=passthrough) as url:
            scraper = _scrape_later(url, args.seconds / 2, args.metrics_out, scraped)
            started = time.perf_counter()
            samples, _ = from_processes(
                _client_process,
                url,
                tokens,  # type: ignore[arg-type]
                list(range(args.clients)),
                processes=args.processes,
                extra=(args.seconds, facilities),
            )
            elapsed = time.perf_counter() - started
            peaks = _peak_memory_mb(server_workers(url))
            scraper.join(timeout=60)
        checks = asyncio.run(_check(settings))
        verify = ruta(settings, "audit", "verify")
    finally:
        asyncio.run(databases.drop_database(settings.database_url))

    by_op: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    problems: Counter[tuple[int, str]] = Counter()
    for op, status, code, seconds in samples:
        by_op[op].append(seconds)
        statuses[op][status] += 1
        if code:
            problems[(status, code)] += 1
    print(
        f"bench/load: {args.clients} clients in {args.processes} processes, {args.workers}"
        f" workers, {args.seconds:.0f} s, PostgreSQL; {platform.node()} ({os.cpu_count()} cores)"
    )
    print(f"{len(samples)} requests in {elapsed:.1f} s: {len(samples) / elapsed:.0f} req/s")
    print(
        f"{'operation':<16}{'count':>7}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  status"
    )
    for op in sorted(by_op):
        values = by_op[op]
        print(
            f"{op:<16}{len(values):>7}{len(values) / elapsed:>8.1f}"
            f"{_percentile(values, 50) * 1000:>9.0f}{_percentile(values, 95) * 1000:>9.0f}"
            f"{_percentile(values, 99) * 1000:>9.0f}  {dict(sorted(statuses[op].items()))}"
        )
    all_statuses = Counter(status for _, status, _, _ in samples)
    errors = {s: n for s, n in sorted(all_statuses.items()) if not 200 <= s < 300}
    server_errors = {s: n for s, n in errors.items() if s >= 500 or s == 0}
    print(f"answers that were not 2xx, by status: {errors}; by problem code: {dict(problems)}")
    print("peak memory per worker (VmHWM):", {p: f"{mb:.0f} MB" for p, mb in peaks.items()})
    print(
        f"after: {checks['cases']} cases, {checks['placed']} placed,"
        f" referrals by state {checks['referral_states']}, {checks['audit_events']} audit events"
    )
    metrics_status = scraped.get("metrics_status")
    if metrics_status == 200:
        lines = [line for line in scraped["metrics"].splitlines() if line.startswith("ruta_")]
        print(f"GET /metrics half way: 200, saved to {args.metrics_out}; ruta_ samples:")
        print("\n".join(f"  {line}" for line in lines[:40]))
    else:
        print(f"GET /metrics half way: {metrics_status or scraped.get('metrics')}")

    failures = []
    if server_errors:
        failures.append(f"server errors or unanswered requests: {server_errors}")
    if checks["beyond_capacity"]:
        failures.append(f"placements beyond capacity: {checks['beyond_capacity']}")
    if checks["illegal_states"]:
        failures.append(f"referrals in states the rules do not know: {checks['illegal_states']}")
    if verify.returncode != 0:
        failures.append(f"ruta audit verify failed: {verify.stdout}{verify.stderr}")
    print(f"audit verify: {'ok' if verify.returncode == 0 else 'FAILED'}")
    if max(peaks.values(), default=0) >= 200:
        print("note: a worker's peak memory reached the 200 MB goal")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        raise SystemExit(1)
    print("checks passed: 0 server errors, 0 placements beyond capacity, legal referral states")


if __name__ == "__main__":
    main()
