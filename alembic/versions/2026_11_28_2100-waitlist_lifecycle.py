"""waitlist lifecycle: withdrawal reasons, risk history, one active bed and one waiting
request per case (partial unique indexes)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from service.core.types import UTCDateTime

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_PLACEMENT = "status IN ('held', 'placed')"
WAITING_REQUEST = "status = 'waiting'"

# Requests that earlier code left waiting although they could never be served: withdrawn
# with the reason, so the unique index below can hold.
WITHDRAW_STALE = [
    (
        "case_closed",
        "EXISTS (SELECT 1 FROM case_file c WHERE c.id = placement_request.case_id"
        " AND c.status = 'closed')",
    ),
    (
        "already_placed",
        "EXISTS (SELECT 1 FROM placement p WHERE p.case_id = placement_request.case_id"
        " AND p.status IN ('held', 'placed'))",
    ),
    (
        "duplicate_request",
        "EXISTS (SELECT 1 FROM placement_request o WHERE o.case_id = placement_request.case_id"
        " AND o.status = 'waiting' AND (o.requested_at < placement_request.requested_at"
        " OR (o.requested_at = placement_request.requested_at AND o.id < placement_request.id)))",
    ),
]


def upgrade() -> None:
    op.add_column("placement_request", sa.Column("end_reason", sa.String(length=32), nullable=True))
    for reason, condition in WITHDRAW_STALE:
        op.execute(
            sa.text(
                "UPDATE placement_request SET status = 'withdrawn', end_reason = :reason,"  # noqa: S608 (constant conditions above)
                f" resolved_at = CURRENT_TIMESTAMP WHERE status = 'waiting' AND {condition}"
            ).bindparams(reason=reason)
        )
    op.create_index(
        "uq_placement_request_case_id_waiting",
        "placement_request",
        ["case_id"],
        unique=True,
        postgresql_where=sa.text(WAITING_REQUEST),
        sqlite_where=sa.text(WAITING_REQUEST),
    )
    op.create_index(
        "uq_placement_case_id_active",
        "placement",
        ["case_id"],
        unique=True,
        postgresql_where=sa.text(ACTIVE_PLACEMENT),
        sqlite_where=sa.text(ACTIVE_PLACEMENT),
    )
    op.create_table(
        "placement_request_risk_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("from_level", sa.Integer(), nullable=False),
        sa.Column("to_level", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("changed_by", sa.Uuid(), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["changed_by"],
            ["app_user.id"],
            name=op.f("fk_placement_request_risk_change_changed_by_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["placement_request.id"],
            name=op.f("fk_placement_request_risk_change_request_id_placement_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placement_request_risk_change")),
    )
    op.create_index(
        op.f("ix_placement_request_risk_change_request_id"),
        "placement_request_risk_change",
        ["request_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_placement_request_risk_change_request_id"),
        table_name="placement_request_risk_change",
    )
    op.drop_table("placement_request_risk_change")
    op.drop_index("uq_placement_case_id_active", table_name="placement")
    op.drop_index("uq_placement_request_case_id_waiting", table_name="placement_request")
    with op.batch_alter_table("placement_request", schema=None) as batch_op:
        batch_op.drop_column("end_reason")
