"""Consent across domains: withdrawing a consent cancels the pending referrals it alone
covered; a refusal cancels those nothing covers any more; either cancels a planned return
to the person's country that no consent in force allows."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from service.cases import service as case_service
from service.consent import service as consent_service
from service.consent.exceptions import ConsentNotFound, StatisticsBasisNotFound
from service.consent.rules import StatisticsBasisKind
from service.consent.schemas import ConsentCreate
from service.core.preconditions import IfMatch
from service.core.security import Actor
from service.referrals import service as referral_service
from service.referrals.rules import SystemReason
from service.repatriation import service as repatriation_service

if TYPE_CHECKING:
    from service.consent.models import Consent, StatisticsBasis


async def read_consent(session: AsyncSession, *, actor: Actor, consent_id: uuid.UUID) -> Consent:
    """A consent of a case the actor's organization may see; ConsentNotFound otherwise."""
    consent = await consent_service.get_consent(session, consent_id)
    await case_service.require_visible_case(
        session,
        actor=actor,
        case_id=consent.case_id,
        otherwise=ConsentNotFound("No such consent is visible to your organization."),
    )
    return consent


async def revoke_consent(
    session: AsyncSession, *, actor: Actor, consent_id: uuid.UUID, if_match: IfMatch | None = None
) -> Consent:
    """Withdraw consent, cancel the pending referrals no other consent or override covers,
    and a planned return to her country that no consent in force allows any more."""
    consent = await read_consent(session, actor=actor, consent_id=consent_id)
    await consent_service.revoke_consent(session, actor=actor, consent=consent, if_match=if_match)
    await referral_service.cancel_uncovered_referrals(
        session,
        actor=actor,
        case_id=consent.case_id,
        share_with=consent.share_with,
        reason=SystemReason.consent_revoked,
    )
    await repatriation_service.cancel_return_without_consent(
        session, actor=actor, case_id=consent.case_id
    )
    await session.flush()
    return consent


async def record_consent(
    session: AsyncSession, *, actor: Actor, case_id: uuid.UUID, data: ConsentCreate
) -> Consent:
    """Record a consent, or a refusal: the person's "no" also cancels the pending referrals
    no longer covered (an override still covers its own) and a planned return to her
    country."""
    consent = await consent_service.record_consent(session, actor=actor, case_id=case_id, data=data)
    if consent.refused:
        await referral_service.cancel_uncovered_referrals(
            session,
            actor=actor,
            case_id=case_id,
            share_with=None,
            reason=SystemReason.consent_refused,
        )
        await repatriation_service.cancel_return_without_consent(
            session, actor=actor, case_id=case_id
        )
    return consent


async def record_statistics_basis(
    session: AsyncSession, *, actor: Actor, case_id: uuid.UUID, basis: StatisticsBasisKind
) -> StatisticsBasis:
    """Record a legal basis for counting the case in the statistics, the case locked so that
    two requests at once cannot both record it."""
    await case_service.lock_case(session, case_id)
    return await consent_service.record_statistics_basis(
        session, actor=actor, case_id=case_id, basis=basis
    )


async def withdraw_statistics_basis(
    session: AsyncSession, *, actor: Actor, basis_id: uuid.UUID
) -> StatisticsBasis:
    """Withdraw a statistics basis of a case the actor's organization may see (404 else)."""
    not_found = StatisticsBasisNotFound(
        f"No statistics basis {basis_id} is visible to your organization."
    )
    try:
        record = await consent_service.get_statistics_basis(session, basis_id)
    except StatisticsBasisNotFound:
        raise not_found from None
    await case_service.require_visible_case(
        session, actor=actor, case_id=record.case_id, otherwise=not_found
    )
    await case_service.lock_case(session, record.case_id)
    return await consent_service.withdraw_statistics_basis(session, actor=actor, record=record)
