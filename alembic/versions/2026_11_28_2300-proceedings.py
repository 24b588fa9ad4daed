"""criminal proceedings, defendants and restitution

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 23:00:00

The specialized prosecutor offices (reference data, seeded). A proceeding with its dated
status history, the victims' cases it concerns (with the day of each offence), and its
defendants without identity: the current outcome on the defendant, with the sentencing flags
(below_legal_minimum, charge_reduced) and the rule version that computed them, and every
outcome recorded in defendant_outcome. Court-ordered restitution per victim and the
payments received; money is Numeric(12,2) and positive by check constraint.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import service.core.types
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prosecutor_office",
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("region", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["region"], ["region.code"], name=op.f("fk_prosecutor_office_region_region")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_prosecutor_office")),
    )
    op.create_table(
        "proceeding",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("complaint_number", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("prosecutor_office", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("prosecutor_organization_id", sa.Uuid(), nullable=False),
        sa.Column("court_organization_id", sa.Uuid(), nullable=True),
        sa.Column("complaint_filed_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", service.core.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["court_organization_id"],
            ["organization.id"],
            name=op.f("fk_proceeding_court_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_proceeding_created_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["prosecutor_office"],
            ["prosecutor_office.code"],
            name=op.f("fk_proceeding_prosecutor_office_prosecutor_office"),
        ),
        sa.ForeignKeyConstraint(
            ["prosecutor_organization_id"],
            ["organization.id"],
            name=op.f("fk_proceeding_prosecutor_organization_id_organization"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proceeding")),
        sa.UniqueConstraint(
            "prosecutor_office",
            "complaint_number",
            name=op.f("uq_proceeding_prosecutor_office_complaint_number"),
        ),
    )
    with op.batch_alter_table("proceeding", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_proceeding_court_organization_id"),
            ["court_organization_id"],
            unique=False,
        )
        batch_op.create_index("ix_proceeding_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_proceeding_prosecutor_organization_id"),
            ["prosecutor_organization_id"],
            unique=False,
        )

    op.create_table(
        "defendant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("proceeding_id", sa.Uuid(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("public_official", sa.Boolean(), nullable=False),
        sa.Column("charge_filed", sa.String(length=32), nullable=False),
        sa.Column("charge", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("outcome_on", sa.Date(), nullable=True),
        sa.Column("sentence_months", sa.Integer(), nullable=True),
        sa.Column("fine_soles", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("below_legal_minimum", sa.Boolean(), nullable=False),
        sa.Column("charge_reduced", sa.Boolean(), nullable=False),
        sa.Column("rule_version", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", service.core.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "fine_soles IS NULL OR fine_soles > 0", name=op.f("ck_defendant_fine_positive")
        ),
        sa.CheckConstraint(
            "sentence_months IS NULL OR sentence_months >= 0",
            name=op.f("ck_defendant_sentence_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_defendant_created_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["proceeding_id"], ["proceeding.id"], name=op.f("fk_defendant_proceeding_id_proceeding")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_defendant")),
        sa.UniqueConstraint(
            "proceeding_id", "label", name=op.f("uq_defendant_proceeding_id_label")
        ),
    )
    with op.batch_alter_table("defendant", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_defendant_outcome"), ["outcome"], unique=False)

    op.create_table(
        "proceeding_case",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("proceeding_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("offence_on", sa.Date(), nullable=False),
        sa.Column("linked_by", sa.Uuid(), nullable=False),
        sa.Column("linked_at", service.core.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_proceeding_case_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["linked_by"], ["app_user.id"], name=op.f("fk_proceeding_case_linked_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["proceeding_id"],
            ["proceeding.id"],
            name=op.f("fk_proceeding_case_proceeding_id_proceeding"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proceeding_case")),
        sa.UniqueConstraint(
            "proceeding_id", "case_id", name=op.f("uq_proceeding_case_proceeding_id_case_id")
        ),
    )
    with op.batch_alter_table("proceeding_case", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proceeding_case_case_id"), ["case_id"], unique=False)

    op.create_table(
        "proceeding_status_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("proceeding_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", service.core.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_proceeding_status_change_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["proceeding_id"],
            ["proceeding.id"],
            name=op.f("fk_proceeding_status_change_proceeding_id_proceeding"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["app_user.id"],
            name=op.f("fk_proceeding_status_change_recorded_by_app_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proceeding_status_change")),
    )
    with op.batch_alter_table("proceeding_status_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_proceeding_status_change_proceeding_id_effective_on",
            ["proceeding_id", "effective_on"],
            unique=False,
        )

    op.create_table(
        "restitution_order",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("proceeding_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("amount_soles", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("ordered_on", sa.Date(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", service.core.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("amount_soles > 0", name=op.f("ck_restitution_order_amount_positive")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_restitution_order_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_restitution_order_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["proceeding_id"],
            ["proceeding.id"],
            name=op.f("fk_restitution_order_proceeding_id_proceeding"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["app_user.id"], name=op.f("fk_restitution_order_recorded_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restitution_order")),
    )
    with op.batch_alter_table("restitution_order", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_restitution_order_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_restitution_order_ordered_on"), ["ordered_on"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_restitution_order_proceeding_id"), ["proceeding_id"], unique=False
        )

    op.create_table(
        "defendant_outcome",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("defendant_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("outcome_on", sa.Date(), nullable=False),
        sa.Column("charge", sa.String(length=32), nullable=True),
        sa.Column("sentence_months", sa.Integer(), nullable=True),
        sa.Column("fine_soles", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("below_legal_minimum", sa.Boolean(), nullable=False),
        sa.Column("charge_reduced", sa.Boolean(), nullable=False),
        sa.Column("rule_version", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", service.core.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["defendant_id"],
            ["defendant.id"],
            name=op.f("fk_defendant_outcome_defendant_id_defendant"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_defendant_outcome_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["app_user.id"], name=op.f("fk_defendant_outcome_recorded_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_defendant_outcome")),
    )
    with op.batch_alter_table("defendant_outcome", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_defendant_outcome_defendant_id"), ["defendant_id"], unique=False
        )

    op.create_table(
        "restitution_payment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("amount_soles", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", service.core.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("amount_soles > 0", name=op.f("ck_restitution_payment_amount_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["restitution_order.id"],
            name=op.f("fk_restitution_payment_order_id_restitution_order"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_restitution_payment_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["app_user.id"],
            name=op.f("fk_restitution_payment_recorded_by_app_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restitution_payment")),
    )
    with op.batch_alter_table("restitution_payment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_restitution_payment_order_id"), ["order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("restitution_payment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_restitution_payment_order_id"))

    op.drop_table("restitution_payment")
    with op.batch_alter_table("defendant_outcome", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_defendant_outcome_defendant_id"))

    op.drop_table("defendant_outcome")
    with op.batch_alter_table("restitution_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_restitution_order_proceeding_id"))
        batch_op.drop_index(batch_op.f("ix_restitution_order_ordered_on"))
        batch_op.drop_index(batch_op.f("ix_restitution_order_case_id"))

    op.drop_table("restitution_order")
    with op.batch_alter_table("proceeding_status_change", schema=None) as batch_op:
        batch_op.drop_index("ix_proceeding_status_change_proceeding_id_effective_on")

    op.drop_table("proceeding_status_change")
    with op.batch_alter_table("proceeding_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proceeding_case_case_id"))

    op.drop_table("proceeding_case")
    with op.batch_alter_table("defendant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_defendant_outcome"))

    op.drop_table("defendant")
    with op.batch_alter_table("proceeding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proceeding_prosecutor_organization_id"))
        batch_op.drop_index("ix_proceeding_created_at_id")
        batch_op.drop_index(batch_op.f("ix_proceeding_court_organization_id"))

    op.drop_table("proceeding")
    op.drop_table("prosecutor_office")
