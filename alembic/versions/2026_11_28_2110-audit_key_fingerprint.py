"""audit key fingerprint

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 21:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Events sealed before keep NULL: a migration has no business knowing the audit key.
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("key_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
    _restore_sqlite_append_only()


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("key_fingerprint")
    _restore_sqlite_append_only()


def _restore_sqlite_append_only() -> None:
    """SQLite alters a table by rebuilding it, which drops its triggers: put them back.
    (PostgreSQL alters in place; its triggers stay.)"""
    if op.get_bind().dialect.name != "sqlite":
        return
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS audit_event_no_{operation.lower()} BEFORE {operation}"
            f" ON audit_event BEGIN SELECT RAISE(ABORT, 'audit_event is append-only:"
            f" {operation} refused'); END"
        )
