"""Generated local secrets: every worker starting at once reads the same complete file."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest

from service.core.settings import Settings, _load_or_create_local_secrets

pytestmark = pytest.mark.slow

_WORKERS = 8
_ROUNDS = 12

_barrier: Barrier | None = None


def _start(barrier: Barrier) -> None:
    global _barrier  # the pool initializer hands each process the barrier
    _barrier = barrier


def _create_or_read(path: str) -> str:
    """In a worker process: wait for the others, then load or create the secrets."""
    assert _barrier is not None
    _barrier.wait(timeout=60)
    try:
        return json.dumps(_load_or_create_local_secrets(Path(path)), sort_keys=True)
    except Exception as exc:  # a half-written file shows up here: report it, don't hide it
        return f"error: {type(exc).__name__}: {exc}"


def test_workers_creating_secrets_at_once_all_read_the_same_complete_file(
    tmp_path: Path,
) -> None:
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Manager().Barrier(_WORKERS)
    outcomes: list[list[str]] = []
    with ProcessPoolExecutor(
        _WORKERS, mp_context=spawn, initializer=_start, initargs=(barrier,)
    ) as pool:
        for round_ in range(_ROUNDS):
            path = tmp_path / f"round-{round_}" / "secrets.json"
            outcomes.append(list(pool.map(_create_or_read, [str(path)] * _WORKERS)))

    for round_, answers in enumerate(outcomes):
        assert len(set(answers)) == 1, (round_, sorted(set(answers)))
        [answer] = set(answers)
        stored = (tmp_path / f"round-{round_}" / "secrets.json").read_text()
        assert json.loads(answer) == json.loads(stored)
        assert set(json.loads(stored)) == {
            "secret_key",
            "audit_key",
            "master_key",
            "blind_index_key",
            "audit_signing_key",
        }
        # Nothing but the secrets file is left behind, and it is private.
        assert os.listdir(tmp_path / f"round-{round_}") == ["secrets.json"]
        assert (tmp_path / f"round-{round_}" / "secrets.json").stat().st_mode & 0o777 == 0o600


def _signing_key(var_dir: str) -> str:
    """In a worker process: wait for the others, then read the audit signing key."""
    assert _barrier is not None
    _barrier.wait(timeout=60)
    settings = Settings(environment="test", var_dir=Path(var_dir))
    return settings.secret("audit_signing_key").hex()


def test_a_secrets_file_from_before_the_signing_key_is_completed_once_keeping_the_rest(
    tmp_path: Path,
) -> None:
    older = {"secret_key": "s", "audit_key": "a", "master_key": "bWs=", "blind_index_key": "b"}
    (tmp_path / "secrets.json").write_text(json.dumps(older))
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Manager().Barrier(_WORKERS)
    with ProcessPoolExecutor(
        _WORKERS, mp_context=spawn, initializer=_start, initargs=(barrier,)
    ) as pool:
        keys = set(pool.map(_signing_key, [str(tmp_path)] * _WORKERS))

    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert len(keys) == 1
    assert stored == {**older, "audit_signing_key": stored["audit_signing_key"]}
    assert bytes.fromhex(keys.pop()) == base64.b64decode(stored["audit_signing_key"])
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_production_refuses_a_missing_or_malformed_signing_key(tmp_path: Path) -> None:
    given = {
        "environment": "production",
        "var_dir": tmp_path,
        "secret_key": "s" * 48,
        "audit_key": "a" * 48,
        "master_key": base64.b64encode(bytes(32)).decode(),
        "blind_index_key": "b" * 48,
    }
    with pytest.raises(ValueError, match="RUTA_AUDIT_SIGNING_KEY"):
        Settings.model_validate(given)
    with pytest.raises(ValueError, match="RUTA_AUDIT_SIGNING_KEY must be the base64 of 32 bytes"):
        Settings.model_validate(
            {**given, "audit_signing_key": base64.b64encode(bytes(31)).decode()}
        )
    signing_key = base64.b64encode(bytes(range(32))).decode()
    settings = Settings.model_validate({**given, "audit_signing_key": signing_key})
    assert settings.secret("audit_signing_key") == bytes(range(32))
