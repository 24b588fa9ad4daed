"""Prometheus metrics: the HTTP requests, the database pool, and the exposition of /metrics.

Counters and histograms live in prometheus_client's default registry. When several worker
processes serve the API, `ruta serve --workers N` gives them one PROMETHEUS_MULTIPROC_DIR
(`prepare_multiprocess_dir`) before they start: each process writes its values to files there
and a scrape, answered by any worker, adds up every process's files. A module of another
domain declares its own Counter at import time (e.g. `ruta_db_retries_total`) and it is
exposed the same way, in one process or many.

Gauges about the domain (open alerts, occupancy ...) are not kept in files: they are read
from the database when /metrics is scraped (`ScrapeCollector`), so every worker answers the
same figures. Labels are route templates, methods, statuses and codes, never raw paths or
anything about a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Scope

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client chose how to keep values when it was imported: in files when this was set.
MULTIPROCESS = bool(os.environ.get(MULTIPROC_ENV))
CONTENT_TYPE = CONTENT_TYPE_LATEST

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A request no route matched (a probe of random paths) is one series, not one per path.
UNMATCHED = "unmatched"

HTTP_REQUESTS = Counter(
    "ruta_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "ruta_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
DB_POOL_CHECKED_OUT = Gauge(
    "ruta_db_pool_checked_out",
    "Database connections in use (each worker's sampled every second), every worker of this"
    " host added up.",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "ruta_db_pool_size",
    "Database connections each worker's pool keeps, every worker of this host added up.",
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "ruta_rate_limited_requests",
    "Requests refused with 429 by the request rate limit, by scope (user or address).",
    ["scope"],
)
RATE_LIMIT_STORE_ERRORS = Counter(
    "ruta_rate_limit_store_errors",
    "Rate-limit checks let through because the shared store (Redis) could not be reached.",
)


def prepare_multiprocess_dir(directory: Path) -> Path:
    """Create the directory the workers will share, or clear the metric files a previous
    run left in it (nothing else), and name it in the environment the workers inherit. Call
    before any worker starts, never while one runs: old files would add their counts to the
    new run's."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in directory.glob("*.db"):
        old.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def route_template(scope: Scope) -> str:
    """The template of the route that served the request (`/v1/cases/{case_id}`), never
    the path itself: that carries ids."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


def method_label(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in _METHODS else "other"


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration."""
    code = str(status)
    HTTP_REQUESTS.labels(method, route, code).inc()
    HTTP_DURATION.labels(method, route, code).observe(seconds)


def instrument_pool(engine: AsyncEngine) -> None:
    """The pool gauges of this process: its size, and the connections checked out as
    `sample_pool` finds them."""
    size = getattr(engine.pool, "size", None)
    if callable(size):
        DB_POOL_SIZE.set(size())
    sample_pool(engine)


def sample_pool(engine: AsyncEngine) -> None:
    """The connections this process's pool has checked out, now. Sampled (every second by
    each worker, `sample_pool_forever`, and by the worker that answers a scrape, before it
    answers) rather than counted at each checkout and check-in: a gauge written twice per
    checkout (in files, with several workers) cost 20-29k instructions each time."""
    checked_out = getattr(engine.pool, "checkedout", None)
    if callable(checked_out):
        DB_POOL_CHECKED_OUT.set(checked_out())


async def sample_pool_forever(engine: AsyncEngine, *, seconds: float = 1.0) -> None:
    """`sample_pool` every `seconds`, until cancelled (the app's lifespan runs it)."""
    while True:
        sample_pool(engine)
        await asyncio.sleep(seconds)


def forget_this_process() -> None:
    """A worker stopping: its live gauges (the pool) no longer count."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


@dataclass
class Sample:
    """One value of a gauge read at scrape time."""

    labels: dict[str, str]
    value: float


@dataclass
class GaugeReading:
    """A gauge read at scrape time: name, help, label names and its samples."""

    name: str
    documentation: str
    labels: list[str]
    samples: list[Sample] = field(default_factory=list)


class ScrapeCollector(Collector):
    """Gauges read once per scrape (from the database), handed over already read."""

    def __init__(self, readings: Iterable[GaugeReading]) -> None:
        self.readings = list(readings)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for reading in self.readings:
            family = GaugeMetricFamily(reading.name, reading.documentation, labels=reading.labels)
            for sample in reading.samples:
                family.add_metric([sample.labels[n] for n in reading.labels], sample.value)
            yield family


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


def _forget_dead_processes(directory: str) -> None:
    """Drop the live gauges of worker processes that died without saying so (kill -9): the
    supervisor restarts them with new pids, and their last pool figures would count forever."""
    pids = set()
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            found = _LIVE_GAUGE_FILE.match(name)
            if found:
                pids.add(int(found.group(1)))
    for pid in pids:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exposition(readings: Iterable[GaugeReading] = ()) -> bytes:
    """The text format of every metric: this process's (or, with several workers, all of
    theirs added up) and the gauges read for this scrape."""
    registry: CollectorRegistry
    if MULTIPROCESS:
        directory = os.environ[MULTIPROC_ENV]
        _forget_dead_processes(directory)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    registry.register(ScrapeCollector(readings))
    return generate_latest(registry)


class _Default(Collector):
    """The default registry, as one collector of a per-scrape registry."""

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        yield from REGISTRY.collect()


def scrape_allowed(
    *, token: str | None, production: bool, authorization: str | None
) -> bool | None:
    """Whether a scrape may read /metrics: with RUTA_METRICS_TOKEN set, only with that bearer
    token (False otherwise); unset, open outside production and absent in it (None)."""
    if token is None:
        return None if production else True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())
