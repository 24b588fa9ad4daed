"""Opening, listing, acknowledging, escalating and resolving alerts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.alerts.exceptions import AlertNotFound, IllegalAlertChange
from service.alerts.models import Alert
from service.alerts.rules import AlertKind, AlertStatus, can_move
from service.audit.service import record_event
from service.cases.service import visible_case_ids
from service.core.db import table_of
from service.core.metrics import GaugeReading, Sample
from service.core.pagination import PageParams, keyset, page_of
from service.core.security import Actor
from service.core.time import utcnow


async def open_alert(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case_id: uuid.UUID,
    kind: AlertKind,
    source_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
) -> Alert:
    """Open an alert, unless one of this kind for this source is already unresolved."""
    existing = (
        await session.exec(
            select(Alert).where(
                Alert.case_id == case_id,
                Alert.kind == kind.value,
                Alert.source_id == source_id,
                Alert.status != AlertStatus.resolved.value,
            )
        )
    ).first()
    if existing is not None:
        return existing
    alert = Alert(
        case_id=case_id,
        kind=kind.value,
        source_id=source_id,
        organization_id=organization_id,
        status=AlertStatus.open.value,
    )
    session.add(alert)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="alert.opened",
        entity_type="case",
        entity_id=case_id,
        changes={"alert_id": {"to": str(alert.id)}, "kind": {"to": kind.value}},
    )
    return alert


async def _resolve(
    session: AsyncSession, *, actor: Actor | None, where: sa.ColumnElement[bool]
) -> int:
    """Resolve every unresolved alert matching `where`, read in one query; each audited."""
    rows = (
        await session.exec(select(Alert).where(where, Alert.status != AlertStatus.resolved.value))
    ).all()
    for alert in rows:
        _move(alert, AlertStatus.resolved, actor)
        session.add(alert)
        record_event(
            session,
            actor=actor,
            action="alert.resolved",
            entity_type="case",
            entity_id=alert.case_id,
            changes={"alert_id": {"to": str(alert.id)}, "kind": {"to": alert.kind}},
        )
    await session.flush()
    return len(rows)


async def resolve_alerts_of(
    session: AsyncSession,
    *,
    actor: Actor | None,
    kind: AlertKind,
    source_id: uuid.UUID,
) -> int:
    """Resolve the unresolved alerts a source raised (the custody ended, the referral answered)."""
    where = sa.and_(col(Alert.kind) == kind.value, col(Alert.source_id) == source_id)
    return await _resolve(session, actor=actor, where=where)


async def resolve_case_alerts(
    session: AsyncSession, *, actor: Actor | None, case_id: uuid.UUID, kind: AlertKind
) -> int:
    """Resolve a case's unresolved alerts of one kind (a child in custody has been placed)."""
    where = sa.and_(
        col(Alert.case_id) == case_id,
        col(Alert.kind) == kind.value,
        col(Alert.source_id).is_not(None),
    )
    return await _resolve(session, actor=actor, where=where)


async def escalate_alert(
    session: AsyncSession,
    *,
    actor: Actor | None,
    case_id: uuid.UUID,
    kind: AlertKind,
    source_id: uuid.UUID,
    level: int,
    at: datetime,
    open_if_missing: bool,
) -> Alert | None:
    """Raise the unresolved alert of a source to `level` (an acknowledged one is open again);
    with `open_if_missing`, open it first when the source has none. None when there is none
    to raise or it is already at that level."""
    alert = (
        await session.exec(
            select(Alert).where(
                Alert.case_id == case_id,
                Alert.kind == kind.value,
                Alert.source_id == source_id,
                Alert.status != AlertStatus.resolved.value,
            )
        )
    ).first()
    if alert is None and open_if_missing:
        alert = await open_alert(
            session, actor=actor, case_id=case_id, kind=kind, source_id=source_id
        )
    if alert is None or alert.escalation_level >= level:
        return None
    changes: dict[str, object] = {
        "alert_id": {"to": str(alert.id)},
        "kind": {"to": alert.kind},
        "escalation_level": {"from": alert.escalation_level, "to": level},
    }
    if alert.status == AlertStatus.acknowledged.value:
        changes["status"] = {"from": alert.status, "to": AlertStatus.open.value}
        alert.status = AlertStatus.open.value
    alert.escalation_level, alert.escalated_at = level, at
    session.add(alert)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="alert.escalated",
        entity_type="case",
        entity_id=case_id,
        changes=changes,
    )
    return alert


