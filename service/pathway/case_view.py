"""The case as involved organizations see it, with the referrals the pathway still expects."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlmodel.ext.asyncio.session import AsyncSession

from service.cases import service as case_service
from service.cases.schemas import CasePublic
from service.cases.service import CaseValues, CaseVersion
from service.core.crypto import Keyring
from service.core.db import Database
from service.core.security import Actor
from service.referrals import service as referral_service

if TYPE_CHECKING:
    from service.cases.models import CaseFile


async def case_view(session: AsyncSession, case: CaseFile, *, keyring: Keyring) -> CasePublic:
    """The case without identifying data; suggested referrals leave out those already made.
    One statement: the referrals made are read within the case's."""
    return CasePublic.model_validate(await case_values(session, case, keyring=keyring))


async def case_values(session: AsyncSession, case: CaseFile, *, keyring: Keyring) -> CaseValues:
    """`case_view` as values (CaseValues): for a route answering more than the case."""
    view, targets = await case_service.case_public(
        session, case, keyring=keyring, also=referral_service.live_targets_of
    )
    return _without_referrals_made(view, targets)


async def visible_case_view(
    db: Database, *, actor: Actor, keyring: Keyring, case_id: uuid.UUID
) -> tuple[CaseValues, CaseVersion]:
    """`case_view` of a case the actor's organization is involved in (CaseNotFound
    otherwise), as values (the case read sends them as they are), and its version: found
    and read in one statement, without a session."""
    view, version, targets = await case_service.visible_case_public(
        db,
        actor=actor,
        keyring=keyring,
        case_id=case_id,
        also=referral_service.live_targets_of,
    )
    return _without_referrals_made(view, targets), version


def _without_referrals_made(view: CaseValues, targets: Any) -> CaseValues:
    if view["suggested_referrals"]:
        made = referral_service.live_targets_from(targets)
        view["suggested_referrals"] = [
            s for s in view["suggested_referrals"] if (s["to_org"], s["purpose"]) not in made
        ]
    return view
