"""The Counter Trafficking Data Collaborative's person-level format: reading its files, pure,
no I/O.

CTDC publishes one row per victim with columns such as `yearOfRegistration`, `gender`,
`ageBroad` ("0--8", "9--17" ... "48+"), `majorityStatus`, `citizenship` and
`CountryOfExploitation` (ISO alpha-2), the `is...` flags of each type of exploitation and
their `...Concatenated` summaries. Its files come in several shapes: a first line, or a first
column, holding the terms of use; `;` or `,` between fields; `-99` for a value that is not
known. A file is read whole or refused, naming the line and column at fault.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from service.stats.anonymize import Hierarchy, keep
from service.stats.rules import CTDC_AGE_BANDS

MISSING: Final = "-99"
TERMS_OF_USE: Final = "terms of use"
YEAR: Final = "yearOfRegistration"
# The columns kept apart (the rest are kept as read): CTDC's name -> Ruta's.
NAMED_COLUMNS: Final = {
    YEAR: "year",
    "Datasource": "datasource",
    "gender": "gender",
    "ageBroad": "age_band",
    "majorityStatus": "majority_status",
    "citizenship": "citizenship",
    "CountryOfExploitation": "country_of_exploitation",
    "typeOfExploitConcatenated": "exploitation",
}
_BAND = re.compile(r"^(\d+)\s*-{1,2}\s*(\d+)$")
_OPEN_BAND = re.compile(r"^(\d+)\s*\+$")
MAX_TEXT = 200


class CtdcFormatError(ValueError):
    """The file is not a CTDC file Ruta can read; `where` names the line and column."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class AgeBand:
    label: str  # as CTDC spells it: "0--8", "48+"
    lowest: int
    highest: int | None


@dataclass(frozen=True)
class CtdcRow:
    """One victim as the file gives it; None where the file says -99 or nothing."""

    line: int
    year: int | None
    datasource: str | None
    gender: str | None
    age_band: AgeBand | None
    majority_status: str | None
    citizenship: str | None
    country_of_exploitation: str | None
    exploitation: str | None
    # Every other column, as read (flags stay "0"/"1" strings).
    other: dict[str, str | None]


def parse_age_band(text: str) -> AgeBand:
    """CTDC's `ageBroad`: "0--8" (also written "0-8"), or an open band "48+"."""
    if m := _BAND.match(text.strip()):
        low, high = int(m.group(1)), int(m.group(2))
        if high < low:
            raise ValueError(f"age band {text!r} ends before it begins")
        return AgeBand(f"{low}--{high}", low, high)
    if m := _OPEN_BAND.match(text.strip()):
        return AgeBand(f"{int(m.group(1))}+", int(m.group(1)), None)
    raise ValueError(f"{text!r} is not an age band like 0--8 or 48+")


def ctdc_age_band(age: int | None) -> str | None:
    """The CTDC band of an age in completed years (None when unknown)."""
    if age is None:
        return None
    for band in CTDC_AGE_BANDS:
        if band.lowest <= age and (band.highest is None or age <= band.highest):
            return band.label
    raise ValueError(f"no CTDC band holds age {age}")


