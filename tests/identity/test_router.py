"""Signing in, tokens, and the failed-login rate limit, through HTTP."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from service.core.db import Database
from service.core.settings import Settings
from service.core.time import utcnow
from service.identity.rules import Role
from service.main import create_app
from tests.support.clients import client_from
from tests.support.databases import make_settings, query
from tests.support.factories import Factory

_addresses = itertools.count(1)


def _address() -> str:
    """A client address no other test uses: the per-address login limit must not leak."""
    n = next(_addresses)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


async def test_password_login_issues_a_working_bearer_token(app: FastAPI, factory: Factory) -> None:
    user = await factory.user("MIMP", Role.caseworker)
    async with client_from(app, _address()) as client:
        response = await client.post(
            "/v1/auth/token", data={"username": user.actor.username, "password": user.password}
        )
        assert response.status_code == 200, response.text
        token = response.json()
        me = await client.get(
            "/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"}
        )

    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 900
    assert me.status_code == 200
    assert me.json()["organization"]["code"] == "MIMP"
    assert me.json()["role"] == "caseworker"


async def test_failed_login_is_refused_kept_and_audited(
    app: FastAPI, factory: Factory, db: Database
) -> None:
    user = await factory.user("PNP", Role.identifier)
    async with client_from(app, _address()) as client:
        response = await client.post(
            "/v1/auth/token", data={"username": user.actor.username, "password": "wrong"}
        )

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert response.headers["www-authenticate"] == "Bearer"
    attempts = await query(
        db, "SELECT succeeded FROM login_attempt WHERE username = :u", u=user.actor.username
    )
    events = await query(
        db,
        "SELECT changes FROM audit_event WHERE action = 'auth.login_failed' AND entity_id = :id",
        id=str(user.actor.user_id),
    )
    assert [bool(a) for (a,) in attempts] == [False]
    assert len(events) == 1
    assert "wrong" not in json.dumps(events[0][0], default=str)


async def test_repeated_failures_for_a_username_are_rate_limited(
    app: FastAPI, factory: Factory
) -> None:
    user = await factory.user("PNP", Role.identifier)
    async with client_from(app, _address()) as client:
        statuses = [
            (
                await client.post(
                    "/v1/auth/token",
                    data={"username": user.actor.username, "password": f"guess-{i}"},
                )
            ).status_code
            for i in range(5)
        ]
    # Even the right password, from an address it never signed in from, is refused while
    # the limit holds.
    async with client_from(app, _address()) as other:
        limited = await other.post(
            "/v1/auth/token", data={"username": user.actor.username, "password": user.password}
        )

    assert statuses == [401] * 5
    assert limited.status_code == 429
    assert limited.json()["code"] == "login_rate_limited"
    assert int(limited.headers["retry-after"]) > 0


async def test_repeated_failures_from_an_address_are_rate_limited(
    app: FastAPI, factory: Factory
) -> None:
    address = _address()
    user = await factory.user("PNP", Role.identifier)
    async with client_from(app, address) as client:
        for i in range(20):
            await client.post(
                "/v1/auth/token",
                data={"username": f"nobody-{uuid.uuid4().hex}", "password": str(i)},
            )
        limited = await client.post(
            "/v1/auth/token", data={"username": user.actor.username, "password": user.password}
        )
    assert limited.status_code == 429
    assert limited.json()["code"] == "login_rate_limited"


async def _log_in(app: FastAPI, address: str, username: str, password: str) -> httpx.Response:
    async with client_from(app, address) as client:
        return await client.post(
            "/v1/auth/token", data={"username": username, "password": password}
        )


async def test_an_attacker_failing_50_times_cannot_lock_the_user_out_of_a_known_address(
    app: FastAPI, factory: Factory, settings: Settings
) -> None:
    user = await factory.user("MIMP", Role.caseworker)
    attacker, known, unknown = _address(), _address(), _address()
    name = user.actor.username
    before = await _log_in(app, known, name, user.password)

    answers = [await _log_in(app, attacker, name, f"guess-{i}") for i in range(50)]
    from_unknown = await _log_in(app, unknown, name, user.password)
    from_known = await _log_in(app, known, name, user.password)
    attacker_right = await _log_in(app, attacker, name, user.password)

    pair_limit = settings.login_max_failures_per_username_address
    assert before.status_code == 200, before.text
    assert [a.status_code for a in answers] == [401] * pair_limit + [429] * (50 - pair_limit)
    assert {a.json()["code"] for a in answers[pair_limit:]} == {"login_rate_limited"}
    assert from_known.status_code == 200, from_known.text
    # Stated rule: an address the user never signed in from waits out the username limit
    # (or until the user signs in from a known one, which ends the failures before it).
    assert from_unknown.status_code == 429
    # The attacker's address stays throttled, even with the right password.
    assert attacker_right.status_code == 429
    assert int(attacker_right.headers["retry-after"]) > 0


async def test_an_address_failing_across_usernames_is_refused_but_others_are_not(
    app: FastAPI, factory: Factory, settings: Settings
) -> None:
    user = await factory.user("PNP", Role.identifier)
    stuffer, own = _address(), _address()
    answers = [
        await _log_in(app, stuffer, f"stuffed-{uuid.uuid4().hex}", f"pw-{i}")
        for i in range(settings.login_max_failures_per_address + 3)
    ]

    from_stuffer = await _log_in(app, stuffer, user.actor.username, user.password)
    from_own = await _log_in(app, own, user.actor.username, user.password)

    limit = settings.login_max_failures_per_address
    assert [a.status_code for a in answers] == [401] * limit + [429] * 3
    assert from_stuffer.status_code == 429
    assert from_stuffer.json()["code"] == "login_rate_limited"
    assert from_own.status_code == 200, from_own.text


async def test_login_audit_records_failures_and_refusals_without_the_password(
    app: FastAPI, factory: Factory, db: Database, settings: Settings
) -> None:
    user = await factory.user("PNP", Role.identifier)
    address = _address()
    marker = f"secret-guess-{uuid.uuid4().hex}"
    for _ in range(settings.login_max_failures_per_username_address + 1):
        await _log_in(app, address, user.actor.username, marker)

    events = await query(
        db,
        "SELECT changes FROM audit_event WHERE action = 'auth.login_failed' AND entity_id = :id",
        id=str(user.actor.user_id),
    )

    changes = [c if isinstance(c, dict) else json.loads(c) for (c,) in events]
    assert [c["outcome"]["to"] for c in changes].count("failed") == (
        settings.login_max_failures_per_username_address
    )
    refused = [c for c in changes if c["outcome"]["to"] == "rate_limited"]
    assert [c["limit"]["to"] for c in refused] == ["username_and_address"]
    assert {c["client_address"]["to"] for c in changes} == {address}
    assert marker not in json.dumps(changes)
    assert user.password not in json.dumps(changes)


async def test_known_addresses_are_kept_as_keyed_hashes_only(
    app: FastAPI, factory: Factory, db: Database
) -> None:
    user = await factory.user("PNP", Role.identifier)
    address = _address()
    answer = await _log_in(app, address, user.actor.username, user.password)

    rows = await query(
        db,
        "SELECT k.address_hash FROM login_address k JOIN app_user u ON u.id = k.user_id"
        " WHERE u.username = :name",
        name=user.actor.username,
    )

    assert answer.status_code == 200
    assert len(rows) == 1
    assert address not in rows[0][0]
    assert len(rows[0][0]) == 64


def _unsigned(claims: dict[str, object]) -> str:
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{body}."


def _forge(settings: Settings, **claims: object) -> str:
    now = utcnow()
    payload: dict[str, object] = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    payload.update(claims)
    return jwt.encode(payload, settings.secret("secret_key"), algorithm="HS256")


async def test_expired_tampered_foreign_and_orphan_tokens_get_401(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user("PNP", Role.identifier)
    sub = str(user.actor.user_id)
    header, payload, signature = user.token.split(".")
    tampered_payload = jwt.utils.base64url_encode(
        json.dumps(
            {
                **jwt.decode(user.token, options={"verify_signature": False}),
                "sub": str(uuid.uuid4()),
            }
        ).encode()
    ).decode()
    tokens = {
        "expired": _forge(settings, sub=sub, exp=utcnow() - timedelta(seconds=1)),
        "tampered payload": f"{header}.{tampered_payload}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-2]}AA",
        "other key": jwt.encode(
            {
                "sub": sub,
                "iss": settings.token_issuer,
                "aud": settings.token_audience,
                "iat": utcnow(),
                "exp": utcnow() + timedelta(minutes=5),
            },
            "another-key-another-key-another-key!!",
            algorithm="HS256",
        ),
        "unsigned": _unsigned({"sub": sub, "iss": settings.token_issuer}),
        "unknown user": _forge(settings, sub=str(uuid.uuid4())),
        "garbage": "not.a.token",
    }
    for name, token in tokens.items():
        response = await client.get("/v1/cases", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.json()["code"] == "invalid_token", name

    missing = await client.get("/v1/cases")
    assert missing.status_code == 401
    assert missing.json()["code"] == "invalid_token"
    assert (await client.get("/v1/cases", headers=user.headers)).status_code == 200


async def test_a_token_accepted_before_is_refused_once_it_expires(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    # Verified tokens are remembered (core/security.Tokens): the memory keeps their expiry.
    user = await factory.user("PNP", Role.identifier)
    expires = int(time.time()) + 2
    token = _forge(settings, sub=str(user.actor.user_id), exp=expires)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/v1/cases", headers=headers)).status_code == 200
    assert (await client.get("/v1/cases", headers=headers)).status_code == 200
    await asyncio.sleep(expires - time.time() + 0.2)
    refused = await client.get("/v1/cases", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A real JWKS endpoint on loopback, as an external OpenID Connect issuer publishes it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "test-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    server.shutdown()


async def test_tokens_of_the_configured_oidc_issuer_are_accepted(
    settings: Settings,
    var_dir: Path,
    factory: Factory,
    jwks_server: tuple[str, rsa.RSAPrivateKey],
) -> None:
    url, key = jwks_server
    user = await factory.user("MINJUS", Role.legal_aid)
    oidc_settings = make_settings(
        settings.database_url,
        var_dir,
        oidc_issuer="https://sso.example.gob.pe",
        oidc_jwks_url=url,
        oidc_audience="ruta",
    )
    app = create_app(oidc_settings)

    def external(**claims: object) -> str:
        now = utcnow()
        payload = {
            "iss": "https://sso.example.gob.pe",
            "aud": "ruta",
            "sub": "abc",
            "iat": now,
            "exp": now + timedelta(minutes=5),
            "preferred_username": user.actor.username,
        }
        payload.update(claims)
        return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "test-1"})

    async with app.router.lifespan_context(app), client_from(app, _address()) as client:
        ok = await client.get("/v1/me", headers={"Authorization": f"Bearer {external()}"})
        wrong_aud = await client.get(
            "/v1/me", headers={"Authorization": f"Bearer {external(aud='other')}"}
        )
        expired = await client.get(
            "/v1/me",
            headers={"Authorization": f"Bearer {external(exp=utcnow() - timedelta(seconds=5))}"},
        )
        stranger = await client.get(
            "/v1/me",
            headers={"Authorization": f"Bearer {external(preferred_username='nobody-here')}"},
        )

    assert ok.status_code == 200, ok.text
    assert ok.json()["username"] == user.actor.username
    for refused in (wrong_aud, expired, stranger):
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_token"
