"""Recording audit events in the transaction they describe, and verifying the chains.

`record_event` only queues an event on the session. Right before the transaction commits,
the queued events are appended to one chain: PostgreSQL locks any chain head no other
transaction holds (FOR UPDATE SKIP LOCKED), so concurrent writers spread over the chains
instead of queueing; SQLite's single writer already holds the database lock. The head lock
is taken as late as possible and held only through the commit. The database moves the head
to each event appended (a trigger, migration 0027): an append is two statements, the lock
and the INSERT.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit import rules
from service.audit.models import AuditChainHead, AuditEvent
from service.core.db import (
    Database,
    connection_rows,
    lock_any_of,
    lock_any_of_driven,
    table_of,
)
from service.core.pagination import PageParams, keyset, page_of
from service.core.requestid import current_request_id
from service.core.security import Actor
from service.core.time import utcnow

log = logging.getLogger(__name__)

_PENDING = "ruta_audit_pending"
_KEY = "ruta_audit_key"


def session_info(keys: rules.AuditKeys) -> dict[str, Any]:
    """What a session needs to seal audit events: pass it as the sessions' `info`."""
    return {_KEY: keys}


def new_event(
    *,
    actor: Actor | None,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | str,
    changes: dict[str, Any] | None = None,
) -> rules.EventContent:
    """What an event says, dated now, with the request it belongs to (not yet in a chain)."""
    return rules.EventContent(
        id=uuid.uuid4(),
        occurred_at=utcnow(),
        actor_user_id=actor.user_id if actor else None,
        actor_org_id=actor.organization_id if actor else None,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        request_id=current_request_id(),
        changes=rules.normalize_changes(changes or {}),
    )


def record_event(
    session: AsyncSession,
    *,
    actor: Actor | None,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | str,
    changes: dict[str, Any] | None = None,
) -> None:
    """Queue an audit event; it is written in this transaction, just before it commits."""
    queue_event(
        session,
        new_event(
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            changes=changes,
        ),
    )


def queue_event(session: AsyncSession, content: rules.EventContent) -> None:
    """Queue an event made with `new_event` in this transaction (see `record_event`)."""
    session.sync_session.info.setdefault(_PENDING, []).append(content)


def pending_events(session: AsyncSession) -> int:
    """How many events the session has queued: a mark for `discard_events_since`."""
    return len(session.sync_session.info.get(_PENDING, []))


def discard_events_since(session: AsyncSession, mark: int) -> None:
    """Forget events queued after `mark`: their savepoint was rolled back."""
    pending = session.sync_session.info.get(_PENDING)
    if pending is not None:
        del pending[mark:]


def _lock_a_chain_head(session: Session) -> sa.Row[Any]:
    """A chain head no other writer holds, locked (its `chain`, `seq` and `hash`): concurrent
    writers append to different chains instead of queueing on one. A row, not an
    AuditChainHead: building a mapped object at every writing transaction cost as much as
    the hashing of its events (profiled)."""
    table = table_of(AuditChainHead)
    return lock_any_of(
        session.connection(),
        table,
        key=table.c.chain,
        pick=lambda: random.randrange(rules.CHAIN_COUNT),  # noqa: S311
    )


def _append_pending(session: Session) -> None:
    pending: list[rules.EventContent] = session.info.pop(_PENDING, [])
    if not pending:
        return
    keys = session.info.get(_KEY)
    if keys is None:
        raise RuntimeError("audit events recorded on a session without an audit key")
    head = _lock_a_chain_head(session)
    links = rules.link(keys, pending, chain=head.chain, seq=head.seq, head=head.hash)
    connection_rows(session.connection(), _insert_events(), [_event_row(item) for item in links])
    # The head follows by itself: the trigger of migration 0027 moves it to each new event.


def _event_row(item: rules.Link) -> dict[str, Any]:
    """The audit_event row of an event in its place."""
    return {
        "id": item.content.id,
        "chain": item.chain,
        "seq": item.seq,
        "occurred_at": item.content.occurred_at,
        "actor_user_id": item.content.actor_user_id,
        "actor_org_id": item.content.actor_org_id,
        "action": item.content.action,
        "entity_type": item.content.entity_type,
        "entity_id": item.content.entity_id,
        "request_id": item.content.request_id,
        "changes": item.content.changes,
        "prev_hash": item.prev_hash,
        "hash": item.hash,
        "key_id": item.key_id,
        "key_fingerprint": item.key_fingerprint,
    }


@functools.cache
def _insert_events() -> sa.Insert:
    """The events' INSERT, built once: it runs in every writing transaction."""
    return sa.insert(table_of(AuditEvent))


def _discard_pending(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)


event.listen(Session, "before_commit", _append_pending)
event.listen(Session, "after_rollback", _discard_pending)


