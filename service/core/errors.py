"""RFC 9457 problem documents: one exception family, one renderer."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.core.requestid import current_request_id

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://ruta.pe/problems/"


class FieldError(BaseModel):
    """One invalid field: where it is and why it was refused."""

    field: str = Field(description="Dotted path of the field, e.g. `person.birth_date`.")
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document with a stable machine-readable `code`."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Base of every error Ruta reports to a client."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        self.headers: dict[str, str] = {}
        super().__init__(self.detail)


class NotFound(ProblemError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(ProblemError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Forbidden(ProblemError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class Unauthorized(ProblemError):
    status = 401
    code = "unauthorized"
    title = "Not authenticated"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["WWW-Authenticate"] = "Bearer"


class TooManyRequests(ProblemError):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["Retry-After"] = str(retry_after)


class InvalidInput(ProblemError):
    """A semantically invalid field found by a service (syntax errors are caught earlier)."""

    status = 422
    code = "invalid_input"
    title = "Invalid input"

    def __init__(self, field: str, message: str, *, type: str = "invalid") -> None:
        super().__init__(f"{field}: {message}")
        self.errors = [FieldError(field=field, message=message, type=type)]


class ServiceUnavailable(ProblemError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


def _problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_TYPE_BASE + code.replace("_", "-"),
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        code=code,
        request_id=current_request_id(),
        errors=errors,
    ).model_dump(mode="json", exclude_none=True)
    if extra:
        body |= {k: v for k, v in extra.items() if k not in body}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return _problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        errors=getattr(exc, "errors", None),
        extra=exc.extra,
        headers=exc.headers or None,
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] or parts
    return ".".join(parts)


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only the location and the reason: never echo the submitted value, which may identify a victim.
    errors = [
        FieldError(field=_field_path(tuple(e.get("loc", ()))), message=e["msg"], type=e["type"])
        for e in exc.errors()
    ]
    fields = ", ".join(sorted({e.field for e in errors})) or "request"
    return _problem_response(
        request,
        status=422,
        code="validation_error",
        title="Invalid request",
        detail=f"Invalid value for: {fields}",
        errors=errors,
    )


_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def _handle_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    title = code.replace("_", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) else title
    return _problem_response(
        request,
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return _problem_response(
        request,
        status=500,
        code="internal_error",
        title="Internal server error",
        detail="The server could not complete the request; nothing was saved.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error, expected or not, as application/problem+json."""
    app.add_exception_handler(ProblemError, _handle_problem)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(Exception, _handle_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring the problem documents a route can return."""
    described = {
        400: "Bad request",
        401: "Missing, expired or invalid bearer token",
        403: "The caller's role may not do this",
        404: "Not found, or not visible to the caller's organization",
        409: "Conflicts with the current state",
        412: "If-Match names a version the resource no longer has; read it again",
        422: "Invalid input; `errors` names each field",
        428: "If-Match is required: send the ETag of the resource as last read",
        429: "Too many attempts; see Retry-After",
        503: "Not ready",
    }
    return {
        s: {
            "model": Problem,
            "description": described.get(s, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for s in statuses
    }
