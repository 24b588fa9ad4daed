"""asylum claims, residency and repatriation

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 23:10:00

A foreign victim's asylum claim and residency as dated history (asylum_claim_status,
residency_status), and repatriations in both directions (repatriation): to Peru from the
country of exploitation, or to the country of origin; at most one planned per case, by a
partial unique index.
"""

from collections.abc import Sequence

import sqlalchemy as sa

import service.core.types
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "asylum_claim_status",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", service.core.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_asylum_claim_status_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_asylum_claim_status_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["app_user.id"],
            name=op.f("fk_asylum_claim_status_recorded_by_app_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asylum_claim_status")),
    )
    with op.batch_alter_table("asylum_claim_status", schema=None) as batch_op:
        batch_op.create_index(
            "ix_asylum_claim_status_case_id_effective_on", ["case_id", "effective_on"], unique=False
        )

    op.create_table(
        "repatriation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("direction", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=3), nullable=False),
        sa.Column("consulate_organization_id", sa.Uuid(), nullable=True),
        sa.Column("receiving_organization_id", sa.Uuid(), nullable=True),
        sa.Column("arrival_region", sa.String(length=2), nullable=True),
        sa.Column("travel_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", service.core.types.UTCDateTime(), nullable=False),
        sa.Column("travelled_on", sa.Date(), nullable=True),
        sa.Column("arrived_on", sa.Date(), nullable=True),
        sa.Column("arrival_recorded_by", sa.Uuid(), nullable=True),
        sa.Column("arrival_recorded_at", service.core.types.UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", service.core.types.UTCDateTime(), nullable=True),
        sa.Column("cancelled_by", sa.Uuid(), nullable=True),
        sa.Column("cancel_reason", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "(direction = 'to_peru' AND consulate_organization_id IS NOT NULL AND receiving_organization_id IS NOT NULL AND arrival_region IS NOT NULL) OR (direction = 'to_country_of_origin' AND consulate_organization_id IS NULL AND receiving_organization_id IS NULL AND arrival_region IS NULL)",
            name=op.f("ck_repatriation_direction_fields"),
        ),
        sa.CheckConstraint(
            "(status = 'planned' AND arrived_on IS NULL AND cancelled_at IS NULL) OR (status = 'arrived' AND arrived_on IS NOT NULL AND travelled_on IS NOT NULL AND arrived_on >= travelled_on AND cancelled_at IS NULL) OR (status = 'cancelled' AND arrived_on IS NULL AND cancelled_at IS NOT NULL)",
            name=op.f("ck_repatriation_status_dates"),
        ),
        sa.CheckConstraint("country <> 'PER'", name=op.f("ck_repatriation_country_abroad")),
        sa.ForeignKeyConstraint(
            ["arrival_recorded_by"],
            ["app_user.id"],
            name=op.f("fk_repatriation_arrival_recorded_by_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["arrival_region"], ["region.code"], name=op.f("fk_repatriation_arrival_region_region")
        ),
        sa.ForeignKeyConstraint(
            ["cancelled_by"], ["app_user.id"], name=op.f("fk_repatriation_cancelled_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_repatriation_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["consulate_organization_id"],
            ["organization.id"],
            name=op.f("fk_repatriation_consulate_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_repatriation_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["receiving_organization_id"],
            ["organization.id"],
            name=op.f("fk_repatriation_receiving_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["app_user.id"], name=op.f("fk_repatriation_recorded_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repatriation")),
    )
    with op.batch_alter_table("repatriation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repatriation_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "uq_repatriation_case_id_planned",
            ["case_id"],
            unique=True,
            postgresql_where=sa.text("status = 'planned'"),
            sqlite_where=sa.text("status = 'planned'"),
        )

    op.create_table(
        "residency_status",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", service.core.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_residency_status_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_residency_status_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["app_user.id"], name=op.f("fk_residency_status_recorded_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_residency_status")),
    )
    with op.batch_alter_table("residency_status", schema=None) as batch_op:
        batch_op.create_index(
            "ix_residency_status_case_id_effective_on", ["case_id", "effective_on"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("residency_status", schema=None) as batch_op:
        batch_op.drop_index("ix_residency_status_case_id_effective_on")

    op.drop_table("residency_status")
    with op.batch_alter_table("repatriation", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_repatriation_case_id_planned",
            postgresql_where=sa.text("status = 'planned'"),
            sqlite_where=sa.text("status = 'planned'"),
        )
        batch_op.drop_index(batch_op.f("ix_repatriation_case_id"))

    op.drop_table("repatriation")
    with op.batch_alter_table("asylum_claim_status", schema=None) as batch_op:
        batch_op.drop_index("ix_asylum_claim_status_case_id_effective_on")

    op.drop_table("asylum_claim_status")
