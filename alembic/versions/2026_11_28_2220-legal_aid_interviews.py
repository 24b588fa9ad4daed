"""legal aid and interviews

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 22:20:00

Public defenders assigned to cases (dated; at most one active per case, by a partial unique
index), and the interviews of the victim with their sealed justification when repeated.
"""

from collections.abc import Sequence

import sqlalchemy as sa

import service.core.types
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interview",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("conducted_at", service.core.types.UTCDateTime(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("gesell_chamber", sa.Boolean(), nullable=False),
        sa.Column("repeated", sa.Boolean(), nullable=False),
        sa.Column("justification_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("recorded_at", service.core.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_interview_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_interview_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["app_user.id"], name=op.f("fk_interview_recorded_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interview")),
    )
    with op.batch_alter_table("interview", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interview_case_id_conducted_at", ["case_id", "conducted_at"], unique=False
        )

    op.create_table(
        "legal_aid_assignment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("defender_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("assigned_by", sa.Uuid(), nullable=False),
        sa.Column("started_at", service.core.types.UTCDateTime(), nullable=False),
        sa.Column("ended_at", service.core.types.UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("ended_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "ended_at IS NULL OR ended_at >= started_at",
            name=op.f("ck_legal_aid_assignment_ends_after_start"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_by"],
            ["app_user.id"],
            name=op.f("fk_legal_aid_assignment_assigned_by_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_legal_aid_assignment_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["defender_id"],
            ["app_user.id"],
            name=op.f("fk_legal_aid_assignment_defender_id_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["ended_by"], ["app_user.id"], name=op.f("fk_legal_aid_assignment_ended_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_legal_aid_assignment_organization_id_organization"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_aid_assignment")),
    )
    with op.batch_alter_table("legal_aid_assignment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_legal_aid_assignment_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_legal_aid_assignment_defender_id"), ["defender_id"], unique=False
        )
        batch_op.create_index(
            "uq_legal_aid_assignment_case_id_active",
            ["case_id"],
            unique=True,
            postgresql_where=sa.text("ended_at IS NULL"),
            sqlite_where=sa.text("ended_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("legal_aid_assignment", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_legal_aid_assignment_case_id_active",
            postgresql_where=sa.text("ended_at IS NULL"),
            sqlite_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_legal_aid_assignment_defender_id"))
        batch_op.drop_index(batch_op.f("ix_legal_aid_assignment_case_id"))

    op.drop_table("legal_aid_assignment")
    with op.batch_alter_table("interview", schema=None) as batch_op:
        batch_op.drop_index("ix_interview_case_id_conducted_at")

    op.drop_table("interview")
