"""What statistics count of the cases, as SQL, as known on a day: rows recorded by then,
corrections made after it ignored. Other domains and the statistics compose these selects
into one statement; nothing here reads a row into Python."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa

from service.cases.models import Identification, IdentificationExploitation, Screening
from service.core.db import table_of


def identifications_known_on(
    known_on: datetime, *, identified_from: date, identified_to: date
) -> sa.Select[tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID, date, datetime]]:
    """Identifications made between two days (inclusive) and recorded by `known_on`:
    `identification_id`, `case_id`, `person_id` (the record named then), `organization_id`,
    `identified_on`, `created_at`, `region` (NULL abroad), `exploitation_country` (NULL in
    Peru), `person_age` (on that day; NULL unknown), `operation_ref` (the operation, such as
    a raid, that found the person; NULL for one met alone)."""
    i = table_of(Identification)
    return sa.select(
        i.c.id.label("identification_id"),
        i.c.case_id,
        i.c.person_id,
        i.c.organization_id,
        i.c.identified_on,
        i.c.created_at,
        i.c.region,
        i.c.exploitation_country,
        i.c.person_age,
        i.c.operation_ref,
    ).where(
        i.c.identified_on >= identified_from,
        i.c.identified_on <= identified_to,
        i.c.created_at <= known_on,
    )


def exploitation_known_on(known_on: datetime) -> sa.Select[tuple[uuid.UUID, str, str | None]]:
    """The forms of exploitation of each identification as they stood on `known_on`:
    `identification_id`, `form`, `sector`."""
    e = table_of(IdentificationExploitation)
    return sa.select(e.c.identification_id, e.c.form, e.c.sector).where(
        e.c.recorded_at <= known_on,
        sa.or_(e.c.superseded_at.is_(None), e.c.superseded_at > known_on),
    )


def victim_status_on(
    case_id: sa.ColumnElement[uuid.UUID], known_on: datetime
) -> sa.ScalarSelect[str]:
    """The victim status of the case (correlated on `case_id`) decided by the latest
    screening recorded by `known_on`; NULL when none was (the case is still suspected)."""
    s = table_of(Screening)
    return (
        sa.select(s.c.victim_status)
        .where(s.c.case_id == case_id, s.c.screened_at <= known_on)
        .order_by(s.c.screened_at.desc(), s.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
