"""`ruta user` administration, seen through the CLI and through the tokens users hold."""

from __future__ import annotations

import json
import uuid

import httpx

from service.core.db import Database
from service.core.settings import Settings
from service.identity.rules import Role
from tests.support.cli import ruta
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser


async def _sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/v1/auth/token", data={"username": username, "password": password})


async def _token(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await _sign_in(client, username, password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _user_events(db: Database, user: SignedInUser) -> list[tuple[str, str | None, str]]:
    """(action, acting user, changes) of the user's administration events, in order."""
    rows = await query(
        db,
        "SELECT action, actor_user_id, changes FROM audit_event"
        " WHERE entity_id = :id AND action LIKE 'user.%' ORDER BY occurred_at",
        id=str(user.actor.user_id),
    )
    return [
        (a, actor and str(actor), c if isinstance(c, str) else json.dumps(c))
        for a, actor, c in rows
    ]


async def test_a_disabled_users_token_is_refused_at_once_and_enabling_needs_a_new_sign_in(
    settings: Settings, client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    user = await factory.user("PNP", Role.identifier)
    name = user.actor.username
    headers = await _token(client, name, user.password)
    before = await client.get("/v1/me", headers=headers)

    disabled = ruta(settings, "user", "disable", name)
    refused = await client.get("/v1/me", headers=headers)
    sign_in_refused = await _sign_in(client, name, user.password)
    again = ruta(settings, "user", "disable", name)

    enabled = ruta(settings, "user", "enable", name)
    old_token = await client.get("/v1/me", headers=headers)
    fresh = await client.get("/v1/me", headers=await _token(client, name, user.password))

    assert before.status_code == 200
    assert disabled.returncode == 0, disabled.stderr
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"
    assert sign_in_refused.status_code == 401
    assert again.returncode == 0
    assert "already disabled" in again.stdout
    assert enabled.returncode == 0, enabled.stderr
    assert old_token.status_code == 401
    assert fresh.status_code == 200
    assert fresh.json()["username"] == name
    events = await _user_events(db, user)
    assert [(a, actor) for a, actor, _ in events] == [
        ("user.created", None),
        ("user.disabled", None),
        ("user.enabled", None),
    ]


async def test_reset_password_revokes_earlier_tokens_and_the_old_password(
    settings: Settings, client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    user = await factory.user("MIMP", Role.caseworker)
    name = user.actor.username
    headers = await _token(client, name, user.password)
    new_password = f"nueva-{uuid.uuid4().hex}"

    reset = ruta(
        settings, "user", "reset-password", name, "--password-stdin", stdin=new_password + "\n"
    )
    old_token = await client.get("/v1/me", headers=headers)
    old_password = await _sign_in(client, name, user.password)
    new_token = await client.get("/v1/me", headers=await _token(client, name, new_password))
    generated = ruta(settings, "user", "reset-password", name)
    shown = generated.stdout.strip().rsplit(" ", 1)[-1]
    with_generated = await _sign_in(client, name, shown)
    too_short = ruta(settings, "user", "reset-password", name, "--password-stdin", stdin="short\n")

    assert reset.returncode == 0, reset.stderr
    assert new_password not in reset.stdout + reset.stderr
    assert old_token.status_code == 401
    assert old_password.status_code == 401
    assert new_token.status_code == 200
    assert generated.returncode == 0, generated.stderr
    assert with_generated.status_code == 200
    assert too_short.returncode == 2
    events = await _user_events(db, user)
    assert [a for a, _, _ in events] == ["user.created", "user.password_set", "user.password_set"]
    assert all(new_password not in c and shown not in c for _, _, c in events)


async def test_set_role_changes_what_the_same_token_may_do(
    settings: Settings, client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    user = await factory.user("PNP", Role.identifier)
    name = user.actor.username
    headers = await _token(client, name, user.password)
    cases_before = await client.get("/v1/cases", headers=headers)
    audit_before = await client.get("/v1/audit/events", headers=headers)

    changed = ruta(settings, "user", "set-role", name, "auditor")
    cases_after = await client.get("/v1/cases", headers=headers)
    audit_after = await client.get("/v1/audit/events", headers=headers)
    me = await client.get("/v1/me", headers=headers)

    assert (cases_before.status_code, audit_before.status_code) == (200, 403)
    assert changed.returncode == 0, changed.stderr
    assert "identifier -> auditor" in changed.stdout
    assert (cases_after.status_code, audit_after.status_code) == (403, 200)
    assert me.json()["role"] == "auditor"
    [*_, (action, actor, changes)] = await _user_events(db, user)
    assert (action, actor) == ("user.role_changed", None)
    assert json.loads(changes) == {"role": {"from": "identifier", "to": "auditor"}}


async def test_unknown_users_and_roles_are_refused_with_exit_code_2(settings: Settings) -> None:
    nobody = f"nobody-{uuid.uuid4().hex[:8]}"
    results = {
        command: ruta(settings, "user", *args)
        for command, args in {
            "disable": ("disable", nobody),
            "reset": ("reset-password", nobody),
            "set-role": ("set-role", nobody, "admin"),
            "bad role": ("set-role", "demo-police", "wizard"),
        }.items()
    }

    for command in ("disable", "reset", "set-role"):
        assert results[command].returncode == 2, command
        assert f"no user has the username {nobody!r}" in results[command].stderr, command
    assert results["bad role"].returncode == 2
    assert "wizard" in results["bad role"].stderr
    assert "new password" not in results["reset"].stdout


async def test_user_list_shows_staff_accounts_with_their_last_sign_in(
    settings: Settings, client: httpx.AsyncClient, factory: Factory
) -> None:
    signed_in = await factory.user("MINJUS", Role.legal_aid)
    never = await factory.user("MINJUS", Role.legal_aid)
    await _token(client, signed_in.actor.username, signed_in.password)
    assert ruta(settings, "user", "disable", never.actor.username).returncode == 0

    listed = ruta(settings, "user", "list", "--org", "MINJUS", "--json")
    table = ruta(settings, "user", "list")

    assert listed.returncode == 0, listed.stderr
    users = {u["username"]: u for u in json.loads(listed.stdout)}
    assert {u["organization"] for u in users.values()} == {"MINJUS"}
    mine = users[signed_in.actor.username]
    assert (mine["role"], mine["active"], mine["password"]) == ("legal_aid", True, True)
    assert mine["last_login_at"] is not None
    assert users[never.actor.username]["active"] is False
    assert users[never.actor.username]["last_login_at"] is None
    assert set(mine) == {
        "username",
        "organization",
        "role",
        "active",
        "password",
        "last_login_at",
        "created_at",
    }
    assert table.returncode == 0, table.stderr
    [row] = [line for line in table.stdout.splitlines() if signed_in.actor.username in line]
    assert row.split()[:5] == [signed_in.actor.username, "MINJUS", "legal_aid", "yes", "yes"]
