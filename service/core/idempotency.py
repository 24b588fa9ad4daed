"""Idempotency-Key on every POST (IETF httpapi idempotency-key draft).

A key is claimed in the request's own transaction, before the work: its row is inserted by
the first dependency of the route, and the response is written into the same row just
before the session dependency commits. A crash therefore leaves neither the key nor the
work, and a second request with the same key cannot do the work again:

- on PostgreSQL it blocks on the unique (user, key) index until the first transaction
  commits (then it replays the stored response) or rolls back (then it claims the key);
  past `idempotency_wait_seconds` it gets 409 `idempotency_key_in_flight`;
- on SQLite writing transactions are serialized by BEGIN IMMEDIATE, so it sees either
  nothing or the committed response.

Only responses whose transaction committed are stored: an error raised as an exception
(a problem document, a 5xx) rolls everything back, the key included, so a retry runs again
and can do no second effect. Neither the key nor the body is kept in clear: the key as a
keyed digest, the request as a keyed fingerprint of method, route and body, the response
sealed under a data key of its own wrapped by the master key (a POST may answer with
identifying data).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar

import sqlalchemy as sa
from fastapi import Depends, Header, Request, Response
from fastapi.params import Depends as DependsParam
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.crypto import Keyring, WrappedKey, open_sealed, seal
from service.core.db import (
    RetryingRoute,
    SessionDep,
    insert_ignoring_conflicts,
    is_lock_timeout,
    table_of,
    wait_for_locks_at_most,
)
from service.core.errors import Conflict, ProblemError, problem_responses
from service.core.settings import Settings
from service.core.time import utcnow
from service.core.types import UTCDateTime

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Printable ASCII without spaces: a UUID, a ULID, a random token, an sf-string in quotes.
KEY_PATTERN = r"^[\x21-\x7e]+$"
# The headers that belong to the answer itself and are replayed with it.
_REPLAYED_HEADERS = ("content-type", "location", "etag", "last-modified", "cache-control")


class IdempotencyKey(SQLModel, table=True):
    """A caller's Idempotency-Key, claimed with the work it guards, and the stored answer."""

    __tablename__ = "idempotency_key"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "key_digest"),
        sa.Index("ix_idempotency_key_expires_at", "expires_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id", ondelete="CASCADE")
    # HMACs under the blind-index key: equal inputs compare equal, neither can be read back.
    key_digest: str = Field(max_length=64)
    fingerprint: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    # Set in the claiming transaction, before it commits: never NULL once visible to others.
    status_code: int | None = None
    master_key_id: str | None = Field(default=None, max_length=32)
    wrapped_key: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    response: bytes | None = Field(default=None, sa_type=sa.LargeBinary)


class IdempotencyKeyReused(ProblemError):
    status = 422
    code = "idempotency_key_reused"
    title = "Idempotency key reused"


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
    title = "Idempotency key in flight"


class _Replay(Exception):
    """Raised by the claim when the key already has an answer: the route handler sends it."""

    def __init__(self, response: Response) -> None:
        super().__init__("replay")
        self.response = response


class _Claim:
    """A key this request holds; its answer is written in the same session."""

    def __init__(self, session: AsyncSession, row: IdempotencyKey, keyring: Keyring) -> None:
        self.session = session
        self.row = row
        self.keyring = keyring


_CLAIM_STATE = "ruta_idempotency_claim"


def fingerprint(keyring: Keyring, *, method: str, target: str, body: bytes) -> str:
    """A keyed fingerprint of the request (method, path and query, body): the same for a
    retry, different for anything else."""
    body_hash = hashlib.sha256(body).hexdigest()
    return keyring.blind_index("idempotency-request", f"{method} {target} {body_hash}")


async def claim_key(
    session: AsyncSession,
    *,
    keyring: Keyring,
    user_id: uuid.UUID,
    key: str,
    fingerprint: str,
    ttl: timedelta,
    wait: float,
) -> IdempotencyKey | Response:
    """Claim the key for this transaction (the row), or the stored answer to replay.

    Raises IdempotencyKeyReused when the key answered another request, and
    IdempotencyKeyInFlight when its holder keeps it past `wait` seconds.
    """
    table = table_of(IdempotencyKey)
    digest = keyring.blind_index("idempotency-key", key)
    now = utcnow()
    mine = sa.and_(table.c.user_id == user_id, table.c.key_digest == digest)
    try:
        await wait_for_locks_at_most(session, wait)
        # An expired key is free again, even before the sweep purges it.
        await session.exec(sa.delete(table).where(mine, table.c.expires_at <= now))
        row = IdempotencyKey(
            user_id=user_id,
            key_digest=digest,
            fingerprint=fingerprint,
            created_at=now,
            expires_at=now + ttl,
        )
        values = row.model_dump()
        await insert_ignoring_conflicts(session, table, [values], on=["user_id", "key_digest"])
        await wait_for_locks_at_most(session, None)
    except sa.exc.DBAPIError as exc:
        if is_lock_timeout(exc):
            raise IdempotencyKeyInFlight(
                "A request with this Idempotency-Key is still being processed; retry later."
            ) from None
        raise
    stmt = select(IdempotencyKey).where(mine).execution_options(populate_existing=True)
    held = (await session.exec(stmt)).first()
    if held is not None and held.id == row.id:
        return held
    if held is not None and held.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for another request (another route or body)."
        )
    if held is None or held.status_code is None:
        # The holder's row vanished (expired and taken again) between our two statements;
        # or it committed without an answer, which the route never does. A retry resolves it.
        raise IdempotencyKeyInFlight("This Idempotency-Key is being reused; retry later.")
    return _stored_response(keyring, held)


