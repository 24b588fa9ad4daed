"""Logins under load: the password hash runs in a thread with no transaction open, the
failed-login limit holds under concurrent attempts, and old attempts are pruned."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from service.core.db import Database
from service.core.security import Passwords, Security
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity import service as identity_service
from service.identity.models import LoginAddress, LoginAttempt
from service.identity.rules import Role
from service.main import create_app
from tests.support.clients import client_from
from tests.support.databases import query
from tests.support.factories import Factory

_addresses = itertools.count(1)


def _address() -> str:
    """A client address no other test uses (the per-address limit must not leak)."""
    n = next(_addresses)
    return f"192.0.{2 + n // 250}.{n % 250 + 1}"


def _database_is_held(settings: Settings) -> bool:
    """From outside the app, right now: does any transaction of the app hold the database?

    SQLite: another connection cannot take the write lock without waiting. PostgreSQL:
    another connection of this database is inside a transaction.
    """
    url = make_url(settings.database_url)
    if settings.is_sqlite:
        conn = sqlite3.connect(str(url.database), timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()
        return False

    import asyncpg

    async def in_transaction() -> int:
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            )
            return count
        finally:
            await conn.close()

    # In a thread of its own: the caller may be the event loop's thread itself.
    answer: list[int] = []
    checker = threading.Thread(target=lambda: answer.append(asyncio.run(in_transaction())))
    checker.start()
    checker.join()
    return answer[0] > 0


@dataclass(frozen=True)
class Observation:
    operation: str
    on_event_loop: bool
    database_held: bool


@dataclass
class ObservedPasswords(Passwords):
    """The real argon2 hashing, noting where and when each hash runs."""

    settings: Settings
    seen: list[Observation] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.settings)

    def _observe(self, operation: str) -> None:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        self.seen.append(Observation(operation, on_loop, _database_is_held(self.settings)))

    def hash(self, password: str) -> str:
        self._observe("hash")
        return super().hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        self._observe("verify")
        return super().verify(password_hash, password)


@pytest.fixture
async def observed(settings: Settings) -> AsyncIterator[tuple[FastAPI, ObservedPasswords]]:
    """An app of its own whose password hashing is observed."""
    application = create_app(settings)
    passwords = ObservedPasswords(settings)
    base: Security = application.state.security
    application.state.security = Security(
        passwords=passwords, tokens=base.tokens, keyring=base.keyring
    )
    async with application.router.lifespan_context(application):
        yield application, passwords


async def test_login_checks_the_password_in_a_thread_while_no_transaction_is_open(
    observed: tuple[FastAPI, ObservedPasswords], factory: Factory
) -> None:
    app, passwords = observed
    user = await factory.user("MIMP", Role.caseworker)
    async with client_from(app, _address()) as client:
        right = await client.post(
            "/v1/auth/token", data={"username": user.actor.username, "password": user.password}
        )
        wrong = await client.post(
            "/v1/auth/token", data={"username": user.actor.username, "password": "wrong"}
        )
        unknown = await client.post(
            "/v1/auth/token", data={"username": "nobody-at-all", "password": "wrong"}
        )

    assert right.status_code == 200, right.text
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"
    assert passwords.seen == [Observation("verify", False, False)] * 3


async def test_creating_a_user_or_setting_a_password_hashes_in_a_thread_before_writing(
    settings: Settings, db: Database
) -> None:
    passwords = ObservedPasswords(settings)
    base = Security.from_settings(settings)
    security = Security(passwords=passwords, tokens=base.tokens, keyring=base.keyring)

    user = await Factory(db, security).user("MIMP", Role.caseworker)
    async with db.session() as session:
        await identity_service.set_password(
            session,
            security=security,
            actor=None,
            username=user.actor.username,
            password="another long password",
        )

    assert passwords.seen == [Observation("hash", False, False)] * 2


async def test_concurrent_wrong_passwords_for_one_account_are_checked_at_most_the_limit(
    app: FastAPI, factory: Factory, db: Database, settings: Settings
) -> None:
    user = await factory.user("PNP", Role.identifier)
    attempts = 30

    async def guess(n: int) -> tuple[int, str]:
        # Each from its own address: only the per-username limit is in play.
        async with client_from(app, _address()) as client:
            response = await client.post(
                "/v1/auth/token", data={"username": user.actor.username, "password": f"g{n}"}
            )
        return response.status_code, response.json()["code"]

    answers = await asyncio.gather(*(guess(n) for n in range(attempts)))
    outcomes = await query(
        db,
        "SELECT changes FROM audit_event WHERE action = 'auth.login_failed' AND entity_id = :id",
        id=str(user.actor.user_id),
    )
    [(recorded,)] = await query(
        db, "SELECT count(*) FROM login_attempt WHERE username = :u", u=user.actor.username
    )

    limit = settings.login_max_failures_per_username
    said = [(c if isinstance(c, dict) else json.loads(c))["outcome"]["to"] for (c,) in outcomes]
    checked = [outcome for outcome in said if outcome == "failed"]
    refused = [outcome for outcome in said if outcome == "rate_limited"]
    assert len(checked) == limit
    assert len(refused) == attempts - limit
    assert sorted(answers) == sorted(
        [(401, "invalid_credentials")] * limit + [(429, "login_rate_limited")] * (attempts - limit)
    )
    assert recorded == attempts


async def test_pruning_removes_login_attempts_older_than_the_window_in_batches(
    db: Database, settings: Settings
) -> None:
    username = f"pruned-{next(_addresses)}"
    now = utcnow()
    window = timedelta(seconds=settings.login_window_seconds)
    ages = [window * 3, window * 2, window + timedelta(seconds=5), window + timedelta(seconds=1)]
    recent_ages = [window - timedelta(seconds=30), timedelta(seconds=1)]
    async with db.session() as session:
        for age in ages + recent_ages:
            session.add(
                LoginAttempt(
                    username=username,
                    client_address="192.0.2.250",
                    succeeded=False,
                    attempted_at=now - age,
                )
            )

    batches: list[int] = []
    while not batches or batches[-1] == 3:
        async with db.session() as session:
            batches.append(
                await identity_service.prune_login_attempts(session, settings=settings, limit=3)
            )
    left = await query(
        db,
        "SELECT attempted_at FROM login_attempt WHERE username = :u ORDER BY attempted_at",
        u=username,
    )

    # Other tests may leave old attempts of their own in a shared database: count ours.
    assert all(b <= 3 for b in batches)
    assert batches[-1] < 3
    assert sum(batches) >= len(ages)
    assert len(batches) >= 2
    assert len(left) == len(recent_ages)


async def test_pruning_forgets_login_addresses_not_seen_within_the_known_address_period(
    db: Database, settings: Settings, factory: Factory
) -> None:
    user = await factory.user()
    now = utcnow()
    period = timedelta(days=settings.login_known_address_days)
    stale = [period * 2, period + timedelta(days=1), period + timedelta(seconds=5)]
    known = [period - timedelta(days=1), timedelta(minutes=1)]
    async with db.session() as session:
        for n, age in enumerate(stale + known):
            session.add(
                LoginAddress(
                    user_id=user.actor.user_id,
                    address_hash=f"{n:064x}",
                    first_seen_at=now - age,
                    last_seen_at=now - age,
                )
            )

    batches: list[int] = []
    while not batches or batches[-1] == 2:
        async with db.session() as session:
            batches.append(
                await identity_service.prune_login_addresses(session, settings=settings, limit=2)
            )
    left = await query(
        db,
        "SELECT address_hash FROM login_address WHERE user_id = :u ORDER BY address_hash",
        u=user.actor.user_id.hex if settings.is_sqlite else user.actor.user_id,
    )

    assert all(b <= 2 for b in batches)
    assert sum(batches) >= len(stale)
    assert [row[0] for row in left] == [f"{n:064x}" for n in range(len(stale), len(stale + known))]
