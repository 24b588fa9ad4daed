"""Court-ordered restitution to a victim, the payments received, and the unpaid-order alert.

The proceeding's court orders restitution to a victim whose case is linked to the
proceeding; any organization that may write the victim's case records what was paid (the
public defender of MINJUS, usually). The balance is computed in SQL from the payments, never
stored, and a payment above it is refused.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.alerts import service as alert_service
from service.alerts.rules import AlertKind
from service.audit.service import record_event
from service.cases import service as case_service
from service.core.db import for_update, table_of
from service.core.errors import InvalidInput
from service.core.plausibility import refuse_implausible
from service.core.security import Actor
from service.core.time import utcnow
from service.identity import service as identity_service
from service.legal import rules
from service.legal.exceptions import (
    CourtOnly,
    PaymentExceedsBalance,
    ProceedingStageConflict,
    RestitutionOrderNotFound,
)
from service.legal.models import RestitutionOrder, RestitutionPayment
from service.legal.schemas import (
    PaymentCreate,
    PaymentPublic,
    RestitutionOrderCreate,
    RestitutionOrderPublic,
)
from service.legal.service.proceedings import get_proceeding_for, linked_case

CENT = Decimal("0.01")


def _paid() -> sa.Subquery:
    """What was paid against each order that has payments, as SQL."""
    payments = table_of(RestitutionPayment)
    return (
        sa.select(payments.c.order_id, sa.func.sum(payments.c.amount_soles).label("paid"))
        .group_by(payments.c.order_id)
        .subquery("paid")
    )


def _balance(paid: sa.Subquery) -> sa.ColumnElement[Decimal]:
    """The order's outstanding balance, rounded to the cent (SQLite sums in binary floats)."""
    return sa.func.round(col(RestitutionOrder.amount_soles) - sa.func.coalesce(paid.c.paid, 0), 2)


async def _paid_and_balance(
    session: AsyncSession, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[Decimal, Decimal]]:
    """Paid total and outstanding balance of each order, computed in SQL."""
    if not order_ids:
        return {}
    paid = _paid()
    stmt = (
        select(col(RestitutionOrder.id), sa.func.coalesce(paid.c.paid, 0), _balance(paid))
        .select_from(RestitutionOrder)
        .outerjoin(paid, paid.c.order_id == col(RestitutionOrder.id))
        .where(col(RestitutionOrder.id).in_(list(order_ids)))
    )
    rows = (await session.exec(stmt)).all()
    return {
        order_id: (Decimal(str(p)).quantize(CENT), Decimal(str(b)).quantize(CENT))
        for order_id, p, b in rows
    }


async def order_restitution(
    session: AsyncSession, *, actor: Actor, proceeding_id: uuid.UUID, data: RestitutionOrderCreate
) -> RestitutionOrder:
    """The proceeding's court orders restitution to a victim whose case is in the proceeding,
    at trial or once decided."""
    proceeding = await get_proceeding_for(session, actor=actor, proceeding_id=proceeding_id)
    if actor.organization_id != proceeding.court_organization_id:
        raise CourtOnly("Only the proceeding's court orders restitution.")
    if rules.ProceedingStatus(proceeding.status) not in (
        rules.ProceedingStatus.trial,
        rules.ProceedingStatus.decided,
    ):
        raise ProceedingStageConflict("Restitution is ordered at trial or after.")
    if await linked_case(session, proceeding_id=proceeding.id, case_id=data.case_id) is None:
        raise InvalidInput("case_id", "the case is not in this proceeding")
    refuse_implausible(
        rules.step_day_problem(
            "ordered_on",
            data.ordered_on,
            after_field="the complaint",
            after=proceeding.complaint_filed_on,
            today=utcnow().date(),
        )
    )
    order = RestitutionOrder(
        proceeding_id=proceeding.id,
        case_id=data.case_id,
        amount_soles=data.amount_soles,
        ordered_on=data.ordered_on,
        organization_id=actor.organization_id,
        recorded_by=actor.user_id,
    )
    session.add(order)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="restitution.ordered",
        entity_type="case",
        entity_id=order.case_id,
        changes={
            "order_id": {"to": str(order.id)},
            "proceeding_id": {"to": str(proceeding.id)},
            "amount_soles": {"to": str(order.amount_soles)},
            "ordered_on": {"to": order.ordered_on},
        },
    )
    return order


