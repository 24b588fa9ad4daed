"""Worker-process entry points for concurrency tests and benchmarks (spawned, not forked)."""

from __future__ import annotations

import asyncio
import uuid

from service.audit.service import AuditAppender, new_event
from service.core.security import Actor
from service.core.settings import Settings
from service.main import open_database
from tests.support.audit import create_cases


def write_cases(
    settings_json: str,
    actor_fields: dict[str, str],
    tasks: int,
    per_task: int,
    *,
    appended_per_task: int = 0,
) -> int:
    """In a new process: `tasks` concurrent writers, each creating `per_task` cases; beside
    them, `tasks` readers each appending `appended_per_task` events (`person.viewed`, as an
    audited read does) through the process's audit appender, several at a time."""
    settings = Settings.model_validate_json(settings_json)
    actor = Actor(
        user_id=uuid.UUID(actor_fields["user_id"]),
        username=actor_fields["username"],
        organization_id=uuid.UUID(actor_fields["organization_id"]),
        organization_code=actor_fields["organization_code"],
        role=actor_fields["role"],
    )

    async def read(appender: AuditAppender) -> None:
        for _ in range(appended_per_task):
            event = new_event(
                actor=actor, action="person.viewed", entity_type="person", entity_id=uuid.uuid4()
            )
            await appender.append(event)

    async def run() -> int:
        db = open_database(settings)
        appender = AuditAppender(db)
        try:
            await asyncio.gather(
                *(create_cases(db, actor, per_task) for _ in range(tasks)),
                *(read(appender) for _ in range(tasks)),
            )
        finally:
            await appender.close()
            await db.dispose()
        return tasks * per_task

    return asyncio.run(run())
