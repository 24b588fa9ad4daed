"""The `ruta` command on a database of its own."""

from __future__ import annotations

from datetime import timedelta

from service.core.settings import Settings
from service.core.time import utcnow
from service.identity.models import LoginAttempt
from service.main import open_database
from tests.support.cli import ruta
from tests.support.databases import query


async def test_seed_is_idempotent_and_user_add_reads_the_password_from_stdin(
    fresh_settings: Settings,
) -> None:
    again = ruta(fresh_settings, "seed", "peru-2017")
    added = ruta(
        fresh_settings,
        "user",
        "add",
        "ana",
        "--org",
        "MIMP",
        "--role",
        "caseworker",
        "--password-stdin",
        stdin="una clave bastante larga\n",
    )
    unknown_org = ruta(
        fresh_settings, "user", "add", "bob", "--org", "NOPE", "--role", "caseworker"
    )
    db = open_database(fresh_settings)
    [(regions, orgs, facilities, beds)] = await query(
        db,
        "SELECT (SELECT count(*) FROM region), (SELECT count(*) FROM organization),"
        " (SELECT count(*) FROM facility),"
        " (SELECT sum(capacity) FROM facility WHERE kind = 'specialized_shelter')",
    )
    [(password_hash,)] = await query(
        db, "SELECT password_hash FROM app_user WHERE username = 'ana'"
    )
    await db.dispose()

    assert again.returncode == 0, again.stderr
    assert "0 new organizations, 0 new prosecutor offices, 0 new facilities" in again.stdout
    assert (regions, orgs, beds) == (25, 13, 28)
    assert facilities >= 3
    assert added.returncode == 0, added.stderr
    assert password_hash.startswith("$argon2id$")
    assert unknown_org.returncode == 2
    assert "NOPE" in unknown_org.stderr


async def test_sqlite_connections_are_hardened(settings: Settings) -> None:
    if not settings.is_sqlite:
        return
    db = open_database(settings)
    async with db.engine.connect() as conn:
        pragmas = {
            name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        }
    await db.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000}


async def test_sweep_runs_against_the_database(fresh_settings: Settings) -> None:
    result = ruta(fresh_settings, "sweep")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "expired 0 overdue referrals, 0 bed holds and 0 waiting requests;"
        " escalated 0 long custody alerts; alerted 0 cases without a defender"
        " and 0 unpaid restitution orders; purged 0 expired idempotency keys;"
        " pruned 0 old login attempts and 0 login addresses no longer known"
    )


async def test_sweep_prunes_login_attempts_older_than_the_window(
    fresh_settings: Settings,
) -> None:
    db = open_database(fresh_settings)
    window = timedelta(seconds=fresh_settings.login_window_seconds)
    ages = {"old": [window * 2, window + timedelta(seconds=1)], "recent": [timedelta(seconds=1)]}
    now = utcnow()
    async with db.session() as session:
        for who, when in ages.items():
            for age in when:
                session.add(
                    LoginAttempt(
                        username=who,
                        client_address="192.0.2.9",
                        succeeded=False,
                        attempted_at=now - age,
                    )
                )

    result = ruta(fresh_settings, "sweep")
    left = await query(db, "SELECT username FROM login_attempt")
    await db.dispose()

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(
        "; pruned 2 old login attempts and 0 login addresses no longer known"
    )
    assert left == [("recent",)]
