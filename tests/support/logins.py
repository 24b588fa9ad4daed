"""Password guesses against a running server from several client processes at once."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor


def _guess(url: str, username: str, passwords: Sequence[str]) -> list[tuple[int, str]]:
    """In one process: every password at once; (status, problem code) of each answer."""
    import httpx

    async def run() -> list[tuple[int, str]]:
        async with httpx.AsyncClient(base_url=url, timeout=180) as client:

            async def one(password: str) -> tuple[int, str]:
                response = await client.post(
                    "/v1/auth/token", data={"username": username, "password": password}
                )
                return response.status_code, str(response.json().get("code"))

            return list(await asyncio.gather(*(one(p) for p in passwords)))

    return asyncio.run(run())


def guess_from_processes(
    url: str, username: str, passwords: Sequence[str], *, processes: int
) -> list[tuple[int, str]]:
    """Split the passwords over several client processes started together."""
    shares = [list(passwords[i::processes]) for i in range(processes)]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=spawn) as pool:
        list(pool.map(int, range(processes)))  # start the processes before guessing
        futures = [pool.submit(_guess, url, username, share) for share in shares]
        return [answer for f in futures for answer in f.result()]