class AuditAppender:
    """The audit events of requests that write nothing but their event (the audited reads of
    identifying data), appended several requests at a time: one transaction, one chain head
    locked, one INSERT and one COMMIT for the events of every request that came in while the
    previous ones were being written.

    `append` returns once the event is committed: a request shows no identifying data
    before the record of its showing is durable. Nothing waits to gather a batch: an event
    alone is written at once (the lone request pays what it paid in a transaction of its
    own), and under load the events that arrive during one commit go together in the next
    (group commit). A caller that goes away while its event waits does not take it with it:
    the event is written all the same.
    If a shared transaction fails, each of its callers writes its own event alone, and
    meets its own failure (503 when the database is away, as any request).

    Several transactions may be under way at once (`writers`; on PostgreSQL each locks a
    chain head of its own): an event that arrives while one commits starts the next at once
    rather than waiting for it (the latency of one transaction, not one and a half). SQLite
    lets one writer in at a time: one there.

    One per process (the app's lifespan opens and closes it) and per event loop: the
    writing tasks run in a context of their own, none of a request's (its request id, its
    session guard)."""

    # Events of one transaction at most: a bound on one INSERT's size and on how long the
    # chain head it locks is held.
    BATCH = 256
    WRITERS = 2

    def __init__(self, db: Database, *, writers: int = WRITERS) -> None:
        self._db = db
        self._max_writers = writers if db.dialect == "postgresql" else 1
        self._queue: list[tuple[rules.EventContent, asyncio.Future[bool]]] = []
        self._writers: set[asyncio.Task[None]] = set()
        self._closed = False

    async def append(self, content: rules.EventContent) -> None:
        """Write `content` to a chain; return once it is committed."""
        loop = asyncio.get_running_loop()
        if self._closed or any(writer.get_loop() is not loop for writer in self._writers):
            # Closed, or serving another event loop (a CLI command run after the server
            # stopped, a test's loop): one transaction of its own.
            await self._write([content])
            return
        written: asyncio.Future[bool] = loop.create_future()
        # Read even if its caller went away: no "exception never retrieved" at collection.
        written.add_done_callback(_retrieve)
        self._queue.append((content, written))
        if len(self._writers) < self._max_writers:
            writer = asyncio.create_task(self._drain(), context=contextvars.Context())
            self._writers.add(writer)
        if not await written:
            await self._write([content])  # its shared transaction failed: alone, once more

    async def close(self) -> None:
        """Write what is queued; later events are written one transaction each."""
        self._closed = True
        if self._writers:
            await asyncio.gather(*self._writers)

    async def _drain(self) -> None:
        batch: list[tuple[rules.EventContent, asyncio.Future[bool]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.BATCH], self._queue[self.BATCH :]
                try:
                    await self._write([content for content, _ in batch])
                except Exception as exc:
                    if len(batch) == 1:  # its caller meets the failure itself
                        _settle(batch, exc)
                    else:  # each caller writes its event alone and meets its own failure
                        log.info("a shared audit transaction failed: %s", type(exc).__name__)
                        _settle(batch, False)
                else:
                    _settle(batch, True)
        finally:
            # Out of the writers before anything else runs: an event queued from now on
            # starts a writer of its own, never waits for this one.
            self._writers.discard(asyncio.current_task())
            # Cancelled (the loop closing): every caller still waiting writes its own event.
            _settle(batch, False)
            if not self._writers:
                _settle(self._queue, False)
                self._queue = []

    async def _write(self, contents: list[rules.EventContent]) -> None:
        if self._db.dialect == "postgresql":
            await self._write_driven(contents)
            return
        async with self._db.session() as session:
            # Appended at COMMIT like every transaction's events (`_append_pending`).
            session.sync_session.info[_PENDING] = contents

    async def _write_driven(self, contents: list[rules.EventContent]) -> None:
        """PostgreSQL: what `_append_pending` does at a session's COMMIT (a chain head locked,
        the events linked after it and inserted), in a transaction whose statements asyncpg
        sends itself (`Database.driven_transaction`): the same statements, without the
        session and SQLAlchemy's execution around each (a third of an audited read's
        instructions when its events went one or two to a transaction)."""
        keys: rules.AuditKeys | None = self._db.session_info.get(_KEY)
        if keys is None:
            raise RuntimeError("audit events appended on a database without an audit key")
        table = table_of(AuditChainHead)
        async with self._db.driven_transaction() as transaction:
            head = await lock_any_of_driven(
                transaction,
                table,
                key=table.c.chain,
                pick=lambda: random.randrange(rules.CHAIN_COUNT),  # noqa: S311
            )
            links = rules.link(keys, contents, chain=head.chain, seq=head.seq, head=head.hash)
            await transaction.insert_many(_insert_events(), [_event_row(item) for item in links])


def _settle(
    waiting: list[tuple[rules.EventContent, asyncio.Future[bool]]], outcome: bool | Exception
) -> None:
    """Tell the callers still waiting: written (True), to write alone (False), or failed."""
    for _, written in waiting:
        if written.done():
            continue
        if isinstance(outcome, Exception):
            written.set_exception(outcome)
        else:
            written.set_result(outcome)


def _retrieve(written: asyncio.Future[bool]) -> None:
    if not written.cancelled():
        written.exception()


@dataclass(frozen=True)
class VerificationReport:
    """The outcome of `verify_chains`."""

    events: int
    chains: int
    first_break: rules.Break | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def _link_of(row: AuditEvent) -> rules.Link:
    return rules.Link(
        content=rules.EventContent(
            id=row.id,
            occurred_at=row.occurred_at,
            actor_user_id=row.actor_user_id,
            actor_org_id=row.actor_org_id,
            action=row.action,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            request_id=row.request_id,
            changes=row.changes,
        ),
        chain=row.chain,
        seq=row.seq,
        prev_hash=row.prev_hash,
        hash=row.hash,
        key_id=row.key_id,
        key_fingerprint=row.key_fingerprint,
    )


async def _stream_chain(session: AsyncSession, chain: int) -> AsyncIterator[rules.Link]:
    result = await session.stream_scalars(
        select(AuditEvent)
        .where(AuditEvent.chain == chain)
        .order_by(col(AuditEvent.seq))
        .execution_options(yield_per=2000)
    )
    async for row in result:
        yield _link_of(row)


async def verify_chains(session: AsyncSession, *, keys: rules.AuditKeys) -> VerificationReport:
    """Recompute every chain; report the first event that does not verify."""
    heads = (await session.exec(select(AuditChainHead).order_by(col(AuditChainHead.chain)))).all()
    events, first_break = 0, None
    for head in heads:
        links = [item async for item in _stream_chain(session, head.chain)]
        events += len(links)
        found = rules.verify_chain(keys, head.chain, links, head_seq=head.seq, head_hash=head.hash)
        if found and first_break is None:
            first_break = found
    orphans = (
        await session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.chain).not_in([h.chain for h in heads]))
            .limit(1)
        )
    ).first()
    if orphans is not None and first_break is None:
        first_break = rules.Break(
            orphans.chain, orphans.seq, orphans.id, "event on an unknown chain"
        )
    return VerificationReport(events=events, chains=len(heads), first_break=first_break)


