"""Simulation jobs as the API takes and shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from service.core.schemas import Code, RequestModel, WholeNumber
from service.planning.rules import MAX_REPLICATIONS, JobStatus


class SimulationCreate(RequestModel):
    """A scenario to simulate: a built-in one by `reference`, or a whole `scenario` with the
    fields of a scenario file (see service/simulation/scenarios/peru-2016.yaml); either may
    have its replications and seed overridden."""

    reference: Code | None = Field(
        default=None, description="A built-in scenario: peru-2016", examples=["peru-2016"]
    )
    scenario: dict[str, Any] | None = Field(
        default=None, description="A scenario, as in a scenario file (YAML's fields, in JSON)"
    )
    replications: Annotated[int, Field(ge=2, le=MAX_REPLICATIONS), WholeNumber] | None = None
    seed: Annotated[int, Field(ge=0), WholeNumber] | None = None


class Progress(BaseModel):
    done: int = Field(description="Replications finished")
    total: int


class SimulationSummary(BaseModel):
    id: uuid.UUID
    status: JobStatus
    scenario_name: str
    progress: Progress
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class SimulationPublic(SimulationSummary):
    scenario: dict[str, Any] = Field(description="The scenario as validated and run")
    result: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Once succeeded: the estimates with their 95% confidence intervals (ratios of "
            "totals across replications), and the analytic answer where one exists"
        ),
    )
    charts: dict[str, str] = Field(
        default_factory=dict, description="Once succeeded: chart name -> URL of its PNG"
    )
