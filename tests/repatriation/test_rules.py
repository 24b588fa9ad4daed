"""Non-refoulement, the claim in force and who a repatriation to Peru fits, without I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from service.repatriation.rules import (
    AsylumClaimStatus,
    current,
    return_is_refoulement,
    to_peru_country_error,
    to_peru_error,
)


@dataclass(frozen=True)
class Entry:
    status: str
    effective_on: date
    recorded_at: datetime


def _at(hour: int) -> datetime:
    return datetime(2026, 5, 1, hour, tzinfo=UTC)


def test_the_entry_in_force_is_the_latest_day_then_the_latest_record() -> None:
    entered_late = Entry("none", date(2026, 3, 1), _at(12))
    pending = Entry("pending", date(2026, 3, 20), _at(9))
    corrected = Entry("rejected", date(2026, 3, 20), _at(10))

    assert current([corrected, entered_late, pending]) == corrected
    assert current([entered_late, pending]) == pending
    assert current([]) is None


@pytest.mark.parametrize(
    ("claim", "refused"),
    [
        (AsylumClaimStatus.pending, True),
        (AsylumClaimStatus.recognized, True),
        (AsylumClaimStatus.rejected, False),
        (AsylumClaimStatus.none, False),
        (None, False),
    ],
)
def test_a_return_is_refoulement_while_the_claim_is_pending_or_recognized(
    claim: AsylumClaimStatus | None, refused: bool
) -> None:
    assert return_is_refoulement(claim) is refused


def test_a_repatriation_to_peru_is_for_a_peruvian_exploited_abroad() -> None:
    assert to_peru_error(nationality="PER", exploitation_countries=["ARG"]) is None
    assert to_peru_error(nationality="VEN", exploitation_countries=["ARG"]) is not None
    assert to_peru_error(nationality=None, exploitation_countries=["ARG"]) is not None
    assert to_peru_error(nationality="PER", exploitation_countries=[]) is not None


def test_it_comes_from_a_country_where_she_was_exploited() -> None:
    assert to_peru_country_error("CHL", ["ARG", "CHL"]) is None
    assert to_peru_country_error("BOL", ["ARG", "CHL"]) == (
        "BOL is not a country of exploitation of this case (ARG, CHL)"
    )
