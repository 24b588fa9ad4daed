"""Request rate limits per address and per user, in Redis when configured, else in-process.

A fixed window per key: the first request of a window starts it, each one counts, and past
the limit the request is refused with 429 and a Retry-After of the seconds left in the
window. In Redis the count and the time left come back in one round trip (a Lua script), so
that every worker and host behind the load balancer shares each limit. Without Redis each
worker process counts for itself.

If Redis cannot be reached the request is let through (fail open): refusing every request
because the limiter is away would turn a cache outage into an API outage. It is logged (at
most every 30 seconds) and counted in `ruta_rate_limit_store_errors_total`, and Redis is not
tried again for a few seconds so that each request does not wait for its timeout.

Failed sign-ins have their own, stricter throttle (service/identity/rules.login_refusal).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.core.errors import TooManyRequests, problem_response
from service.core.metrics import RATE_LIMIT_STORE_ERRORS, RATE_LIMITED
from service.core.settings import Settings

log = logging.getLogger(__name__)

_KEY_PREFIX = "ruta:rl:"
# INCR the window's counter; the first hit of a window starts its expiry. Returns the count
# and the milliseconds left in the window.
_FIXED_WINDOW = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""
_REDIS_TIMEOUT_SECONDS = 0.5
_REDIS_PAUSE_SECONDS = 5.0
_WARN_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class Hit:
    """A request counted in its window: how many so far, and seconds until the window ends."""

    count: int
    seconds_left: float


class Store(Protocol):
    async def hit(self, key: str, *, window_seconds: int) -> Hit | None:
        """Count one request; None when the count could not be kept (let it through)."""

    async def close(self) -> None: ...


class MemoryStore:
    """Windows kept in this process."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}

    async def hit(self, key: str, *, window_seconds: int) -> Hit:
        now = time.monotonic()
        count, ends = self._windows.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + window_seconds
            if len(self._windows) > 50_000:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        self._windows[key] = (count + 1, ends)
        return Hit(count + 1, ends - now)

    async def close(self) -> None:
        self._windows.clear()


class RedisStore:
    """Windows kept in Redis, shared by every process that names the same server."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(
            url,
            socket_timeout=_REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
        )
        self._script = self._redis.register_script(_FIXED_WINDOW)
        self._paused_until = 0.0
        self._warned_at = -math.inf

    async def hit(self, key: str, *, window_seconds: int) -> Hit | None:
        from redis.exceptions import RedisError

        now = time.monotonic()
        if now < self._paused_until:
            RATE_LIMIT_STORE_ERRORS.inc()
            return None
        try:
            count, ms_left = await self._script(keys=[key], args=[window_seconds * 1000])
        except (RedisError, OSError):
            self._paused_until = now + _REDIS_PAUSE_SECONDS
            RATE_LIMIT_STORE_ERRORS.inc()
            if now - self._warned_at >= _WARN_EVERY_SECONDS:
                self._warned_at = now
                log.warning(
                    "rate limit store unreachable: requests are let through unlimited",
                    exc_info=True,
                )
            return None
        return Hit(int(count), int(ms_left) / 1000)

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    """The limits of the settings, kept in the store they name."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.window_seconds = settings.rate_limit_window_seconds
        self.per_user = settings.rate_limit_per_user
        self.per_address = settings.rate_limit_per_address
        if store is None:
            store = RedisStore(settings.redis_url) if settings.redis_url else MemoryStore()
        self.store = store

    async def refusal(self, scope: str, who: str, limit: int) -> int | None:
        """Count a request of `who`; the seconds to wait if it is over `limit`, else None."""
        if limit <= 0:
            return None
        hit = await self.store.hit(
            f"{_KEY_PREFIX}{scope}:{who}", window_seconds=self.window_seconds
        )
        if hit is None or hit.count <= limit:
            return None
        RATE_LIMITED.labels(scope).inc()
        return max(1, math.ceil(hit.seconds_left))

    async def check_user(self, subject: str) -> None:
        """Count a request of an authenticated user; 429 past the per-user limit."""
        wait = await self.refusal("user", subject, self.per_user)
        if wait is not None:
            log.warning("rate limited", extra={"scope": "user", "retry_after": wait})
            raise TooManyRequests(
                "Too many requests from this account; retry after the time given.",
                retry_after=wait,
            )

    async def close(self) -> None:
        await self.store.close()


async def limit_user(request: Request, subject: str) -> None:
    """Count a request of the authenticated `subject` against the per-user limit."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        await limiter.check_user(subject)


class AddressRateLimitMiddleware:
    """Pure ASGI middleware: the per-address limit on every /v1 request, before any work.
    Probes and /metrics are outside /v1 and never limited."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter, prefix: str = "/v1/") -> None:
        self.app = app
        self.limiter = limiter
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        wait = await self.limiter.refusal("address", address, self.limiter.per_address)
        if wait is None:
            await self.app(scope, receive, send)
            return
        log.warning("rate limited", extra={"scope": "address", "retry_after": wait})
        response = problem_response(
            Request(scope),
            status=429,
            code=TooManyRequests.code,
            title=TooManyRequests.title,
            detail="Too many requests from this address; retry after the time given.",
            headers={"Retry-After": str(wait)},
        )
        await response(scope, receive, send)
