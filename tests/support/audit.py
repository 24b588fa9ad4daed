"""Producing audit events through the real services, outside HTTP."""

from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from service.cases import service as case_service
from service.cases.schemas import CaseCreate, Exploitation
from service.consent import service as consent_service
from service.consent.rules import ConsentPurpose
from service.consent.schemas import ConsentCreate
from service.core.crypto import Keyring
from service.core.db import Database
from service.core.security import Actor, Security
from service.identity import service as identity_service
from service.identity.rules import Role
from service.persons.schemas import PersonCreate
from service.referrals import service as referral_service
from service.referrals.rules import ReferralAction, ReferralPurpose
from service.referrals.schemas import ReferralCreate
from tests.support.databases import execute


async def make_actor(db: Database, security: Security, org: str = "PNP") -> Actor:
    async with db.session() as session:
        user = await identity_service.create_user(
            session,
            security=security,
            actor=None,
            username=f"writer-{uuid.uuid4().hex[:10]}",
            organization_code=org,
            role=Role.identifier,
            password=None,
        )
        organization = await identity_service.get_organization_by_code(session, org)
    return Actor(
        user_id=user.id,
        username=user.username,
        organization_id=organization.id,
        organization_code=org,
        role=user.role,
    )


def case_create(n: int = 0) -> CaseCreate:
    return CaseCreate(
        identified_on=date(2026, 2, 1),
        region="16",
        place=f"Iquitos, puerto {n}",
        context="labour_inspection",  # type: ignore[arg-type]
        exploitation=[Exploitation(form="forced_labour", sector="logging")],  # type: ignore[arg-type]
        person=PersonCreate(gender="male", age_estimate=30, nationality="PER"),  # type: ignore[arg-type]
    )


async def create_cases(
    db: Database, actor: Actor, count: int, *, shelter: Actor | None = None
) -> None:
    """`count` transactions, each writing a case and its three audit events; with `shelter`,
    also the person's consent to services and to sharing with the shelter's organization, a
    shelter referral to it, and its acceptance, so that `shelter` may place her."""
    keyring = Keyring(db.settings)
    for n in range(count):
        async with db.session() as session:
            case, _ = await case_service.create_case(
                session, actor=actor, keyring=keyring, data=case_create(n)
            )
            if shelter is not None:
                await _refer_for_shelter(session, db, case.id, sender=actor, shelter=shelter)


async def _refer_for_shelter(
    session: AsyncSession, db: Database, case_id: uuid.UUID, *, sender: Actor, shelter: Actor
) -> None:
    await consent_service.record_consent(
        session,
        actor=sender,
        case_id=case_id,
        data=ConsentCreate(
            purposes=[ConsentPurpose.services, ConsentPurpose.data_sharing],
            share_with=[shelter.organization_code],
            language="es",
        ),
    )
    case = await case_service.get_case_for(session, actor=sender, case_id=case_id)
    referral = await referral_service.send_referral(
        session,
        actor=sender,
        settings=db.settings,
        keyring=Keyring(db.settings),
        case=case,
        data=ReferralCreate(to_org=shelter.organization_code, purpose=ReferralPurpose.shelter),
    )
    await referral_service.act_on_referral(
        session,
        actor=shelter,
        referral_id=referral.id,
        action=ReferralAction.accept,
        keyring=Keyring(db.settings),
    )


async def tamper(db: Database, sql: str, **params: object) -> None:
    """Tamper as someone with direct database access would, switching the guards off."""
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            await conn.execute(sa.text(sql), params)
    else:
        await execute(db, "DROP TRIGGER IF EXISTS audit_event_no_update")
        await execute(db, "DROP TRIGGER IF EXISTS audit_event_no_delete")
        await execute(db, sql, **params)
