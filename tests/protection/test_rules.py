"""How long custody escalates: pure rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.alerts.rules import AlertKind
from service.protection.rules import CustodyPlace, custody_alert_kind, custody_escalation_level

POLICE, OTHER = CustodyPlace.police_station, CustodyPlace.other


@pytest.mark.parametrize(
    ("place", "minor", "hours", "level"),
    [
        (POLICE, True, 2, 0),
        (POLICE, True, 24, 0),  # at the limit, not past it
        (POLICE, True, 24.01, 1),
        (POLICE, True, 30, 1),
        (POLICE, True, 73, 2),
        (POLICE, False, 30, 0),
        (POLICE, False, 80, 1),
        (OTHER, True, 30, 0),  # a child elsewhere: only the limit for anyone
        (OTHER, True, 80, 1),
        (OTHER, False, 80, 1),
    ],
)
def test_custody_passes_its_limits_one_level_each(
    place: CustodyPlace, minor: bool, hours: float, level: int
) -> None:
    held = timedelta(hours=hours)
    assert (
        custody_escalation_level(place, minor=minor, held=held, minor_hours=24, adult_hours=72)
        == level
    )


def test_a_child_in_a_police_station_keeps_her_own_alert_anyone_else_gets_long_custody() -> None:
    assert custody_alert_kind(POLICE, minor=True) is AlertKind.minor_in_custody
    assert custody_alert_kind(POLICE, minor=False) is AlertKind.long_custody
    assert custody_alert_kind(OTHER, minor=True) is AlertKind.long_custody
