"""Request rate limits per address and per user: 429 problem documents with Retry-After, in
the process or in Redis (shared by every worker), and let through when Redis is away."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from service.core.settings import Settings
from service.identity.rules import Role
from service.main import create_app
from tests.core.test_metrics import scrape, value
from tests.support.clients import client_from
from tests.support.databases import make_settings
from tests.support.factories import Factory, user_in
from tests.support.load import running_server

REDIS_URL = "redis://127.0.0.1:6379/0"
STORES = {"memory": None, "redis": REDIS_URL}


def _redis_reachable() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


needs_redis = pytest.mark.skipif(not _redis_reachable(), reason="no Redis on 127.0.0.1:6379")


@pytest.fixture
def limited(settings: Settings, var_dir: Path) -> Callable[..., Settings]:
    """Settings of the test database with other limits (and rate-limit store)."""
    return lambda **overrides: make_settings(settings.database_url, var_dir, **overrides)


@pytest.fixture(params=list(STORES))
def store(request: pytest.FixtureRequest) -> str | None:
    """The URL of the rate-limit store under test: None in the process, or Redis (the test
    skipped when Redis is away)."""
    if request.param == "redis" and not _redis_reachable():
        pytest.skip("no Redis on 127.0.0.1:6379")
    url: str | None = STORES[request.param]
    return url


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def _address() -> str:
    """An address of its own for each test: Redis windows outlive a test run."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"


def _assert_too_many(response: httpx.Response, window: int) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "too_many_requests"
    assert 1 <= int(response.headers["retry-after"]) <= window


async def test_an_address_past_its_limit_gets_429_with_retry_after(
    limited: Callable[..., Settings], store: str | None
) -> None:
    settings = limited(redis_url=store, rate_limit_per_address=3, rate_limit_window_seconds=120)
    async with serving(settings) as app:
        async with client_from(app, _address()) as client:
            answers = [await client.get("/v1/me") for _ in range(5)]
            probe = await client.get("/healthz")
        async with client_from(app, _address()) as elsewhere:
            other = await elsewhere.get("/v1/me")

    # Counted before authentication: the three allowed are 401 (no token), then 429.
    assert [a.status_code for a in answers[:3]] == [401, 401, 401]
    for refused in answers[3:]:
        _assert_too_many(refused, 120)
    assert probe.status_code == 200  # probes are never limited
    assert other.status_code == 401  # another address has its own window


async def test_a_user_past_their_limit_gets_429_whatever_the_address(
    limited: Callable[..., Settings], store: str | None
) -> None:
    settings = limited(redis_url=store, rate_limit_per_user=2, rate_limit_window_seconds=60)
    async with serving(settings) as app:
        factory = Factory(app.state.db, app.state.security)
        busy = await factory.user("PNP", Role.identifier)
        calm = await factory.user("PNP", Role.identifier)
        answers = []
        for _ in range(3):
            async with client_from(app, _address()) as client:
                answers.append(await client.get("/v1/me", headers=busy.headers))
        async with client_from(app, _address()) as client:
            other = await client.get("/v1/me", headers=calm.headers)
            text = await scrape(client)

    assert [a.status_code for a in answers[:2]] == [200, 200]
    _assert_too_many(answers[2], 60)
    assert other.status_code == 200
    assert value(text, "ruta_rate_limited_requests_total", scope="user") >= 1


async def test_an_unreachable_redis_lets_requests_through_and_says_so(
    limited: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    away = limited(redis_url="redis://127.0.0.1:1/0", rate_limit_per_address=1)
    async with serving(away) as app, client_from(app, _address()) as client:
        before = value(await scrape(client), "ruta_rate_limit_store_errors_total")
        with caplog.at_level(logging.WARNING, logger="service.core.ratelimit"):
            answers = [await client.get("/healthz")]
            answers += [await client.get("/v1/me") for _ in range(4)]
        after = value(await scrape(client), "ruta_rate_limit_store_errors_total")

    assert [a.status_code for a in answers] == [200, 401, 401, 401, 401]
    assert after - before == 4
    # Logged once, not once per request.
    warnings = [r for r in caplog.records if "rate limit store unreachable" in r.getMessage()]
    assert len(warnings) == 1


def _me_many_times(url: str, token: str, times: int) -> list[int]:
    async def run() -> list[int]:
        headers = {"Authorization": f"Bearer {token}"}

        async def one() -> int:
            # A connection of its own per request: the kernel hands them to either worker.
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
                return (await client.get("/v1/me")).status_code

        return list(await asyncio.gather(*(one() for _ in range(times))))

    return asyncio.run(run())


@pytest.mark.slow
@needs_redis
async def test_two_workers_share_one_limit_in_redis(fresh_settings: Settings) -> None:
    limit = 10
    shared = fresh_settings.model_copy(
        update={
            "redis_url": REDIS_URL,
            "rate_limit_per_user": limit,
            "rate_limit_window_seconds": 600,
        }
    )
    user = await user_in(shared, "PNP", Role.identifier)

    with running_server(shared, workers=2) as url:
        statuses = await asyncio.to_thread(_me_many_times, url, user.token, 3 * limit)

    # Each worker counting alone would have let up to twice the limit through.
    assert sorted(statuses) == [200] * limit + [429] * (2 * limit)
