"""create_app(settings) -> FastAPI: lifespan, routers, error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware

from service.alerts.router import router as alerts_router
from service.audit import service as audit_service
from service.audit.router import router as audit_router
from service.audit.rules import AuditKeys
from service.capacity.router import router as capacity_router
from service.cases.router import router as cases_router
from service.consent.router import router as consent_router
from service.core import metrics
from service.core.db import Database
from service.core.errors import declare_problems, install_problem_handlers
from service.core.http import BodySizeGuard, NoStoreMiddleware
from service.core.logs import configure_logging
from service.core.migrations import head_revisions
from service.core.observability import ObservabilityMiddleware
from service.core.ratelimit import AddressRateLimitMiddleware, RateLimiter
from service.core.requestid import RequestIdMiddleware, bind_request_id
from service.core.security import Security
from service.core.settings import Settings
from service.core.tracing import RequestSpans, tracer_provider
from service.identity.router import router as identity_router
from service.identity.service import PRINCIPALS_CHANNEL, PrincipalCache
from service.legal.router import router as legal_router
from service.pathway import sweep
from service.persons.router import router as persons_router
from service.planning.jobs import SimulationRunner
from service.planning.router import router as planning_router
from service.protection.router import router as protection_router
from service.referrals.router import router as referrals_router
from service.repatriation.router import router as repatriation_router
from service.stats.router import router as stats_router
from service.system.docs import router as docs_router
from service.system.router import router as system_router

log = logging.getLogger(__name__)

API_TITLE = "Ruta"
API_VERSION = "0.1.0"
API_DESCRIPTION = (
    "Case management for Peru's referral pathway for victims of human trafficking: "
    "identification, screening and consent, referrals, protection services and closure, "
    "with an audit trail no one can quietly rewrite. Every error is an RFC 9457 problem "
    "document (application/problem+json) with a stable `code`."
)


def open_database(settings: Settings) -> Database:
    """The database, with sessions that can seal audit events."""
    return Database(settings, session_info=audit_service.session_info(audit_keys(settings)))


def open_stats_database(settings: Settings) -> Database | None:
    """The statistics replica, read-only, when RUTA_STATS_DATABASE_URL names one."""
    if not settings.stats_database_url:  # unset, or set empty (compose's default)
        return None
    return Database(settings, url=settings.stats_database_url, read_only=True)


def audit_keys(settings: Settings) -> AuditKeys:
    """The audit keys the settings name: the active one seals, all of them verify."""
    return AuditKeys(active_id=settings.audit_key_id, keys=settings.audit_key_map())


async def _sweep_forever(db: Database, settings: Settings) -> None:
    """Run the periodic sweep in the background; every worker may run it (rows are locked,
    and nothing is expired twice)."""
    while True:
        await asyncio.sleep(settings.referral_sweep_seconds)
        try:
            bind_request_id(f"sweep-{uuid.uuid4().hex[:12]}")
            report = await sweep.sweep(db, settings=settings)
            if any(vars(report).values()):
                log.info("sweep: %s", report.describe())
        except Exception:  # the sweep must outlive a failed round (database restarting ...)
            log.exception("sweep failed")


def _settle_heap() -> None:
    """Leave what start-up built (modules, routes, compiled schemas, SQLAlchemy's mappers:
    hundreds of thousands of objects that live as long as the worker) out of the garbage
    collector's full collections. Without this, every full collection walks all of them
    again, and a profile of the case read under load found about a tenth of the worker's
    time in collections triggered by a request's allocations."""
    gc.collect()
    gc.freeze()


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: Settings | None = None, *, serving: bool = False) -> FastAPI:
    """Build the application; the database opens in the lifespan. `serving`: the app is a
    server worker's, the process's only work (see `_settle_heap`)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = open_database(settings)
        app.state.db = db
        stats_db = open_stats_database(settings)
        app.state.stats_db = stats_db
        appender = audit_service.AuditAppender(db)
        app.state.audit_appender = appender
        metrics.instrument_pool(db.engine)
        pool_sampler = asyncio.create_task(metrics.sample_pool_forever(db.engine))
        simulations = SimulationRunner(db, workers=settings.simulation_workers)
        app.state.simulations = simulations
        await simulations.start()
        sweeper = None
        if settings.referral_sweep_seconds > 0:
            sweeper = asyncio.create_task(_sweep_forever(db, settings))
        principals: PrincipalCache = app.state.principals
        announcements = None
        if db.dialect == "postgresql" and principals.seconds > 0:
            principals.expect_announcements()
            announcements = asyncio.create_task(
                db.listen(
                    PRINCIPALS_CHANNEL, heard=principals.changed, listening=principals.listening
                )
            )
        if serving:
            _settle_heap()
        try:
            yield
        finally:
            for task in (sweeper, announcements, pool_sampler):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await simulations.stop()
            await appender.close()
            await db.dispose()
            if stats_db is not None:
                await stats_db.dispose()
            await limiter.close()
            if provider is not None:
                provider.shutdown()
            metrics.forget_this_process()

    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # Served by service/system/docs.py with its own files, never from a CDN.
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry (spans, metrics, logs to the process's global providers)
        # stays off: Ruta's are its own (core/tracing.py, core/metrics.py, core/logs.py) and
        # record no path, query or body; the framework's would record the path and query of
        # every request wherever a global provider is set, and a request's body when its
        # validation fails. Off, it costs nothing per request either.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.security = Security.from_settings(settings)
    app.state.principals = PrincipalCache(settings.principal_cache_seconds)
    app.state.head_revisions = head_revisions(settings)
    limiter = RateLimiter(settings)
    app.state.rate_limiter = limiter
    provider = tracer_provider(settings)
    app.state.tracer_provider = provider
    # The last added runs first: the request id, its observation (metrics, log line, span),
    # CORS, the per-address rate limit, the size guard, then no-store.
    app.add_middleware(NoStoreMiddleware)
    app.add_middleware(BodySizeGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(AddressRateLimitMiddleware, limiter=limiter)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "If-Match",
            ],
            expose_headers=[
                "ETag",
                "Idempotent-Replayed",
                "Location",
                "Retry-After",
                "X-Request-ID",
            ],
            max_age=600,
        )
    app.add_middleware(
        ObservabilityMiddleware, spans=RequestSpans(provider) if provider is not None else None
    )
    app.add_middleware(RequestIdMiddleware)
    install_problem_handlers(app)
    for router in (
        system_router,
        docs_router,
        identity_router,
        cases_router,
        consent_router,
        referrals_router,
        protection_router,
        legal_router,
        repatriation_router,
        capacity_router,
        alerts_router,
        audit_router,
        stats_router,
        planning_router,
        persons_router,
    ):
        app.include_router(router)
    _publish_problems(app)
    return app


def _publish_problems(app: FastAPI) -> None:
    """The OpenAPI document declares errors as the server sends them (core/errors.py), and
    links each creation to the operations on what it created."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = link_creations(declare_problems(generate()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_factory() -> FastAPI:
    """Entry point for uvicorn workers (`--factory`): settings from the environment."""
    settings = Settings()
    configure_logging(settings)
    return create_app(settings, serving=True)


