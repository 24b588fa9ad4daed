"""Asking for a bed across domains: whether the caller's organization holds an accepted
shelter referral for the case (referrals) decides, with whether it operates the facility,
who may place, admit and discharge (capacity). The identifying police, on their own, place
nobody: they refer the person for shelter, and the organization that accepts places her."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity import service as capacity_service
from service.capacity.models import Placement
from service.capacity.rules import EndReason
from service.capacity.schemas import PlacementCreate, PlacementResult
from service.core.security import Actor
from service.referrals import service as referral_service
from service.referrals.rules import ReferralPurpose

if TYPE_CHECKING:
    from service.cases.models import CaseFile


async def _holds_shelter_referral(
    session: AsyncSession, *, actor: Actor, case_id: uuid.UUID
) -> bool:
    return await referral_service.holds_accepted_referral(
        session,
        case_id=case_id,
        organization_id=actor.organization_id,
        purpose=ReferralPurpose.shelter,
    )


async def request_placement(
    session: AsyncSession, *, actor: Actor, case: CaseFile, data: PlacementCreate
) -> PlacementResult:
    """Place, hold, waitlist or record an unmet need, if the caller's organization may
    allocate this bed: it operates the facility, or accepted a shelter referral of the case."""
    holds = await _holds_shelter_referral(session, actor=actor, case_id=case.id)
    return await capacity_service.request_placement(
        session, actor=actor, case=case, data=data, holds_shelter_referral=holds
    )


async def end_placement(
    session: AsyncSession, *, actor: Actor, placement_id: uuid.UUID, reason: EndReason
) -> Placement:
    """Discharge or transfer, if the caller's organization operates the facility or accepted
    a shelter referral of the case."""
    placement = await capacity_service.get_visible_placement(
        session, actor=actor, placement_id=placement_id
    )
    holds = await _holds_shelter_referral(session, actor=actor, case_id=placement.case_id)
    return await capacity_service.end_placement(
        session, actor=actor, placement=placement, reason=reason, holds_shelter_referral=holds
    )


async def confirm_arrival(
    session: AsyncSession, *, actor: Actor, placement_id: uuid.UUID
) -> Placement:
    """The person a bed was held for arrived, as the facility's operator or the holder of an
    accepted shelter referral of the case says."""
    placement = await capacity_service.get_visible_placement(
        session, actor=actor, placement_id=placement_id
    )
    holds = await _holds_shelter_referral(session, actor=actor, case_id=placement.case_id)
    return await capacity_service.confirm_arrival(
        session, actor=actor, placement=placement, holds_shelter_referral=holds
    )
