"""Closing a case, in one flow: the closure and everything it ends.

Closing (for any reason: reintegrated, repatriated, lost contact ...) ends the case's
placement, so the bed goes to the next person on the waitlist; releases its hold; withdraws
its waiting request; cancels its referrals still waiting for an answer and its planned
repatriation (the receiving organization stops being involved through it). A case closes
as repatriated only here, when the arrival of a return to the country of origin is recorded
(pathway.repatriation), never at a caller's request. Each effect is its own audit event, in
the same transaction as the closure. A public defender's assignment
is not ended: the criminal proceeding and restitution outlive care, and the defender ends it
(reason `case_closed`) when their work is done. Reopening restores none of it:
a reopened case asks for a bed and sends referrals again, on the record.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity import service as capacity_service
from service.cases import service as case_service
from service.cases.rules import CaseStatus, TransitionTrigger
from service.cases.schemas import TransitionRequest
from service.core.crypto import Keyring
from service.core.preconditions import IfMatch
from service.core.security import Actor
from service.referrals import service as referral_service
from service.referrals.rules import SystemReason
from service.repatriation import service as repatriation_service
from service.repatriation.rules import CancelReason

if TYPE_CHECKING:
    from service.cases.models import CaseFile, CaseTransition


async def transition_case(
    session: AsyncSession,
    *,
    actor: Actor,
    keyring: Keyring,
    case: CaseFile,
    request: TransitionRequest,
    if_match: IfMatch | None = None,
) -> CaseTransition:
    """Close or reopen a case as the state machine allows; a closure releases what the case
    held in other domains."""
    locked = await case_service.lock_case_for_change(session, case, if_match=if_match)
    transition = await case_service.transition_case(
        session, actor=actor, keyring=keyring, case=locked, request=request
    )
    if request.to is CaseStatus.closed:
        await _release(session, actor=actor, case_id=locked.id)
    await session.flush()
    return transition


async def close_repatriated(session: AsyncSession, *, actor: Actor, case_id: uuid.UUID) -> None:
    """The person arrived in her country of origin: the case closes as repatriated, from
    whatever open state it is in, and releases what it held (pathway.repatriation calls it
    once the non-refoulement and consent checks have passed)."""
    locked = await case_service.lock_case(session, case_id)
    assert locked is not None
    await case_service.advance_case(
        session, actor=actor, case_id=locked.id, trigger=TransitionTrigger.repatriated
    )
    await _release(session, actor=actor, case_id=locked.id)


async def _release(session: AsyncSession, *, actor: Actor, case_id: uuid.UUID) -> None:
    """What a closed case lets go: its bed, hold and waiting request, its pending referrals,
    its planned repatriation."""
    await capacity_service.release_case(session, actor=actor, case_id=case_id)
    await referral_service.cancel_requested_referrals(
        session, actor=actor, case_id=case_id, reason=SystemReason.case_closed
    )
    await repatriation_service.cancel_planned_of_case(
        session, actor=actor, case_id=case_id, reason=CancelReason.case_closed
    )
