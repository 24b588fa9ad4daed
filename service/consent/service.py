"""Recording, revoking and checking consent."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.consent import rules
from service.consent.exceptions import (
    ConsentAlreadyRevoked,
    ConsentNotFound,
    ConsentRefusalNotRevocable,
    StatisticsBasisAlreadyRecorded,
    StatisticsBasisAlreadyWithdrawn,
    StatisticsBasisNotFound,
)
from service.consent.models import Consent, ConsentOverride, StatisticsBasis
from service.consent.schemas import ConsentCreate
from service.core.db import for_update, table_of
from service.core.preconditions import IfMatch, check_version
from service.core.security import Actor
from service.core.time import utcnow
from service.identity.exceptions import UnknownOrganization
from service.identity.service import get_organizations_by_code


async def record_consent(
    session: AsyncSession, *, actor: Actor, case_id: uuid.UUID, data: ConsentCreate
) -> Consent:
    """A new version of the person's consent in this case, or her refusal (which withdraws
    every earlier version)."""
    known = await get_organizations_by_code(session, data.share_with)
    unknown = sorted(set(data.share_with) - set(known))
    if unknown:
        raise UnknownOrganization("share_with", f"unknown organization codes: {', '.join(unknown)}")
    latest = (
        await session.exec(select(func.max(Consent.version)).where(Consent.case_id == case_id))
    ).one()
    consent = Consent(
        case_id=case_id,
        version=(latest or 0) + 1,
        refused=data.refused,
        purposes=sorted(p.value for p in data.purposes),
        share_with=sorted(set(data.share_with)),
        covers_statistics=rules.covers_statistics(p.value for p in data.purposes),
        language=data.language,
        recorded_by=actor.user_id,
        organization_id=actor.organization_id,
    )
    session.add(consent)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="consent.refused" if consent.refused else "consent.recorded",
        entity_type="case",
        entity_id=case_id,
        changes={
            "consent_id": {"to": str(consent.id)},
            "version": {"to": consent.version},
            "refused": {"to": consent.refused},
            "purposes": {"to": consent.purposes},
            "share_with": {"to": consent.share_with},
            "language": {"to": consent.language},
        },
    )
    return consent


async def get_consent(session: AsyncSession, consent_id: uuid.UUID) -> Consent:
    consent = await session.get(Consent, consent_id)
    if consent is None:
        raise ConsentNotFound("No such consent is visible to your organization.")
    return consent


async def revoke_consent(
    session: AsyncSession, *, actor: Actor, consent: Consent, if_match: IfMatch | None = None
) -> Consent:
    """Withdraw a consent; the record stays, dated. A refusal is not revoked: revoking it would
    bring back the consent she withdrew by refusing; record her new consent instead. With
    If-Match, only if the consent is still as the actor read it (compared under its lock)."""
    await session.exec(for_update(select(Consent).where(Consent.id == consent.id), session))
    check_version(if_match, consent)
    if consent.revoked_at is not None:
        raise ConsentAlreadyRevoked("This consent was already revoked.")
    if consent.refused:
        raise ConsentRefusalNotRevocable(
            "A refusal cannot be revoked; record a new version of the consent if the person"
            " now agrees."
        )
    consent.revoked_at, consent.revoked_by = utcnow(), actor.user_id
    session.add(consent)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="consent.revoked",
        entity_type="case",
        entity_id=consent.case_id,
        changes={"consent_id": {"to": str(consent.id)}, "version": {"to": consent.version}},
    )
    return consent


async def active_consents(session: AsyncSession, case_id: uuid.UUID) -> Sequence[Consent]:
    return (
        await session.exec(
            select(Consent)
            .where(Consent.case_id == case_id, col(Consent.revoked_at).is_(None))
            .order_by(col(Consent.version))
        )
    ).all()


async def list_consents(session: AsyncSession, case_id: uuid.UUID) -> Sequence[Consent]:
    return (
        await session.exec(
            select(Consent).where(Consent.case_id == case_id).order_by(col(Consent.version))
        )
    ).all()


def _terms(consents: Sequence[Consent]) -> list[rules.ConsentTerms]:
    return [
        rules.ConsentTerms(
            version=c.version,
            refused=c.refused,
            purposes=frozenset(c.purposes),
            share_with=frozenset(c.share_with),
        )
        for c in consents
    ]


async def consented_to(
    session: AsyncSession, *, case_id: uuid.UUID, purpose: rules.ConsentPurpose
) -> bool:
    """Whether a consent in force (not revoked, recorded after any refusal) names the purpose."""
    return rules.covers_purpose(_terms(await active_consents(session, case_id)), purpose)


async def organizations_covered(
    session: AsyncSession, *, case_id: uuid.UUID, organizations: Mapping[uuid.UUID, str]
) -> set[uuid.UUID]:
    """Which of these organizations (id -> code) the person's data may go to: covered by an
    active consent recorded after any refusal, or by a justified override. Two queries,
    however many organizations."""
    if not organizations:
        return set()
    terms = _terms(await active_consents(session, case_id))
    covered = {
        org_id for org_id, code in organizations.items() if rules.covers_sharing_with(terms, code)
    }
    rest = [org_id for org_id in organizations if org_id not in covered]
    if rest:
        overridden = await session.exec(
            select(ConsentOverride.organization_id).where(
                ConsentOverride.case_id == case_id,
                col(ConsentOverride.organization_id).in_(rest),
            )
        )
        covered |= set(overridden.all())
    return covered


async def sharing_allowed(
    session: AsyncSession, *, case_id: uuid.UUID, organization_id: uuid.UUID, organization_code: str
) -> bool:
    """Whether the person's data may go to this organization: consent, or a justified override."""
    covered = await organizations_covered(
        session, case_id=case_id, organizations={organization_id: organization_code}
    )
    return organization_id in covered


