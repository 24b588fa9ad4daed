"""Synthetic but realistic data, for demonstrations and benchmarks, written through the same
service functions the API calls (never rows that skip a rule).

The proportions follow the 2017 narrative (../shared/DOMAIN.md): most persons identified by
the police in raids, Madre de Dios and Lima first; about one in five a child (216 of 1,134),
the children's forms as 106 labour, 96 sex, 14 both; Venezuelan, Colombian, Ecuadorian,
Bolivian and Chinese foreigners; some persons identified by the police and by MIMP (the same
document: the same person); most consenting to statistics; nationals referred to MIMP,
foreigners to UNHCR; beds through capacity (never overbooked: the overflow waits or is an
unmet need); children held in police stations for hours; proceedings whose decided
defendants split as 42 convictions, 27 suspended and 11 dismissed of 80 (254 ongoing).

A case's non-identifying facts are drawn from a generator seeded by (seed, case number), so
a seed always gives the same facts; names and documents are drawn afresh at every run, so
running twice adds new persons rather than re-identifying the same ones.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity.rules import EndReason
from service.capacity.schemas import PlacementCreate
from service.cases import service as case_service
from service.cases.schemas import CaseCreate, Exploitation
from service.consent.rules import ConsentPurpose
from service.consent.schemas import ConsentCreate
from service.core.db import Database
from service.core.security import Actor, Security
from service.core.settings import Settings
from service.core.time import today, utcnow
from service.identity import service as identity_service
from service.identity.rules import Role
from service.legal import service as legal_service
from service.legal.rules import Charge, Outcome, ProceedingStatus
from service.legal.schemas import (
    DefendantCreate,
    LegalAidCreate,
    OutcomeCreate,
    PaymentCreate,
    ProceedingCaseCreate,
    ProceedingCreate,
    RestitutionOrderCreate,
    Sentence,
    StatusChange,
)
from service.pathway import consent as consent_flow
from service.pathway import placement as placement_flow
from service.persons.schemas import PersonCreate
from service.protection import service as protection_service
from service.protection.rules import AssistanceKind, CustodyPlace
from service.protection.schemas import AssistanceCreate, CustodyCreate
from service.referrals import service as referral_service
from service.referrals.rules import ReferralAction, ReferralPurpose
from service.referrals.schemas import ReferralCreate

if TYPE_CHECKING:
    from service.cases.models import CaseFile

__all__ = ["CasePlan", "DemoReport", "generate", "plan_case"]

Weights = Sequence[tuple[str, float]]

# Who identifies (the police's raids first), and the context each works in.
IDENTIFIERS: Weights = (
    ("PNP", 0.62),
    ("MIMP", 0.09),
    ("MP", 0.07),
    ("MTPE", 0.07),
    ("MINSA", 0.04),
    ("MINEDU", 0.03),
    ("RREE", 0.03),
    ("NGO-SAMPLE", 0.05),
)
CONTEXTS = {
    "PNP": "police_operation",
    "MIMP": "hotline",
    "MP": "other",
    "MTPE": "labour_inspection",
    "MINSA": "health_service",
    "MINEDU": "school",
    "RREE": "consulate_abroad",
    "NGO-SAMPLE": "ngo_outreach",
}
# Regions of exploitation (INEI codes): the gold-mining raids of Madre de Dios, Lima, the
# Amazon of Loreto, Cusco's tourism, Puno's mines, then the rest.
REGIONS: Weights = (
    ("17", 0.22),
    ("15", 0.22),
    ("16", 0.10),
    ("08", 0.08),
    ("21", 0.08),
    ("07", 0.05),
    ("24", 0.04),
    ("25", 0.04),
    ("12", 0.04),
    ("20", 0.04),
    ("04", 0.03),
    ("13", 0.03),
    ("14", 0.03),
)
COUNTRIES_ABROAD: Weights = (("ARG", 0.35), ("CHL", 0.3), ("ECU", 0.15), ("BOL", 0.1), ("USA", 0.1))
NATIONALITIES: Weights = (
    ("PER", 0.82),
    ("VEN", 0.08),
    ("COL", 0.04),
    ("ECU", 0.03),
    ("BOL", 0.02),
    ("CHN", 0.01),
)
# 216 children of 1,134 persons identified; their forms 106 labour, 96 sex, 14 both.
CHILD_SHARE = 216 / 1134
CHILD_FORMS: Weights = (("labour", 106), ("sexual", 96), ("both", 14))
ADULT_FORMS: Weights = (("sexual", 0.58), ("labour", 0.32), ("both", 0.05), ("other", 0.05))
OTHER_FORMS = ("forced_begging", "forced_criminality")
SECTORS: Weights = (
    ("gold_mining", 0.35),
    ("logging", 0.12),
    ("agriculture", 0.12),
    ("domestic_service", 0.12),
    ("brick_making", 0.06),
    ("factory", 0.08),
    ("street_vending", 0.10),
    ("other", 0.05),
)
GENDERS_SEXUAL: Weights = (
    ("female", 0.93),
    ("male", 0.04),
    ("non_binary", 0.02),
    ("unknown", 0.01),
)
GENDERS_LABOUR: Weights = (("male", 0.6), ("female", 0.39), ("unknown", 0.01))
# A second institution identifies the same person (the same document).
OVERLAP_SHARE = 0.12
# 80 decisions (42 convictions, 27 suspended, 11 dismissed) and 254 ongoing.
OUTCOMES: Weights = (("ongoing", 254), ("convicted", 42), ("suspended", 27), ("dismissed", 11))
SHARE_WITH = ("MIMP", "MINJUS", "MP", "PJ", "UNHCR")
GIVEN_NAMES = ("Rosa", "María", "Luz", "Ana", "Juana", "Carmen", "José", "Luis", "Yesenia", "Ruth")
FAMILY_NAMES = ("Quispe", "Mamani", "Huamán", "Condori", "Flores", "Rojas", "Torres", "Chávez")
DEMO_USERS = (
    ("PNP", Role.identifier),
    ("MIMP", Role.caseworker),
    ("MP", Role.caseworker),
    ("MTPE", Role.caseworker),
    ("MINSA", Role.caseworker),
    ("MINEDU", Role.caseworker),
    ("RREE", Role.caseworker),
    ("NGO-SAMPLE", Role.caseworker),
    ("UNHCR", Role.caseworker),
    ("PJ", Role.caseworker),
    ("MINJUS", Role.legal_aid),
)


def _pick(rng: random.Random, weights: Weights) -> str:
    return rng.choices([k for k, _ in weights], weights=[w for _, w in weights])[0]


@dataclass(frozen=True)
class Defendant:
    charge_filed: str
    outcome: str
    charge: str | None = None
    sentence_months: int | None = None
    restitution_soles: int | None = None
    paid_soles: int | None = None


@dataclass(frozen=True)
class CasePlan:
    """The non-identifying facts of one synthetic case and what happens to it: pure data,
    the same for the same seed and number."""

    number: int
    identified_on: date
    institution: str
    region: str | None
    exploitation_country: str | None
    forms: tuple[tuple[str, str | None], ...]
    age: int
    gender: str
    nationality: str
    also_identified_by: str | None
    consent: str  # statistics (with services and sharing), services, refused
    referral_to: str | None
    referral_purpose: str | None
    referral_answer: str | None  # accept, reject, or None (left unanswered)
    placement: bool
    stay_ends: bool
    custody_hours: int | None
    defender: bool
    assistance: tuple[str, ...]
    proceeding: tuple[Defendant, ...] = field(default=())


def _forms(rng: random.Random, kind: str) -> tuple[tuple[str, str | None], ...]:
    sector = _pick(rng, SECTORS)
    match kind:
        case "sexual":
            return (("sexual_exploitation", None),)
        case "labour":
            return (("forced_labour", sector),)
        case "both":
            return (("sexual_exploitation", None), ("forced_labour", sector))
    return ((rng.choice(OTHER_FORMS), None),)


def _defendants(rng: random.Random, minor: bool, kind: str) -> tuple[Defendant, ...]:
    filed = "forced_labour" if kind == "labour" else "trafficking"
    found = []
    for _ in range(rng.choice((1, 1, 1, 2))):
        outcome = _pick(rng, OUTCOMES)
        if outcome != "convicted":
            found.append(Defendant(filed, outcome))
            continue
        # Judges often reduced trafficking to pimping, and sentenced below the minimum.
        if filed == "trafficking" and rng.random() < 0.25:
            found.append(Defendant(filed, outcome, "pimping", 12 * rng.randint(2, 5)))
            continue
        floor = 15 if minor and rng.random() < 0.5 else (8 if filed == "trafficking" else 6)
        years = max(4, floor + rng.randint(-3, 5))
        ordered = rng.choice((None, None, None, 10_000, 20_000, 50_000))
        paid = ordered // 4 if ordered is not None and rng.random() < 0.25 else None
        found.append(Defendant(filed, outcome, filed, 12 * years, ordered, paid))
    return tuple(found)


def plan_case(seed: int, number: int, *, start: date, end: date) -> CasePlan:
    """The facts of case `number` of a run seeded `seed`, identified between start and end."""
    rng = random.Random(f"{seed}:{number}")  # noqa: S311 (synthetic data, not secrets)
    identified_on = start + timedelta(days=rng.randrange((end - start).days + 1))
    institution = _pick(rng, IDENTIFIERS)
    minor = rng.random() < CHILD_SHARE
    kind = _pick(rng, CHILD_FORMS if minor else ADULT_FORMS)
    age = (
        rng.choice((8, 10, 11, 12, 13, 14, 15, 15, 16, 16, 17, 17))
        if minor
        else (18 + int(rng.expovariate(1 / 9)) % 45)
    )
    gender = _pick(rng, GENDERS_LABOUR if kind == "labour" else GENDERS_SEXUAL)
    abroad = institution == "RREE"
    nationality = "PER" if abroad else _pick(rng, NATIONALITIES)
    region = None if abroad else ("17" if institution == "MTPE" and rng.random() < 0.4 else None)
    region = region or (None if abroad else _pick(rng, REGIONS))
    overlap = not abroad and rng.random() < OVERLAP_SHARE
    also = ("MIMP" if institution != "MIMP" else "PNP") if overlap else None
    consent = rng.choices(("statistics", "services", "refused"), weights=(86, 8, 6))[0]
    referral_to = purpose = answer = None
    if consent != "refused" and institution != "MIMP":
        foreign = nationality != "PER"
        referral_to = "UNHCR" if foreign else "MIMP"
        purpose = (
            "refugee_procedure"
            if foreign
            else ("shelter" if rng.random() < 0.5 else "protection_services")
        )
        answer = rng.choices(("accept", "reject", None), weights=(80, 12, 8))[0]
    placement = referral_to == "MIMP" and purpose == "shelter" and answer == "accept"
    held = minor and institution == "PNP" and rng.random() < 0.35
    cared = answer == "accept" and referral_to == "MIMP"
    assistance = (
        tuple(sorted(rng.sample(("psychological", "medical", "social_work", "documents"), k=2)))
        if cared
        else ()
    )
    proceeding = (
        _defendants(rng, minor, kind)
        if consent == "statistics" and kind != "other" and rng.random() < 0.3
        else ()
    )
    return CasePlan(
        number=number,
        identified_on=identified_on,
        institution=institution,
        region=region,
        exploitation_country=_pick(rng, COUNTRIES_ABROAD) if abroad else None,
        forms=_forms(rng, kind),
        age=age,
        gender=gender,
        nationality=nationality,
        also_identified_by=also,
        consent=consent,
        referral_to=referral_to,
        referral_purpose=purpose,
        referral_answer=answer,
        placement=placement,
        stay_ends=rng.random() < 0.4,
        custody_hours=rng.choice((3, 6, 12, 20, 30, 48, 72, 120)) if held else None,
        defender=cared and rng.random() < 0.4,
        assistance=assistance,
        proceeding=proceeding,
    )


@dataclass
class DemoReport:
    cases: int = 0
    persons_identified_twice: int = 0
    referrals: int = 0
    placed: int = 0
    waiting: int = 0
    unmet: int = 0
    held: int = 0
    defendants: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(self.outcomes.items()))
        return (
            f"generated {self.cases} cases ({self.persons_identified_twice} persons identified"
            f" twice), {self.referrals} referrals, {self.placed} placed, {self.waiting} waiting,"
            f" {self.unmet} unmet needs, {self.held} children held, {self.defendants}"
            f" defendants ({outcomes or 'none'})"
        )


@dataclass(frozen=True)
class _Run:
    actors: dict[str, Actor]
    security: Security
    settings: Settings
    report: DemoReport


async def demo_actors(session: AsyncSession, *, security: Security) -> dict[str, Actor]:
    """One demo user per institution (created once, without a password: nobody signs in as
    them), as the actors of the generated records."""
    actors = {}
    for org, role in DEMO_USERS:
        username = f"demo-gen-{org.lower()}"
        if not await identity_service.user_exists(session, username):
            await identity_service.create_user(
                session,
                security=security,
                actor=None,
                username=username,
                organization_code=org,
                role=role,
                password=None,
            )
        user = await identity_service.get_user_by_username(session, username)
        assert user is not None
        organization = await identity_service.get_organization_by_code(session, org)
        actors[org] = Actor(
            user_id=user.id,
            username=username,
            organization_id=organization.id,
            organization_code=org,
            role=role.value,
        )
    return actors


def _person(plan: CasePlan, document: str) -> PersonCreate:
    rng = random.Random(document)  # noqa: S311 (fresh at every run, through the document)
    return PersonCreate.model_validate(
        {
            "given_name": rng.choice(GIVEN_NAMES),
            "family_name": f"{rng.choice(FAMILY_NAMES)} {rng.choice(FAMILY_NAMES)}",
            "document": {
                "type": "dni" if plan.nationality == "PER" else "passport",
                "number": document,
            },
            "age_estimate": plan.age,
            "gender": plan.gender,
            "nationality": plan.nationality,
            "languages": ["es"],
        }
    )


def _identification(plan: CasePlan, person: PersonCreate, institution: str) -> CaseCreate:
    return CaseCreate.model_validate(
        {
            "identified_on": plan.identified_on,
            "region": plan.region,
            "exploitation_country": plan.exploitation_country,
            "place": "Synthetic place",
            "context": CONTEXTS[institution],
            "exploitation": [Exploitation(form=f, sector=s) for f, s in plan.forms],  # type: ignore[arg-type]
            "indicators": ["synthetic"],
            "person": person,
        }
    )


def _consent(plan: CasePlan) -> ConsentCreate:
    if plan.consent == "refused":
        return ConsentCreate(refused=True, language="es")
    purposes = [ConsentPurpose.services, ConsentPurpose.data_sharing]
    if plan.consent == "statistics":
        purposes.append(ConsentPurpose.statistics)
    return ConsentCreate(purposes=purposes, share_with=list(SHARE_WITH), language="es")


def _on(day: date, hours: int = 12) -> datetime:
    return datetime.combine(day, time(hours), UTC)


async def _case(session: AsyncSession, actor: Actor, case_id: uuid.UUID) -> CaseFile:
    return await case_service.get_case_for(session, actor=actor, case_id=case_id)


async def _identify(
    session: AsyncSession, run: _Run, plan: CasePlan, person: PersonCreate, institution: str
) -> CaseFile:
    """One institution's identification of the person, with the consent it records."""
    actor = run.actors[institution]
    case, _ = await case_service.create_case(
        session,
        actor=actor,
        keyring=run.security.keyring,
        data=_identification(plan, person, institution),
    )
    await consent_flow.record_consent(session, actor=actor, case_id=case.id, data=_consent(plan))
    return case


