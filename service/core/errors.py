"""RFC 9457 problem documents: one exception family, one renderer."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

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


def _instance(request: Request) -> str | None:
    """The operation the problem occurred in, as its path template: the request's own path
    may carry a submitted value (a malformed id) that must not come back."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def problem_response(
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
        instance=_instance(request),
        code=code,
        request_id=current_request_id(),
        errors=errors,
    ).model_dump(mode="json", exclude_none=True)
    if extra:
        body |= {k: v for k, v in extra.items() if k not in body}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
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


# Pydantic messages that quote part of the input (the offending character of a UUID ...):
# replaced by the type's plain reason.
_QUOTING_MESSAGES = {
    "uuid_parsing": "Input should be a valid UUID",
    "url_parsing": "Input should be a valid URL",
    "json_invalid": "Invalid JSON",
}


def _safe_message(error: dict[str, Any]) -> str:
    """The reason of a validation error, never quoting what was submitted."""
    kind = str(error.get("type", ""))
    if kind in _QUOTING_MESSAGES:
        return _QUOTING_MESSAGES[kind]
    message = str(error.get("msg", ""))
    submitted = error.get("input")
    if isinstance(submitted, str | int | float) and not isinstance(submitted, bool):
        text = str(submitted)
        if len(text) >= 3 and text in message:
            return f"Invalid value ({kind})"
    return message


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    if raw and all(e.get("type") == "json_invalid" for e in raw):
        return _malformed_body(request)
    if any(tuple(e.get("loc", ()))[:1] == ("body",) for e in raw) and _wrong_media_type(request):
        return problem_response(
            request,
            status=415,
            code="unsupported_media_type",
            title="Unsupported media type",
            detail=f"This operation reads {_expected_media_type(request)}.",
        )
    # Only the location and the reason: never echo the submitted value, which may identify a victim.
    errors = [
        FieldError(
            field=_field_path(tuple(e.get("loc", ()))), message=_safe_message(e), type=e["type"]
        )
        for e in raw
    ]
    fields = ", ".join(sorted({e.field for e in errors})) or "request"
    return problem_response(
        request,
        status=422,
        code="validation_error",
        title="Invalid request",
        detail=f"Invalid value for: {fields}",
        errors=errors,
    )


def _expected_media_type(request: Request) -> str:
    route = request.scope.get("route")
    body_field = getattr(route, "body_field", None)
    if body_field is not None and isinstance(body_field.field_info, params.Form):
        return "application/x-www-form-urlencoded"
    return "application/json"


def _wrong_media_type(request: Request) -> bool:
    """A body was sent, and not as the media type the operation reads."""
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    if not has_body:
        return False
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    expected = _expected_media_type(request)
    if expected == "application/json":
        return not (given == "application/json" or given.endswith("+json"))
    return given != expected


def _malformed_body(request: Request) -> JSONResponse:
    return problem_response(
        request,
        status=400,
        code="malformed_body",
        title="Malformed request body",
        detail="The body is not a JSON document this server can read (syntax, encoding, size of"
        " a number or depth of nesting).",
    )


# Routing and protocol errors raised by Starlette/FastAPI themselves: a stable code and title.
_HTTP_CODES = {
    400: ("malformed_body", "Malformed request body"),
    401: ("unauthorized", "Not authenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Content too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}
_HTTP_DETAILS = {
    404: "No resource at this path.",
    405: "This path does not serve this method; see Allow.",
    413: "The request body is larger than this server accepts.",
}


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (routes of one path may be
    several; Starlette's 405 names only the first)."""
    methods: set[str] = set()
    pending: list[Any] = list(request.app.router.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI wraps each included router
            pending.extend(included.routes)
            continue
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if methods:
        methods.add("OPTIONS")
    return sorted(methods)


async def _handle_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 400:
        return _malformed_body(request)
    headers = dict(exc.headers) if exc.headers else {}
    if status == 405:
        allow = ", ".join(allowed_methods(request))
        headers["Allow"] = allow
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=headers)
    code, title = _HTTP_CODES.get(status, (f"http_{status}", f"HTTP {status}"))
    detail = _HTTP_DETAILS.get(status) or (exc.detail if status in {401, 403} else title)
    return problem_response(
        request,
        status=status,
        code=code,
        title=title,
        detail=str(detail),
        headers=headers or None,
    )


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The route template, never the path: a path may hold ids, and a query anything.
    log.exception("unhandled error", extra={"route": _instance(request) or "unmatched"})
    return problem_response(
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
        400: "Malformed body: not JSON, invalid UTF-8, too deep or a number too long",
        401: "Missing, expired or invalid bearer token",
        403: "The caller's role may not do this",
        404: "Not found, or not visible to the caller's organization",
        409: "Conflicts with the current state",
        410: "The person's identifying data was erased",
        412: "If-Match names a version the resource no longer has; read it again",
        422: "Invalid input; `errors` names each field",
        413: "The body is larger than RUTA_MAX_BODY_BYTES",
        415: "The body is not of a media type this operation reads",
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


_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_UNAVAILABLE = (
    "The database is unavailable (`database_unavailable`), or the request collided with"
    " another and was rolled back (`transaction_conflict`); nothing was saved. See Retry-After"
)
_PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def declare_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Declare, in an OpenAPI document FastAPI generated, every error as what the server sends:
    application/problem+json with the Problem schema (never FastAPI's HTTPValidationError), and
    the errors every operation with a body can meet (400 malformed, 413 too large, 415), and
    the 503 every operation on the database can meet (the database away, a lost deadlock)."""
    described = problem_responses(400, 413, 415, 422)
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if path.startswith("/v1/"):
                responses.setdefault("503", {"description": _UNAVAILABLE})
            if "requestBody" in operation:
                for status in (400, 413, 415, 422):
                    responses.setdefault(
                        str(status), {"description": described[status]["description"]}
                    )
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    if int(status) == 422:
                        response["description"] = described[422]["description"]
                    response["content"] = dict(_PROBLEM_CONTENT)
    schemas = spec.get("components", {}).get("schemas", {})
    for name in _VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    return spec
