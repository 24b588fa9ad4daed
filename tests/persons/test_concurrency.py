"""One document, one person: simultaneous identifications from several processes against a
real multi-worker server, one database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from service.core.crypto import Keyring
from service.core.security import Security
from service.core.settings import Settings
from service.main import open_database
from service.persons import rules
from tests.support.audit import make_actor
from tests.support.cli import ruta
from tests.support.databases import query
from tests.support.factories import case_body, person_body
from tests.support.load import (
    assert_no_case_holds_two_beds,
    post_from_processes,
    running_server,
)

pytestmark = pytest.mark.slow

IDENTIFICATIONS = 20
PROCESSES = 4


def _surviving(persons: dict[uuid.UUID, uuid.UUID | None], person_id: uuid.UUID) -> uuid.UUID:
    """The person a record was merged into, following the chain to its end."""
    seen = {person_id}
    while (merged_into := persons[person_id]) is not None:
        person_id = merged_into
        assert person_id not in seen, "merged_into cycle"
        seen.add(person_id)
    return person_id


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def test_simultaneous_identifications_of_one_document_make_one_person(
    fresh_settings: Settings,
) -> None:
    db = open_database(fresh_settings)
    security = Security.from_settings(fresh_settings)
    actor = await make_actor(db, security)
    token = security.tokens.issue(user_id=actor.user_id, organization_code="PNP", role="identifier")
    number = f"{uuid.uuid4().int % 10**8:08d}"
    body = case_body(person=person_body(document={"type": "dni", "number": number}))
    requests = [("/v1/cases", body)] * IDENTIFICATIONS

    with running_server(fresh_settings, workers=4) as url:
        answers = await asyncio.to_thread(
            post_from_processes,
            url,
            token,
            requests,
            processes=PROCESSES,
            concurrency=IDENTIFICATIONS // PROCESSES,  # every request in flight at once
        )

    digest = Keyring(fresh_settings).blind_index(
        "document", rules.normalize_document("dni", number)
    )
    persons = {
        _as_uuid(p): None if m is None else _as_uuid(m)
        for p, m in await query(db, "SELECT id, merged_into FROM person")
    }
    case_persons = [_as_uuid(p) for (p,) in await query(db, "SELECT person_id FROM case_file")]
    holders = await query(
        db,
        "SELECT DISTINCT b.person_id FROM person_blind_index b JOIN person p"
        " ON p.id = b.person_id WHERE b.kind = 'document' AND b.digest = :d"
        " AND p.merged_into IS NULL",
        d=digest,
    )
    [(keys,)] = await query(db, "SELECT count(*) FROM person_key")
    await assert_no_case_holds_two_beds(db)
    await db.dispose()
    verified = await asyncio.to_thread(ruta, fresh_settings, "audit", "verify")

    assert [status for status, _ in answers] == [201] * IDENTIFICATIONS, answers
    reached = {_surviving(persons, p) for p in case_persons}
    assert len(reached) == 1, f"{len(reached)} persons for one document"
    [person_id] = reached
    assert [_as_uuid(h) for (h,) in holders] == [person_id], "unmerged persons hold the document"
    # Nothing left behind by the identifications that lost the claim: one person, one key.
    assert (list(persons), keys) == ([person_id], 1)
    assert len(case_persons) == IDENTIFICATIONS  # 20 cases, all of this one person
    assert {a["person_id"] for _, a in answers} == {str(person_id)}
    linked = [
        a
        for _, a in answers
        if a["possible_duplicates"]
        == [{"person_id": str(person_id), "matched_on": "document", "linked": True}]
    ]
    assert len(linked) == IDENTIFICATIONS - 1
    assert verified.returncode == 0, verified.stdout + verified.stderr