def alert_sources(kind: AlertKind) -> sa.Select[tuple[uuid.UUID]]:
    """The sources that ever raised an alert of this kind, whatever its status (as SQL, for
    a sweep to skip what it has already alerted on)."""
    alerts = table_of(Alert)
    return sa.select(alerts.c.source_id).where(
        alerts.c.kind == kind.value, alerts.c.source_id.is_not(None)
    )


def _visible(actor: Actor) -> sa.ColumnElement[bool]:
    case_visible = col(Alert.case_id).in_(visible_case_ids(actor.organization_id))
    addressed = sa.or_(
        col(Alert.organization_id).is_(None), col(Alert.organization_id) == actor.organization_id
    )
    return sa.and_(case_visible, addressed)


async def list_alerts(
    session: AsyncSession,
    *,
    actor: Actor,
    statuses: Sequence[AlertStatus],
    page: PageParams,
    case_id: uuid.UUID | None = None,
) -> tuple[list[Alert], str | None]:
    """Alerts of the cases the actor's organization is involved in, oldest first."""
    stmt = select(Alert).where(_visible(actor), col(Alert.status).in_([s.value for s in statuses]))
    if case_id is not None:
        stmt = stmt.where(Alert.case_id == case_id)
    stmt = keyset(
        stmt, sort=col(Alert.opened_at), tiebreak=col(Alert.id), page=page, descending=False
    )
    return page_of((await session.exec(stmt)).all(), page, lambda a: (a.opened_at, a.id))


def _move(alert: Alert, to: AlertStatus, actor: Actor | None) -> None:
    if not can_move(AlertStatus(alert.status), to):
        raise IllegalAlertChange(f"An {alert.status} alert cannot become {to.value}.")
    now = utcnow()
    if to is AlertStatus.acknowledged:
        alert.acknowledged_at, alert.acknowledged_by = now, actor.user_id if actor else None
    else:
        alert.resolved_at, alert.resolved_by = now, actor.user_id if actor else None
    alert.status = to.value


async def change_alert(
    session: AsyncSession, *, actor: Actor, alert_id: uuid.UUID, to: AlertStatus
) -> Alert:
    """Acknowledge or resolve an alert visible to the actor."""
    alert = (await session.exec(select(Alert).where(Alert.id == alert_id, _visible(actor)))).first()
    if alert is None:
        raise AlertNotFound("No such alert is visible to your organization.")
    _move(alert, to, actor)
    session.add(alert)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action=f"alert.{to.value}",
        entity_type="case",
        entity_id=alert.case_id,
        changes={"alert_id": {"to": str(alert.id)}, "status": {"to": to.value}},
    )
    return alert


async def open_alert_gauge(session: AsyncSession) -> GaugeReading:
    """For /metrics: alerts not yet resolved, by kind and status (open, acknowledged)."""
    rows = (
        await session.exec(
            select(Alert.kind, Alert.status, sa.func.count())
            .where(Alert.status != AlertStatus.resolved.value)
            .group_by(col(Alert.kind), col(Alert.status))
        )
    ).all()
    return GaugeReading(
        "ruta_alerts_unresolved",
        "Alerts not yet resolved, by kind and status.",
        ["kind", "status"],
        [Sample({"kind": kind, "status": status}, count) for kind, status, count in rows],
    )
