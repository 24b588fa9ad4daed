"""custody escalation

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 21:30:00

Long custody raises its alert again: the alert's escalation level and when it was last
raised, and the level each custody period has reached.
"""

from collections.abc import Sequence

import sqlalchemy as sa

import service.core.types
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows so far were never escalated: 0, then no default (the models always give a value).
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("escalated_at", service.core.types.UTCDateTime(), nullable=True)
        )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.alter_column("escalation_level", existing_type=sa.Integer(), server_default=None)
    with op.batch_alter_table("custody_period", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("custody_period", schema=None) as batch_op:
        batch_op.alter_column("escalation_level", existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("custody_period", schema=None) as batch_op:
        batch_op.drop_column("escalation_level")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("escalation_level")
