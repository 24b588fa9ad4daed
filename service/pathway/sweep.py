"""The periodic sweep: what time alone changes, across domains, in short transactions.

Each step works in batches, each batch its own transaction, so a long backlog never holds
locks for long and a failure loses at most one batch. Every worker may run the sweep at once:
rows are taken with SKIP LOCKED (PostgreSQL) or under the write lock (SQLite), and nothing
is expired twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity import service as capacity_service
from service.core.db import Database
from service.core.idempotency import purge_expired_keys
from service.core.settings import Settings
from service.core.time import today, utcnow
from service.identity import service as identity_service
from service.legal import service as legal_service
from service.protection import service as protection_service
from service.referrals import service as referral_service

BATCH = 200


@dataclass(frozen=True)
class SweepReport:
    referrals_expired: int
    holds_expired: int
    waiting_requests_expired: int
    custody_escalated: int
    cases_without_defender: int
    restitution_unpaid: int
    login_attempts_pruned: int
    login_addresses_pruned: int
    idempotency_keys_purged: int

    def describe(self) -> str:
        return (
            f"expired {self.referrals_expired} overdue referrals, {self.holds_expired} bed"
            f" holds and {self.waiting_requests_expired} waiting requests;"
            f" escalated {self.custody_escalated} long custody alerts;"
            f" alerted {self.cases_without_defender} cases without a defender"
            f" and {self.restitution_unpaid} unpaid restitution orders;"
            f" purged {self.idempotency_keys_purged} expired idempotency keys;"
            f" pruned {self.login_attempts_pruned} old login attempts"
            f" and {self.login_addresses_pruned} login addresses no longer known"
        )


async def _in_batches(
    db: Database, step: Callable[[AsyncSession], Awaitable[int]], *, batch: int
) -> int:
    total = 0
    while True:
        # A batch is idempotent (what it expired is no longer due): a deadlock re-runs it.
        done = await db.run(step)
        total += done
        if done < batch:
            return total


async def sweep(db: Database, *, settings: Settings, batch: int = BATCH) -> SweepReport:
    """Expire overdue referrals, bed holds and requests that waited too long; escalate the
    alerts of people held too long; alert on cases in care too long without a public
    defender and on court-ordered restitution left unpaid; prune login attempts older than
    the rate-limit window, login addresses not seen within the known-address period, and
    idempotency keys past their lifetime."""
    referrals = await _in_batches(
        db, lambda s: referral_service.expire_overdue_referrals(s, limit=batch), batch=batch
    )
    holds = await _in_batches(
        db, lambda s: capacity_service.expire_holds(s, limit=batch), batch=batch
    )
    waiting = await _in_batches(
        db,
        lambda s: capacity_service.expire_waiting_requests(
            s, max_days=settings.waitlist_max_days, limit=batch
        ),
        batch=batch,
    )
    escalated = await _in_batches(
        db,
        lambda s: protection_service.escalate_long_custody(
            s,
            now=utcnow(),
            minor_hours=settings.custody_minor_escalation_hours,
            adult_hours=settings.custody_escalation_hours,
            limit=batch,
        ),
        batch=batch,
    )
    without_defender = await _in_batches(
        db,
        lambda s: legal_service.alert_cases_without_defender(
            s, now=utcnow(), days=settings.legal_aid_alert_days, limit=batch
        ),
        batch=batch,
    )
    unpaid = await _in_batches(
        db,
        lambda s: legal_service.alert_unpaid_restitution(
            s, today=today(), days=settings.restitution_alert_days, limit=batch
        ),
        batch=batch,
    )
    pruned = await _in_batches(
        db,
        lambda s: identity_service.prune_login_attempts(s, settings=settings, limit=batch),
        batch=batch,
    )
    forgotten = await _in_batches(
        db,
        lambda s: identity_service.prune_login_addresses(s, settings=settings, limit=batch),
        batch=batch,
    )
    purged = await _in_batches(
        db, lambda s: purge_expired_keys(s, now=utcnow(), limit=batch), batch=batch
    )
    return SweepReport(
        referrals_expired=referrals,
        holds_expired=holds,
        waiting_requests_expired=waiting,
        custody_escalated=escalated,
        cases_without_defender=without_defender,
        restitution_unpaid=unpaid,
        login_attempts_pruned=pruned,
        login_addresses_pruned=forgotten,
        idempotency_keys_purged=purged,
    )
