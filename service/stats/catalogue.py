"""The fixed catalogue of published tables and their dimensions: pure, no I/O.

Analysts choose a table and at most two of its dimensions; there are no free-form queries.
Tables about persons always carry minor/adult and gender besides the chosen dimensions (so a
cell is never "all ages" of a small group alone), and count each person once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from service.capacity.rules import FacilityKind, UnmetReason
from service.cases.rules import LabourSector
from service.legal.rules import Charge, Outcome
from service.persons.rules import Gender
from service.protection.rules import AssistanceKind
from service.referrals.rules import ReferralPurpose
from service.repatriation.rules import RepatriationDirection, ResidencyStatus
from service.stats.rules import PERU_AGE_BANDS, UNKNOWN_AGE_BAND


class By(StrEnum):
    """What a published table may be broken down by."""

    region = "region"  # the region of Peru where the exploitation took place, or "abroad"
    country_of_exploitation = "country_of_exploitation"  # PER or the foreign country
    nationality_group = "nationality_group"  # peruvian, foreign, unknown
    nationality = "nationality"  # alpha-3, or unknown
    age_band = "age_band"  # 0-13, 14-17, 18-29, 30+, unknown (Peruvian law's thresholds)
    minor = "minor"  # minor, adult, unknown (age on the day of identification)
    gender = "gender"
    form = "form"  # sexual, labour, both, other
    sector = "sector"  # the labour sector, "none" for persons not in forced labour
    institution = "institution"  # identifying institution: several per person (multi-response)
    receiving_institution = "receiving_institution"  # the institution a person was referred to
    referral_outcome = "referral_outcome"  # pending, accepted, rejected, cancelled, expired
    purpose = "purpose"  # what the referral was for
    service = "service"  # the kind of assistance given
    facility_kind = "facility_kind"  # specialized shelter, children's centre, NGO shelter ...
    unmet_reason = "unmet_reason"  # why no facility could take the person
    charge = "charge"  # a defendant's charge: the one decided, else the one filed
    outcome = "outcome"  # a defendant's outcome at the end of the period
    public_official = "public_official"  # whether the defendant was a public official
    sentence_band = "sentence_band"  # prison term in years, banded at the law's minimums
    below_legal_minimum = "below_legal_minimum"  # yes / no
    charge_reduced = "charge_reduced"  # yes / no
    restitution_paid = "restitution_paid"  # unpaid, partly_paid, paid
    direction = "direction"  # a repatriation to Peru, or home to the country of origin
    residency = "residency"  # the residency granted: temporary, permanent


class Population(StrEnum):
    """Whom a table counts: persons with at least one such event in the period."""

    identified = "identified"
    referred = "referred"
    assisted = "assisted"
    sheltered = "sheltered"
    unmet_need = "unmet_need"
    # Children held in police stations (a custody that began in the period while a minor).
    held = "held"
    # Defendants (not persons: they carry no identity) whose outcome was decided in the
    # period or was still pending at its end.
    defendants = "defendants"
    # Defendants convicted in the period.
    convicted = "convicted"
    # Victims with restitution ordered in the period.
    restitution = "restitution"
    # Persons whose repatriation arrived in the period.
    repatriated = "repatriated"
    # Foreign victims granted residency with effect in the period.
    residency_granted = "residency_granted"


# Prison terms in months, banded at the minimums of the law (6 years forced labour, 8 years
# art. 153, 12 years a victim aged 14 to 17, 15 years under 14).
SENTENCE_BANDS: tuple[tuple[str, int], ...] = (
    ("under 6", 0),
    ("6-7", 72),
    ("8-11", 96),
    ("12-14", 144),
    ("15+", 180),
)


# A referral's status grouped as published: the service began (accepted, in progress or
# completed), was refused, never answered (pending or expired), or was withdrawn.
REFERRAL_OUTCOMES: dict[str, str] = {
    "requested": "pending",
    "accepted": "accepted",
    "in_progress": "accepted",
    "completed": "accepted",
    "rejected": "rejected",
    "cancelled": "cancelled",
    "expired": "expired",
}


# Always among a person table's dimensions. A table by age band carries minor/adult too: its
# bands then sum to the same minor and adult margins the other tables publish (0-13 x adult
# is a zero everyone knows), so suppression can keep them consistent across a release.
ALWAYS = (By.minor, By.gender)

# Published categories of what is not known (an age, a nationality ...).
UNKNOWN = UNKNOWN_AGE_BAND


class Measure(StrEnum):
    """A figure published beside a table's counts (only when enough persons stand behind
    it)."""

    bed_nights = "bed_nights"  # nights spent in a bed within the period
    hours_median = "hours_median"  # of the custody periods that had ended
    hours_p90 = "hours_p90"
    periods_ended = "periods_ended"
    proceedings = "proceedings"  # distinct proceedings of the defendants counted
    ordered_soles = "ordered_soles"  # restitution ordered
    paid_soles = "paid_soles"  # of which paid


@dataclass(frozen=True)
class CatalogueTable:
    code: str
    title: str
    # The dimensions an analyst may choose (at most two at once).
    dimensions: tuple[By, ...]
    # The breakdown when the analyst names none.
    default_by: tuple[By, ...]
    population: Population = Population.identified
    # Dimensions always present besides the chosen ones.
    always: tuple[By, ...] = ALWAYS
    measures: tuple[Measure, ...] = ()
    # Published with a rate per 100,000 inhabitants of each region (the census figure is not
    # broken down by age or gender, so such a table is by region alone).
    rates: bool = False
    # What a cell counts.
    unit: str = "persons"


MAX_CHOSEN = 2

CATALOGUE: dict[str, CatalogueTable] = {
    spec.code: spec
    for spec in (
        CatalogueTable(
            "V1",
            "Persons identified as suspected victims, each counted once",
            (
                By.region,
                By.nationality_group,
                By.form,
                By.age_band,
            ),
            (),
        ),
        CatalogueTable(
            "V2",
            "Persons identified, by form of exploitation and labour sector",
            (By.form, By.sector),
            (By.form,),
        ),
        CatalogueTable(
            "V3",
            "Persons identified, by nationality and country of exploitation",
            (
                By.nationality_group,
                By.nationality,
                By.country_of_exploitation,
            ),
            (By.nationality_group,),
        ),
        CatalogueTable(
            "V4",
            "Persons identified, by region of exploitation",
            (By.region, By.form),
            (By.region,),
        ),
        CatalogueTable(
            "V5",
            "Persons identified, by identifying institution (one person may be identified by"
            " several: the rows add up to more than the persons, whose total is given apart)",
            (By.institution, By.form),
            (By.institution,),
        ),
        CatalogueTable(
            "V6",
            "Persons referred, by receiving institution and outcome (a person referred to"
            " several institutions is counted under each)",
            (By.receiving_institution, By.referral_outcome, By.purpose),
            (By.receiving_institution, By.referral_outcome),
            population=Population.referred,
        ),
        CatalogueTable(
            "V7",
            "Persons assisted, by service (a person given several services is counted under each)",
            (By.service,),
            (By.service,),
            population=Population.assisted,
        ),
        CatalogueTable(
            "V8",
            "Persons sheltered, by kind of facility, and the bed-nights they spent there in"
            " the period",
            (By.facility_kind,),
            (By.facility_kind,),
            population=Population.sheltered,
            measures=(Measure.bed_nights,),
        ),
        CatalogueTable(
            "V8U",
            "Persons for whom no facility had a bed they could take (unmet needs), by reason",
            (By.unmet_reason,),
            (By.unmet_reason,),
            population=Population.unmet_need,
        ),
        CatalogueTable(
            "V9",
            "Children held in police stations, and the hours they were held",
            (),
            (),
            population=Population.held,
            always=(By.gender,),
            measures=(Measure.periods_ended, Measure.hours_median, Measure.hours_p90),
        ),
        CatalogueTable(
            "R1",
            "Persons identified per 100,000 inhabitants, by region of exploitation (INEI"
            " census population; persons exploited abroad are not in any region's rate)",
            (By.region,),
            (By.region,),
            always=(),
            rates=True,
        ),
        CatalogueTable(
            "P1",
            "Defendants by charge and outcome: decided in the period, or still pending at its"
            " end (defendants carry no identity; a proceeding may have several)",
            (By.charge, By.outcome, By.public_official),
            (By.charge, By.outcome),
            population=Population.defendants,
            always=(),
            measures=(Measure.proceedings,),
            unit="defendants",
        ),
        CatalogueTable(
            "P2",
            "Defendants convicted in the period, by prison term, with the sentences below the"
            " legal minimum and the trafficking charges reduced to lesser ones",
            (
                By.sentence_band,
                By.below_legal_minimum,
                By.charge_reduced,
                By.charge,
            ),
            (By.sentence_band, By.below_legal_minimum),
            population=Population.convicted,
            always=(),
            unit="defendants",
        ),
        CatalogueTable(
            "P3",
            "Victims with restitution ordered in the period, and what was paid",
            (By.restitution_paid,),
            (By.restitution_paid,),
            population=Population.restitution,
            measures=(Measure.ordered_soles, Measure.paid_soles),
        ),
        CatalogueTable(
            "RP1",
            "Persons repatriated: Peruvians exploited abroad brought home, and foreign"
            " nationals returned to their country (by the day they arrived)",
            (By.direction,),
            (By.direction,),
            population=Population.repatriated,
        ),
        CatalogueTable(
            "RS1",
            "Foreign victims granted residency, temporary or permanent",
            (By.residency,),
            (By.residency,),
            population=Population.residency_granted,
        ),
        CatalogueTable(
            "V10",
            "Persons identified, by age band at identification and gender",
            (By.age_band, By.form),
            (By.age_band,),
        ),
    )
}


class ChoiceError(ValueError):
    """The analyst's choice of dimensions is not allowed for the table."""


