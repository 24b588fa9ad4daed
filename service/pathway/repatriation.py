"""Repatriation across domains: the arrival of a foreign national in her country of origin
closes her case through the closing flow (bed freed, waiting request withdrawn, pending
referrals cancelled), in the same transaction. A Peruvian's arrival home leaves the case
open: it continues on the national pathway with the receiving organization, and a bed is
sought in the arrival region.

Arrival, not departure, is when the person leaves Ruta's care: until the destination
confirms she arrived, a return that fails on the way finds her case still open.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.security import Actor
from service.pathway import closing
from service.repatriation import service as repatriation_service
from service.repatriation.rules import RepatriationDirection
from service.repatriation.schemas import RepatriationArrival

if TYPE_CHECKING:
    from service.repatriation.models import Repatriation


async def record_arrival(
    session: AsyncSession, *, actor: Actor, repatriation_id: uuid.UUID, data: RepatriationArrival
) -> Repatriation:
    """Record that the person arrived; a return to the country of origin closes the case as
    repatriated."""
    repatriation = await repatriation_service.get_repatriation_for(
        session, actor=actor, repatriation_id=repatriation_id
    )
    arrived = await repatriation_service.record_arrival(
        session, actor=actor, repatriation=repatriation, data=data
    )
    if arrived.direction == RepatriationDirection.to_country_of_origin:
        await closing.close_repatriated(session, actor=actor, case_id=arrived.case_id)
    return arrived
