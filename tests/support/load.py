"""A real multi-worker server on a test database, and request load from several processes."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa

from service.core.db import Database
from service.core.settings import Settings
from tests.support.databases import settings_env

A = TypeVar("A")  # one answer
R = TypeVar("R")  # one request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def running_server(
    settings: Settings, *, workers: int = 4, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`ruta serve --workers N` on loopback; yields its base URL; stops it afterwards.
    `env`: variables set last (settings the Settings object does not carry)."""
    port = _free_port()
    env = {**os.environ, **settings_env(settings), "RUTA_LOG_LEVEL": "WARNING", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not become ready")
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def server_workers(url: str) -> set[int]:
    """The pids of the uvicorn worker processes of the `running_server` at `url`."""
    port = url.rsplit(":", 1)[1]
    procs: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        procs[int(entry.name)] = (ppid, cmdline)
    supervisors = {pid for pid, (_, cmd) in procs.items() if f"serve --port {port} " in cmd}
    return {
        pid
        for pid, (ppid, cmd) in procs.items()
        if ppid in supervisors and "spawn_main" in cmd and "resource_tracker" not in cmd
    }


def _fire(
    url: str, token: str, requests: Sequence[tuple[str, dict[str, Any]]], concurrency: int
) -> list[tuple[int, str]]:
    """In one process: POST every (path, body) with bounded concurrency; (status, outcome)."""
    return [
        (status, str(body.get("outcome") or body.get("code") or body.get("text")))
        for status, body in _post_all(url, token, requests, concurrency)
    ]


def fire_from_processes(
    url: str,
    token: str,
    requests: Sequence[tuple[str, dict[str, Any]]],
    *,
    processes: int,
    concurrency: int,
) -> tuple[list[tuple[int, str]], float]:
    """Split the requests over several client processes started together; (answers, seconds)."""
    return from_processes(_fire, url, token, requests, processes=processes, extra=(concurrency,))


def from_processes(
    sender: Callable[..., list[A]],
    url: str,
    token: str,
    requests: Sequence[R],
    *,
    processes: int,
    extra: tuple[Any, ...] = (),
) -> tuple[list[A], float]:
    """Deal the requests round-robin to `processes` client processes, started before the
    first request; each sends its share with `sender(url, token, share, *extra)`. Answers
    (process by process) and the seconds from the first request to the last answer."""
    shares = [list(requests[i::processes]) for i in range(processes)]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=spawn) as pool:
        list(pool.map(int, range(processes)))  # every process up before the first request
        started = time.perf_counter()
        futures = [pool.submit(sender, url, token, share, *extra) for share in shares]
        answers = [answer for f in futures for answer in f.result()]
        elapsed = time.perf_counter() - started
    return answers, elapsed


async def assert_no_case_holds_two_beds(db: Database) -> None:
    """The invariant checked after every concurrency test: one SQL query, no case with two
    active placements (placed or held)."""
    async with db.engine.connect() as conn:
        doubles = (
            await conn.execute(
                sa.text(
                    "SELECT case_id, count(*) FROM placement WHERE status IN ('placed', 'held')"
                    " GROUP BY case_id HAVING count(*) > 1"
                )
            )
        ).all()
    assert doubles == [], f"cases with two active placements: {doubles}"


def _post_all(
    url: str, token: str, requests: Sequence[tuple[str, dict[str, Any]]], concurrency: int
) -> list[tuple[int, dict[str, Any]]]:
    """In one process: POST every (path, body) with bounded concurrency; (status, JSON body)."""

    async def run() -> list[tuple[int, dict[str, Any]]]:
        limits = httpx.Limits(max_connections=concurrency)
        headers = {"Authorization": f"Bearer {token}"}
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(
            base_url=url, headers=headers, timeout=180, limits=limits
        ) as client:

            async def one(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
                async with gate:
                    response = await client.post(path, json=body)
                try:
                    answer = response.json()
                except ValueError:
                    answer = {"text": response.text[:200]}
                return response.status_code, answer if isinstance(answer, dict) else {}

            return list(await asyncio.gather(*(one(p, b) for p, b in requests)))

    return asyncio.run(run())


def post_from_processes(
    url: str,
    token: str,
    requests: Sequence[tuple[str, dict[str, Any]]],
    *,
    processes: int,
    concurrency: int,
) -> list[tuple[int, dict[str, Any]]]:
    """Like `fire_from_processes`, but answers each request with its status and JSON body."""
    answers, _ = from_processes(
        _post_all, url, token, requests, processes=processes, extra=(concurrency,)
    )
    return answers


def _post_keyed(
    url: str, token: str, requests: Sequence[tuple[str, dict[str, Any], str]], concurrency: int
) -> list[tuple[str, int, dict[str, Any], bool]]:
    """In one process: POST every (path, body, Idempotency-Key); (key, status, JSON body,
    whether the answer was marked as a replay)."""

    async def run() -> list[tuple[str, int, dict[str, Any], bool]]:
        limits = httpx.Limits(max_connections=concurrency)
        headers = {"Authorization": f"Bearer {token}"}
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(
            base_url=url, headers=headers, timeout=180, limits=limits
        ) as client:

            async def one(
                path: str, body: dict[str, Any], key: str
            ) -> tuple[str, int, dict[str, Any], bool]:
                async with gate:
                    response = await client.post(path, json=body, headers={"Idempotency-Key": key})
                replayed = response.headers.get("Idempotent-Replayed") == "true"
                return key, response.status_code, response.json(), replayed

            return list(await asyncio.gather(*(one(p, b, k) for p, b, k in requests)))

    return asyncio.run(run())


def post_keyed_from_processes(
    url: str,
    token: str,
    requests: Sequence[tuple[str, dict[str, Any], str]],
    *,
    processes: int,
    concurrency: int,
) -> list[tuple[str, int, dict[str, Any], bool]]:
    """Like `post_from_processes`, each request with its Idempotency-Key; answers carry the
    key and the replay mark."""
    answers, _ = from_processes(
        _post_keyed, url, token, requests, processes=processes, extra=(concurrency,)
    )
    return answers


Request = tuple[str, str, dict[str, Any], dict[str, str]]


def _send_all(
    url: str, token: str, requests: Sequence[Request]
) -> list[tuple[int, dict[str, Any]]]:
    """In one process: send every (method, path, body, headers) at once; (status, JSON body)."""

    async def run() -> list[tuple[int, dict[str, Any]]]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=180) as client:

            async def one(request: Request) -> tuple[int, dict[str, Any]]:
                method, path, body, extra = request
                response = await client.request(method, path, json=body, headers=extra)
                try:
                    answer = response.json()
                except ValueError:
                    answer = {"text": response.text[:200]}
                return response.status_code, answer if isinstance(answer, dict) else {}

            return list(await asyncio.gather(*(one(r) for r in requests)))

    return asyncio.run(run())


def send_from_processes(
    url: str, token: str, requests: Sequence[Request], *, processes: int
) -> list[tuple[int, dict[str, Any]]]:
    """Any method with its own headers (a PATCH with If-Match), split over several client
    processes started together, every request of a process in flight at once."""
    answers, _ = from_processes(_send_all, url, token, requests, processes=processes)
    return answers