def breakdown(spec: CatalogueTable, chosen: tuple[By, ...] | None) -> tuple[By, ...]:
    """The full list of dimensions of a table: the analyst's choice (or the default), then
    those always present."""
    by = spec.default_by if chosen is None else chosen
    if len(by) > MAX_CHOSEN:
        raise ChoiceError(f"choose at most {MAX_CHOSEN} dimensions")
    if len(set(by)) != len(by):
        raise ChoiceError("a dimension is named twice")
    unknown = [d.value for d in by if d not in spec.dimensions]
    if unknown:
        allowed = ", ".join(d.value for d in spec.dimensions)
        raise ChoiceError(f"{spec.code} has no dimension {', '.join(unknown)} (it has {allowed})")
    always = [d for d in spec.always if d not in by]
    return (*by, *always)


class ExclusionReason(StrEnum):
    """Why an identified person is left out of every table."""

    # Neither the person's consent nor a recorded legal basis covers statistics.
    no_consent_or_basis = "no_consent_or_basis"
    # Screened as not a victim (as known on the day the table is computed).
    not_a_victim = "not_a_victim"


OTHER = "other"
# Nationalities and countries of exploitation published by name (the narrative's); the rest
# are "other", so that a rare country never appears as a category of its own.
PUBLISHED_NATIONALITIES = ("PER", "VEN", "COL", "ECU", "BOL", "CHN")
PUBLISHED_COUNTRIES = ("PER", "ARG", "CHL", "ECU", "BOL", "BRA", "USA")
ABROAD = "abroad"
YES_NO = ("yes", "no")


