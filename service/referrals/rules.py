"""Referral statuses (FHIR Task convention), which purposes start care, and deadlines: pure,
no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class ReferralPurpose(StrEnum):
    protection_services = "protection_services"
    shelter = "shelter"
    refugee_procedure = "refugee_procedure"
    victim_witness_programme = "victim_witness_programme"
    legal_aid = "legal_aid"
    repatriation = "repatriation"
    reintegration = "reintegration"


# Services that take care of the person: accepting one of these puts the case in care. A public
# defender (legal_aid), UNHCR (refugee_procedure), the prosecutors' programme or a repatriation
# accepting a referral involves that institution, but does not by itself make the person served.
CARE_PURPOSES: frozenset[ReferralPurpose] = frozenset(
    {ReferralPurpose.protection_services, ReferralPurpose.shelter, ReferralPurpose.reintegration}
)


def starts_care(purpose: ReferralPurpose) -> bool:
    """Whether accepting a referral for this purpose begins the person's care."""
    return purpose in CARE_PURPOSES


class ReferralStatus(StrEnum):
    requested = "requested"
    accepted = "accepted"
    rejected = "rejected"
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"
    expired = "expired"


class ReferralAction(StrEnum):
    accept = "accept"
    reject = "reject"
    start = "start"
    complete = "complete"
    cancel = "cancel"
    expire = "expire"


class SystemReason(StrEnum):
    """Why the system ended a referral: a code (counted, filtered), never free text, kept in
    clear; a caseworker's reason is free text and sealed."""

    unanswered_past_deadline = "unanswered_past_deadline"
    case_closed = "case_closed"
    consent_revoked = "consent_revoked"
    consent_refused = "consent_refused"


class Side(StrEnum):
    sender = "sender"
    receiver = "receiver"
    system = "system"


# action -> (states it applies to, resulting state, who may take it). The system cancels the
# referrals still requested when their case closes.
TRANSITIONS: dict[
    ReferralAction, tuple[frozenset[ReferralStatus], ReferralStatus, frozenset[Side]]
] = {
    ReferralAction.accept: (
        frozenset({ReferralStatus.requested}),
        ReferralStatus.accepted,
        frozenset({Side.receiver}),
    ),
    ReferralAction.reject: (
        frozenset({ReferralStatus.requested}),
        ReferralStatus.rejected,
        frozenset({Side.receiver}),
    ),
    ReferralAction.start: (
        frozenset({ReferralStatus.accepted}),
        ReferralStatus.in_progress,
        frozenset({Side.receiver}),
    ),
    ReferralAction.complete: (
        frozenset({ReferralStatus.accepted, ReferralStatus.in_progress}),
        ReferralStatus.completed,
        frozenset({Side.receiver}),
    ),
    ReferralAction.cancel: (
        frozenset({ReferralStatus.requested, ReferralStatus.accepted, ReferralStatus.in_progress}),
        ReferralStatus.cancelled,
        frozenset({Side.sender, Side.system}),
    ),
    ReferralAction.expire: (
        frozenset({ReferralStatus.requested}),
        ReferralStatus.expired,
        frozenset({Side.system}),
    ),
}

DEFAULT_DEADLINE_HOURS: dict[str, int] = {
    ReferralPurpose.protection_services: 72,
    ReferralPurpose.shelter: 24,
    ReferralPurpose.refugee_procedure: 72,
    ReferralPurpose.victim_witness_programme: 72,
    ReferralPurpose.legal_aid: 48,
    ReferralPurpose.repatriation: 168,
    ReferralPurpose.reintegration: 168,
}


class IllegalReferralAction(Exception):
    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


def allowed_actions(status: ReferralStatus, side: Side) -> list[str]:
    return sorted(
        action.value
        for action, (sources, _, who) in TRANSITIONS.items()
        if status in sources and side in who
    )


def next_status(status: ReferralStatus, action: ReferralAction, side: Side) -> ReferralStatus:
    """The status after `action` by `side`, or IllegalReferralAction."""
    sources, target, who = TRANSITIONS[action]
    if side not in who:
        raise IllegalReferralAction(
            f"only the {' or '.join(sorted(w.value for w in who))} may {action.value} a referral",
            allowed_actions(status, side),
        )
    if status not in sources:
        raise IllegalReferralAction(
            f"a {status.value} referral cannot be {action.value}ed", allowed_actions(status, side)
        )
    return target


def due_at(sent_at: datetime, purpose: ReferralPurpose, deadlines: dict[str, int]) -> datetime:
    """When an unanswered referral expires."""
    hours = deadlines.get(purpose.value, DEFAULT_DEADLINE_HOURS[purpose.value])
    return sent_at + timedelta(hours=hours)
