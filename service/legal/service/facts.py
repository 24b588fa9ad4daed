"""What statistics count of the proceedings, as SQL, as known on a day: defendants with the
outcome they had at the end of a period (the latest version recorded by then), and
restitution ordered with what was paid. Nothing here reads a row into Python."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa

from service.core.db import table_of
from service.legal.models import (
    Defendant,
    DefendantOutcome,
    Proceeding,
    RestitutionOrder,
    RestitutionPayment,
)
from service.legal.rules import Outcome


def defendants_known_on(
    known_on: datetime, *, as_of: date
) -> sa.Select[tuple[uuid.UUID, uuid.UUID, bool, str, str, date | None, int | None, bool, bool]]:
    """Every defendant of a proceeding filed by `as_of` and recorded by `known_on`, with the
    outcome they had on `as_of` as known on `known_on` (the latest version recorded by then of
    the outcomes dated up to `as_of`; ongoing when none): `defendant_id`, `proceeding_id`,
    `public_official`, `charge` (decided, else filed), `outcome`, `outcome_on`,
    `sentence_months`, `below_legal_minimum`, `charge_reduced`."""
    defendant, proceeding = table_of(Defendant), table_of(Proceeding)
    history = table_of(DefendantOutcome)
    versions = (
        sa.select(
            history.c.defendant_id,
            history.c.outcome,
            history.c.outcome_on,
            history.c.charge,
            history.c.sentence_months,
            history.c.below_legal_minimum,
            history.c.charge_reduced,
            sa.func.row_number()
            .over(
                partition_by=history.c.defendant_id,
                order_by=(history.c.recorded_at.desc(), history.c.id.desc()),
            )
            .label("n"),
        ).where(history.c.recorded_at <= known_on, history.c.outcome_on <= as_of)
    ).subquery("versions")
    latest = sa.select(versions).where(versions.c.n == 1).subquery("latest")
    return (
        sa.select(
            defendant.c.id.label("defendant_id"),
            defendant.c.proceeding_id,
            defendant.c.public_official,
            sa.func.coalesce(latest.c.charge, defendant.c.charge_filed).label("charge"),
            sa.func.coalesce(latest.c.outcome, Outcome.ongoing.value).label("outcome"),
            latest.c.outcome_on,
            latest.c.sentence_months,
            sa.func.coalesce(latest.c.below_legal_minimum, sa.false()).label("below_legal_minimum"),
            sa.func.coalesce(latest.c.charge_reduced, sa.false()).label("charge_reduced"),
        )
        .join(proceeding, proceeding.c.id == defendant.c.proceeding_id)
        .outerjoin(latest, latest.c.defendant_id == defendant.c.id)
        .where(defendant.c.created_at <= known_on, proceeding.c.complaint_filed_on <= as_of)
    )


def restitution_known_on(
    known_on: datetime, *, ordered_from: date, ordered_to: date
) -> sa.Select[tuple[uuid.UUID, Decimal, Decimal]]:
    """Restitution ordered between two days (inclusive) and recorded by `known_on`, each order
    with what had been paid on it as known on `known_on`: `case_id`, `ordered`, `paid`."""
    order, payment = table_of(RestitutionOrder), table_of(RestitutionPayment)
    paid = (
        sa.select(sa.func.coalesce(sa.func.sum(payment.c.amount_soles), 0))
        .where(payment.c.order_id == order.c.id, payment.c.recorded_at <= known_on)
        .scalar_subquery()
    )
    return sa.select(
        order.c.case_id, order.c.amount_soles.label("ordered"), paid.label("paid")
    ).where(
        order.c.ordered_on >= ordered_from,
        order.c.ordered_on <= ordered_to,
        order.c.recorded_at <= known_on,
    )
