"""Liveness, readiness, request ids and problem documents for unexpected routes."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import httpx
from fastapi import FastAPI

from service.core import migrations
from service.core.settings import Settings
from service.main import create_app
from tests.support.clients import client_from
from tests.support.databases import create_database, drop_database, make_settings


async def test_healthz_and_readyz_when_migrated(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    ready = await client.get("/readyz")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def _ready_status(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_from(app, "127.0.0.1") as client:
        return await client.get("/readyz")


async def test_readyz_is_503_behind_the_migration_head(var_dir: Path) -> None:
    url = await create_database(var_dir)
    settings = make_settings(url, var_dir)
    try:
        empty = await _ready_status(settings)
        await asyncio.to_thread(migrations.upgrade, settings)
        migrated = await _ready_status(settings)
    finally:
        await drop_database(url)

    assert empty.status_code == 503
    assert empty.headers["content-type"] == "application/problem+json"
    assert empty.json()["code"] == "service_unavailable"
    assert "ruta migrate" in empty.json()["detail"]
    assert migrated.status_code == 200


async def test_readyz_is_503_when_the_database_is_unreachable(var_dir: Path) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    response = await _ready_status(make_settings(url, var_dir))
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"


async def test_request_id_is_echoed_and_minted(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-12345-xyz"})
    minted = await client.get("/healthz", headers={"X-Request-ID": "bad id!"})
    assert echoed.headers["x-request-id"] == "abc-12345-xyz"
    assert minted.headers["x-request-id"] != "bad id!"


async def test_unknown_route_and_method_are_problem_documents(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    missing = await client.get("/v1/nothing-here")
    wrong_method = await client.delete("/healthz")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"
    assert wrong_method.headers["content-type"] == "application/problem+json"


async def test_a_server_worker_leaves_its_start_up_heap_out_of_full_collections(
    settings: Settings,
) -> None:
    # A worker's app (`serving`, as `ruta serve` builds it) freezes what start-up built;
    # an app built for a test or a command does not touch the process's collector.
    gc.unfreeze()
    plain = create_app(settings)
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == 0
    worker = create_app(settings, serving=True)
    try:
        async with worker.router.lifespan_context(worker):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
