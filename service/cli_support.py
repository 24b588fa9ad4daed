"""What every `ruta` command module shares: running async work against the database, and
the person a command acts for."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.db import Database
from service.core.requestid import bind_request_id
from service.core.security import Actor
from service.core.settings import Settings
from service.identity import service as identity_service
from service.identity.rules import Permission, has_permission
from service.main import open_database

T = TypeVar("T")


def run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on a database opened for it, under a request id of its own (the audit
    events of one command share it)."""

    async def runner() -> T:
        bind_request_id(f"cli-{secrets.token_hex(8)}")
        db = open_database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(runner())


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
