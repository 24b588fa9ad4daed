"""Fixtures: one migrated, seeded database per run; the app served in-process over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from service.core.db import Database
from service.core.settings import Settings
from service.main import create_app
from tests.support.databases import (
    ON_POSTGRES,
    create_database,
    drop_database,
    make_settings,
    migrate_and_seed,
)
from tests.support.factories import Factory


def pytest_report_header() -> str:
    return f"ruta: tests on {'PostgreSQL' if ON_POSTGRES else 'SQLite'}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if ON_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set RUTA_TEST_DATABASE_URL")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
async def settings(var_dir: Path) -> AsyncIterator[Settings]:
    url = await create_database(var_dir)
    settings = make_settings(url, var_dir)
    await migrate_and_seed(settings)
    yield settings
    await drop_database(url)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ruta.test") as c:
        yield c


@pytest.fixture(scope="session")
def factory(app: FastAPI, db: Database) -> Factory:
    return Factory(db, app.state.security)


@pytest.fixture
async def fresh_settings(var_dir: Path) -> AsyncIterator[Settings]:
    """A database of its own, migrated and seeded: for tests that tamper with it."""
    url = await create_database(var_dir)
    settings = make_settings(url, var_dir)
    await migrate_and_seed(settings)
    yield settings
    await drop_database(url)
