"""row versions for ETag and If-Match

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29 03:10:00

A `row_version` counter on each mutable resource a client may edit concurrently: case_file,
facility, consent, referral, proceeding, defendant. The ORM bumps it on every update of the
row (SQLAlchemy's version_id_col); the API shows it as a strong ETag and compares If-Match
against it under the row lock. Existing rows start at version 1.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("case_file", "facility", "consent", "referral", "proceeding", "defendant")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("row_version", sa.Integer(), nullable=False, server_default="1")
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("row_version", existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("row_version")
