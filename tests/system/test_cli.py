"""The `ruta` command on a database of its own."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from service.cli_support import EXIT_DATABASE_UNAVAILABLE
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity.models import LoginAttempt
from service.main import open_database
from tests.support.cli import ruta
from tests.support.databases import create_database, drop_database, query


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


async def test_an_unreachable_database_exits_69_and_a_refusal_exits_2(settings: Settings) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    away = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/ruta"}
    )
    for command in (("user", "list"), ("migrate",), ("seed",), ("audit", "verify")):
        done = ruta(away, *command)
        assert done.returncode == EXIT_DATABASE_UNAVAILABLE, (command, done.stderr)
        assert "cannot be reached" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        assert "ConnectionRefusedError" not in done.stderr, done.stderr

    refused = ruta(settings, "user", "disable", "nobody-by-this-name")
    assert refused.returncode == 2, refused.stderr
    assert "cannot be reached" not in refused.stderr


async def test_a_database_never_migrated_exits_69_saying_to_migrate(
    settings: Settings, tmp_path: Path
) -> None:
    url = await create_database(tmp_path)
    empty = settings.model_copy(update={"database_url": url})
    try:
        done = ruta(empty, "user", "list")
        assert done.returncode == EXIT_DATABASE_UNAVAILABLE, done.stderr
        assert "run `ruta migrate`" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        # Migrating it is the cure.
        assert ruta(empty, "migrate").returncode == 0
        assert ruta(empty, "user", "list").returncode == 0
    finally:
        await drop_database(url)
