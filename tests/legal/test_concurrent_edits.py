"""ETags of proceedings and defendants: they move with each change, and If-Match is
honoured on the steps that change them."""

from __future__ import annotations

import httpx

from service.identity.rules import Role
from tests.legal.helpers import add_defendant, bring_to_trial, open_proceeding, record_outcome
from tests.support.factories import Factory, create_case


async def test_proceeding_etag_moves_with_status_defendants_and_outcomes(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    prosecutor = await factory.user("MP", Role.caseworker)
    court = await factory.user("PJ", Role.caseworker)
    case = await create_case(client, prosecutor)
    proceeding = await open_proceeding(client, prosecutor, [(case["id"], "2026-01-10")])
    path = f"/v1/proceedings/{proceeding['id']}"
    tags = [(await client.get(path, headers=prosecutor.headers)).headers["ETag"]]

    defendant = await add_defendant(client, prosecutor, proceeding["id"])
    tags.append((await client.get(path, headers=prosecutor.headers)).headers["ETag"])
    await bring_to_trial(client, prosecutor, proceeding["id"])
    tags.append((await client.get(path, headers=prosecutor.headers)).headers["ETag"])
    read = await client.get(f"/v1/defendants/{defendant['id']}", headers=court.headers)
    outcome = await client.post(
        f"/v1/defendants/{defendant['id']}/outcome",
        json={"outcome": "acquitted", "outcome_on": "2026-10-01"},
        headers={**court.headers, "If-Match": read.headers["ETag"]},
    )
    tags.append((await client.get(path, headers=prosecutor.headers)).headers["ETag"])

    assert len(set(tags)) == 4, tags
    assert read.status_code == 200, read.text
    assert read.json()["label"] == "D1"
    assert outcome.status_code == 200, outcome.text
    assert outcome.headers["ETag"] != read.headers["ETag"]


async def test_stale_if_match_on_a_status_change_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    prosecutor = await factory.user("MP", Role.caseworker)
    case = await create_case(client, prosecutor)
    proceeding = await open_proceeding(client, prosecutor, [(case["id"], "2026-01-10")])
    path = f"/v1/proceedings/{proceeding['id']}"
    stale = (await client.get(path, headers=prosecutor.headers)).headers["ETag"]
    moved = await client.post(
        f"{path}/status",
        json={"status": "investigation", "effective_on": "2026-04-10"},
        headers={**prosecutor.headers, "If-Match": stale},
    )

    again = await client.post(
        f"{path}/status",
        json={"status": "prosecution", "effective_on": "2026-05-01"},
        headers={**prosecutor.headers, "If-Match": stale},
    )

    assert moved.status_code == 200, moved.text
    assert moved.headers["ETag"] != stale
    assert again.status_code == 412, again.text
    stored = await client.get(path, headers=prosecutor.headers)
    assert stored.json()["status"] == "investigation"
    assert stored.headers["ETag"] == moved.headers["ETag"]


async def test_a_stale_outcome_is_refused_and_the_defendant_hidden_from_outsiders(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    prosecutor = await factory.user("MP", Role.caseworker)
    court = await factory.user("PJ", Role.caseworker)
    outsider = await factory.user("MIMP", Role.caseworker)
    case = await create_case(client, prosecutor)
    proceeding = await open_proceeding(client, prosecutor, [(case["id"], "2026-01-10")])
    defendant = await add_defendant(client, prosecutor, proceeding["id"])
    await bring_to_trial(client, prosecutor, proceeding["id"])
    stale = (await client.get(f"/v1/defendants/{defendant['id']}", headers=court.headers)).headers[
        "ETag"
    ]
    first = await record_outcome(
        client, court, defendant["id"], outcome="convicted", sentence={"years": 15, "months": 0}
    )

    second = await client.post(
        f"/v1/defendants/{defendant['id']}/outcome",
        json={"outcome": "acquitted", "outcome_on": "2026-10-02"},
        headers={**court.headers, "If-Match": stale},
    )
    hidden = await client.get(f"/v1/defendants/{defendant['id']}", headers=outsider.headers)

    assert first.status_code == 200, first.text
    assert second.status_code == 412, second.text
    stored = await client.get(f"/v1/defendants/{defendant['id']}", headers=court.headers)
    assert stored.json()["outcome"] == "convicted"
    assert stored.headers["ETag"] == first.headers["ETag"]
    assert hidden.status_code == 404
