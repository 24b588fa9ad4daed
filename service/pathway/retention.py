"""Retention: erasing the identifying data of persons whose cases closed long enough ago.

A person is due when every case about her (every record linked with her as the same person)
is closed, and each closed longer ago than the retention period of its closing reason
(RUTA_RETENTION_DAYS: `{"default": 1825, "not_a_victim": 365}`; a reason with no period and
no default is never due). A person with another case still open, or closed too recently,
keeps her data; so does one whose case is in a criminal proceeding not yet decided or still
has a public defender assigned (the court may still need her: care ends before justice).
Erasing is the persons domain's erasure on the legal basis `retention_period_ended`: the
data keys and what could re-identify her go, the facts and the statistics stay. A person
already erased is not due again, so a second run erases nothing more.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.cases import service as case_service
from service.cases.rules import ClosingReason
from service.core.crypto import Keyring
from service.core.time import utcnow
from service.legal import service as legal_service
from service.persons import service as person_service
from service.persons.rules import ErasureBasis

DEFAULT = "default"


class InvalidRetentionPeriods(ValueError):
    """RUTA_RETENTION_DAYS names something that is no closing reason, or a negative period."""


def check_periods(periods: Mapping[str, int]) -> dict[str, int]:
    """The retention periods in days by closing reason (and `default`), refused when a key
    is no closing reason or a period is negative."""
    known = {r.value for r in ClosingReason} | {DEFAULT}
    unknown = sorted(set(periods) - known)
    if unknown:
        raise InvalidRetentionPeriods(
            f"RUTA_RETENTION_DAYS: {', '.join(unknown)} is not a closing reason"
            f" ({', '.join(sorted(known))})"
        )
    if any(days < 0 for days in periods.values()):
        raise InvalidRetentionPeriods("RUTA_RETENTION_DAYS: a period is negative")
    return dict(periods)


def period_of(reason: str | None, periods: Mapping[str, int]) -> int | None:
    """Days a case closed for `reason` keeps its person's identifying data; None: forever."""
    if reason is not None and reason in periods:
        return periods[reason]
    return periods.get(DEFAULT)


@dataclass(frozen=True)
class Due:
    """A person due for erasure: her surviving record, her cases, and the closing reason of
    the case that closed last (the one whose period ended last)."""

    person_id: uuid.UUID
    case_ids: tuple[uuid.UUID, ...]
    reason: str
    closed_at: datetime


@dataclass(frozen=True)
class RetentionPlan:
    """What a run would erase now, and what it keeps although a case's period ended."""

    as_of: datetime
    periods: dict[str, int]
    due: tuple[Due, ...]
    # Persons with a case past its period kept because another case is open or too recent.
    kept_with_open_case: int
    kept_too_recent: int
    kept_in_legal_work: int

    def by_reason(self) -> dict[str, list[Due]]:
        """The persons due, grouped by the closing reason whose period ended."""
        grouped: dict[str, list[Due]] = defaultdict(list)
        for due in self.due:
            grouped[due.reason].append(due)
        return dict(sorted(grouped.items()))


def _ended(closure: case_service.CaseClosure, periods: Mapping[str, int], now: datetime) -> bool:
    """Whether the case is closed and its closing reason's retention period has ended."""
    days = period_of(closure.reason, periods)
    closed_at = closure.closed_at
    return closed_at is not None and days is not None and closed_at + timedelta(days=days) <= now


def plan_from(
    closures: Sequence[case_service.CaseClosure],
    *,
    roots: Mapping[uuid.UUID, uuid.UUID],
    erased: set[uuid.UUID],
    in_legal_work: set[uuid.UUID],
    periods: Mapping[str, int],
    now: datetime,
) -> RetentionPlan:
    """The plan, from every case's closure, the surviving record of each person record, the
    records already erased and the cases with legal work under way: pure."""
    by_person: dict[uuid.UUID, list[case_service.CaseClosure]] = defaultdict(list)
    for closure in closures:
        by_person[roots.get(closure.person_id, closure.person_id)].append(closure)
    due: list[Due] = []
    open_case = too_recent = legal_work = 0
    for person_id, cases in sorted(by_person.items()):
        if person_id in erased:
            continue
        ended = [c for c in cases if _ended(c, periods, now)]
        if not ended:
            continue
        if any(not c.closed for c in cases):
            open_case += 1
            continue
        if len(ended) < len(cases):
            too_recent += 1
            continue
        if any(c.case_id in in_legal_work for c in cases):
            legal_work += 1
            continue
        last = max(ended, key=lambda c: (c.closed_at or now, c.case_id))
        due.append(
            Due(
                person_id=person_id,
                case_ids=tuple(sorted(c.case_id for c in cases)),
                reason=last.reason or DEFAULT,
                closed_at=last.closed_at or now,
            )
        )
    return RetentionPlan(
        as_of=now,
        periods=dict(periods),
        due=tuple(due),
        kept_with_open_case=open_case,
        kept_too_recent=too_recent,
        kept_in_legal_work=legal_work,
    )


async def plan_retention(
    session: AsyncSession, *, periods: Mapping[str, int], now: datetime | None = None
) -> RetentionPlan:
    """What `run_retention` would erase now: no names, only ids and reasons."""
    closures = await case_service.case_closures(session)
    roots = await person_service.surviving_records(session)
    erased = await person_service.erased_person_ids(session, list(set(roots.values())))
    return plan_from(
        closures,
        roots=roots,
        erased=erased,
        in_legal_work=await legal_service.cases_in_legal_work(session),
        periods=check_periods(periods),
        now=now or utcnow(),
    )


async def run_retention(
    session: AsyncSession,
    *,
    keyring: Keyring,
    periods: Mapping[str, int],
    now: datetime | None = None,
) -> RetentionPlan:
    """Erase every person the plan finds due, each audited as an erasure on the basis
    `retention_period_ended`, and the run itself; returns the plan it carried out."""
    plan = await plan_retention(session, periods=periods, now=now)
    erased = 0
    for due in plan.due:
        _, now_erased = await person_service.erase_person(
            session,
            keyring=keyring,
            person_id=due.person_id,
            basis=ErasureBasis.retention_period_ended,
            justification=None,
            actor=None,
            audit={
                "closing_reason": due.reason,
                "case_ids": [str(c) for c in due.case_ids],
            },
        )
        erased += now_erased
    record_event(
        session,
        actor=None,
        action="retention.run",
        entity_type="retention",
        entity_id=plan.as_of.date().isoformat(),
        changes={
            "persons_erased": {"to": erased},
            "periods": {"to": plan.periods},
            "kept_with_open_case": {"to": plan.kept_with_open_case},
            "kept_too_recent": {"to": plan.kept_too_recent},
            "kept_in_legal_work": {"to": plan.kept_in_legal_work},
        },
    )
    return plan
