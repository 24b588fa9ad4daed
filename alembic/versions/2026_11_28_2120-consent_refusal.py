"""consent refusal

A version of the consent may be the person's refusal: `consent.refused`, queryable in SQL.
A requested case transition keeps the caller's note, sealed: `case_transition.note_ciphertext`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 21:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consent", schema=None) as batch_op:
        # Every version recorded so far gave consent.
        batch_op.add_column(
            sa.Column("refused", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.alter_column("refused", existing_type=sa.Boolean(), server_default=None)
    with op.batch_alter_table("case_transition", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note_ciphertext", sa.LargeBinary(), nullable=True))


# Without the column a refusal would read as a consent with no purposes, and the consent it
# withdrew would cover sharing again: revoke, as of the refusal, what each refusal withdrew.
_WITHDRAWN_BY_A_REFUSAL = """
    UPDATE consent SET
        revoked_at = (
            SELECT r.recorded_at FROM consent r
            WHERE r.case_id = consent.case_id AND r.refused AND r.version > consent.version
            ORDER BY r.version LIMIT 1
        ),
        revoked_by = (
            SELECT r.recorded_by FROM consent r
            WHERE r.case_id = consent.case_id AND r.refused AND r.version > consent.version
            ORDER BY r.version LIMIT 1
        )
    WHERE revoked_at IS NULL AND NOT refused AND EXISTS (
        SELECT 1 FROM consent r
        WHERE r.case_id = consent.case_id AND r.refused AND r.version > consent.version
    )
"""


def downgrade() -> None:
    with op.batch_alter_table("case_transition", schema=None) as batch_op:
        batch_op.drop_column("note_ciphertext")
    op.execute(_WITHDRAWN_BY_A_REFUSAL)
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_column("refused")