async def record_payment(
    session: AsyncSession, *, actor: Actor, order_id: uuid.UUID, data: PaymentCreate
) -> RestitutionOrder:
    """A payment received against an order, recorded by an organization that may write the
    victim's case. Refused above the outstanding balance; the order's unpaid alert is
    resolved when it is paid in full."""
    not_found = RestitutionOrderNotFound(
        "No such restitution order is visible to your organization."
    )
    # Locked so that two payments recorded at once are checked one after the other.
    stmt = for_update(select(RestitutionOrder).where(RestitutionOrder.id == order_id), session)
    order = (await session.exec(stmt)).first()
    if order is None:
        raise not_found
    await case_service.require_visible_case(
        session, actor=actor, case_id=order.case_id, otherwise=not_found
    )
    refuse_implausible(
        rules.step_day_problem(
            "received_on",
            data.received_on,
            after_field="the order",
            after=order.ordered_on,
            today=utcnow().date(),
        )
    )
    _, balance = (await _paid_and_balance(session, [order.id]))[order.id]
    if data.amount_soles > balance:
        raise PaymentExceedsBalance(
            f"The payment is above the outstanding balance of {balance} soles.",
            balance_soles=str(balance),
        )
    payment = RestitutionPayment(
        order_id=order.id,
        amount_soles=data.amount_soles,
        received_on=data.received_on,
        organization_id=actor.organization_id,
        recorded_by=actor.user_id,
    )
    session.add(payment)
    await session.flush()
    remaining = balance - data.amount_soles
    record_event(
        session,
        actor=actor,
        action="restitution.payment_recorded",
        entity_type="case",
        entity_id=order.case_id,
        changes={
            "order_id": {"to": str(order.id)},
            "payment_id": {"to": str(payment.id)},
            "amount_soles": {"to": str(payment.amount_soles)},
            "received_on": {"to": payment.received_on},
            "balance_soles": {"from": str(balance), "to": str(remaining)},
        },
    )
    if remaining <= 0:
        await alert_service.resolve_alerts_of(
            session, actor=actor, kind=AlertKind.restitution_unpaid, source_id=order.id
        )
    return order


async def list_case_orders(session: AsyncSession, case_id: uuid.UUID) -> list[RestitutionOrder]:
    """A (visible) case's restitution orders, oldest first."""
    stmt = (
        select(RestitutionOrder)
        .where(RestitutionOrder.case_id == case_id)
        .order_by(col(RestitutionOrder.ordered_on), col(RestitutionOrder.id))
    )
    return list((await session.exec(stmt)).all())


async def restitution_public(
    session: AsyncSession, orders: Sequence[RestitutionOrder]
) -> list[RestitutionOrderPublic]:
    """Orders with their payments, the paid total and the outstanding balance."""
    ids = [o.id for o in orders]
    if not ids:
        return []
    payments = (
        await session.exec(
            select(RestitutionPayment)
            .where(col(RestitutionPayment.order_id).in_(ids))
            .order_by(col(RestitutionPayment.received_on), col(RestitutionPayment.recorded_at))
        )
    ).all()
    totals = await _paid_and_balance(session, ids)
    codes = await identity_service.organization_codes(
        session, [o.organization_id for o in orders] + [p.organization_id for p in payments]
    )
    received: dict[uuid.UUID, list[PaymentPublic]] = defaultdict(list)
    for p in payments:
        received[p.order_id].append(
            PaymentPublic(
                id=p.id,
                amount_soles=p.amount_soles,
                received_on=p.received_on,
                organization=codes[p.organization_id],
                recorded_at=p.recorded_at,
            )
        )
    return [
        RestitutionOrderPublic(
            id=o.id,
            proceeding_id=o.proceeding_id,
            case_id=o.case_id,
            amount_soles=o.amount_soles,
            ordered_on=o.ordered_on,
            court=codes[o.organization_id],
            payments=received[o.id],
            paid_soles=totals[o.id][0],
            balance_soles=totals[o.id][1],
        )
        for o in orders
    ]


async def alert_unpaid_restitution(
    session: AsyncSession, *, today: date, days: int, limit: int = 200
) -> int:
    """Open a restitution_unpaid alert on the case of up to `limit` orders made `days` or
    more ago that still have a balance, oldest first. Each order alerts once (the alert's
    source is the order): running it again opens nothing new, and an alert resolved by hand
    is not reopened. Returns how many alerts it opened (the sweep repeats while it is
    `limit`)."""
    paid = _paid()
    stmt = (
        select(col(RestitutionOrder.id), col(RestitutionOrder.case_id))
        .select_from(RestitutionOrder)
        .outerjoin(paid, paid.c.order_id == col(RestitutionOrder.id))
        .where(
            col(RestitutionOrder.ordered_on)
            <= rules.restitution_overdue_before(today=today, days=days),
            _balance(paid) > 0,
            col(RestitutionOrder.id).not_in(
                alert_service.alert_sources(AlertKind.restitution_unpaid)
            ),
        )
        .order_by(col(RestitutionOrder.ordered_on), col(RestitutionOrder.id))
        .limit(limit)
    )
    candidates = (await session.exec(stmt)).all()
    opened = 0
    for order_id, case_id in candidates:
        # Lock the order (skipping one another worker holds), then look again: a payment
        # may have settled it since the candidates were read.
        lock = for_update(
            select(RestitutionOrder).where(RestitutionOrder.id == order_id),
            session,
            skip_locked=True,
        )
        if (await session.exec(lock)).first() is None:
            continue
        if (await _paid_and_balance(session, [order_id]))[order_id][1] <= 0:
            continue
        await alert_service.open_alert(
            session,
            actor=None,
            case_id=case_id,
            kind=AlertKind.restitution_unpaid,
            source_id=order_id,
        )
        opened += 1
    await session.flush()
    return opened
