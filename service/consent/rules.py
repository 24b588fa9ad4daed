"""What a consent covers: pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class ConsentPurpose(StrEnum):
    services = "services"
    data_sharing = "data_sharing"
    statistics = "statistics"
    # Returning to her country of origin: a foreign national is only repatriated with it.
    repatriation = "repatriation"


class StatisticsBasisKind(StrEnum):
    """Grounds other than consent on which a case may be counted in the statistics."""

    # A law obliges the institution to report the case (Law 28950 and its regulation
    # require the institutions of the pathway to report to the national registry).
    statutory_duty = "statutory_duty"
    # The person is a child under the guardianship of the State, and the guardian
    # authorized it.
    guardianship = "guardianship"
    court_order = "court_order"


def covers_statistics(purposes: Iterable[str]) -> bool:
    """Whether a consent's purposes let the case be counted in the statistics."""
    return ConsentPurpose.statistics in set(purposes)


@dataclass(frozen=True)
class ConsentTerms:
    """One active (not revoked) version of the consent; a refusal has no purposes."""

    version: int
    refused: bool
    purposes: frozenset[str]
    share_with: frozenset[str]


def in_force(consents: Iterable[ConsentTerms]) -> list[ConsentTerms]:
    """The consents that count: those recorded after the newest refusal. The person's latest
    "no" withdraws every earlier "yes"; consent given again after it counts again."""
    versions = list(consents)
    refused_at = max((c.version for c in versions if c.refused), default=0)
    return [c for c in versions if not c.refused and c.version > refused_at]


def covers_sharing_with(consents: Iterable[ConsentTerms], organization_code: str) -> bool:
    """Whether the active consents let the person's data be shared with this organization."""
    return any(
        ConsentPurpose.data_sharing in c.purposes and organization_code in c.share_with
        for c in in_force(consents)
    )


def covers_purpose(consents: Iterable[ConsentTerms], purpose: ConsentPurpose) -> bool:
    """Whether a consent in force names this purpose."""
    return any(purpose in c.purposes for c in in_force(consents))
