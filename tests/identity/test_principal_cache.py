"""A worker remembers a token's principal for RUTA_PRINCIPAL_CACHE_SECONDS: a burst of
requests with one token reads its user once, and a change to the user (disabled, a new role,
a password reset) is seen within that many seconds, never later."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from service.core.db import Database, table_of
from service.core.settings import Settings
from service.identity.models import AppUser
from service.identity.rules import Role
from service.identity.service import PrincipalCache
from service.main import create_app
from tests.support.clients import client_from
from tests.support.factories import Factory
from tests.support.statements import counting_statements

SECONDS = 0.5


@pytest.fixture
async def cached(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app of its own whose workers remember principals for SECONDS."""
    application = create_app(settings.model_copy(update={"principal_cache_seconds": SECONDS}))
    async with application.router.lifespan_context(application):
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
