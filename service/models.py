"""Every domain's tables, imported once: the single registry Alembic compares against."""

from sqlmodel import SQLModel

from service.audit.models import AuditChainHead, AuditEvent
from service.capacity.models import Facility
from service.cases.models import (
    CaseFile,
    CaseInvolvement,
    Identification,
    IdentificationExploitation,
)
from service.identity.models import AppUser, LoginAttempt, Organization
from service.reference.models import Region

metadata = SQLModel.metadata

__all__ = [
    "AppUser",
    "AuditChainHead",
    "AuditEvent",
    "CaseFile",
    "CaseInvolvement",
    "Facility",
    "Identification",
    "IdentificationExploitation",
    "LoginAttempt",
    "Organization",
    "Region",
    "metadata",
]
