"""Idempotency keys of POST requests

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 03:00:00

- `idempotency_key`: a caller's Idempotency-Key (as a keyed digest), claimed in the same
  transaction as the work it guards, with a keyed fingerprint of the request and the sealed
  response to replay; unique per user and key; purged by the sweep once expired.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import service.core.types
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", service.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", service.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("master_key_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_idempotency_key_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_key")),
        sa.UniqueConstraint(
            "user_id", "key_digest", name=op.f("uq_idempotency_key_user_id_key_digest")
        ),
    )
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_key_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_key_expires_at")
    op.drop_table("idempotency_key")
