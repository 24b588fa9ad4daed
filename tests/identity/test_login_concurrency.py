"""The failed-login limit against a real 4-worker server and 4 client processes."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from service.audit import service as audit_service
from service.core.security import Security
from service.core.settings import Settings
from service.main import audit_keys, open_database
from tests.support.databases import make_settings, query
from tests.support.factories import Factory
from tests.support.load import assert_no_case_holds_two_beds, running_server
from tests.support.logins import attempt_from_processes, guess_from_processes

pytestmark = pytest.mark.slow


async def test_guesses_from_four_processes_meet_the_hash_at_most_the_limit(
    fresh_settings: Settings, var_dir: Path
) -> None:
    # Every client is 127.0.0.1: lift the per-address limit so only the account's is in play.
    settings = make_settings(
        fresh_settings.database_url, var_dir, login_max_failures_per_address=10_000
    )
    guesses = 80
    db = open_database(settings)
    user = await Factory(db, Security.from_settings(settings)).user()

    with running_server(settings, workers=4) as url:
        answers = await asyncio.to_thread(
            guess_from_processes,
            url,
            user.actor.username,
            [f"guess-{n}" for n in range(guesses)],
            processes=4,
        )

    events = await query(
        db,
        "SELECT changes FROM audit_event WHERE action = 'auth.login_failed' AND entity_id = :id",
        id=str(user.actor.user_id),
    )
    [(attempts,)] = await query(
        db, "SELECT count(*) FROM login_attempt WHERE username = :u", u=user.actor.username
    )
    async with db.session(write=False) as session:
        report = await audit_service.verify_chains(session, keys=audit_keys(settings))
    await assert_no_case_holds_two_beds(db)
    await db.dispose()

    limit = settings.login_max_failures_per_username
    outcomes = Counter(
        (c if isinstance(c, dict) else json.loads(c))["outcome"]["to"] for (c,) in events
    )
    assert outcomes == {"failed": limit, "rate_limited": guesses - limit}
    assert Counter(answers) == {
        (401, "invalid_credentials"): limit,
        (429, "login_rate_limited"): guesses - limit,
    }
    assert attempts == guesses
    assert report.ok, report.first_break


async def test_guesses_over_many_usernames_from_one_address_meet_the_hash_at_most_its_limit(
    fresh_settings: Settings, var_dir: Path
) -> None:
    # Every client is 127.0.0.1 and every username different: only the address limit is in
    # play, and no account row serializes the attempts (the usernames do not exist).
    settings = make_settings(
        fresh_settings.database_url,
        var_dir,
        login_max_failures_per_address=10,
        login_max_failures_per_username=10_000,
        login_max_failures_per_username_address=10_000,
    )
    guesses = 80
    credentials = [(f"stuffed-{n}", f"guess-{n}") for n in range(guesses)]

    with running_server(settings, workers=4) as url:
        answers = await asyncio.to_thread(attempt_from_processes, url, credentials, processes=4)

    db = open_database(settings)
    [(attempts,)] = await query(
        db, "SELECT count(*) FROM login_attempt WHERE username LIKE 'stuffed-%'"
    )
    await db.dispose()
    assert Counter(answers) == {
        (401, "invalid_credentials"): 10,
        (429, "login_rate_limited"): guesses - 10,
    }
    assert attempts == guesses
