"""A worker remembers a token's principal for RUTA_PRINCIPAL_CACHE_SECONDS: a burst of
requests with one token reads its user once, and a change to the user (disabled, a new role,
a password reset) is seen within that many seconds, never later. On PostgreSQL it is seen at
once: triggers announce the change (migration 0026) and every worker listening forgets what
it remembered; a worker not listening remembers nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from service.core.db import Database, table_of
from service.core.settings import Settings
from service.identity.models import AppUser, Organization
from service.identity.rules import Role
from service.identity.service import PrincipalCache
from service.main import create_app
from tests.support.cli import ruta
from tests.support.clients import client_from
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser, user_in
from tests.support.load import running_server
from tests.support.statements import counting_statements

SECONDS = 0.5
# Longer than any test: on PostgreSQL only an announcement can make a change seen in time.
LONG = 30.0
# How long a worker may take to (re)connect its LISTEN: Database.listen pauses 2 s between.
LISTEN_SECONDS = 10.0
# How long an announced change may take to reach the worker.
HEARD_SECONDS = 2.0


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float, what: str) -> float:
    """Wait until the condition holds; how long it took (fails past `seconds`)."""
    start = time.monotonic()
    while not await condition():
        assert time.monotonic() - start <= seconds, what
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def _serving(app: FastAPI) -> bool:
    return bool(app.state.principals.serving)


@contextlib.asynccontextmanager
async def _app_remembering(settings: Settings, seconds: float) -> AsyncIterator[FastAPI]:
    """An app of its own whose workers remember principals for `seconds`, once it serves
    what it remembers (on PostgreSQL, once it listens)."""
    application = create_app(settings.model_copy(update={"principal_cache_seconds": seconds}))
    async with application.router.lifespan_context(application):
        await _until(lambda: _serving(application), LISTEN_SECONDS, "never listened")
        yield application


@pytest.fixture
async def cached(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app of its own whose workers remember principals for SECONDS."""
    async with _app_remembering(settings, SECONDS) as application:
        yield application


async def _disable(db: Database, user_id: object) -> None:
    async with db.session() as session:
        await session.exec(
            sa.update(table_of(AppUser))
            .where(table_of(AppUser).c.id == user_id)
            .values(is_active=False)
        )


async def test_a_token_principal_is_read_once_then_remembered(
    cached: FastAPI, factory: Factory
) -> None:
    user = await factory.user("PNP", Role.caseworker)
    db: Database = cached.state.db
    async with client_from(cached, "198.51.100.21") as client:
        with counting_statements(db) as first:
            assert (await client.get("/v1/me", headers=user.headers)).status_code == 200
        with counting_statements(db) as again:
            me = await client.get("/v1/me", headers=user.headers)
    assert len(first) == 1, first.statements
    assert len(again) == 0, again.statements
    assert me.json()["organization"]["code"] == "PNP"
    assert me.json()["role"] == "caseworker"


async def test_a_disabled_user_is_refused_within_the_cache_lag(
    cached: FastAPI, factory: Factory
) -> None:
    user = await factory.user("PNP", Role.caseworker)
    async with client_from(cached, "198.51.100.22") as client:
        assert (await client.get("/v1/me", headers=user.headers)).status_code == 200
        await _disable(cached.state.db, user.actor.user_id)
        disabled_at = time.monotonic()
        while (await client.get("/v1/me", headers=user.headers)).status_code == 200:
            assert time.monotonic() - disabled_at <= SECONDS, "served past the cache's lag"
            await asyncio.sleep(0.05)
        refused = await client.get("/v1/me", headers=user.headers)
    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] == "invalid_token"


async def test_a_new_role_applies_within_the_cache_lag(cached: FastAPI, factory: Factory) -> None:
    user = await factory.user("PNP", Role.caseworker)
    async with client_from(cached, "198.51.100.23") as client:
        assert (await client.get("/v1/me", headers=user.headers)).json()["role"] == "caseworker"
        async with cached.state.db.session() as session:
            await session.exec(
                sa.update(table_of(AppUser))
                .where(table_of(AppUser).c.id == user.actor.user_id)
                .values(role=Role.analyst.value)
            )
        await asyncio.sleep(SECONDS + 0.05)
        me = await client.get("/v1/me", headers=user.headers)
    assert me.json()["role"] == "analyst"


async def test_no_cache_reads_the_principal_at_every_request(
    app: FastAPI, factory: Factory, db: Database
) -> None:
    # The test settings' 0: the second request reads the user again.
    user = await factory.user("PNP", Role.caseworker)
    async with client_from(app, "198.51.100.24") as client:
        await client.get("/v1/me", headers=user.headers)
        with counting_statements(db) as again:
            assert (await client.get("/v1/me", headers=user.headers)).status_code == 200
    assert len(again) == 1, again.statements