def _separator(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def _value(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return None if text in ("", MISSING) else text


def parse(text: str) -> list[CtdcRow]:
    """Every row of a CTDC file (CSV text, either separator), or CtdcFormatError."""
    lines = text.lstrip("\ufeff").splitlines()
    first = 0
    # A first line that states the terms and is not the header.
    while first < len(lines) and (
        not lines[first].strip()
        or (TERMS_OF_USE in lines[first].lower() and YEAR not in lines[first])
    ):
        first += 1
    if first == len(lines):
        raise CtdcFormatError("line 1", f"no header with {YEAR}")
    reader = csv.reader(io.StringIO("\n".join(lines[first:])), delimiter=_separator(lines[first]))
    header = [h.strip() for h in next(reader)]
    if YEAR not in header:
        raise CtdcFormatError(f"line {first + 1}", f"no column {YEAR}")
    # A first column that states the terms (its values are row numbers or nothing).
    skip = {0} if TERMS_OF_USE in header[0].lower() else set()
    duplicated = {h for h in header if header.count(h) > 1 and h}
    if duplicated:
        raise CtdcFormatError(f"line {first + 1}", f"repeated columns {sorted(duplicated)}")
    rows = []
    for values in reader:
        line = first + reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise CtdcFormatError(
                f"line {line}", f"{len(values)} fields where the header has {len(header)}"
            )
        fields = {
            name: _value(v)
            for i, (name, v) in enumerate(zip(header, values, strict=True))
            if i not in skip
        }
        rows.append(_row(line, fields))
    return rows


def _row(line: int, fields: dict[str, str | None]) -> CtdcRow:
    for name, value in fields.items():
        if value is not None and len(value) > MAX_TEXT:
            raise CtdcFormatError(f"line {line}, {name}", f"longer than {MAX_TEXT} characters")
    year_text = fields.get(YEAR)
    try:
        year = int(year_text) if year_text is not None else None
    except ValueError:
        raise CtdcFormatError(f"line {line}, {YEAR}", f"{year_text!r} is not a year") from None
    band_text = fields.get("ageBroad")
    try:
        band = parse_age_band(band_text) if band_text is not None else None
    except ValueError as exc:
        raise CtdcFormatError(f"line {line}, ageBroad", str(exc)) from None
    return CtdcRow(
        line=line,
        year=year,
        datasource=fields.get("Datasource"),
        gender=fields.get("gender"),
        age_band=band,
        majority_status=fields.get("majorityStatus"),
        citizenship=fields.get("citizenship"),
        country_of_exploitation=fields.get("CountryOfExploitation"),
        exploitation=fields.get("typeOfExploitConcatenated"),
        other={k: v for k, v in fields.items() if k not in NAMED_COLUMNS},
    )


# ---------------------------------------------------------------- export

# Ruta names countries by ISO alpha-3, CTDC by alpha-2: the countries of the region and of
# the narrative. A country outside this table is exported as not known.
ALPHA2: Final = {
    "PER": "PE", "VEN": "VE", "COL": "CO", "ECU": "EC", "BOL": "BO", "CHL": "CL", "ARG": "AR",
    "BRA": "BR", "PRY": "PY", "URY": "UY", "GUY": "GY", "SUR": "SR", "MEX": "MX", "USA": "US",
    "CHN": "CN", "ESP": "ES", "ITA": "IT", "JPN": "JP", "DOM": "DO", "HTI": "HT", "CUB": "CU",
}  # fmt: skip
PERU_ALPHA2: Final = "PE"
SEXUAL, LABOUR, OTHER = "Sexual exploitation", "Forced labour", "Other"
# Ruta's labour sectors in CTDC's labour types.
LABOUR_TYPES: Final = {
    "gold_mining": "Mining or drilling",
    "logging": "Other",
    "agriculture": "Agriculture",
    "brick_making": "Manufacturing",
    "factory": "Manufacturing",
    "domestic_service": "Domestic work",
    "street_vending": "Peddling",
    "other": "Other",
}
GENDERS: Final = {"female": "Female", "male": "Male"}
DATASOURCE: Final = "Case Management"
EXPORT_COLUMNS: Final = (
    YEAR,
    "Datasource",
    "gender",
    "ageBroad",
    "majorityStatus",
    "majorityStatusAtExploit",
    "majorityEntry",
    "citizenship",
    "isForcedLabour",
    "isSexualExploit",
    "isOtherExploit",
    "isSexAndLabour",
    "isForcedMarriage",
    "isForcedMilitary",
    "isOrganRemoval",
    "isSlaveryAndPractices",
    "typeOfExploitConcatenated",
    "typeOfLabourConcatenated",
    "CountryOfExploitation",
)
# The quasi-identifiers of an exported record: all an outsider might know of a victim.
QUASI_IDENTIFIERS: Final = (
    YEAR,
    "age",
    "gender",
    "citizenship",
    "CountryOfExploitation",
    "exploitation",
)
MINOR, ADULT = "Minor", "Adult"


def quasi_identifiers(
    *,
    year: int,
    age: int | None,
    gender: str | None,
    nationality: str | None,
    country_of_exploitation: str,
    sexual: bool,
    labour: bool,
    other: bool,
    sector: str | None,
) -> dict[str, str]:
    """A counted person as CTDC's values, before any generalization."""
    types = [name for name, flag in ((SEXUAL, sexual), (LABOUR, labour), (OTHER, other)) if flag]
    labour_type = LABOUR_TYPES.get(sector or "", MISSING) if labour else MISSING
    return {
        YEAR: str(year),
        "age": ctdc_age_band(age) or MISSING,
        "gender": GENDERS.get(gender or "", MISSING),
        "citizenship": ALPHA2.get(nationality or "", MISSING),
        "CountryOfExploitation": ALPHA2.get(country_of_exploitation, MISSING),
        "exploitation": f"{';'.join(types) or MISSING}|{labour_type}",
    }


def _unknown(_: str) -> str:
    return MISSING


def _majority(band: str) -> str:
    """An age band generalized to minor or adult (CTDC's bands all split at 18)."""
    if band == MISSING:
        return MISSING
    highest = parse_age_band(band).highest
    return MINOR if highest is not None and highest < 18 else ADULT


def _peru_or_unknown(country: str) -> str:
    return country if country == PERU_ALPHA2 else MISSING


def _without_labour_type(exploitation: str) -> str:
    return exploitation.split("|")[0] + "|" + MISSING


def _exploitation_unknown(_: str) -> str:
    return f"{MISSING}|{MISSING}"


def hierarchies() -> tuple[Hierarchy, ...]:
    """How each quasi-identifier is generalized, from the value to not known."""
    return (
        Hierarchy(YEAR, (keep,)),
        Hierarchy("age", (keep, _majority, _unknown)),
        Hierarchy("gender", (keep, _unknown)),
        Hierarchy("citizenship", (keep, _peru_or_unknown, _unknown)),
        Hierarchy("CountryOfExploitation", (keep, _peru_or_unknown, _unknown)),
        Hierarchy("exploitation", (keep, _without_labour_type, _exploitation_unknown)),
    )


def export_row(record: Mapping[str, str]) -> dict[str, str]:
    """A generalized record in CTDC's columns (-99 for what is not known or not published)."""
    age = record["age"]
    if age in (MINOR, ADULT, MISSING):
        band, majority = MISSING, age
    else:
        band, majority = age, _majority(age)
    types_text, labour_type = record["exploitation"].split("|")
    types = set(types_text.split(";"))
    known = types_text != MISSING

    def flag(present: bool) -> str:
        return ("1" if present else "0") if known else MISSING

    row = dict.fromkeys(EXPORT_COLUMNS, MISSING)
    row.update(
        {
            YEAR: record[YEAR],
            "Datasource": DATASOURCE,
            "gender": record["gender"],
            "ageBroad": band,
            "majorityStatus": majority,
            "citizenship": record["citizenship"],
            "isForcedLabour": flag(LABOUR in types),
            "isSexualExploit": flag(SEXUAL in types),
            "isOtherExploit": flag(OTHER in types),
            "isSexAndLabour": flag(SEXUAL in types and LABOUR in types),
            "typeOfExploitConcatenated": types_text,
            "typeOfLabourConcatenated": labour_type,
            "CountryOfExploitation": record["CountryOfExploitation"],
        }
    )
    return row


def export_csv(records: Sequence[Mapping[str, str]]) -> str:
    """Generalized records as a CTDC CSV file (`,` separated, -99 for missing)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(export_row(r) for r in records)
    return out.getvalue()