def _stored_response(keyring: Keyring, held: IdempotencyKey) -> Response:
    assert held.master_key_id is not None
    assert held.wrapped_key is not None
    assert held.response is not None
    assert held.status_code is not None
    owner = str(held.id)
    data_key = keyring.unwrap(WrappedKey(held.master_key_id, held.wrapped_key), owner=owner)
    stored = open_sealed(data_key, held.response, owner=owner)
    headers = {**stored["headers"], REPLAYED_HEADER: "true"}
    return Response(content=stored["body"].encode(), status_code=held.status_code, headers=headers)


async def store_response(claim: _Claim, response: Response) -> None:
    """Seal the answer into the claimed row, in the transaction that did the work."""
    row = claim.row
    owner = str(row.id)
    data_key = claim.keyring.new_data_key()
    wrapped = claim.keyring.wrap(data_key, owner=owner)
    headers = {k: v for k, v in response.headers.items() if k.lower() in _REPLAYED_HEADERS}
    payload = {"headers": headers, "body": bytes(response.body).decode()}
    row.status_code = response.status_code
    row.master_key_id = wrapped.master_key_id
    row.wrapped_key = wrapped.blob
    row.response = seal(data_key, payload, owner=owner)
    claim.session.add(row)
    await claim.session.flush()


async def release_key(claim: _Claim) -> None:
    """Give the key up: the answer cannot be stored (a streamed body)."""
    await claim.session.delete(claim.row)
    await claim.session.flush()


async def purge_expired_keys(session: AsyncSession, *, now: datetime, limit: int) -> int:
    """Delete up to `limit` expired keys, oldest first; returns how many (for the sweep)."""
    table = table_of(IdempotencyKey)
    batch = (
        sa.select(table.c.id)
        .where(table.c.expires_at <= now)
        .order_by(table.c.expires_at)
        .limit(limit)
    )
    result = await session.exec(sa.delete(table).where(table.c.id.in_(batch.scalar_subquery())))
    return int(result.rowcount)


KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=KEY_PATTERN,
        description=(
            "Makes a retry safe: the same key with the same request within the key's lifetime"
            " answers the first response again (marked `Idempotent-Replayed: true`) without"
            " doing the work twice; with another request it is 422"
            " `idempotency_key_reused`; while the first is still running, the retry waits,"
            " or gets 409 `idempotency_key_in_flight`. Keys are per user."
        ),
    ),
]


def _claim_dependency(
    principal: Callable[..., Awaitable[uuid.UUID]],
) -> Callable[..., Awaitable[None]]:
    async def claim_idempotency_key(
        request: Request,
        session: SessionDep,
        key: KeyHeader = None,
        # A default, not an Annotated hint: the hint would name a local, unresolvable later.
        user_id: uuid.UUID = Depends(principal),
    ) -> None:
        if key is None:
            return
        settings: Settings = request.app.state.settings
        keyring: Keyring = request.app.state.security.keyring
        # The concrete target, not the route's template: the same body for another case is
        # another request.
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        outcome = await claim_key(
            session,
            keyring=keyring,
            user_id=user_id,
            key=key,
            fingerprint=fingerprint(
                keyring, method=request.method, target=target, body=await request.body()
            ),
            ttl=timedelta(seconds=settings.idempotency_key_ttl_seconds),
            wait=settings.idempotency_wait_seconds,
        )
        if isinstance(outcome, Response):
            raise _Replay(outcome)
        setattr(request.state, _CLAIM_STATE, _Claim(session, outcome, keyring))

    return claim_idempotency_key


class IdempotentRoute(RetryingRoute):
    """A route whose POST accepts an Idempotency-Key. Subclasses name `principal`, the
    dependency that answers the caller's user id (keys are scoped to it)."""

    principal: ClassVar[Callable[..., Awaitable[uuid.UUID]]]

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: set[str] | list[str] | None = None,
        dependencies: Sequence[DependsParam] | None = None,
        responses: dict[int | str, dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        self.idempotent = methods is not None and "POST" in {m.upper() for m in methods}
        if self.idempotent:
            # First of the route's dependencies: the key is claimed before any work.
            claim = Depends(_claim_dependency(type(self).principal))
            dependencies = [claim, *(dependencies or [])]
            responses = {**problem_responses(409, 422), **(responses or {})}
        super().__init__(
            path,
            endpoint,
            methods=methods,
            dependencies=dependencies,
            responses=responses,
            **kwargs,
        )

    def unit_of_work(
        self, handler: Callable[[Request], Coroutine[Any, Any, Response]]
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if not self.idempotent:
            return handler

        async def keyed(request: Request) -> Response:
            # Runs inside the session dependency's scope: what is written here commits with
            # the work, before the response is sent.
            setattr(request.state, _CLAIM_STATE, None)  # a previous attempt's claim is void
            try:
                response = await handler(request)
            except _Replay as replay:
                return replay.response
            claim: _Claim | None = getattr(request.state, _CLAIM_STATE, None)
            if claim is not None:
                if isinstance(getattr(response, "body", None), bytes | memoryview):
                    await store_response(claim, response)
                else:
                    await release_key(claim)
            return response

        return keyed
