"""A token generation per user: a password reset or a disabling ends earlier tokens

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-29 06:00:00

- `app_user.token_generation`: Ruta's access tokens carry the generation they were issued
  at and are refused once the user's has moved on (`ruta user reset-password`, `ruta user
  disable`). Existing users start at 0, as do tokens issued before this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("token_generation", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.alter_column("token_generation", existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("token_generation")
