"""GET /metrics: requests by route template, the pool, the domain's gauges, who may scrape,
and several real worker processes adding up."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY, Counter
from prometheus_client.parser import text_string_to_metric_families

from service.core import metrics
from service.core.db import Database
from service.core.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
from service.core.settings import Settings
from service.main import create_app
from tests.support.clients import client_from
from tests.support.databases import make_settings, query
from tests.support.factories import Factory, case_body
from tests.support.load import running_server

CASE_ROUTE = "/v1/cases/{case_id}"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called `name` in a scrape, by its sorted labels."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text, name).get(tuple(sorted(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_requests_are_counted_by_route_template_never_by_path(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP")
    created = await client.post("/v1/cases", json=case_body(), headers=police.headers)
    case_id = created.json()["id"]
    before = await scrape(client)

    for _ in range(3):
        assert (await client.get(f"/v1/cases/{case_id}", headers=police.headers)).status_code == 200
    missing = await client.get(f"/v1/cases/{case_id[:-4]}beef", headers=police.headers)
    after = await scrape(client)

    labels = {"method": "GET", "route": CASE_ROUTE}
    ok = "ruta_http_requests_total"
    assert value(after, ok, **labels, status="200") - value(before, ok, **labels, status="200") == 3
    assert value(after, ok, **labels, status=str(missing.status_code)) >= 1
    duration = "ruta_http_request_duration_seconds_count"
    assert (
        value(after, duration, **labels, status="200")
        - value(before, duration, **labels, status="200")
        == 3
    )
    assert case_id not in after
    assert case_id[:-4] not in after


async def test_an_unmatched_path_is_one_series(client: httpx.AsyncClient) -> None:
    await client.get("/v1/no-such-thing/123456789")
    text = await scrape(client)
    assert value(text, "ruta_http_requests_total", method="GET", route="unmatched", status="404")
    assert "123456789" not in text


async def test_the_pool_in_use_is_what_the_worker_has_checked_out(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Sampled: by the worker answering the scrape, before it answers, and every second by
    each worker (read here from the registry, without a scrape)."""
    async with db.session(write=False) as first, db.session(write=False) as second:
        await (await first.connection()).execute(sa.text("SELECT 1"))
        await (await second.connection()).execute(sa.text("SELECT 1"))
        assert value(await scrape(client), "ruta_db_pool_checked_out") >= 2
        metrics.DB_POOL_CHECKED_OUT.set(0)
        await asyncio.sleep(1.5)
        held = REGISTRY.get_sample_value("ruta_db_pool_checked_out") or 0
        assert held >= 2
    await asyncio.sleep(1.5)
    assert (REGISTRY.get_sample_value("ruta_db_pool_checked_out") or 0) <= held - 2


async def test_pool_and_domain_gauges_are_exposed(client: httpx.AsyncClient, db: Database) -> None:
    text = await scrape(client)

    assert value(text, "ruta_db_pool_size") >= 1
    # The scrape itself holds a connection while it reads the domain's gauges, not after.
    assert value(text, "ruta_db_pool_checked_out") >= 0
    beds = samples(text, "ruta_facility_beds")
    stored = await query(db, "SELECT code, region, capacity FROM facility WHERE status = 'open'")
    assert beds == {
        (("facility", code), ("region", region)): float(capacity)
        for code, region, capacity in stored
    }
    assert set(samples(text, "ruta_referral_deadlines_missed")) == {
        (("state", "expired"),),
        (("state", "overdue"),),
    }
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"ruta_alerts_unresolved", "ruta_facility_beds_in_use", "ruta_waitlist_requests"} <= (
        families
    )


async def test_a_counter_of_any_module_is_exposed(client: httpx.AsyncClient) -> None:
    # Another module (the database retries) declares its counter at import; nothing to register.
    probe = Counter("ruta_test_probe", "A counter declared outside core/metrics.py.")
    probe.inc(2)
    assert value(await scrape(client), "ruta_test_probe_total") == 2


def _hidden_settings(var_dir: Path, settings: Settings, **overrides: object) -> Settings:
    return make_settings(settings.database_url, var_dir, **overrides)


async def _status(settings: Settings, headers: dict[str, str] | None = None) -> int:
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_from(app, "198.51.100.9") as client:
        return (await client.get("/metrics", headers=headers or {})).status_code


async def test_metrics_need_the_token_when_one_is_set(var_dir: Path, settings: Settings) -> None:
    guarded = _hidden_settings(var_dir, settings, metrics_token="scrape-token-of-the-tests")

    assert await _status(guarded) == 401
    assert await _status(guarded, {"Authorization": "Bearer wrong-token"}) == 401
    assert await _status(guarded, {"Authorization": "Bearer scrape-token-of-the-tests"}) == 200


async def test_metrics_are_absent_in_production_without_a_token(
    var_dir: Path, settings: Settings
) -> None:
    production = _hidden_settings(
        var_dir,
        settings,
        environment="production",
        audit_signing_key=base64.b64encode(b"s" * 32).decode(),
    )
    assert await _status(production) == 404


def _total(texts: Iterable[str], route: str) -> set[float]:
    return {
        value(t, "ruta_http_requests_total", method="GET", route=route, status="200") for t in texts
    }


def _hit_then_scrape(url: str, requests: int) -> list[str]:
    for _ in range(requests):
        # A new connection each time: the kernel hands them to either worker.
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
    return [httpx.get(f"{url}/metrics", timeout=30).text for _ in range(6)]


@pytest.mark.slow
async def test_two_workers_add_up(fresh_settings: Settings) -> None:
    requests = 40
    with running_server(fresh_settings, workers=2) as url:
        scrapes = await asyncio.to_thread(_hit_then_scrape, url, requests)

    # Whichever worker answers the scrape, it counts the requests of both (the readiness
    # probes of running_server are on /readyz, and no scrape counts itself before answering).
    assert _total(scrapes, "/healthz") == {float(requests)}
    pool = {value(t, "ruta_db_pool_size") for t in scrapes}
    assert pool == {2.0 * _pool_size(fresh_settings)}


def _pool_size(settings: Settings) -> int:
    # SQLite's pool keeps SQLAlchemy's default of 5 connections; PostgreSQL's RUTA_DB_POOL_SIZE.
    return 5 if settings.is_sqlite else settings.db_pool_size


def test_a_metrics_dir_starts_each_run_without_the_last_runs_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, "restored after the test")
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_4242.db").write_bytes(b"stale")
    (directory / "README").write_text("not ours")

    prepare_multiprocess_dir(directory)

    assert sorted(p.name for p in directory.iterdir()) == ["README"]
    assert os.environ[MULTIPROC_ENV] == str(directory)
