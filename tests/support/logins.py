"""Password guesses against a running server from several client processes at once."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor


def _attempt(url: str, credentials: Sequence[tuple[str, str]]) -> list[tuple[int, str]]:
    """In one process: every (username, password) at once; (status, problem code) of each."""
    import httpx

    async def run() -> list[tuple[int, str]]:
        async with httpx.AsyncClient(base_url=url, timeout=180) as client:

            async def one(username: str, password: str) -> tuple[int, str]:
                response = await client.post(
                    "/v1/auth/token", data={"username": username, "password": password}
                )
                return response.status_code, str(response.json().get("code"))

            return list(await asyncio.gather(*(one(u, p) for u, p in credentials)))

    return asyncio.run(run())


def attempt_from_processes(
    url: str, credentials: Sequence[tuple[str, str]], *, processes: int
) -> list[tuple[int, str]]:
    """Split the (username, password) attempts over several client processes started
    together."""
    shares = [list(credentials[i::processes]) for i in range(processes)]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=spawn) as pool:
        list(pool.map(int, range(processes)))  # start the processes before guessing
        futures = [pool.submit(_attempt, url, share) for share in shares]
        return [answer for f in futures for answer in f.result()]


def guess_from_processes(
    url: str, username: str, passwords: Sequence[str], *, processes: int
) -> list[tuple[int, str]]:
    """Split guesses of one username's password over several client processes."""
    return attempt_from_processes(url, [(username, p) for p in passwords], processes=processes)
