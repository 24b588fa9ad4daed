"""Errors of simulation jobs."""

from __future__ import annotations

from service.core.errors import FieldError, NotFound, ServiceUnavailable
from service.core.errors import InvalidInput as _InvalidInput


class SimulationNotFound(NotFound):
    code = "simulation_not_found"
    title = "Simulation not found"


class SimulationChartNotFound(NotFound):
    code = "simulation_chart_not_found"
    title = "No such chart for this simulation"


class ScenarioInvalid(_InvalidInput):
    """A scenario that cannot run, or that asks too much of one job: every bad field named."""

    code = "scenario_invalid"
    title = "Invalid scenario"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        first_field, first_reason = problems[0]
        super().__init__(first_field, first_reason)
        self.detail = "; ".join(f"{field}: {reason}" for field, reason in problems)
        self.errors = [FieldError(field=f, message=m, type="invalid") for f, m in problems]


class SimulationQueueFull(ServiceUnavailable):
    code = "simulation_queue_full"
    title = "Too many simulations queued"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"{limit} simulations are already queued or running (RUTA_SIMULATION_QUEUE); "
            "try again when one has finished"
        )
        self.headers["Retry-After"] = "30"
