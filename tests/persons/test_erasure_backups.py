"""How an erasure reaches backups. A backup taken before it still holds the person's wrapped
data key: restored, the erasure register kept outside the database erases her again; and once
the master key that wrapped it is rotated away and destroyed, the backup opens for nobody."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from service.core.crypto import Keyring, UnknownMasterKey
from service.core.settings import Settings
from service.identity.rules import Role
from service.main import create_app, open_database
from service.persons import service as person_service
from service.persons.exceptions import PersonErased
from tests.support.cli import ruta
from tests.support.clients import client_from
from tests.support.databases import create_database, drop_database, make_settings, query
from tests.support.factories import Factory, SignedInUser, case_body, person_body

NEW_MASTER_KEY = base64.b64encode(b"n" * 32).decode()


@dataclass
class World:
    app: FastAPI
    client: httpx.AsyncClient
    police: SignedInUser
    admin: SignedInUser
    settings: Settings
    var_dir: Path


@pytest.fixture
async def world(fresh_settings: Settings, tmp_path: Path) -> AsyncIterator[World]:
    app = create_app(fresh_settings)
    async with app.router.lifespan_context(app), client_from(app, "203.0.113.43") as client:
        factory = Factory(app.state.db, app.state.security)
        police = await factory.user("PNP", Role.identifier)
        admin = await factory.user("MIMP", Role.admin)
        yield World(app, client, police, admin, fresh_settings, tmp_path)


@dataclass(frozen=True)
class BackedUp:
    """Ermelinda identified by the police, then a backup taken that holds her."""

    person_id: str
    backup: Path


@pytest.fixture
async def backed_up(world: World) -> BackedUp:
    response = await world.client.post(
        "/v1/cases",
        json=case_body(person=person_body(given_name="Ermelinda", family_name="Apaza")),
        headers=world.police.headers,
    )
    person_id = response.json()["person_id"]
    return BackedUp(person_id, await backup(world.settings, world.var_dir))


async def backup(settings: Settings, into: Path) -> Path:
    """A backup as an operator takes one: SQLite's online backup, or pg_dump."""
    url = make_url(settings.database_url)
    if settings.is_sqlite:
        target = into / "backup.db"

        def copy() -> None:
            source, copied = sqlite3.connect(str(url.database)), sqlite3.connect(target)
            try:
                source.backup(copied)
            finally:
                source.close()
                copied.close()

        await asyncio.to_thread(copy)
        return target
    target = into / "backup.dump"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    await asyncio.to_thread(
        subprocess.run, ["pg_dump", "-Fc", "-f", str(target), dsn], check=True, timeout=120
    )
    return target


async def restore(dump: Path, settings: Settings, var_dir: Path, **keys: Any) -> Settings:
    """The backup restored into a database of its own; its settings (keys as given)."""
    if settings.is_sqlite:
        url = f"sqlite+aiosqlite:///{dump}"
    else:
        url = await create_database(var_dir)
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        await asyncio.to_thread(
            subprocess.run,
            ["pg_restore", "--no-owner", "-d", dsn, str(dump)],
            check=True,
            timeout=120,
        )
    return make_settings(url, var_dir, **keys)


async def identity(settings: Settings, person_id: str) -> dict[str, Any]:
    """The person's identifying data as whoever holds the database and the keys reads it."""
    db = open_database(settings)
    try:
        async with db.session(write=False) as session:
            found = await person_service.read_identifying(
                session, keyring=Keyring(settings), person_id=uuid.UUID(person_id)
            )
            return found.model_dump(mode="json")
    finally:
        await db.dispose()


async def test_a_restored_backup_is_erased_again_from_the_erasure_register(
    world: World, backed_up: BackedUp
) -> None:
    w, person_id, taken = world, backed_up.person_id, backed_up.backup
    erased = await w.client.post(
        f"/v1/persons/{person_id}/erase",
        json={"legal_basis": "data_subject_request", "justification": "request 2026-0099"},
        headers=w.admin.headers,
    )
    assert erased.status_code == 200, erased.text
    register = w.var_dir / "erasures.jsonl"
    exported = ruta(w.settings, "retention", "register", "--output", str(register))
    assert exported.returncode == 0, exported.stderr

    restored = await restore(taken, w.settings, w.var_dir)
    try:
        # The backup predates the erasure: with the master key, she is readable there.
        assert (await identity(restored, person_id))["given_name"] == "Ermelinda"
        reapplied = ruta(restored, "retention", "reapply", str(register))
        again = ruta(restored, "retention", "reapply", str(register))

        assert reapplied.returncode == 0, reapplied.stderr
        assert "erased again 1 person records" in reapplied.stdout
        assert "erased again 0 person records; 1 already erased" in again.stdout
        with pytest.raises(PersonErased):
            await identity(restored, person_id)
        db = open_database(restored)
        try:
            rows = await query(db, "SELECT legal_basis FROM person_erasure")
        finally:
            await db.dispose()
        assert rows == [("data_subject_request",)]
        assert "Ermelinda" not in register.read_text()
    finally:
        await drop_database(restored.database_url)


async def test_a_backup_opens_for_nobody_once_its_master_key_is_rotated_away_and_destroyed(
    world: World, backed_up: BackedUp
) -> None:
    w, person_id, taken = world, backed_up.person_id, backed_up.backup
    old_key = w.settings.secret("master_key")

    # Rotate: a new master key, the old one retired only until every data key is re-wrapped.
    rotating = make_settings(
        w.settings.database_url,
        w.settings.var_dir,
        master_key=NEW_MASTER_KEY,
        master_key_id="k2",
        retired_master_keys=f'{{"k1": "{base64.b64encode(old_key).decode()}"}}',
    )
    rotated = ruta(rotating, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    # The old master key destroyed: the deployment keeps only the new one.
    now_keys = {"master_key": NEW_MASTER_KEY, "master_key_id": "k2"}
    live = make_settings(w.settings.database_url, w.settings.var_dir, **now_keys)

    assert (await identity(live, person_id))["given_name"] == "Ermelinda"
    restored = await restore(taken, w.settings, w.var_dir, **now_keys)
    try:
        with pytest.raises(UnknownMasterKey):
            await identity(restored, person_id)
    finally:
        await drop_database(restored.database_url)
