"""Recording, revoking and checking consent."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.consent import rules
from service.consent.exceptions import (
    ConsentAlreadyRevoked,
    ConsentNotFound,
    ConsentRefusalNotRevocable,
)
from service.consent.models import Consent, ConsentOverride
from service.consent.schemas import ConsentCreate
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
        raise ConsentNotFound(f"No consent {consent_id} is visible to your organization.")
    return consent


async def revoke_consent(session: AsyncSession, *, actor: Actor, consent: Consent) -> Consent:
    """Withdraw a consent; the record stays, dated. A refusal is not revoked: revoking it would
    bring back the consent she withdrew by refusing; record her new consent instead."""
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
    justification: str,
) -> ConsentOverride:
    """Share without consent: allowed to permitted users, with a justification, audited."""
    override = ConsentOverride(
        case_id=case_id,
        organization_id=organization_id,
        justification=justification,
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
