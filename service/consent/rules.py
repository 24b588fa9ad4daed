"""What a consent covers: pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class ConsentPurpose(StrEnum):
    services = "services"
    data_sharing = "data_sharing"
    statistics = "statistics"


@dataclass(frozen=True)
class ConsentTerms:
    purposes: frozenset[str]
    share_with: frozenset[str]


def covers_sharing_with(consents: Iterable[ConsentTerms], organization_code: str) -> bool:
    """Whether any active consent lets the person's data be shared with this organization."""
    return any(
        ConsentPurpose.data_sharing in c.purposes and organization_code in c.share_with
        for c in consents
    )