async def _write_case(session: AsyncSession, run: _Run, plan: CasePlan) -> None:
    actors, report = run.actors, run.report
    keyring = run.security.keyring
    identifier = actors[plan.institution]
    person = _person(plan, f"{secrets.randbelow(10**8):08d}")
    case = await _identify(session, run, plan, person, plan.institution)
    report.cases += 1
    if plan.also_identified_by is not None:
        await _identify(session, run, plan, person, plan.also_identified_by)
        report.persons_identified_twice += 1
    if plan.custody_hours is not None:
        start = _on(plan.identified_on, 2)
        end = min(start + timedelta(hours=plan.custody_hours), utcnow())
        await protection_service.record_custody(
            session,
            actor=identifier,
            case=case,
            data=CustodyCreate(place_kind=CustodyPlace.police_station, start=start, end=end),
        )
        report.held += 1
    if plan.referral_to is not None and plan.referral_purpose is not None:
        referral = await referral_service.send_referral(
            session,
            actor=identifier,
            settings=run.settings,
            keyring=run.security.keyring,
            case=case,
            data=ReferralCreate(
                to_org=plan.referral_to, purpose=ReferralPurpose(plan.referral_purpose)
            ),
        )
        report.referrals += 1
        receiver = actors[plan.referral_to]
        if plan.referral_answer == "accept":
            await referral_service.act_on_referral(
                session,
                actor=receiver,
                referral_id=referral.id,
                action=ReferralAction.accept,
                keyring=keyring,
            )
        elif plan.referral_answer == "reject":
            await referral_service.act_on_referral(
                session,
                actor=receiver,
                referral_id=referral.id,
                action=ReferralAction.reject,
                keyring=keyring,
                reason="outside our service area",
            )
    mimp = actors["MIMP"]
    if plan.placement:
        # MIMP accepted the shelter referral: it places (the identifying police do not).
        result = await placement_flow.request_placement(
            session,
            actor=mimp,
            case=await _case(session, mimp, case.id),
            data=PlacementCreate(risk_level=2 if plan.age < 18 else 1),
        )
        outcome = result.outcome.value
        report.placed += outcome == "placed"
        report.waiting += outcome == "waitlisted"
        report.unmet += outcome not in ("placed", "waitlisted")
        if outcome == "placed" and result.placement is not None and plan.stay_ends:
            await placement_flow.end_placement(
                session,
                actor=mimp,
                placement_id=result.placement.id,
                reason=EndReason.discharged,
            )
    for kind in plan.assistance:
        await protection_service.record_assistance(
            session,
            actor=mimp,
            case=await _case(session, mimp, case.id),
            data=AssistanceCreate(
                kind=AssistanceKind(kind),
                provided_on=min(plan.identified_on + timedelta(days=3), today()),
            ),
        )
    if plan.defender:
        await legal_service.assign_defender(
            session,
            actor=mimp,
            case=await _case(session, mimp, case.id),
            data=LegalAidCreate(defender_id=actors["MINJUS"].user_id),
        )
    if plan.proceeding:
        await _prosecute(session, run, plan, case, identifier)


