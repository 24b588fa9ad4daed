"""Vocabularies of a case and its identification: pure, no I/O."""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    identified = "identified"
    referred = "referred"
    in_care = "in_care"
    closed = "closed"


class VictimStatus(StrEnum):
    suspected = "suspected"
    confirmed = "confirmed"
    not_a_victim = "not_a_victim"
    undetermined = "undetermined"


class IdentificationContext(StrEnum):
    police_operation = "police_operation"
    labour_inspection = "labour_inspection"
    health_service = "health_service"
    school = "school"
    consulate_abroad = "consulate_abroad"
    hotline = "hotline"
    self_referral = "self_referral"
    ngo_outreach = "ngo_outreach"
    other = "other"


class ExploitationForm(StrEnum):
    """Aligned with the IOM HTCDS / CTDC categories."""

    sexual_exploitation = "sexual_exploitation"
    forced_labour = "forced_labour"
    forced_criminality = "forced_criminality"
    forced_begging = "forced_begging"
    forced_marriage = "forced_marriage"
    armed_group_recruitment = "armed_group_recruitment"
    child_sex_tourism = "child_sex_tourism"
    other = "other"


class LabourSector(StrEnum):
    gold_mining = "gold_mining"
    logging = "logging"
    agriculture = "agriculture"
    brick_making = "brick_making"
    factory = "factory"
    domestic_service = "domestic_service"
    street_vending = "street_vending"
    other = "other"


class InvolvementBasis(StrEnum):
    """Why an organization is involved in a case, and so may see it."""

    identified = "identified"
    referral = "referral"
    placement = "placement"
    legal_aid = "legal_aid"
    proceeding = "proceeding"
    # The organization receiving a Peruvian repatriated from abroad (source: the repatriation).
    repatriation = "repatriation"


def exploitation_error(form: ExploitationForm, sector: LabourSector | None) -> str | None:
    """Why a form/sector pair is inconsistent, or None when it is fine."""
    if form is ExploitationForm.forced_labour and sector is None:
        return "forced_labour requires a sector"
    if form is not ExploitationForm.forced_labour and sector is not None:
        return "only forced_labour carries a sector"
    return None


PERU = "PER"
# Where a person exploited abroad is offered a bed when no identification names a Peruvian
# region, no repatriation names an arrival region, and the identifying organization has none
# either: Lima, where most repatriated victims arrive (Jorge Chávez airport).
ARRIVAL_REGION = "15"


class RouteRole(StrEnum):
    """A country's place on the migration path."""

    origin = "origin"
    transit = "transit"
    destination = "destination"


def place_of_exploitation_error(
    *, region: str | None, country: str | None, context: IdentificationContext
) -> tuple[str, str] | None:
    """Why the place of exploitation is wrong, as (field, reason), or None when it is fine:
    exactly one of a Peruvian region or a foreign country; a consulate names the country."""
    if region is None and country is None:
        return (
            "region",
            "give the region of Peru where the exploitation took place,"
            " or exploitation_country when it was abroad",
        )
    if region is not None and country is not None:
        return "exploitation_country", "give region or exploitation_country, not both"
    if country == PERU:
        return "exploitation_country", "exploitation in Peru is recorded by its region"
    if context is IdentificationContext.consulate_abroad and country is None:
        return "exploitation_country", "an identification by a consulate abroad names the country"
    return None


def route_legs(
    *, origin: str | None, transit: list[str], destination: str | None
) -> list[tuple[str, RouteRole]]:
    """The migration path in order, one (country, role) per leg."""
    legs: list[tuple[str, RouteRole]] = []
    if origin is not None:
        legs.append((origin, RouteRole.origin))
    legs.extend((country, RouteRole.transit) for country in transit)
    if destination is not None:
        legs.append((destination, RouteRole.destination))
    return legs


def placement_region(
    regions_oldest_first: list[str | None],
    *,
    identifier_region: str | None,
    repatriation_region: str | None = None,
) -> str:
    """The region where a bed is sought: where a repatriation to Peru brings the person;
    else the latest identification that names a Peruvian region; for a person exploited
    abroad, the region of the organization that identified them, else the arrival region
    (ARRIVAL_REGION)."""
    if repatriation_region is not None:
        return repatriation_region
    for region in reversed(regions_oldest_first):
        if region is not None:
            return region
    return identifier_region or ARRIVAL_REGION


class ClosingReason(StrEnum):
    reintegrated = "reintegrated"
    repatriated = "repatriated"
    declined_services = "declined_services"
    lost_contact = "lost_contact"
    transferred = "transferred"
    deceased = "deceased"
    not_a_victim = "not_a_victim"


class ReopeningReason(StrEnum):
    re_trafficked = "re_trafficked"
    new_information = "new_information"
    closed_in_error = "closed_in_error"


class TransitionTrigger(StrEnum):
    """Why the case moved: a caller's request, or an event of the pathway."""

    requested = "requested"
    referral_sent = "referral_sent"
    care_started = "care_started"
    # The person arrived in her country of origin: the case closes as repatriated.
    repatriated = "repatriated"