def link_creations(spec: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI `links` from every POST that creates a resource (201 with an `id`) to the
    operations on that resource: POST /v1/cases -> GET /v1/cases/{case_id} and the case's
    sub-resources; POST /v1/cases/{case_id}/referrals -> POST /v1/referrals/{referral_id}/accept.
    Clients follow them; schemathesis chains its stateful tests on them."""
    schemas = spec.get("components", {}).get("schemas", {})
    paths: dict[str, dict[str, Any]] = spec.get("paths", {})
    for path, operations in paths.items():
        created = operations.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        ref = created.get("content", {}).get("application/json", {}).get("schema", {})
        name = str(ref.get("$ref", "")).rsplit("/", 1)[-1]
        if "id" not in schemas.get(name, {}).get("properties", {}):
            continue
        collection = path.rstrip("/").rsplit("/", 1)[-1]
        links: dict[str, Any] = {}
        for target, target_operations in paths.items():
            prefix = next(
                (p for p in (f"{path}/{{", f"/v1/{collection}/{{") if target.startswith(p)),
                None,
            )
            if prefix is None:
                continue
            parameter = target[len(prefix) :].split("}", 1)[0]
            # The id names what was created: a case added to a proceeding returns the
            # proceeding, whose id is no case_id.
            if parameter.removesuffix("_id").replace("_", "") not in name.lower():
                continue
            for method, operation in target_operations.items():
                own = {
                    q["name"]
                    for q in operation.get("parameters", [])
                    if q["in"] == "path" and q["name"] != parameter
                }
                if not own <= {q["name"] for q in operations["post"].get("parameters", [])}:
                    continue
                values = {q: f"$request.path.{q}" for q in sorted(own)}
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {**values, parameter: "$response.body#/id"},
                    "description": f"{method.upper()} {target} on the created resource",
                }
        if links:
            created["links"] = links
    return spec
