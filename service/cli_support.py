"""What every `ruta` command module shares: running async work against the database."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

from service.core.db import Database
from service.core.requestid import bind_request_id
from service.core.settings import Settings
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
