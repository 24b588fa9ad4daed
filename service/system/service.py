"""Readiness: is the database reachable and at the migration head?"""

from __future__ import annotations

import sqlalchemy as sa

from service.core.db import Database
from service.core.migrations import current_revisions


async def database_revisions(db: Database) -> frozenset[str] | None:
    """The database's current Alembic revisions, or None when it cannot be reached."""
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(current_revisions)
    except (OSError, sa.exc.SQLAlchemyError):
        return None