async def list_events(
    session: AsyncSession,
    *,
    page: PageParams,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor_user_id: uuid.UUID | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[Sequence[AuditEvent], str | None]:
    """Events, newest first, filtered; with the cursor of the next page."""
    stmt = select(AuditEvent)
    if entity_type is not None:
        stmt = stmt.where(AuditEvent.entity_type == entity_type)
    if entity_id is not None:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    if actor_user_id is not None:
        stmt = stmt.where(AuditEvent.actor_user_id == actor_user_id)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    if since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < until)
    stmt = keyset(stmt, sort=col(AuditEvent.occurred_at), tiebreak=col(AuditEvent.id), page=page)
    rows = (await session.exec(stmt)).all()
    return page_of(rows, page, lambda e: (e.occurred_at, e.id))


async def checkpoint_heads(
    session: AsyncSession, *, signing_key: bytes, key_id: str
) -> rules.Checkpoint:
    """The heads of every chain as they are now, signed (to be kept outside the database)."""
    # One statement: every head as of one snapshot, each matching its chain's events.
    heads = (await session.exec(select(AuditChainHead).order_by(col(AuditChainHead.chain)))).all()
    return rules.sign_checkpoint(
        signing_key,
        key_id=key_id,
        heads=[rules.Head(chain=h.chain, seq=h.seq, hash=h.hash) for h in heads],
        created_at=utcnow(),
    )


async def verify_against_checkpoint(
    session: AsyncSession, *, keys: rules.AuditKeys, checkpoint: rules.Checkpoint
) -> VerificationReport:
    """Verify every chain, and that each still reaches the checkpoint's head with the same
    hash (its signature checked beforehand): the first break of either kind."""
    wanted = [(h.chain, h.seq) for h in checkpoint.heads if h.seq > 0]
    found: dict[tuple[int, int], str] = {}
    place = sa.tuple_(col(AuditEvent.chain), col(AuditEvent.seq))
    for start in range(0, len(wanted), 500):
        rows = await session.exec(
            select(AuditEvent.chain, AuditEvent.seq, AuditEvent.hash).where(
                place.in_(wanted[start : start + 500])
            )
        )
        found |= {(chain, seq): digest for chain, seq, digest in rows.all()}
    lasts = await session.exec(
        select(AuditEvent.chain, func.max(AuditEvent.seq)).group_by(col(AuditEvent.chain))
    )
    current = {chain: seq for chain, seq in lasts.all()}
    report = await verify_chains(session, keys=keys)
    missing = rules.missing_heads(checkpoint, found, current)
    if missing is not None:
        return VerificationReport(events=report.events, chains=report.chains, first_break=missing)
    return report
