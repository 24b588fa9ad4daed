"""Faults under load, all on loopback: a 2-worker `ruta serve` on a PostgreSQL cluster of the
test's own (the machine's shared one is never stopped), keyed identifications from client
processes; one worker killed with SIGKILL, then PostgreSQL stopped for a few seconds and
started again. Answers are 2xx or 503 problems, never a hang or a 500; the service recovers
by itself; a retry of every unanswered request with its Idempotency-Key completes it exactly
once; nothing is half-written and the audit chain verifies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from service.core.security import Security
from service.core.settings import Settings
from service.main import open_database
from tests.support.audit import make_actor
from tests.support.cli import ruta
from tests.support.databases import make_settings, migrate_and_seed, query
from tests.support.factories import case_body
from tests.support.load import (
    from_processes,
    post_keyed_from_processes,
    running_server,
    server_workers,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# A client waiting longer than this for an answer counts it as a hang (a guard, not a timing).
HANG_SECONDS = 30
DRIVE_SECONDS = 16
PROCESSES = 3
CONCURRENCY = 4


class Cluster:
    """A throwaway PostgreSQL cluster on a free loopback port, run as the postgres user
    (initdb refuses root)."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.log = root / "server.log"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.root = root

    def _pg(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def init(self) -> None:
        self._pg(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log),
            "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip(f"needs the PostgreSQL 15 server binaries ({PG_BIN}) and runuser")
    root = Path(tempfile.mkdtemp(prefix="ruta-faults-pg-"))
    shutil.chown(root, "postgres", "postgres")
    own = Cluster(root)
    try:
        own.init()
        own.start()
        yield own
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            own.stop()
        shutil.rmtree(root, ignore_errors=True)


def _drive(
    url: str, token: str, share: Sequence[int], seconds: float, concurrency: int, started: str
) -> list[tuple[str, dict[str, Any], int, str]]:
    """In one client process: keyed identifications, back to back, for `seconds`; each as
    (key, body, status, problem code or content type). Status 0: the connection broke (the
    worker died); -1: no answer within HANG_SECONDS. A file in `started` says it began."""
    Path(started, str(share[0])).touch()

    async def run() -> list[tuple[str, dict[str, Any], int, str]]:
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + seconds
        answers: list[tuple[str, dict[str, Any], int, str]] = []
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=HANG_SECONDS) as c:

            async def loop() -> None:
                while time.monotonic() < deadline:
                    key, body = f"fault-{uuid.uuid4()}", case_body()
                    try:
                        r = await c.post("/v1/cases", json=body, headers={"Idempotency-Key": key})
                    except httpx.TimeoutException:
                        answers.append((key, body, -1, "timeout"))
                        continue
                    except httpx.TransportError:
                        answers.append((key, body, 0, "connection broken"))
                        await asyncio.sleep(0.05)
                        continue
                    ctype = r.headers.get("content-type", "")
                    code = r.json().get("code", ctype) if "json" in ctype else ctype
                    answers.append((key, body, r.status_code, str(code)))
                    if r.status_code == 503:
                        await asyncio.sleep(0.2)

            await asyncio.gather(*(loop() for _ in range(concurrency)))
        return answers

    return asyncio.run(run())


async def _until(check: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.5)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


async def test_service_survives_a_killed_worker_and_a_database_restart(
    cluster: Cluster, var_dir: Path
) -> None:
    admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres")
    try:
        await admin.execute("CREATE DATABASE ruta")
    finally:
        await admin.close()
    settings: Settings = make_settings(
        cluster.url("ruta"),
        var_dir,
        db_connect_timeout_seconds=2,
        db_pool_timeout_seconds=5,
    )
    await migrate_and_seed(settings)
    db = open_database(settings)
    security = Security.from_settings(settings)
    police = await make_actor(db, security)
    await db.dispose()
    token = security.tokens.issue(user_id=police.user_id, organization_code="PNP", role=police.role)

    started = var_dir / f"started-{uuid.uuid4().hex[:8]}"
    started.mkdir()
    with running_server(settings, workers=2) as url:
        drive = asyncio.ensure_future(
            asyncio.to_thread(
                from_processes,
                _drive,
                url,
                token,
                list(range(PROCESSES)),
                processes=PROCESSES,
                extra=(DRIVE_SECONDS, CONCURRENCY, str(started)),
            )
        )
        await _until(lambda: len(list(started.iterdir())) == PROCESSES, "clients started")
        await asyncio.sleep(2)
        workers = server_workers(url)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        await asyncio.sleep(2)
        await asyncio.to_thread(cluster.stop)
        readiness_while_away = await asyncio.to_thread(httpx.get, f"{url}/readyz", timeout=30)
        await asyncio.sleep(4)
        await asyncio.to_thread(cluster.start)
        answers, _ = await drive

        # It recovers by itself: ready again, and uvicorn's supervisor replaced the worker.
        await _until(lambda: _ready(url), "ready again after PostgreSQL restarted")
        await _until(
            lambda: len(server_workers(url) - {victim}) == 2, "the killed worker replaced", 30
        )

        # Every request without a 2xx, sent again with its key, completes.
        unanswered = [(k, b) for k, b, status, _ in answers if not 200 <= status < 300]
        retried = await asyncio.to_thread(
            post_keyed_from_processes,
            url,
            token,
            [("/v1/cases", body, key) for key, body in unanswered],
            processes=2,
            concurrency=4,
        )

    statuses = {(status, code) for _, _, status, code in answers}
    print("fault test answers:", Counter((status, code) for _, _, status, code in answers))
    assert readiness_while_away.status_code == 503
    assert readiness_while_away.headers["content-type"] == "application/problem+json"
    assert not [a for a in answers if a[2] == -1], "a request hung"
    assert not [a for a in answers if a[2] >= 500 and a[2] != 503], statuses
    assert {code for _, _, status, code in answers if status == 503} <= {
        "database_unavailable",
        "transaction_conflict",
    }
    assert (503, "database_unavailable") in statuses  # the outage was felt
    assert {status for _, _, status, _ in answers} <= {201, 503, 0}
    assert (201, "application/json") in statuses
    assert sorted({status for _, status, _, _ in retried}) == [201]

    keys = {key for key, _, _, _ in answers}
    db = open_database(settings)
    try:
        [(cases,)] = await query(db, "SELECT count(*) FROM case_file")
        [(stored,)] = await query(db, "SELECT count(*) FROM idempotency_key")
        [(created,)] = await query(
            db, "SELECT count(*) FROM audit_event WHERE action = 'case.created'"
        )
        [(identified,)] = await query(
            db, "SELECT count(*) FROM audit_event WHERE action = 'identification.created'"
        )
    finally:
        await db.dispose()
    # Each key did its work exactly once, with its audit events; none was half-done.
    assert cases == stored == created == identified == len(keys)
    verify = ruta(settings, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
