"""A capacity scenario: facilities, arrivals, the person mix, stays and waiting, as a planner
writes it (YAML or JSON), validated field by field.

Everything is in days. Time 0 is the start of the warm-up; the measured window runs from
`warmup_days` to `warmup_days + horizon_days`, and `start` is the calendar date of its first day.
"""

from __future__ import annotations

import json
import math
from datetime import date
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from service.capacity.rules import NEIGHBOURS, FacilityKind
from service.cases.rules import ExploitationForm
from service.persons.rules import Gender

DAYS_PER_YEAR = 365.0
BUILTIN = ("peru-2016",)


# ISO 3166-1 alpha-3, as the live records and the facilities' restrictions name countries.
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class ScenarioError(ValueError):
    """A scenario that cannot run; `problems` holds (field, reason) pairs, one per bad field."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Exponential(Strict):
    distribution: Literal["exponential"]
    mean: float = Field(gt=0)


class Lognormal(Strict):
    distribution: Literal["lognormal"]
    mean: float = Field(gt=0)
    sd: float = Field(gt=0)


class Gamma(Strict):
    distribution: Literal["gamma"]
    mean: float = Field(gt=0)
    sd: float = Field(gt=0)


class Fixed(Strict):
    distribution: Literal["fixed"]
    value: float = Field(gt=0)


Stay = Annotated[Exponential | Lognormal | Gamma | Fixed, Field(discriminator="distribution")]


class Pareto(Strict):
    """Heavy-tailed raid sizes: floor(minimum * U^(-1/alpha)), capped at `maximum`."""

    distribution: Literal["pareto"]
    alpha: float = Field(gt=0)
    minimum: int = Field(ge=1)
    maximum: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Pareto:
        if self.maximum < self.minimum:
            raise ValueError("maximum must be at least minimum")
        return self


class FixedSize(Strict):
    distribution: Literal["fixed"]
    value: int = Field(ge=1)


RaidSize = Annotated[Pareto | FixedSize, Field(discriminator="distribution")]


def _region(value: str) -> str:
    if value not in NEIGHBOURS:
        raise ValueError(f"unknown region {value!r}: a two-digit INEI department code, 01-25")
    return value


class Facility(Strict):
    code: str = Field(min_length=1, max_length=64)
    region: str
    kind: FacilityKind
    beds: int = Field(ge=0)
    min_age: int = Field(default=0, ge=0, le=120)
    max_age: int = Field(default=120, ge=0, le=120)
    genders: list[Gender] = Field(default_factory=list, description="empty: every gender")
    exploitation_forms: list[ExploitationForm] = Field(
        default_factory=list, description="empty: every form"
    )
    lgbti_specialized: bool = False
    nationalities: list[Country] = Field(default_factory=list, description="empty: every one")
    opens_on: date | None = Field(default=None, description="null: open from the start")
    length_of_stay: Stay | None = Field(default=None, description="null: the scenario's")
    occupied: int = Field(
        default=0,
        ge=0,
        description=(
            "Beds already occupied at time 0 (a census, e.g. today's): their remaining stays "
            "are the stationary residuals of the facility's length of stay"
        ),
    )

    _check_region = field_validator("region")(_region)

    @model_validator(mode="after")
    def _ages(self) -> Facility:
        if self.max_age < self.min_age:
            raise ValueError("max_age must be at least min_age")
        if self.occupied > self.beds:
            raise ValueError("occupied must be at most beds")
        if self.occupied and self.opens_on is not None:
            raise ValueError("a facility that opens later has no bed occupied at the start")
        return self


class Profile(Strict):
    """One kind of person in the mix; `age` is a year, an inclusive [low, high] range drawn
    uniformly, or null (unknown, protected as a child)."""

    weight: float = Field(gt=0)
    age: int | tuple[int, int] | None
    gender: Gender
    exploitation: list[ExploitationForm] = Field(min_length=1)
    nationality: Country | None = "PER"
    lgbti_specialized: bool = False
    risk_level: int = Field(default=1, ge=0, le=3)

    @field_validator("age")
    @classmethod
    def _age(cls, value: int | tuple[int, int] | None) -> int | tuple[int, int] | None:
        low, high = (value, value) if isinstance(value, int) else value or (0, 0)
        if not 0 <= low <= high <= 120:
            raise ValueError("ages lie in 0-120 and a range is [low, high] with low <= high")
        return value


def _seasonality(value: list[float] | None) -> list[float] | None:
    if value is None:
        return None
    if len(value) != 12 or any(v < 0 for v in value) or not any(value):
        raise ValueError("twelve monthly multipliers, none negative, not all zero")
    return value


class Singles(Strict):
    """People identified one at a time: a Poisson process."""

    kind: Literal["singles"]
    region: str
    per_year: float = Field(ge=0)
    seasonality: list[float] | None = Field(default=None, description="12 monthly multipliers")
    mix: str = "default"

    _check_region = field_validator("region")(_region)
    _check_seasonality = field_validator("seasonality")(_seasonality)


class Raids(Strict):
    """Police operations that find many people at once: a compound Poisson process."""

    kind: Literal["raids"]
    region: str
    raids_per_year: float = Field(ge=0)
    size: RaidSize
    seasonality: list[float] | None = None
    mix: str = "default"

    _check_region = field_validator("region")(_region)
    _check_seasonality = field_validator("seasonality")(_seasonality)


Arrivals = Annotated[Singles | Raids, Field(discriminator="kind")]


class HeldIn(StrEnum):
    """Where a person waits for a bed."""

    police_station = "police_station"
    transit = "transit"
    family = "family"
    own_means = "own_means"


class ByAge(Strict):
    minor: float | None
    adult: float | None

    @field_validator("minor", "adult")
    @classmethod
    def _not_negative(cls, value: float | None) -> float | None:
        if value is not None and value < 0:
            raise ValueError("a maximum wait is 0 (no waiting) or more, or null (no limit)")
        return value


class HeldInByAge(Strict):
    minor: HeldIn
    adult: HeldIn


class Waiting(Strict):
    """Who waits, for how long at most (days; then the person is lost), and where."""

    max_wait_days: ByAge = ByAge(minor=30, adult=30)
    held_in: HeldInByAge = HeldInByAge(minor=HeldIn.police_station, adult=HeldIn.own_means)


class Scenario(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    start: date = date(2016, 1, 1)
    horizon_days: float = Field(default=DAYS_PER_YEAR, gt=0)
    warmup_days: float = Field(default=0, ge=0)
    replications: int = Field(default=100, ge=2, le=100_000)
    seed: int = Field(default=0, ge=0)
    facilities: list[Facility] = Field(min_length=1)
    length_of_stay: Stay
    arrivals: list[Arrivals] = Field(min_length=1)
    mixes: dict[str, list[Profile]]
    waiting: Waiting = Waiting()
    transfer_probability: float = Field(default=0, ge=0, le=1)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        codes = [f.code for f in self.facilities]
        if len(set(codes)) != len(codes):
            raise ValueError("facility codes must be unique")
        for stream in self.arrivals:
            if stream.mix not in self.mixes:
                raise ValueError(f"arrivals name mix {stream.mix!r}, which mixes does not define")
        for name, profiles in self.mixes.items():
            if not profiles:
                raise ValueError(f"mix {name!r} has no profile")
        return self

    def with_beds(self, code: str, beds: int) -> Scenario:
        """The same scenario with another number of beds at one facility."""
        if code not in {f.code for f in self.facilities}:
            raise ScenarioError([("facility", f"no facility {code!r} in scenario {self.name}")])
        facilities = [
            f.model_copy(update={"beds": beds}) if f.code == code else f for f in self.facilities
        ]
        return self.model_copy(update={"facilities": facilities})


def _where(loc: tuple[int | str, ...], data: Any) -> str:
    """The path of a field through the planner's file: Pydantic also names the branch of a
    union it tried ("raids", "pareto", "function-after[...]"); those are not in the file."""
    parts: list[str] = []
    here = data
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
            here = here[part] if isinstance(here, list) and part < len(here) else None
        elif isinstance(here, dict) and part in here:
            parts.append(f".{part}" if parts else part)
            here = here[part]
        elif isinstance(here, dict) and part in here.values():
            continue  # the branch of a tagged union, named by the tag the file gives
        elif "[" in part or part in {"int", "tuple[int,int]", "none"}:
            continue  # the branch of a plain union
        else:
            parts.append(f".{part}" if parts else part)  # a missing field
            here = None
    return "".join(parts) or "scenario"


def parse(data: Any) -> Scenario:
    """Validate scenario data; ScenarioError names every bad field."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors():
            problems.setdefault(_where(error["loc"], data), error["msg"])
        raise ScenarioError(sorted(problems.items())) from None


def load(source: str | Path) -> Scenario:
    """A built-in scenario by name (`peru-2016`) or a YAML/JSON file."""
    if str(source) in BUILTIN:
        text = resources.files(__package__).joinpath(f"scenarios/{source}.yaml").read_text()
    else:
        path = Path(source)
        if not path.is_file():
            raise ScenarioError([("scenario", f"no file {path} and no built-in {source!r}")])
        text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if str(source).endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScenarioError([("scenario", f"not valid YAML/JSON: {exc}")]) from None
    return parse(data)


def lognormal_parameters(mean: float, sd: float) -> tuple[float, float]:
    """(mu, sigma) of the normal beneath a lognormal with this mean and standard deviation."""
    sigma2 = math.log1p((sd / mean) ** 2)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)