async def record_override(
    session: AsyncSession,
    *,
    actor: Actor,
    case_id: uuid.UUID,
    organization_id: uuid.UUID,
    justification_ciphertext: bytes,
) -> ConsentOverride:
    """Share without consent: allowed to permitted users, with a justification (sealed by the
    caller under the person's data key: it may name people), audited."""
    override = ConsentOverride(
        case_id=case_id,
        organization_id=organization_id,
        justification_ciphertext=justification_ciphertext,
        recorded_by=actor.user_id,
    )
    session.add(override)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="consent.overridden",
        entity_type="case",
        entity_id=case_id,
        changes={
            "organization_id": {"to": str(organization_id)},
            "justification": {"changed": True},
        },
    )
    return override


async def record_statistics_basis(
    session: AsyncSession,
    *,
    actor: Actor,
    case_id: uuid.UUID,
    basis: rules.StatisticsBasisKind,
) -> StatisticsBasis:
    """Record a legal basis for counting the case in the statistics without the person's
    consent; one active record per basis and case (409 for a second). Audited."""
    # The case row is locked by the caller's route (a writer), so two at once cannot both
    # find none active.
    active = (
        await session.exec(
            select(StatisticsBasis.id).where(
                StatisticsBasis.case_id == case_id,
                StatisticsBasis.basis == basis.value,
                col(StatisticsBasis.withdrawn_at).is_(None),
            )
        )
    ).first()
    if active is not None:
        raise StatisticsBasisAlreadyRecorded(
            f"The case already has an active {basis.value} basis ({active})."
        )
    record = StatisticsBasis(
        case_id=case_id,
        basis=basis.value,
        organization_id=actor.organization_id,
        recorded_by=actor.user_id,
    )
    session.add(record)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="statistics_basis.recorded",
        entity_type="case",
        entity_id=case_id,
        changes={"statistics_basis_id": {"to": str(record.id)}, "basis": {"to": basis.value}},
    )
    return record


async def get_statistics_basis(session: AsyncSession, basis_id: uuid.UUID) -> StatisticsBasis:
    record = await session.get(StatisticsBasis, basis_id)
    if record is None:
        raise StatisticsBasisNotFound("No such statistics basis.")
    return record


async def withdraw_statistics_basis(
    session: AsyncSession, *, actor: Actor, record: StatisticsBasis
) -> StatisticsBasis:
    """Withdraw a basis (dated, never deleted): from now on the case counts only if the
    person's consent or another basis covers it."""
    if record.withdrawn_at is not None:
        raise StatisticsBasisAlreadyWithdrawn("This statistics basis was already withdrawn.")
    record.withdrawn_at = utcnow()
    record.withdrawn_by = actor.user_id
    session.add(record)
    await session.flush()
    record_event(
        session,
        actor=actor,
        action="statistics_basis.withdrawn",
        entity_type="case",
        entity_id=record.case_id,
        changes={"statistics_basis_id": {"to": str(record.id)}, "basis": {"to": record.basis}},
    )
    return record


async def list_statistics_bases(
    session: AsyncSession, case_id: uuid.UUID
) -> Sequence[StatisticsBasis]:
    """The case's statistics bases, withdrawn ones included, oldest first."""
    rows = await session.exec(
        select(StatisticsBasis)
        .where(StatisticsBasis.case_id == case_id)
        .order_by(col(StatisticsBasis.recorded_at), col(StatisticsBasis.id))
    )
    return rows.all()


def cases_countable_on(known_on: datetime) -> sa.Select[tuple[uuid.UUID]]:
    """The ids of cases that statistics may count as known on `known_on`: a consent to
    statistics in force that day (recorded by then, not revoked by then, and later than the
    latest refusal recorded by then: rules.in_force), or a legal basis recorded by then and
    not withdrawn by then. As SQL, for `in_`."""
    consent, refusal, basis = (
        table_of(Consent),
        table_of(Consent).alias("refusal"),
        table_of(StatisticsBasis),
    )
    # No refusal recorded by then as late as the consent, or later (its version at least).
    refused_since = (
        sa.select(refusal.c.id)
        .where(
            refusal.c.case_id == consent.c.case_id,
            refusal.c.refused.is_(True),
            refusal.c.recorded_at <= known_on,
            refusal.c.version >= consent.c.version,
        )
        .exists()
    )
    by_consent = sa.select(consent.c.case_id).where(
        consent.c.covers_statistics.is_(True),
        consent.c.recorded_at <= known_on,
        sa.or_(consent.c.revoked_at.is_(None), consent.c.revoked_at > known_on),
        ~refused_since,
    )
    by_basis = sa.select(basis.c.case_id).where(
        basis.c.recorded_at <= known_on,
        sa.or_(basis.c.withdrawn_at.is_(None), basis.c.withdrawn_at > known_on),
    )
    return sa.union(by_consent, by_basis)  # type: ignore[return-value]
