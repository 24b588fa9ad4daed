"""The fixed catalogue of published tables and their dimensions: pure, no I/O.

Analysts choose a table and at most two of its dimensions; there are no free-form queries.
Tables about persons always carry minor/adult and gender besides the chosen dimensions (so a
cell is never "all ages" of a small group alone), and count each person once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Dimension(StrEnum):
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


# Always among a person table's dimensions. An age band implies minor/adult, so a table by
# age band carries gender alone beside it.
ALWAYS = (Dimension.minor, Dimension.gender)

# The Peruvian law's thresholds (art. 153: under 14, 14 to 17) and adulthood split at 30.
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-13", 0, 13),
    ("14-17", 14, 17),
    ("18-29", 18, 29),
    ("30+", 30, None),
)
UNKNOWN = "unknown"
ADULT_AGE = 18


def age_band(age: int | None) -> str:
    """The published band of an age in completed years."""
    if age is None:
        return UNKNOWN
    for label, low, high in AGE_BANDS:
        if age >= low and (high is None or age <= high):
            return label
    raise ValueError(f"negative age {age}")


@dataclass(frozen=True)
class TableSpec:
    code: str
    title: str
    # The dimensions an analyst may choose (at most two at once).
    dimensions: tuple[Dimension, ...]
    # The breakdown when the analyst names none.
    default_by: tuple[Dimension, ...]


MAX_CHOSEN = 2

CATALOGUE: dict[str, TableSpec] = {
    spec.code: spec
    for spec in (
        TableSpec(
            "V1",
            "Persons identified as suspected victims, each counted once",
            (
                Dimension.region,
                Dimension.nationality_group,
                Dimension.form,
                Dimension.age_band,
            ),
            (),
        ),
        TableSpec(
            "V2",
            "Persons identified, by form of exploitation and labour sector",
            (Dimension.form, Dimension.sector),
            (Dimension.form,),
        ),
        TableSpec(
            "V3",
            "Persons identified, by nationality and country of exploitation",
            (
                Dimension.nationality_group,
                Dimension.nationality,
                Dimension.country_of_exploitation,
            ),
            (Dimension.nationality_group,),
        ),
        TableSpec(
            "V4",
            "Persons identified, by region of exploitation",
            (Dimension.region, Dimension.form),
            (Dimension.region,),
        ),
        TableSpec(
            "V5",
            "Persons identified, by identifying institution (one person may be identified by"
            " several: the rows add up to more than the persons, whose total is given apart)",
            (Dimension.institution, Dimension.form),
            (Dimension.institution,),
        ),
        TableSpec(
            "V10",
            "Persons identified, by age band at identification and gender",
            (Dimension.age_band, Dimension.form),
            (Dimension.age_band,),
        ),
    )
}


class ChoiceError(ValueError):
    """The analyst's choice of dimensions is not allowed for the table."""


def breakdown(spec: TableSpec, chosen: tuple[Dimension, ...] | None) -> tuple[Dimension, ...]:
    """The full list of dimensions of a table: the analyst's choice (or the default), then
    those always present. An age band stands in for minor/adult."""
    by = spec.default_by if chosen is None else chosen
    if len(by) > MAX_CHOSEN:
        raise ChoiceError(f"choose at most {MAX_CHOSEN} dimensions")
    if len(set(by)) != len(by):
        raise ChoiceError("a dimension is named twice")
    unknown = [d.value for d in by if d not in spec.dimensions]
    if unknown:
        allowed = ", ".join(d.value for d in spec.dimensions)
        raise ChoiceError(f"{spec.code} has no dimension {', '.join(unknown)} (it has {allowed})")
    always = [
        d for d in ALWAYS if d not in by and not (d is Dimension.minor and Dimension.age_band in by)
    ]
    return (*by, *always)


class ExclusionReason(StrEnum):
    """Why an identified person is left out of every table."""

    # Neither the person's consent nor a recorded legal basis covers statistics.
    no_consent_or_basis = "no_consent_or_basis"
    # Screened as not a victim (as known on the day the table is computed).
    not_a_victim = "not_a_victim"