# The reasons a caller may close a case with, by the state it closes from. Reintegration
# needs care to have begun; "not a victim" is decided before it. `repatriated` is no caller's
# reason: a case closes so when a repatriation's arrival is recorded (TransitionTrigger
# .repatriated), after the non-refoulement and consent checks, whatever state it is in (the
# return was itself the service).
CLOSING_REASONS: dict[CaseStatus, frozenset[ClosingReason]] = {
    CaseStatus.identified: frozenset(
        {
            ClosingReason.declined_services,
            ClosingReason.lost_contact,
            ClosingReason.transferred,
            ClosingReason.deceased,
            ClosingReason.not_a_victim,
        }
    ),
    CaseStatus.referred: frozenset(
        {
            ClosingReason.declined_services,
            ClosingReason.lost_contact,
            ClosingReason.transferred,
            ClosingReason.deceased,
            ClosingReason.not_a_victim,
        }
    ),
    CaseStatus.in_care: frozenset(
        {
            ClosingReason.reintegrated,
            ClosingReason.declined_services,
            ClosingReason.lost_contact,
            ClosingReason.transferred,
            ClosingReason.deceased,
        }
    ),
    CaseStatus.closed: frozenset(),
}

REOPEN_TARGETS = frozenset({CaseStatus.identified, CaseStatus.in_care})


class IllegalTransition(Exception):
    """A transition the state machine does not allow; `allowed` lists what is."""

    def __init__(self, message: str, allowed: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.allowed = allowed


def allowed_transitions(status: CaseStatus) -> list[dict[str, object]]:
    """What a caller may request from a state: `{"to", "reasons"}` pairs."""
    if status is CaseStatus.closed:
        return [
            {"to": target.value, "reasons": sorted(r.value for r in ReopeningReason)}
            for target in sorted(REOPEN_TARGETS)
        ]
    return [
        {"to": CaseStatus.closed.value, "reasons": sorted(r.value for r in CLOSING_REASONS[status])}
    ]


def check_requested_transition(
    status: CaseStatus, to: CaseStatus, reason: str, *, victim_status: VictimStatus
) -> None:
    """Raise IllegalTransition unless a caller may move a case from `status` to `to`."""
    allowed = allowed_transitions(status)
    if status is CaseStatus.closed:
        if to not in REOPEN_TARGETS:
            raise IllegalTransition(
                f"a closed case reopens to identified or in_care, not {to}", allowed
            )
        if reason not in {r.value for r in ReopeningReason}:
            raise IllegalTransition("this is not a reason to reopen a case", allowed)
        return
    if to is not CaseStatus.closed:
        raise IllegalTransition(
            f"{status} -> {to} happens by itself when a referral is sent or care begins", allowed
        )
    if reason == ClosingReason.repatriated:
        raise IllegalTransition(
            "a case closes as repatriated when the arrival of its repatriation is recorded"
            " (POST /v1/repatriations/{id}/arrival)",
            allowed,
        )
    if reason not in {r.value for r in CLOSING_REASONS[status]}:
        raise IllegalTransition(f"a case cannot close for this reason from {status}", allowed)
    if reason == ClosingReason.not_a_victim and victim_status is not VictimStatus.not_a_victim:
        raise IllegalTransition("closing as not_a_victim needs a screening that found so", allowed)


def status_after(status: CaseStatus, trigger: TransitionTrigger) -> CaseStatus | None:
    """The state a pathway event moves a case to, or None when it stays where it is."""
    if trigger is TransitionTrigger.referral_sent and status is CaseStatus.identified:
        return CaseStatus.referred
    if trigger is TransitionTrigger.care_started and status in {
        CaseStatus.identified,
        CaseStatus.referred,
    }:
        return CaseStatus.in_care
    if trigger is TransitionTrigger.repatriated and status is not CaseStatus.closed:
        return CaseStatus.closed
    return None


# The reason a pathway event records on the transition it causes.
TRIGGER_REASONS: dict[TransitionTrigger, ClosingReason] = {
    TransitionTrigger.repatriated: ClosingReason.repatriated,
}


def suggested_referrals(*, foreign: bool, minor: bool, witness: bool) -> list[tuple[str, str]]:
    """Where the pathway sends a person: (organization code, referral purpose) pairs.

    Nationals go to MIMP; foreign nationals to UNHCR first (children also to MIMP, which
    protects every child in Peru); witnesses to the prosecutors' programme; every victim to
    a public defender.
    """
    suggestions: list[tuple[str, str]] = []
    if foreign:
        suggestions.append(("UNHCR", "refugee_procedure"))
    if not foreign or minor:
        suggestions.append(("MIMP", "protection_services"))
    if witness:
        suggestions.append(("MP", "victim_witness_programme"))
    suggestions.append(("MINJUS", "legal_aid"))
    return suggestions