async def _prosecute(
    session: AsyncSession, run: _Run, plan: CasePlan, case: CaseFile, identifier: Actor
) -> None:
    """A complaint to the prosecutors (through a referral they accept), defendants and their
    outcomes: suspended and dismissed by the prosecutor, convictions by the court."""
    actors, report = run.actors, run.report
    prosecutor, court = actors["MP"], actors["PJ"]
    if plan.institution != "MP":
        referral = await referral_service.send_referral(
            session,
            actor=identifier,
            settings=run.settings,
            keyring=run.security.keyring,
            case=case,
            data=ReferralCreate(to_org="MP", purpose=ReferralPurpose.victim_witness_programme),
        )
        await referral_service.act_on_referral(
            session,
            actor=prosecutor,
            referral_id=referral.id,
            action=ReferralAction.accept,
            keyring=run.security.keyring,
        )
    last = today()
    filed = min(plan.identified_on + timedelta(days=5), last)
    proceeding = await legal_service.create_proceeding(
        session,
        actor=prosecutor,
        data=ProceedingCreate(
            complaint_number=f"DEMO-{uuid.uuid4().hex[:12]}",
            prosecutor_office=_office(plan.region),
            complaint_filed_on=filed,
            cases=[ProceedingCaseCreate(case_id=case.id, offence_on=plan.identified_on)],
        ),
    )
    defendants = [
        await legal_service.add_defendant(
            session,
            actor=prosecutor,
            proceeding_id=proceeding.id,
            data=DefendantCreate(charge_filed=Charge(d.charge_filed)),
        )
        for d in plan.proceeding
    ]
    report.defendants += len(defendants)
    decided_on = min(filed + timedelta(days=40), last)
    for planned, defendant in zip(plan.proceeding, defendants, strict=True):
        report.outcomes[planned.outcome] = report.outcomes.get(planned.outcome, 0) + 1
        if planned.outcome in ("suspended", "dismissed"):
            await legal_service.record_outcome(
                session,
                actor=prosecutor,
                defendant_id=defendant.id,
                data=OutcomeCreate(outcome=Outcome(planned.outcome), outcome_on=decided_on),
            )
    convicted = [
        (p, d) for p, d in zip(plan.proceeding, defendants, strict=True) if p.outcome == "convicted"
    ]
    if not convicted:
        return
    for status, days in (("investigation", 1), ("prosecution", 10), ("trial", 20)):
        await legal_service.change_status(
            session,
            actor=prosecutor,
            proceeding_id=proceeding.id,
            data=StatusChange(
                status=ProceedingStatus(status),
                effective_on=min(filed + timedelta(days=days), last),
                court="PJ" if status == "trial" else None,
            ),
        )
    for planned, defendant in convicted:
        months = planned.sentence_months or 0
        await legal_service.record_outcome(
            session,
            actor=court,
            defendant_id=defendant.id,
            data=OutcomeCreate(
                outcome=Outcome.convicted,
                outcome_on=decided_on,
                charge=Charge(planned.charge) if planned.charge else None,
                sentence=Sentence(years=months // 12, months=months % 12),
            ),
        )
    for planned, _ in convicted:
        if planned.restitution_soles is None:
            continue
        order = await legal_service.order_restitution(
            session,
            actor=court,
            proceeding_id=proceeding.id,
            data=RestitutionOrderCreate(
                case_id=case.id,
                amount_soles=Decimal(planned.restitution_soles),
                ordered_on=decided_on,
            ),
        )
        if planned.paid_soles:
            await legal_service.record_payment(
                session,
                actor=actors["MINJUS"] if plan.defender else court,
                order_id=order.id,
                data=PaymentCreate(
                    amount_soles=Decimal(planned.paid_soles), received_on=decided_on
                ),
            )


OFFICES = {
    "07": "FISTRAP-CALLAO",
    "08": "FISTRAP-CUSCO",
    "16": "FISTRAP-LORETO",
    "17": "FISTRAP-MADRE-DE-DIOS",
    "21": "FISTRAP-PUNO",
    "23": "FISTRAP-TACNA",
    "24": "FISTRAP-TUMBES",
}


def _office(region: str | None) -> str:
    return OFFICES.get(region or "", "FISTRAP-LIMA")


def period_of(year: int) -> tuple[date, date]:
    """The days a year's identifications fall on: the whole year, or up to 60 days ago for
    the current year (so that what follows them has happened by today)."""
    return date(year, 1, 1), min(date(year, 12, 31), today() - timedelta(days=60))


def default_year() -> int:
    """The latest year with a day 60 days ago: usually this year, where the referrals, beds
    and unmet needs, which happen now, fall too."""
    return (today() - timedelta(days=60)).year


async def generate(
    db: Database,
    *,
    security: Security,
    settings: Settings,
    cases: int,
    seed: int,
    year: int,
    progress: Callable[[int], None] | None = None,
) -> DemoReport:
    """Write `cases` synthetic cases identified in `year`, each in its own transaction, through
    the services (audited like any other change)."""
    start, end = period_of(year)
    if end < start:
        raise ValueError(f"{year} has no day at least 60 days ago")
    async with db.session() as session:
        actors = await demo_actors(session, security=security)
    run = _Run(actors=actors, security=security, settings=settings, report=DemoReport())
    for number in range(cases):
        plan = plan_case(seed, number, start=start, end=end)
        async with db.session() as session:
            await _write_case(session, run, plan)
        if progress is not None:
            progress(1)
    return run.report
