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


def exploitation_error(form: ExploitationForm, sector: LabourSector | None) -> str | None:
    """Why a form/sector pair is inconsistent, or None when it is fine."""
    if form is ExploitationForm.forced_labour and sector is None:
        return "forced_labour requires a sector"
    if form is not ExploitationForm.forced_labour and sector is not None:
        return "only forced_labour carries a sector"
    return None
