"""Persons through HTTP: one person across institutions, and identifying data kept apart."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx

from service.cases import service as case_service
from service.cases.rules import InvolvementBasis
from service.core.crypto import Keyring
from service.core.db import Database
from service.core.settings import Settings
from service.identity.rules import Role
from service.main import create_app
from service.persons.rules import normalize_document
from tests.support.cli import ruta
from tests.support.clients import client_from
from tests.support.databases import make_settings, query
from tests.support.factories import Factory, create_case, person_body


async def test_same_document_identified_by_two_institutions_is_one_person(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    labour = await factory.user("MTPE", Role.identifier)
    person = person_body(document={"type": "dni", "number": "45.123.678"})
    first = await create_case(client, police, person=person)

    # MTPE writes the same DNI differently and the name with other accents and case.
    second = await create_case(
        client,
        labour,
        context="labour_inspection",
        exploitation=[{"form": "forced_labour", "sector": "brick_making"}],
        person={
            **person,
            "family_name": person["family_name"].upper(),
            "document": {"type": "dni", "number": "45123678"},
        },
    )

    assert first["possible_duplicates"] == []
    assert second["possible_duplicates"] == [
        {"person_id": first["person_id"], "matched_on": "document", "linked": True}
    ]
    assert second["person_id"] == first["person_id"]
    assert second["id"] != first["id"]
    [(persons,)] = await query(
        db,
        "SELECT count(DISTINCT person_id) FROM case_file WHERE id IN (:a, :b)",
        a=_db_uuid(db, first["id"]),
        b=_db_uuid(db, second["id"]),
    )
    assert persons == 1
    # Each institution still sees only its own case.
    assert (await client.get(f"/v1/cases/{first['id']}", headers=labour.headers)).status_code == 404


def _db_uuid(db: Database, value: str) -> str:
    return value if db.dialect == "postgresql" else value.replace("-", "")


async def _document_claims(db: Database, number: str) -> list[str]:
    """The persons (as API ids) a DNI's claim names, found by its keyed digest."""
    digest = Keyring(db.settings).blind_index("document", normalize_document("dni", number))
    rows = await query(
        db,
        "SELECT person_id FROM person_identifier_claim WHERE kind = 'document' AND digest = :d",
        d=digest,
    )
    return [str(uuid.UUID(str(p))) for (p,) in rows]


