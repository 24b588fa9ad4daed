"""Capacity simulation jobs: the scenario asked for, its progress, its results and charts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column


class SimulationJob(SQLModel, table=True):
    """One run of a scenario's replications, requested over HTTP and run in the background.

    `heartbeat_at` is touched by the process running the job while it is queued or running:
    a job whose heartbeat has gone stale was interrupted (the process stopped) and is marked
    failed when an API process starts, never left "running" for ever."""

    __tablename__ = "simulation_job"
    __table_args__ = (
        sa.CheckConstraint(
            "replications_done >= 0 AND replications_done <= replications_total",
            name="progress_within_total",
        ),
        sa.Index("ix_simulation_job_organization_id_created_at", "organization_id", "created_at"),
        sa.Index("ix_simulation_job_status", "status"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    status: str = Field(sa_type=code_column())
    # The scenario as validated (service.simulation.scenario.Scenario, JSON mode).
    scenario: dict[str, Any] = Field(sa_type=sa.JSON)
    replications_done: int = 0
    replications_total: int
    # The runner's estimates (planning.rules.result_of); null until the job succeeds.
    result: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    error: str | None = Field(default=None, sa_type=sa.Text)
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SimulationChart(SQLModel, table=True):
    """A PNG chart of a finished job (the occupancy fan chart ...)."""

    __tablename__ = "simulation_chart"
    __table_args__ = (sa.UniqueConstraint("job_id", "name"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    job_id: uuid.UUID = Field(foreign_key="simulation_job.id")
    name: str = Field(max_length=32)
    png: bytes = Field(sa_type=sa.LargeBinary)
