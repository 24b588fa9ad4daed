"""Whether the hot reads stay as fast as the registry grows: the case read and the audited
read of identifying data, measured on a fresh registry and again after each batch of
identifications, against their own rate on the fresh registry (the baseline, same run).

A read whose statement scans a table that grows with the registry (every identification of
an organization, say) keeps its speed on the almost empty database of `http_overhead` and
loses it here. The application is called in-process (the ASGI app, as `ruta serve` builds it,
its heap frozen; uvloop), by 8 concurrent callers, so that nothing but the application and
the database is measured; the database is a fresh one, migrated and seeded.

    python bench/registry_growth.py [--batches 3] [--batch 2000] [--reads 1600]
        [--databases postgresql,sqlite]

Goal: each read at least 0.8 of its rate on the fresh registry after every batch (0.8 leaves
room for the noise of a shared machine; a scan halves it within a few thousand cases).
PostgreSQL from RUTA_TEST_DATABASE_URL or the local server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault(
    "RUTA_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)

import uvloop
from fastapi import FastAPI

from bench.http_overhead import _FIRST_CASE, _prepare
from service.main import create_app
from tests.support import databases

CALLERS = 8
GOAL = 0.8


async def _call(
    app: FastAPI, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    """One request through the ASGI app, as a server would make it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the request runs
        raise AssertionError("unreachable")

    status = 0
    chunks: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _rate(requests: int, one: Callable[[], Awaitable[None]]) -> float:
    """Requests per second of `one`, run `requests` times by CALLERS concurrent callers."""

    async def caller() -> None:
        for _ in range(requests // CALLERS):
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return (requests // CALLERS * CALLERS) / (time.perf_counter() - started)


async def bench(kind: str, *, batches: int, batch: int, reads: int) -> list[dict[str, float]]:
    var_dir = Path(tempfile.mkdtemp(prefix="ruta-bench-"))
    settings, token = await _prepare(kind, var_dir)
    app = create_app(settings, serving=True)
    auth = {"authorization": f"Bearer {token}", "host": "bench"}
    posting = {**auth, "content-type": "application/json"}
    counter = 0
    rows: list[dict[str, float]] = []
    try:
        async with app.router.lifespan_context(app):
            status, body = await _call(
                app, "POST", "/v1/cases", posting, json.dumps(_FIRST_CASE).encode()
            )
            if status != 201:
                raise SystemExit(f"the first case was refused: {status} {body!r}")
            case_path = f"/v1/cases/{json.loads(body)['id']}"

            async def read(path: str) -> None:
                status, body = await _call(app, "GET", path, auth)
                if status != 200:
                    raise SystemExit(f"GET {path}: {status} {body!r}")

            async def intake() -> None:
                nonlocal counter
                counter += 1
                person = {
                    "given_name": f"Rosa {counter}",
                    "family_name": "Quispe",
                    "gender": "female",
                    "age_estimate": 22,
                    "nationality": "PER",
                    "document": {"type": "dni", "number": str(50_000_000 + counter)},
                }
                case = {**_FIRST_CASE, "person": person}
                status, body = await _call(
                    app, "POST", "/v1/cases", posting, json.dumps(case).encode()
                )
                if status != 201:
                    raise SystemExit(f"an intake was refused: {status} {body!r}")

            await _rate(reads // 4, lambda: read(case_path))  # warm every path once
            await _rate(reads // 4, lambda: read(f"{case_path}/person"))
            for number in range(batches + 1):
                row = {
                    "cases": 1 + number * batch,
                    "case": await _rate(reads, lambda: read(case_path)),
                    "person": await _rate(reads, lambda: read(f"{case_path}/person")),
                }
                rows.append(row)
                print(
                    f"  {kind}: {row['cases']:,.0f} cases: case read {row['case']:,.0f}/s,"
                    f" audited read {row['person']:,.0f}/s",
                    flush=True,
                )
                if number < batches:
                    await _rate(batch, intake)
    finally:
        await databases.drop_database(settings.database_url)
        shutil.rmtree(var_dir, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=1600)
    parser.add_argument("--databases", default="postgresql,sqlite")
    args = parser.parse_args()
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()};"
        f" {CALLERS} callers in-process, {args.reads} reads per measure,"
        f" {args.batch} identifications between measures"
    )
    table = [
        "| database | cases | case read /s (ratio to fresh) | audited read /s (ratio) |",
        "| --- | --- | --- | --- |",
    ]
    verdicts = []
    for kind in args.databases.split(","):
        databases.ON_POSTGRES = kind == "postgresql"
        rows = uvloop.run(bench(kind, batches=args.batches, batch=args.batch, reads=args.reads))
        fresh = rows[0]
        table += [
            f"| {kind} | {row['cases']:,.0f} | {row['case']:,.0f} "
            f"({row['case'] / fresh['case']:.2f}) | {row['person']:,.0f} "
            f"({row['person'] / fresh['person']:.2f}) |"
            for row in rows
        ]
        worst = min(min(r["case"] / fresh["case"], r["person"] / fresh["person"]) for r in rows)
        met = "met" if worst >= GOAL else "NOT met"
        verdicts.append(f"{kind}: lowest ratio {worst:.2f} (goal >= {GOAL}): {met}")
    print("\n".join(table))
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
