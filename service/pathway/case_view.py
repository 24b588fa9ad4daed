"""The case as involved organizations see it, with the referrals the pathway still expects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from service.cases import service as case_service
from service.cases.schemas import CasePublic
from service.referrals import service as referral_service

if TYPE_CHECKING:
    from service.cases.models import CaseFile


async def case_view(session: AsyncSession, case: CaseFile) -> CasePublic:
    """The case without identifying data; suggested referrals leave out those already made.
    One statement: the referrals made are read within the case's."""
    view, targets = await case_service.case_public(
        session, case, also=referral_service.live_targets_of
    )
    if view.suggested_referrals:
        made = referral_service.live_targets_from(targets)
        view.suggested_referrals = [
            s for s in view.suggested_referrals if (s.to_org, s.purpose) not in made
        ]
    return view
