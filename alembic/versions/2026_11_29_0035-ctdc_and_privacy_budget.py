"""CTDC datasets imported for comparison, and the differential-privacy budget

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 00:35:00

- `ctdc_dataset`: a file of the Counter Trafficking Data Collaborative imported under a name,
  with its source file's name, its number of records and when it was imported.
- `ctdc_record`: its victims, one row each, as the file gives them (NULL where it says -99):
  kept apart from Ruta's cases, for comparison only.
- `stats_release.method` (suppression, or dp) and `epsilon` (what a dp release spent);
  existing releases are suppression releases.
- `privacy_budget`: what each release year has spent of its epsilon, in millionths, and
  `privacy_budget_spend`: the ledger of dp releases and what each spent.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import service.core.types
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(name: str, length: int = 200) -> sa.Column[str]:
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=True)


def upgrade() -> None:
    op.create_table(
        "ctdc_dataset",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("imported_at", service.core.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ctdc_dataset")),
        sa.UniqueConstraint("name", name=op.f("uq_ctdc_dataset_name")),
    )
    op.create_table(
        "ctdc_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=True),
        _text("datasource"),
        _text("gender"),
        _text("age_band", 20),
        sa.Column("age_lowest", sa.Integer(), nullable=True),
        sa.Column("age_highest", sa.Integer(), nullable=True),
        _text("majority_status"),
        _text("citizenship"),
        _text("country_of_exploitation"),
        _text("exploitation"),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["ctdc_dataset.id"],
            name=op.f("fk_ctdc_record_dataset_id_ctdc_dataset"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ctdc_record")),
    )
    op.create_index(op.f("ix_ctdc_record_dataset_id"), "ctdc_record", ["dataset_id"])
    with op.batch_alter_table("stats_release", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("method", sa.String(length=32), nullable=False, server_default="suppression")
        )
        batch_op.add_column(_text("epsilon", 32))
    op.create_table(
        "privacy_budget",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("spent_micro", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "spent_micro >= 0", name=op.f("ck_privacy_budget_spent_micro_not_negative")
        ),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_privacy_budget")),
    )
    op.create_table(
        "privacy_budget_spend",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Uuid(), nullable=False),
        sa.Column("epsilon", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("epsilon_micro", sa.Integer(), nullable=False),
        sa.Column("spent_at", service.core.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["year"],
            ["privacy_budget.year"],
            name=op.f("fk_privacy_budget_spend_year_privacy_budget"),
        ),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["stats_release.id"],
            name=op.f("fk_privacy_budget_spend_release_id_stats_release"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_privacy_budget_spend_created_by_app_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_budget_spend")),
        sa.UniqueConstraint("release_id", name=op.f("uq_privacy_budget_spend_release_id")),
    )
    op.create_index(
        op.f("ix_privacy_budget_spend_year"), "privacy_budget_spend", ["year"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_privacy_budget_spend_year"), table_name="privacy_budget_spend")
    op.drop_table("privacy_budget_spend")
    op.drop_table("privacy_budget")
    with op.batch_alter_table("stats_release", schema=None) as batch_op:
        batch_op.drop_column("epsilon")
        batch_op.drop_column("method")
    op.drop_index(op.f("ix_ctdc_record_dataset_id"), table_name="ctdc_record")
    op.drop_table("ctdc_record")
    op.drop_table("ctdc_dataset")
