"""Addresses users signed in from, as keyed hashes, for the login limits

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 03:20:00

- `login_address`: per user, a keyed hash of each address the user signed in from (never
  the address itself), with when it was first and last used: from a known address the
  per-username failed-login limit never refuses the user.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import service.core.types
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_address",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("address_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("first_seen_at", service.core.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", service.core.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_login_address_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("user_id", "address_hash", name=op.f("pk_login_address")),
    )


def downgrade() -> None:
    op.drop_table("login_address")
