"""Machine instructions per request of Ruta's hot routes, counted by valgrind (callgrind), on
PostgreSQL and SQLite: a measure of a change that the machine's noise does not move.

bench/http_overhead.py is the measure of issue 12's goals (requests per second under wrk);
on a shared machine its rates move by a third from one minute to the next (2026-12-07:
/healthz 3,200-5,500/s within one run), which hides a change of 5-10 %. The instructions a
request costs do not move: the same code counts the same within a fraction of a percent.

For each database and route: a fresh database (migrated and seeded, a police user, one case
it identified), the app in this process under callgrind with counting off, 160 requests to
warm it, then N requests counted (8 callers at once, straight into the ASGI app: no HTTP
server, no socket, so uvicorn's own work is not in the count, nor is PostgreSQL's, another
process; the requests made as bench/registry_growth makes them). Routes as in
http_overhead: healthz, me, case, person (audited), intake.

    python bench/instructions.py [--requests 400] [--routes healthz,me,case,person,intake]
        [--databases postgresql,sqlite] [--against <another checkout>]

Prints instructions per request and the ratio healthz / route (what the route would reach of
/healthz's rate if instructions were all that counted, the HTTP server's share left out).
`--against`: the same counts for another checkout's code (a worktree of the commit to
compare with), side by side. Needs valgrind (`apt-get install -y valgrind`); about a minute
per route (intake: two). PostgreSQL as in http_overhead (RUTA_TEST_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUTES = ("healthz", "me", "case", "person", "intake")
_CALLERS = 8
_WARM = 160


def _count(checkout: Path, kind: str, route: str, requests: int) -> int:
    """Instructions per request of `route` on `kind`, the code of `checkout`."""
    with tempfile.TemporaryDirectory(prefix="ruta-instructions-") as tmp:
        out = Path(tmp) / "callgrind.out"
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(Path(__file__).resolve()),  # this file; the code is the checkout's (cwd)
                "--child",
                kind,
                route,
                str(requests),
            ],
            cwd=checkout,
            env=env,
            check=True,
            capture_output=True,
        )
        for line in out.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1]) // requests
    raise SystemExit(f"{route} on {kind}: callgrind wrote no totals")


def _child(kind: str, route: str, requests: int) -> None:
    """In the process valgrind runs: the app, its requests, counting on around them."""
    sys.path.insert(0, str(Path.cwd()))
    import uvloop

    uvloop.run(_drive(kind, route, requests))


async def _drive(kind: str, route: str, requests: int) -> None:
    from bench.http_overhead import _FIRST_CASE, _prepare
    from bench.registry_growth import _call
    from service.main import create_app
    from tests.support import databases

    var_dir = Path(tempfile.mkdtemp(prefix="ruta-bench-"))
    settings, token = await _prepare(kind, var_dir)
    app = create_app(settings)
    numbered = iter(range(10_000_000))
    auth = {"authorization": f"Bearer {token}", "host": "ruta.bench"}
    posting = {**auth, "content-type": "application/json"}

    async def call(method: str, path: str, body: bytes = b"") -> bytes:
        status, answer = await _call(app, method, path, posting if body else auth, body)
        if status >= 300:
            raise SystemExit(f"{method} {path}: {status} {answer!r}")
        return answer

    def intake_body() -> bytes:
        n = next(numbered)
        body = json.loads(json.dumps(_FIRST_CASE))
        body["person"]["given_name"] = f"Rosa {n}"
        body["person"]["document"]["number"] = f"{50_000_000 + n}"
        return json.dumps(body).encode()

    try:
        async with app.router.lifespan_context(app):
            case_id = json.loads(await call("POST", "/v1/cases", intake_body()))["id"]
            method, path = {
                "healthz": ("GET", "/healthz"),
                "me": ("GET", "/v1/me"),
                "case": ("GET", f"/v1/cases/{case_id}"),
                "person": ("GET", f"/v1/cases/{case_id}/person"),
                "intake": ("POST", "/v1/cases"),
            }[route]

            async def caller(count: int) -> None:
                for _ in range(count):
                    await call(method, path, intake_body() if method == "POST" else b"")

            await asyncio.gather(*(caller(_WARM // _CALLERS) for _ in range(_CALLERS)))
            _toggle("on")
            await asyncio.gather(*(caller(requests // _CALLERS) for _ in range(_CALLERS)))
            _toggle("off")
    finally:
        await databases.drop_database(settings.database_url)
        shutil.rmtree(var_dir, ignore_errors=True)


def _toggle(state: str) -> None:
    subprocess.run(
        ["callgrind_control", "--instr=" + state, str(os.getpid())],
        check=True,
        capture_output=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--against", type=Path, default=None)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "ROUTE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, route, count = args.child
        _child(kind, route, int(count))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install -y valgrind (Debian)")
    if args.requests % _CALLERS:
        raise SystemExit(f"--requests: a multiple of {_CALLERS}")
    os.environ.setdefault(
        "RUTA_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    checkouts = {"this": ROOT}
    if args.against is not None:
        checkouts["against"] = args.against.resolve()
    routes = args.routes.split(",")
    print(f"instructions per request, {args.requests} requests, {_CALLERS} callers, in-process")
    print(
        "| database | route | "
        + " | ".join(f"{name} ({path.name})" for name, path in checkouts.items())
        + " |"
    )
    print("| --- | --- |" + " --- |" * len(checkouts))
    for kind in args.databases.split(","):
        # Two counts at once: each is one process, and counting does not depend on the load.
        jobs = [(name, route) for route in routes for name in checkouts]
        with ThreadPoolExecutor(max_workers=2) as pool:
            found = pool.map(
                lambda job, kind=kind: _count(checkouts[job[0]], kind, job[1], args.requests),
                jobs,
            )
            counts = dict(zip(jobs, found, strict=True))
        for route in routes:
            cells = []
            for name in checkouts:
                n = counts[name, route]
                ratio = (
                    f" ({counts[name, 'healthz'] / n:.3f})"
                    if "healthz" in routes and route != "healthz"
                    else ""
                )
                cells.append(f"{n:,}{ratio}")
            print(f"| {kind} | {route} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
