"""`ruta audit verify` against tampering done directly in the database, on this run's database."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.audit.models import AuditEvent
from service.core.db import Database, table_of
from service.core.security import Security
from service.core.settings import Settings
from service.core.time import utcnow
from service.main import open_database
from tests.support.audit import create_cases, make_actor, tamper
from tests.support.databases import execute, make_settings, query, settings_env


def run_verify(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run(
        [sys.executable, "-m", "service", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
async def trail(fresh_settings: Settings) -> AsyncIterator[Database]:
    """A fresh database holding a few dozen chained events."""
    db = open_database(fresh_settings)
    actor = await make_actor(db, Security.from_settings(fresh_settings))
    await create_cases(db, actor, 12)
    yield db
    await db.dispose()


async def _a_long_chain(db: Database) -> tuple[int, int]:
    [(chain,)] = await query(
        db,
        "SELECT chain FROM audit_event GROUP BY chain HAVING count(*) >= 3 ORDER BY chain LIMIT 1",
    )
    return chain, 2


async def test_untouched_trail_verifies(trail: Database, fresh_settings: Settings) -> None:
    result = run_verify(fresh_settings)
    assert result.returncode == 0, result.stderr
    assert "verified: " in result.stdout


async def test_detects_an_update(trail: Database, fresh_settings: Settings) -> None:
    chain, seq = await _a_long_chain(trail)
    await tamper(
        trail,
        "UPDATE audit_event SET action = 'case.viewed' WHERE chain = :c AND seq = :s",
        c=chain,
        s=seq,
    )

    result = run_verify(fresh_settings)

    assert result.returncode == 1
    assert f"chain {chain}, seq {seq}" in result.stderr
    assert "altered" in result.stderr


async def test_detects_a_delete(trail: Database, fresh_settings: Settings) -> None:
    chain, seq = await _a_long_chain(trail)
    [(next_id,)] = await query(
        trail, "SELECT id FROM audit_event WHERE chain = :c AND seq = :s", c=chain, s=seq + 1
    )
    await tamper(trail, "DELETE FROM audit_event WHERE chain = :c AND seq = :s", c=chain, s=seq)

    result = run_verify(fresh_settings)

    assert result.returncode == 1
    assert str(next_id).replace("-", "") in result.stderr.replace("-", "")


async def test_detects_a_reordering(trail: Database, fresh_settings: Settings) -> None:
    chain, seq = await _a_long_chain(trail)
    # Swap the places of two consecutive events (seq) through a free number.
    await tamper(
        trail, "UPDATE audit_event SET seq = -1 WHERE chain = :c AND seq = :s", c=chain, s=seq
    )
    await tamper(
        trail,
        "UPDATE audit_event SET seq = :s WHERE chain = :c AND seq = :n",
        c=chain,
        s=seq,
        n=seq + 1,
    )
    await tamper(
        trail, "UPDATE audit_event SET seq = :n WHERE chain = :c AND seq = -1", c=chain, n=seq + 1
    )

    result = run_verify(fresh_settings)

    assert result.returncode == 1
    assert f"chain {chain}, seq {seq}" in result.stderr


async def test_detects_an_event_inserted_at_the_end(
    trail: Database, fresh_settings: Settings
) -> None:
    chain, _ = await _a_long_chain(trail)
    [(last_seq, last_hash)] = await query(
        trail, "SELECT seq, hash FROM audit_chain_head WHERE chain = :c", c=chain
    )
    async with trail.engine.begin() as conn:
        await conn.execute(
            sa.insert(table_of(AuditEvent)).values(
                id=uuid.uuid4(),
                chain=chain,
                seq=last_seq + 1,
                occurred_at=utcnow(),
                action="case.closed",
                entity_type="case",
                entity_id="x",
                changes={},
                prev_hash=last_hash,
                hash="f" * 64,
                key_id="a1",
            )
        )

    result = run_verify(fresh_settings)

    assert result.returncode == 1
    assert f"chain {chain}, seq {last_seq + 1}" in result.stderr


async def test_the_application_cannot_update_or_delete_audit_events(trail: Database) -> None:
    for statement in ("UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            await execute(trail, statement)
    [(count,)] = await query(trail, "SELECT count(*) FROM audit_event")
    assert count > 0


async def test_verifies_across_an_audit_key_rotation(
    trail: Database, fresh_settings: Settings, var_dir: Path
) -> None:
    rotated = make_settings(
        fresh_settings.database_url,
        var_dir,
        audit_key="the-new-audit-key",
        audit_key_id="a2",
        retired_audit_keys=json.dumps({"a1": "test-audit-key"}),
    )
    db = open_database(rotated)
    await create_cases(db, await make_actor(db, Security.from_settings(rotated)), 3)
    await db.dispose()
    key_ids = {k for (k,) in await query(trail, "SELECT DISTINCT key_id FROM audit_event")}
    forgotten = make_settings(
        fresh_settings.database_url, var_dir, audit_key="the-new-audit-key", audit_key_id="a2"
    )

    with_both = run_verify(rotated)
    without_old = run_verify(forgotten)

    assert key_ids == {"a1", "a2"}
    assert with_both.returncode == 0, with_both.stderr
    assert without_old.returncode == 1
    assert "'a1'" in without_old.stderr


def _fingerprint(key: str) -> str:
    """What Ruta stores about a key: a keyed digest of a fixed label, never the key."""
    return hmac.new(key.encode(), b"ruta-audit-key-fingerprint", hashlib.sha256).hexdigest()[:16]


async def test_verify_with_another_key_names_the_key_mismatch_not_altered_events(
    trail: Database, fresh_settings: Settings, var_dir: Path
) -> None:
    other_key = make_settings(
        fresh_settings.database_url, var_dir, audit_key="not-the-key-that-sealed-them"
    )
    stored = {f for (f,) in await query(trail, "SELECT DISTINCT key_fingerprint FROM audit_event")}

    result = run_verify(other_key)

    assert stored == {_fingerprint("test-audit-key")}
    assert result.returncode == 1
    assert (
        f"these events were sealed with key a1 of fingerprint {_fingerprint('test-audit-key')};"
        f" the configured key has fingerprint {_fingerprint('not-the-key-that-sealed-them')}"
    ) in result.stderr
    assert "altered" not in result.stderr
    assert "test-audit-key" not in result.stderr + result.stdout


async def test_every_head_is_the_last_event_of_its_chain(trail: Database) -> None:
    """The database moves a chain's head to each event appended (migration 0027's trigger):
    the application no longer writes the head, so a head that stayed behind would break
    the next append's link and every verification after it."""
    heads = await query(trail, "SELECT chain, seq, hash FROM audit_chain_head ORDER BY chain")
    lasts = await query(
        trail,
        "SELECT e.chain, e.seq, e.hash FROM audit_event e WHERE e.seq ="
        " (SELECT max(seq) FROM audit_event WHERE chain = e.chain) ORDER BY e.chain",
    )
    moved = [head for head in heads if head[1] > 0]
    assert len(lasts) >= 3  # a dozen cases spread over several chains
    assert [tuple(h) for h in moved] == [tuple(last) for last in lasts]


async def test_the_head_follows_an_event_written_by_hand_and_never_moves_back(
    trail: Database,
) -> None:
    chain, _ = await _a_long_chain(trail)
    [(seq, head_hash)] = await query(
        trail, "SELECT seq, hash FROM audit_chain_head WHERE chain = :c", c=chain
    )

    def event(at: int) -> dict[str, object]:
        return {
            "id": uuid.uuid4(),
            "chain": chain,
            "seq": at,
            "occurred_at": utcnow(),
            "action": "case.closed",
            "entity_type": "case",
            "entity_id": "x",
            "changes": {},
            "prev_hash": head_hash,
            "hash": f"{at:064d}",
            "key_id": "a1",
        }

    async with trail.engine.begin() as conn:
        await conn.execute(sa.insert(table_of(AuditEvent)).values(**event(seq + 5)))
        await conn.execute(sa.insert(table_of(AuditEvent)).values(**event(seq + 2)))

    # Forged or not, an event appended moves the head to it (verify then finds the forgery);
    # one below the head leaves the head where it is.
    assert await query(
        trail, "SELECT seq, hash FROM audit_chain_head WHERE chain = :c", c=chain
    ) == [(seq + 5, f"{seq + 5:064d}")]
