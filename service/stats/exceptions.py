"""Errors of the statistics domain."""

from __future__ import annotations

from service.core.errors import Conflict, NotFound


class StatsTableNotFound(NotFound):
    code = "stats_table_not_found"
    title = "No such table in the catalogue"


class StatsReleaseNotFound(NotFound):
    code = "stats_release_not_found"
    title = "Statistics release not found"


class CtdcDatasetExists(Conflict):
    code = "ctdc_dataset_exists"
    title = "A CTDC dataset of that name was already imported"


class PrivacyBudgetSpent(Conflict):
    code = "privacy_budget_spent"
    title = "The year's differential-privacy budget is spent"
