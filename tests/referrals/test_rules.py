"""Which referral purposes start care: pure."""

from __future__ import annotations

import pytest

from service.referrals.rules import CARE_PURPOSES, ReferralPurpose, starts_care


@pytest.mark.parametrize(
    "purpose",
    [ReferralPurpose.protection_services, ReferralPurpose.shelter, ReferralPurpose.reintegration],
)
def test_services_that_take_care_of_the_person_start_care(purpose: ReferralPurpose) -> None:
    assert starts_care(purpose)


@pytest.mark.parametrize(
    "purpose",
    [
        ReferralPurpose.legal_aid,
        ReferralPurpose.refugee_procedure,
        ReferralPurpose.victim_witness_programme,
        ReferralPurpose.repatriation,
    ],
)
def test_a_defender_unhcr_prosecutors_or_repatriation_do_not_start_care(
    purpose: ReferralPurpose,
) -> None:
    assert not starts_care(purpose)


def test_care_purposes_are_exactly_protection_shelter_and_reintegration() -> None:
    assert {p.value for p in CARE_PURPOSES} == {"protection_services", "shelter", "reintegration"}