async def test_the_cache_keeps_at_most_its_size_the_oldest_going_first(
    cached: FastAPI, factory: Factory
) -> None:
    cached.state.principals = PrincipalCache(60, size=2)
    db: Database = cached.state.db
    first, second, third = [await factory.user("PNP", Role.caseworker) for _ in range(3)]
    async with client_from(cached, "198.51.100.25") as client:
        for user in (first, second, third):
            await client.get("/v1/me", headers=user.headers)
        with counting_statements(db) as newest:
            await client.get("/v1/me", headers=third.headers)
        with counting_statements(db) as oldest:
            await client.get("/v1/me", headers=first.headers)
    assert len(newest) == 0, newest.statements
    assert len(oldest) == 1, oldest.statements  # the first was let go for the third


async def _me(client: httpx.AsyncClient, user: SignedInUser) -> httpx.Response:
    return await client.get("/v1/me", headers=user.headers)


def _set(table: str, **values: object) -> Callable[[Database, SignedInUser], Awaitable[None]]:
    async def change(db: Database, user: SignedInUser) -> None:
        row = table_of(AppUser)
        async with db.session() as session:
            if table == "app_user":
                await session.exec(
                    sa.update(row).where(row.c.id == user.actor.user_id).values(**values)
                )
            else:
                org = table_of(Organization)
                await session.exec(
                    sa.update(org).where(org.c.id == user.actor.organization_id).values(**values)
                )

    return change


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("change", "seen"),
    [
        (_set("app_user", is_active=False), lambda r: r.status_code == 401),
        (_set("app_user", role=Role.analyst.value), lambda r: r.json()["role"] == "analyst"),
        (_set("app_user", token_generation=7), lambda r: r.status_code == 401),
        (
            _set("organization", name="Policía Nacional (renamed)"),
            lambda r: r.json()["organization"]["name"] == "Policía Nacional (renamed)",
        ),
    ],
    ids=["disabled", "role", "password-reset", "organization"],
)
async def test_on_postgresql_a_change_is_seen_at_once_whatever_the_cache_s_seconds(
    fresh_settings: Settings,
    change: Callable[[Database, SignedInUser], Awaitable[None]],
    seen: Callable[[httpx.Response], bool],
) -> None:
    async with _app_remembering(fresh_settings, LONG) as app:
        db: Database = app.state.db
        user = await Factory(db, app.state.security).user("PNP", Role.caseworker)
        async with client_from(app, "198.51.100.26") as client:
            assert (await _me(client, user)).status_code == 200
            with counting_statements(db) as remembered:
                assert not seen(await _me(client, user))
            assert len(remembered) == 0, remembered.statements  # served from memory

            await change(db, user)
            took = await _until(
                lambda: _seen_now(client, user, seen), HEARD_SECONDS, "the change went unheard"
            )
    assert took < HEARD_SECONDS < LONG


async def _seen_now(
    client: httpx.AsyncClient, user: SignedInUser, seen: Callable[[httpx.Response], bool]
) -> bool:
    return seen(await _me(client, user))


@pytest.mark.postgres
async def test_a_worker_that_stopped_listening_remembers_nothing_until_it_listens_again(
    fresh_settings: Settings,
) -> None:
    async with _app_remembering(fresh_settings, LONG) as app:
        db: Database = app.state.db
        user = await Factory(db, app.state.security).user("PNP", Role.caseworker)
        async with client_from(app, "198.51.100.27") as client:
            await _me(client, user)
            # Its LISTEN connection dies (a server restart, a network cut).
            await query(
                db,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database()"
                " AND application_name = 'ruta-listen-ruta_principals'",
            )
            await _until(lambda: _not(_serving(app)), LISTEN_SECONDS, "the loss went unseen")
            with counting_statements(db) as deaf:
                await _me(client, user)
                await _me(client, user)
            # Listening again, it remembers again.
            await _until(lambda: _serving(app), LISTEN_SECONDS, "never listened again")
            await _me(client, user)
            with counting_statements(db) as again:
                assert (await _me(client, user)).status_code == 200
    assert len(deaf) == 2, deaf.statements  # read at every request
    assert len(again) == 0, again.statements


async def _not(condition: Awaitable[bool]) -> bool:
    return not await condition


@pytest.mark.postgres
async def test_ruta_user_disable_is_seen_by_every_worker_of_a_server_at_once(
    fresh_settings: Settings,
) -> None:
    settings = fresh_settings.model_copy(update={"principal_cache_seconds": LONG})
    user = await user_in(settings, "PNP", Role.caseworker)
    with running_server(settings, workers=2) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            # Both workers serve the token, and remember it (new connections spread them).
            for _ in range(20):
                assert (await client.get("/v1/me", headers=user.headers)).status_code == 200
            disabled = await asyncio.to_thread(
                ruta, settings, "user", "disable", user.actor.username
            )
            assert disabled.returncode == 0, disabled.stderr
            start = time.monotonic()
            answers = []
            while time.monotonic() - start < HEARD_SECONDS:
                answers.append((await client.get("/v1/me", headers=user.headers)).status_code)
            # New connections for the last ones: whichever worker takes them.
            for _ in range(20):
                async with httpx.AsyncClient(base_url=base, timeout=30) as other:
                    answers.append((await other.get("/v1/me", headers=user.headers)).status_code)
    assert answers[-20:] == [401] * 20
