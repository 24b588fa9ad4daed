"""What every `ruta` command module shares: running async work against the database, the
person a command acts for, and a service's refusal told on the operator's terminal."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.db import Database, DatabaseUnavailable, is_unavailable, is_undefined_table
from service.core.errors import InvalidInput, ProblemError
from service.core.requestid import bind_request_id
from service.core.security import Actor
from service.core.settings import Settings
from service.identity import service as identity_service
from service.identity.rules import Permission, has_permission
from service.main import open_database

T = TypeVar("T")

# The exit status of a command that could not reach its database (sysexits' EX_UNAVAILABLE),
# apart from a refusal (2): a script can tell "try again later" from "this was refused".
EXIT_DATABASE_UNAVAILABLE = 69


def run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on a database opened for it, under a request id of its own (the audit
    events of one command share it). A database that cannot be reached ends the command
    with EXIT_DATABASE_UNAVAILABLE and a line saying so, not a traceback."""

    async def runner() -> T:
        bind_request_id(f"cli-{secrets.token_hex(8)}")
        db = open_database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    with database_reachable():
        return asyncio.run(runner())


@contextlib.contextmanager
def database_reachable() -> Iterator[None]:
    """End the command with EXIT_DATABASE_UNAVAILABLE and a line saying so, not a
    traceback, if the block cannot reach the database (migrations included)."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, DatabaseUnavailable) or is_unavailable(exc):
            said = "cannot be reached just now; nothing was saved (RUTA_DATABASE_URL: is it up?)"
        elif is_undefined_table(exc):
            said = "has no Ruta tables yet: run `ruta migrate` (or `ruta seed`) first"
        else:
            raise
        typer.echo(f"error: the database {said}", err=True)
        raise typer.Exit(EXIT_DATABASE_UNAVAILABLE) from exc


def write(
    settings: Settings,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    naming: Mapping[type[ProblemError], Callable[[ProblemError], str]] | None = None,
) -> T:
    """Run `work` in one writing transaction; a refusal of a service rolls it back and exits
    2 with its reason. `naming` words the refusals of the given kinds differently: on the
    operator's own terminal they may name the operator's own input (the API never does)."""

    async def unit(db: Database) -> T:
        async with db.session() as session:
            return await work(session)

    try:
        return run(settings, unit)
    except ProblemError as exc:
        said = next((say for kind, say in (naming or {}).items() if isinstance(exc, kind)), None)
        typer.echo(f"error: {said(exc) if said else _reason(exc)}", err=True)
        raise typer.Exit(2) from exc


def _reason(exc: ProblemError) -> str:
    if isinstance(exc, InvalidInput):
        return "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
    return exc.detail


async def acting_as(
    session: AsyncSession, username: str, permission: Permission, what: str
) -> Actor:
    """The active user named by --as, who must hold `permission` (`what` says what it lets
    them do, for the refusal): the audit trail attributes the command's changes to them, as
    through the API."""
    actor = await identity_service.actor_for_username(session, username)
    if actor is None:
        typer.echo(f"--as: no active user {username!r}", err=True)
        raise typer.Exit(2)
    if not has_permission(actor.role, permission):
        typer.echo(f"--as: the role {actor.role!r} may not {what}", err=True)
        raise typer.Exit(2)
    return actor
