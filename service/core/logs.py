"""Logging: one configuration per process, JSON lines or text, and one line per request.

Every line carries the request id of the request (or CLI command, sweep round ...) it belongs
to. A request's line names its method, route template, status, duration and the actor (user
id, organization code, role): never a path with its ids, a query string, a body, or anything
about a victim. SQL echo (RUTA_SQL_ECHO) goes through the same handler, statements without
their parameters, each once.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.core.requestid import current_request_id
from service.core.settings import Settings

ACCESS_LOGGER = "ruta.access"
access_log = logging.getLogger(ACCESS_LOGGER)

# Attributes every LogRecord has: anything else on a record was passed as `extra=`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's message again, with terminal colours
}
_configured = False


@dataclass
class RequestActor:
    """Who a request acted for, noted by the authentication dependency for the access log."""

    user_id: str | None = None
    organization_code: str | None = None
    role: str | None = None


_actor: ContextVar[RequestActor | None] = ContextVar("ruta_request_actor", default=None)


def begin_request() -> RequestActor:
    """A fresh, empty actor for the request about to be served (set by the middleware)."""
    actor = RequestActor()
    _actor.set(actor)
    return actor


def note_actor(*, user_id: object, organization_code: str, role: str) -> None:
    """Record the authenticated caller of the current request, for its access log line."""
    actor = _actor.get()
    if actor is not None:
        actor.user_id = str(user_id)
        actor.organization_code = organization_code
        actor.role = role


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id is not None:
            line["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with the request id and the extras."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        }
        request_id = current_request_id()
        if request_id is not None:
            extras = {"request_id": request_id, **extras}
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return text


def configure_logging(settings: Settings, *, force: bool = False) -> None:
    """Send every logger to one handler on standard error, once per process (`force`: again)."""
    global _configured
    if _configured and not force:
        return
    handler = logging.StreamHandler(sys.stderr)
    json_lines = settings.effective_log_format == "json"
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # Uvicorn's own loggers go through the root handler; its access log is replaced by ours
    # (it would print the query string).
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # SQL statements through the root handler only: the engine is created without `echo`,
    # which would add a second handler of SQLAlchemy's own and print each statement twice.
    engine_logger = logging.getLogger("sqlalchemy.engine")
    engine_logger.handlers.clear()
    engine_logger.setLevel(logging.INFO if settings.sql_echo else logging.WARNING)
    _configured = True


def log_request(
    *, method: str, route: str, status: int, seconds: float, actor: RequestActor | None
) -> None:
    """The one line of an answered request."""
    fields: dict[str, Any] = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
    }
    if actor is not None and actor.user_id is not None:
        fields |= {
            "user_id": actor.user_id,
            "organization": actor.organization_code,
            "role": actor.role,
        }
    access_log.info("%s %s %d", method, route, status, extra=fields)
