"""Signed checkpoints of the audit chains' heads, kept outside the database, against the
truncation a hash chain alone cannot show: `ruta audit checkpoint`, `verify --checkpoint`."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.core.db import Database
from service.core.security import Security
from service.core.settings import Settings
from service.main import open_database
from tests.support.audit import create_cases, make_actor, tamper
from tests.support.cli import ruta
from tests.support.databases import make_settings, query


@pytest.fixture
async def trail(fresh_settings: Settings) -> AsyncIterator[Database]:
    """A fresh database holding a few dozen chained events."""
    db = open_database(fresh_settings)
    actor = await make_actor(db, Security.from_settings(fresh_settings))
    await create_cases(db, actor, 12)
    yield db
    await db.dispose()


def _checkpoint(settings: Settings, out: Path) -> dict[str, object]:
    result = ruta(settings, "audit", "checkpoint", "--out", str(out))
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(out.read_text())
    return document


def _verify(settings: Settings, checkpoint: Path, *extra: str) -> tuple[int, str]:
    result = ruta(settings, "audit", "verify", "--checkpoint", str(checkpoint), *extra)
    return result.returncode, result.stdout + result.stderr


async def _longest_chain(db: Database) -> tuple[int, int]:
    [(chain, last)] = await query(
        db,
        "SELECT chain, max(seq) FROM audit_event GROUP BY chain ORDER BY count(*) DESC, chain"
        " LIMIT 1",
    )
    return chain, last


async def _truncate(db: Database, chain: int, *, keep: int) -> None:
    """Delete a chain's newest events and set its head back, as a careful intruder would."""
    await tamper(db, "DELETE FROM audit_event WHERE chain = :c AND seq > :k", c=chain, k=keep)
    [(digest,)] = await query(
        db, "SELECT hash FROM audit_event WHERE chain = :c AND seq = :k", c=chain, k=keep
    )
    await tamper(
        db,
        "UPDATE audit_chain_head SET seq = :k, hash = :h WHERE chain = :c",
        c=chain,
        k=keep,
        h=digest,
    )


async def test_untouched_trail_verifies_against_its_checkpoint(
    trail: Database, fresh_settings: Settings, tmp_path: Path
) -> None:
    document = _checkpoint(fresh_settings, tmp_path / "cp.json")
    [(events,)] = await query(trail, "SELECT count(*) FROM audit_event")

    code, output = _verify(fresh_settings, tmp_path / "cp.json")

    heads = document["heads"]
    assert isinstance(heads, list)
    assert len(heads) == 32
    assert sum(h["seq"] for h in heads) == events
    assert document["key_id"] == "s1"
    assert code == 0, output
    assert f"verified: {events} events in 32 chains, reaching checkpoint" in output


async def test_deleting_the_newest_events_fails_naming_the_chain_and_position(
    trail: Database, fresh_settings: Settings, tmp_path: Path
) -> None:
    chain, last = await _longest_chain(trail)
    _checkpoint(fresh_settings, tmp_path / "cp.json")
    await _truncate(trail, chain, keep=last - 2)

    plain = ruta(fresh_settings, "audit", "verify")
    code, output = _verify(fresh_settings, tmp_path / "cp.json")

    # The chain alone still verifies: only the checkpoint remembers how far it reached.
    assert plain.returncode == 0, plain.stderr
    assert code == 1
    assert f"audit trail BROKEN: chain {chain}, seq {last}:" in output
    assert f"the chain now ends at seq {last - 2}" in output


async def test_deleting_the_newest_events_without_resetting_the_head_fails_too(
    trail: Database, fresh_settings: Settings, tmp_path: Path
) -> None:
    chain, last = await _longest_chain(trail)
    _checkpoint(fresh_settings, tmp_path / "cp.json")
    await tamper(trail, "DELETE FROM audit_event WHERE chain = :c AND seq = :s", c=chain, s=last)

    code, output = _verify(fresh_settings, tmp_path / "cp.json")

    assert code == 1
    assert f"chain {chain}, seq {last}:" in output


async def test_new_events_after_the_checkpoint_still_verify(
    trail: Database, fresh_settings: Settings, tmp_path: Path
) -> None:
    _checkpoint(fresh_settings, tmp_path / "cp.json")
    await create_cases(trail, await make_actor(trail, Security.from_settings(fresh_settings)), 5)
    [(events,)] = await query(trail, "SELECT count(*) FROM audit_event")

    code, output = _verify(fresh_settings, tmp_path / "cp.json")

    assert code == 0, output
    assert f"verified: {events} events" in output


async def test_an_edited_checkpoint_fails_its_signature(
    trail: Database, fresh_settings: Settings, tmp_path: Path
) -> None:
    chain, last = await _longest_chain(trail)
    document = _checkpoint(fresh_settings, tmp_path / "cp.json")
    await _truncate(trail, chain, keep=last - 2)
    # The intruder lowers the checkpoint's head to match the truncated chain.
    heads = document["heads"]
    assert isinstance(heads, list)
    [head] = [h for h in heads if h["chain"] == chain]
    [(digest,)] = await query(
        trail, "SELECT hash FROM audit_event WHERE chain = :c AND seq = :s", c=chain, s=last - 2
    )
    head.update(seq=last - 2, hash=digest)
    (tmp_path / "edited.json").write_text(json.dumps(document))

    code, output = _verify(fresh_settings, tmp_path / "edited.json")

    assert code == 1
    assert "NOT VERIFIED" in output
    assert "the signature does not verify" in output
    assert "verified:" not in output


async def test_a_checkpoint_forged_with_another_key_fails(
    trail: Database, fresh_settings: Settings, var_dir: Path, tmp_path: Path
) -> None:
    forger = make_settings(
        fresh_settings.database_url,
        var_dir,
        audit_signing_key=base64.b64encode(b"f" * 32).decode(),
    )
    _checkpoint(forger, tmp_path / "forged.json")
    public = ruta(fresh_settings, "audit", "public-key").stdout.strip()

    by_settings = _verify(fresh_settings, tmp_path / "forged.json")
    by_public_key = _verify(forger, tmp_path / "forged.json", "--public-key", public)

    for code, output in (by_settings, by_public_key):
        assert code == 1
        assert "NOT VERIFIED" in output
        assert "the verifying key has fingerprint" in output


async def test_a_checkpoint_verifies_with_the_public_key_alone(
    trail: Database, fresh_settings: Settings, var_dir: Path, tmp_path: Path
) -> None:
    _checkpoint(fresh_settings, tmp_path / "cp.json")
    public = ruta(fresh_settings, "audit", "public-key").stdout.strip()
    # A verifier holding another signing key (or none of this one) but the public key.
    elsewhere = make_settings(
        fresh_settings.database_url,
        var_dir,
        audit_signing_key=base64.b64encode(b"e" * 32).decode(),
    )

    code, output = _verify(elsewhere, tmp_path / "cp.json", "--public-key", public)

    assert len(base64.b64decode(public)) == 32
    assert code == 0, output


async def test_checkpoint_goes_to_standard_output_without_out(
    trail: Database, fresh_settings: Settings, tmp_path: Path
) -> None:
    result = ruta(fresh_settings, "audit", "checkpoint")
    (tmp_path / "piped.json").write_text(result.stdout)

    code, output = _verify(fresh_settings, tmp_path / "piped.json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["format"] == "ruta-audit-checkpoint/1"
    assert code == 0, output
