"""Counting the SQL statements a piece of work sends to the database.

What counts: every statement SQLAlchemy sends through a cursor (SELECT, INSERT, UPDATE,
DELETE, SAVEPOINT and RELEASE, SET LOCAL, advisory locks): each is a round trip. What does not:
transaction control. BEGIN and COMMIT are one of each per transaction on both databases, but
only SQLite's BEGIN passes through a cursor (Ruta emits it to choose BEGIN IMMEDIATE;
asyncpg sends its own), so BEGIN is left out and transactions are counted apart, by the
engine's `begin` event, on both. Connection set-up (SQLite's PRAGMAs) happens once per pooled
connection and is not the work's. A pool pre-ping would be a round trip on every checkout that
no hook sees: Ruta's engines do not ping (tests/core/test_statement_budget.py says so).

`pooled_connections` counts the other resource a request takes: connections checked out of
the pool, in all and at most at once.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import CacheStats

from service.core.db import Database


@dataclass
class Counted:
    """The statements sent (their SQL, in order) and the transactions begun."""

    statements: list[str] = field(default_factory=list)
    transactions: int = 0
    # Statements whose SQL SQLAlchemy renders again at every execution, not once for its
    # compiled cache: those with "post-compile" parameters (a list given to `in_`, a value
    # it must write into the text). Work for the worker's CPU on every request.
    rendered_each_time: list[str] = field(default_factory=list)
    # Statements SQLAlchemy compiles anew at every execution: it has no cache key for them
    # (a VALUES clause of several rows given to `values()`, for one). Far more work than
    # rendering: the whole statement is compiled.
    compiled_each_time: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.statements)


# Whose statements these are: the block's own task (and what it awaits) sets it; work that
# runs beside it on the same engine (a simulation job started earlier) is not counted.
_COUNTING: contextvars.ContextVar[Counted | None] = contextvars.ContextVar(
    "ruta_counting_statements", default=None
)


@contextlib.contextmanager
def counting_statements(db: Database) -> Iterator[Counted]:
    """Count what the database's engine is sent by the work the block awaits (SQLAlchemy
    carries the caller's context into the greenlet that runs the statement)."""
    counted = Counted()
    engine = db.engine.sync_engine

    def on_statement(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, *_args: Any
    ) -> None:
        if _COUNTING.get() is counted and not statement.lstrip().upper().startswith("BEGIN"):
            counted.statements.append(statement)
            compiled = getattr(context, "compiled", None)
            if getattr(compiled, "post_compile_params", None) or getattr(
                compiled, "literal_execute_params", None
            ):
                counted.rendered_each_time.append(statement)
            if compiled is not None and context.cache_hit is CacheStats.NO_CACHE_KEY:
                counted.compiled_each_time.append(statement)

    def on_begin(_conn: Any) -> None:
        if _COUNTING.get() is counted:
            counted.transactions += 1

    token = _COUNTING.set(counted)
    try:
        with _listening(engine, before_cursor_execute=on_statement, begin=on_begin):
            yield counted
    finally:
        _COUNTING.reset(token)


@contextlib.contextmanager
def pooled_connections(db: Database) -> Iterator[dict[str, int]]:
    """How many connections the block checks out of the pool in all, and at most at once."""
    seen = {"now": 0, "most": 0, "all": 0}

    def checkout(*_: Any) -> None:
        seen["now"] += 1
        seen["all"] += 1
        seen["most"] = max(seen["most"], seen["now"])

    def checkin(*_: Any) -> None:
        seen["now"] -= 1

    with _listening(db.engine.sync_engine.pool, checkout=checkout, checkin=checkin):
        yield seen


@contextlib.contextmanager
def _listening(target: Any, **listeners: Callable[..., None]) -> Iterator[None]:
    """SQLAlchemy event listeners on `target` (by event name) for the block's duration."""
    for name, listener in listeners.items():
        sa.event.listen(target, name, listener)
    try:
        yield
    finally:
        for name, listener in listeners.items():
            sa.event.remove(target, name, listener)
