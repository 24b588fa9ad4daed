"""Errors of the consent domain."""

from __future__ import annotations

from service.core.errors import Conflict, NotFound


class ConsentNotFound(NotFound):
    code = "consent_not_found"
    title = "Consent not found"


class ConsentAlreadyRevoked(Conflict):
    code = "consent_already_revoked"
    title = "Consent already revoked"


class ConsentRefusalNotRevocable(Conflict):
    code = "consent_refusal_not_revocable"
    title = "A refusal cannot be revoked"


class StatisticsBasisNotFound(NotFound):
    code = "statistics_basis_not_found"
    title = "Statistics basis not found"


class StatisticsBasisAlreadyRecorded(Conflict):
    code = "statistics_basis_already_recorded"
    title = "This basis is already recorded for the case"


class StatisticsBasisAlreadyWithdrawn(Conflict):
    code = "statistics_basis_already_withdrawn"
    title = "Statistics basis already withdrawn"
