"""Asking for a bed across domains: whether the caller's organization holds an accepted
shelter referral for the case (referrals) decides, with whether it operates the facility,
who may place (capacity). The identifying police, on their own, place nobody: they refer the
person for shelter, and the organization that accepts places her."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity import service as capacity_service
from service.capacity.schemas import PlacementCreate, PlacementResult
from service.core.security import Actor
from service.referrals import service as referral_service
from service.referrals.rules import ReferralPurpose

if TYPE_CHECKING:
    from service.cases.models import CaseFile


async def request_placement(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: PlacementCreate
) -> PlacementResult:
    """Place, hold, waitlist or record an unmet need, if the caller's organization may
    allocate this bed: it operates the facility, or accepted a shelter referral of the case."""
    holds = await referral_service.holds_accepted_referral(
        session,
        case_id=case.id,
        organization_id=actor.organization_id,
        purpose=ReferralPurpose.shelter,
    )
    return await capacity_service.request_placement(
        session, actor=actor, case=case, data=data, holds_shelter_referral=holds
    )