def static_categories(by: By) -> tuple[str, ...] | None:
    """A dimension's published categories, in order (every one is published, zero or not,
    so that which categories appear reveals nothing); None for the dimensions whose
    categories come from the reference data (regions, institutions)."""
    match by:
        case By.minor:
            return ("minor", "adult", UNKNOWN)
        case By.gender:
            return tuple(Gender)
        case By.age_band:
            return (*(band.label for band in PERU_AGE_BANDS), UNKNOWN)
        case By.form:
            return ("sexual", "labour", "both", OTHER)
        case By.sector:
            return (*LabourSector, "none")
        case By.nationality_group:
            return ("peruvian", "foreign", UNKNOWN)
        case By.nationality:
            return (*PUBLISHED_NATIONALITIES, OTHER, UNKNOWN)
        case By.country_of_exploitation:
            return (*PUBLISHED_COUNTRIES, OTHER)
        case By.referral_outcome:
            return tuple(dict.fromkeys(REFERRAL_OUTCOMES.values()))
        case By.purpose:
            return tuple(ReferralPurpose)
        case By.service:
            return tuple(AssistanceKind)
        case By.facility_kind:
            return tuple(FacilityKind)
        case By.unmet_reason:
            return tuple(UnmetReason)
        case By.charge:
            return tuple(Charge)
        case By.outcome:
            return tuple(Outcome)
        case By.public_official | By.below_legal_minimum | By.charge_reduced:
            return YES_NO
        case By.sentence_band:
            return (*(label for label, _ in SENTENCE_BANDS), UNKNOWN)
        case By.restitution_paid:
            return ("unpaid", "partly_paid", "paid")
        case By.direction:
            return tuple(RepatriationDirection)
        case By.residency:
            return (ResidencyStatus.temporary.value, ResidencyStatus.permanent.value)
        case By.region | By.institution | By.receiving_institution:
            return None
    raise ValueError(f"no categories for {by}")


def about_persons(table: CatalogueTable) -> bool:
    """Whether the table's cells count persons broken down by minor/adult and gender (V9's
    are all children; rates and defendants are not)."""
    return set(ALWAYS) <= set(table.always)
