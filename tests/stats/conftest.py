"""A database of the statistics tests' own for the tables of events that happen "now"
(referrals, placements, unmet needs): other tests' events would otherwise fall in the period."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.core.db import Database
from service.core.settings import Settings
from service.main import create_app
from tests.support.databases import create_database, drop_database, make_settings, migrate_and_seed
from tests.support.factories import Factory


@dataclass(frozen=True)
class World:
    client: httpx.AsyncClient
    factory: Factory
    db: Database
    settings: Settings


@pytest.fixture(scope="module")
async def world(var_dir: Path) -> AsyncIterator[World]:
    url = await create_database(var_dir)
    settings = make_settings(url, var_dir)
    await migrate_and_seed(settings)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ruta.test") as client:
            db: Database = application.state.db
            yield World(client, Factory(db, application.state.security), db, settings)
    await drop_database(url)
