"""capacity simulation jobs and their charts

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 00:30:00

- `simulation_job`: a simulation requested over HTTP (POST /v1/simulations), its scenario,
  progress, results, error and heartbeat (a stale one marks an interrupted job).
- `simulation_chart`: the PNG charts of a finished job.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import service.core.types
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "simulation_job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("scenario", sa.JSON(), nullable=False),
        sa.Column("replications_done", sa.Integer(), nullable=False),
        sa.Column("replications_total", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", service.core.types.UTCDateTime(), nullable=False),
        sa.Column("started_at", service.core.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", service.core.types.UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", service.core.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "replications_done >= 0 AND replications_done <= replications_total",
            name=op.f("ck_simulation_job_progress_within_total"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_simulation_job_created_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_simulation_job_organization_id_organization"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_simulation_job")),
    )
    op.create_index(
        "ix_simulation_job_organization_id_created_at",
        "simulation_job",
        ["organization_id", "created_at"],
    )
    op.create_index("ix_simulation_job_status", "simulation_job", ["status"])
    op.create_table(
        "simulation_chart",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["simulation_job.id"],
            name=op.f("fk_simulation_chart_job_id_simulation_job"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_simulation_chart")),
        sa.UniqueConstraint("job_id", "name", name=op.f("uq_simulation_chart_job_id_name")),
    )


def downgrade() -> None:
    op.drop_table("simulation_chart")
    op.drop_index("ix_simulation_job_status", table_name="simulation_job")
    op.drop_index("ix_simulation_job_organization_id_created_at", table_name="simulation_job")
    op.drop_table("simulation_job")
