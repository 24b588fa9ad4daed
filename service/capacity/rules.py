"""Facility vocabularies: pure, no I/O."""

from __future__ import annotations

from enum import StrEnum


class FacilityKind(StrEnum):
    specialized_shelter = "specialized_shelter"
    children_residential_centre = "children_residential_centre"
    ngo_shelter = "ngo_shelter"
    transit = "transit"


class FacilityStatus(StrEnum):
    open = "open"
    temporarily_closed = "temporarily_closed"
    closed = "closed"


class Gender(StrEnum):
    female = "female"
    male = "male"
    non_binary = "non_binary"
    unknown = "unknown"