async def test_second_identification_of_a_document_joins_the_person_holding_its_claim(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    number = f"{uuid.uuid4().int % 10**8:08d}"
    first = await create_case(
        client, police, person=person_body(document={"type": "dni", "number": number})
    )
    second = await create_case(
        client, police, person=person_body(document={"type": "dni", "number": number})
    )

    assert second["possible_duplicates"] == [
        {"person_id": first["person_id"], "matched_on": "document", "linked": True}
    ]
    assert second["person_id"] == first["person_id"]
    assert await _document_claims(db, number) == [first["person_id"]]


async def test_a_linked_record_s_document_leads_to_the_person_it_was_linked_into(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    ngo = await factory.user("NGO-SAMPLE", Role.caseworker)
    who: dict[str, Any] = {
        "given_name": "Luz",
        "family_name": f"Mamani {uuid.uuid4().hex[:6]}",
        "birth_date": "2008-09-30",
        "age_estimate": None,
    }
    passport = f"{uuid.uuid4().int % 10**8:08d}"
    first = await create_case(client, police, person=person_body(**who))
    second = await create_case(
        client,
        ngo,
        region="08",
        context="ngo_outreach",
        person=person_body(**who, document={"type": "dni", "number": passport}),
    )
    linked = await client.post(
        f"/v1/cases/{second['id']}/person/link",
        json={"person_id": first["person_id"]},
        headers=ngo.headers,
    )
    # The document of the record linked away now identifies the surviving person.
    third = await create_case(
        client, police, person=person_body(document={"type": "dni", "number": passport})
    )

    assert linked.status_code == 200, linked.text
    assert await _document_claims(db, passport) == [first["person_id"]]
    assert third["person_id"] == first["person_id"]
    assert third["possible_duplicates"] == [
        {"person_id": first["person_id"], "matched_on": "document", "linked": True}
    ]


async def test_same_name_and_birth_date_is_a_candidate_a_caseworker_can_link(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.identifier)
    ngo = await factory.user("NGO-SAMPLE", Role.caseworker)
    who = {
        "given_name": "María José",
        "family_name": "Huamán Ccori",
        "birth_date": "2009-04-11",
        "age_estimate": None,
        "document": None,
    }
    first = await create_case(client, police, person=person_body(**who))
    second = await create_case(
        client,
        ngo,
        region="08",
        context="ngo_outreach",
        person=person_body(**{**who, "given_name": "MARIA JOSE", "family_name": "Huaman  Ccori"}),
    )

    [candidate] = second["possible_duplicates"]
    assert candidate == {
        "person_id": first["person_id"],
        "matched_on": "name_and_birth_date",
        "linked": False,
    }
    assert second["person_id"] != first["person_id"]

    stranger = await create_case(client, ngo, region="08", context="ngo_outreach")
    refused = await client.post(
        f"/v1/cases/{second['id']}/person/link",
        json={"person_id": stranger["person_id"]},
        headers=ngo.headers,
    )
    linked = await client.post(
        f"/v1/cases/{second['id']}/person/link",
        json={"person_id": first["person_id"]},
        headers=ngo.headers,
    )

    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "person_id"
    assert linked.status_code == 200, linked.text
    assert linked.json()["person_id"] == first["person_id"]


async def test_identifying_data_goes_only_where_it_may_and_every_read_is_audited(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    mimp = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, police)
    url = f"/v1/cases/{case['id']}"
    await client.post(
        f"{url}/consents",
        json={"purposes": ["services", "data_sharing"], "share_with": ["MIMP"], "language": "es"},
        headers=police.headers,
    )
    for to in ("MIMP", "MINJUS"):
        referral = await client.post(
            f"{url}/referrals",
            json={
                "to_org": to,
                "purpose": "legal_aid" if to == "MINJUS" else "shelter",
                "consent_override_justification": "Urgent: the hearing is tomorrow"
                if to == "MINJUS"
                else None,
            },
            headers=police.headers,
        )
        assert referral.status_code == 403 if to == "MINJUS" else 201, referral.text
    # An identifier may not override consent; a caseworker of the police may.
    officer = await factory.user("PNP", Role.caseworker)
    override = await client.post(
        f"{url}/referrals",
        json={
            "to_org": "MINJUS",
            "purpose": "legal_aid",
            "consent_override_justification": "Urgent: the hearing is tomorrow",
        },
        headers=officer.headers,
    )
    assert override.status_code == 201, override.text
    assert override.json()["consent_overridden"] is True
    inbox = (await client.get("/v1/referrals", headers=mimp.headers)).json()["items"]
    mimp_referral = next(r for r in inbox if r["case_id"] == case["id"])
    await client.post(f"/v1/referrals/{mimp_referral['id']}/accept", headers=mimp.headers)

    by_identifier = await client.get(f"{url}/person", headers=police.headers)
    by_consented = await client.get(f"{url}/person", headers=mimp.headers)

    assert by_identifier.status_code == by_consented.status_code == 200
    assert by_consented.json()["document"]["type"] == "dni"
    views = await query(
        db,
        "SELECT actor_user_id FROM audit_event WHERE action = 'person.viewed' AND entity_id = :p",
        p=case["person_id"],
    )
    assert len(views) == 2


async def test_a_referred_organization_without_consent_sees_the_case_not_the_person(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    police = await factory.user("PNP", Role.caseworker)
    unhcr = await factory.user("UNHCR", Role.caseworker)
    case = await create_case(client, police)
    await client.post(
        f"/v1/cases/{case['id']}/consents",
        json={"purposes": ["services"], "language": "es"},
        headers=police.headers,
    )
    referral = await client.post(
        f"/v1/cases/{case['id']}/referrals",
        json={
            "to_org": "UNHCR",
            "purpose": "refugee_procedure",
            "consent_override_justification": "Person is at immediate risk of removal",
        },
        headers=police.headers,
    )
    # Override grants sharing; a later referral to another organization without it does not.
    await client.post(f"/v1/referrals/{referral.json()['id']}/accept", headers=unhcr.headers)
    assert (
        await client.get(f"/v1/cases/{case['id']}/person", headers=unhcr.headers)
    ).status_code == 200

    ngo = await factory.user("NGO-SAMPLE", Role.caseworker)
    # Involved another way (a placement, in a later issue), without consent to share.
    async with factory.db.session() as session:
        await case_service.involve(
            session,
            actor=None,
            case_id=uuid.UUID(case["id"]),
            organization_id=ngo.actor.organization_id,
            basis=InvolvementBasis.placement,
        )
    hidden = await client.get(f"/v1/cases/{case['id']}/person", headers=ngo.headers)
    assert (await client.get(f"/v1/cases/{case['id']}", headers=ngo.headers)).status_code == 200
    assert hidden.status_code == 409
    assert hidden.json()["code"] == "identifying_data_not_shared"


async def test_database_never_holds_names_or_document_numbers_in_clear(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    police = await factory.user("PNP", Role.identifier)
    marker_name, marker_doc = "Yessenia Ccahuana Zarate", "70912345"
    await create_case(
        client,
        police,
        person=person_body(
            given_name="Yessenia",
            family_name="Ccahuana Zarate",
            document={"type": "dni", "number": marker_doc},
            phone="+51 987 654 321",
            address="Jr. Los Incas 123, Puerto Maldonado",
        ),
    )

    tables = [
        t
        for (t,) in await query(
            db,
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            if db.dialect == "sqlite"
            else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        )
    ]
    dump = []
    for table in tables:
        for row in await query(db, f'SELECT * FROM "{table}"'):  # noqa: S608 - names from the catalogue
            dump.append(
                " ".join(
                    v.hex() if isinstance(v, bytes | memoryview) else json.dumps(v, default=str)
                    for v in row
                )
            )
    text = "\n".join(dump)
    raw = "\n".join(dump).encode()

    for secret in ("Yessenia", "Ccahuana", marker_doc, "987 654 321", "Los Incas"):
        assert not _in_clear(secret, text)
        assert not _in_clear(secret.encode().hex(), text)
        assert secret.encode() not in raw
    assert marker_name not in text


_HEX = frozenset("0123456789abcdefABCDEF")


def _in_clear(secret: str, text: str) -> bool:
    """Whether the text holds the secret. A secret of hexadecimal digits only (a document
    number) counts only where it is not inside a longer run of them: the dump renders
    ciphertexts and hashes in hexadecimal, where any eight digits turn up by chance once
    the database is large enough."""
    if not set(secret) <= _HEX:
        return secret in text
    run = re.escape(secret)
    return re.search(rf"(?<![0-9a-fA-F]){run}(?![0-9a-fA-F])", text) is not None


async def test_master_key_rotation_keeps_identifying_data_readable(
    fresh_settings: Settings, var_dir: Path
) -> None:
    new_key = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
    old_key = fresh_settings.master_key.get_secret_value()  # type: ignore[union-attr]
    url = fresh_settings.database_url
    before = create_app(fresh_settings)
    async with before.router.lifespan_context(before), client_from(before, "10.0.0.1") as c:
        police = await Factory(before.state.db, before.state.security).user("PNP", Role.identifier)
        case = await create_case(c, police)

    rotated = make_settings(
        url,
        var_dir,
        master_key=new_key,
        master_key_id="k2",
        retired_master_keys=json.dumps({"k1": old_key}),
    )
    result = ruta(rotated, "keys", "rotate")

    only_new = make_settings(url, var_dir, master_key=new_key, master_key_id="k2")
    after = create_app(only_new)
    async with after.router.lifespan_context(after), client_from(after, "10.0.0.1") as c:
        person = await c.get(f"/v1/cases/{case['id']}/person", headers=police.headers)
        [(key_ids,)] = await query(
            after.state.db, "SELECT count(DISTINCT master_key_id) FROM person_key"
        )

    assert result.returncode == 0, result.stderr
    assert "re-wrapped 1 data keys under master key k2" in result.stdout
    assert key_ids == 1
    assert person.status_code == 200, person.text
    assert person.json()["given_name"] == "Rosa"
