"""Every domain's tables, imported once: the single registry Alembic compares against."""

from sqlmodel import SQLModel

from service.alerts.models import Alert
from service.audit.models import AuditChainHead, AuditEvent
from service.capacity.models import (
    AllocationDecision,
    Facility,
    FacilityCapacityChange,
    Placement,
    PlacementRequest,
    PlacementRequestRiskChange,
    UnmetNeed,
)
from service.cases.models import (
    CaseFile,
    CaseInvolvement,
    CaseTransition,
    Identification,
    IdentificationExploitation,
    IdentificationRoute,
    Screening,
)
from service.consent.models import Consent, ConsentOverride, StatisticsBasis
from service.core.idempotency import IdempotencyKey
from service.identity.models import AppUser, LoginAttempt, Organization
from service.legal.models import (
    Defendant,
    DefendantOutcome,
    Interview,
    LegalAidAssignment,
    Proceeding,
    ProceedingCase,
    ProceedingStatusChange,
    RestitutionOrder,
    RestitutionPayment,
)
from service.persons.models import (
    Person,
    PersonBlindIndex,
    PersonErasure,
    PersonIdentifierClaim,
    PersonIdentity,
    PersonKey,
)
from service.planning.models import SimulationChart, SimulationJob
from service.protection.models import Assistance, CustodyPeriod, NonPunishmentRecord
from service.reference.models import ProsecutorOffice, Region, RegionPopulation
from service.referrals.models import Referral, ReferralStatusChange
from service.repatriation.models import (
    AsylumClaimStatusRecord,
    Repatriation,
    ResidencyStatusRecord,
)
from service.stats.models import (
    CtdcDataset,
    CtdcRecord,
    PrivacyBudget,
    PrivacyBudgetSpend,
    StatsRelease,
)

metadata = SQLModel.metadata

__all__ = [
    "Alert",
    "AllocationDecision",
    "AppUser",
    "Assistance",
    "AsylumClaimStatusRecord",
    "AuditChainHead",
    "AuditEvent",
    "CaseFile",
    "CaseInvolvement",
    "CaseTransition",
    "Consent",
    "ConsentOverride",
    "CtdcDataset",
    "CtdcRecord",
    "CustodyPeriod",
    "Defendant",
    "DefendantOutcome",
    "Facility",
    "FacilityCapacityChange",
    "IdempotencyKey",
    "Identification",
    "IdentificationExploitation",
    "IdentificationRoute",
    "Interview",
    "LegalAidAssignment",
    "LoginAttempt",
    "NonPunishmentRecord",
    "Organization",
    "Person",
    "PersonBlindIndex",
    "PersonErasure",
    "PersonIdentifierClaim",
    "PersonIdentity",
    "PersonKey",
    "Placement",
    "PlacementRequest",
    "PlacementRequestRiskChange",
    "PrivacyBudget",
    "PrivacyBudgetSpend",
    "Proceeding",
    "ProceedingCase",
    "ProceedingStatusChange",
    "ProsecutorOffice",
    "Referral",
    "ReferralStatusChange",
    "Region",
    "RegionPopulation",
    "Repatriation",
    "ResidencyStatusRecord",
    "RestitutionOrder",
    "RestitutionPayment",
    "Screening",
    "SimulationChart",
    "SimulationJob",
    "StatisticsBasis",
    "StatsRelease",
    "UnmetNeed",
    "metadata",
]
