"""The domain's gauges for /metrics, read from the database when Prometheus scrapes: unresolved
alerts, beds and waitlists, missed referral deadlines. Aggregates only: codes and counts."""

from __future__ import annotations

from service.alerts import service as alert_service
from service.capacity import service as capacity_service
from service.core.db import Database
from service.core.metrics import GaugeReading
from service.core.time import utcnow
from service.referrals import service as referral_service


async def domain_gauges(db: Database) -> list[GaugeReading]:
    """Every domain gauge, read in one short read-only transaction."""
    async with db.session(write=False) as session:
        return [
            await alert_service.open_alert_gauge(session),
            *await capacity_service.occupancy_gauges(session),
            await referral_service.missed_deadline_gauge(session, now=utcnow()),
        ]
