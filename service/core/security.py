"""Passwords, access tokens and external OpenID Connect tokens."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.concurrency import run_in_threadpool

from service.core.crypto import Keyring
from service.core.settings import Settings
from service.core.time import utcnow

_ALGORITHM = "HS256"
# How many verified tokens Tokens.verify remembers (forgotten all at once past it).
_VERIFIED_TOKENS = 10_000


class InvalidToken(Exception):
    """The token is missing, malformed, expired, tampered with or from an unknown issuer."""


class Passwords:
    """argon2id hashing with a constant-cost path for unknown users."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost_kib
        )
        self._dummy = self._hasher.hash("ruta-dummy-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when the password matches; spends the same work when there is no hash."""
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and bool(
                password_hash
            )
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class TokenClaims:
    """What Ruta trusts from a verified token: who, and through which issuer."""

    subject: str  # a user id for Ruta's tokens, a username for an external issuer's
    issuer: str
    external: bool
    # The user's token generation when Ruta issued the token (0 for an external issuer's):
    # a password reset or a disabling moves the user's on, and every earlier token dies.
    generation: int = 0


class Tokens:
    """Issue Ruta's own access tokens and verify them or an external issuer's."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._key = settings.secret("secret_key")
        self._jwks: jwt.PyJWKClient | None = None
        # Own tokens already verified, with their expiry: a bearer token is presented at
        # every request, and decoding it twice cost more than the principal's query.
        self._verified: dict[str, tuple[TokenClaims, float]] = {}
        if settings.oidc_issuer and settings.oidc_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True, lifespan=300)

    @property
    def ttl_seconds(self) -> int:
        return self._settings.access_token_ttl_seconds

    def issue(
        self, *, user_id: uuid.UUID, organization_code: str, role: str, generation: int = 0
    ) -> str:
        now = utcnow()
        claims = {
            "iss": self._settings.token_issuer,
            "aud": self._settings.token_audience,
            "sub": str(user_id),
            "org": organization_code,
            "role": role,
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=self.ttl_seconds),
            "jti": uuid.uuid4().hex,
            "gen": generation,
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    async def verify(self, token: str) -> TokenClaims:
        """Verify signature, expiry, issuer and audience; raise InvalidToken otherwise."""
        known = self._verified.get(token)
        if known is not None:
            claims_seen, expires = known
            if expires > time.time():  # PyJWT's own test: expired once exp <= now
                return claims_seen
            del self._verified[token]
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        issuer = unverified.get("iss")
        try:
            if issuer == self._settings.token_issuer:
                claims = jwt.decode(
                    token,
                    self._key,
                    algorithms=[_ALGORITHM],
                    audience=self._settings.token_audience,
                    issuer=self._settings.token_issuer,
                    options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                )
                generation = claims.get("gen", 0)
                if not isinstance(generation, int):
                    raise InvalidToken("malformed token generation")
                verified = TokenClaims(
                    subject=str(claims["sub"]),
                    issuer=str(issuer),
                    external=False,
                    generation=generation,
                )
                if len(self._verified) >= _VERIFIED_TOKENS:
                    self._verified.clear()
                self._verified[token] = (verified, float(claims["exp"]))
                return verified
            if self._jwks is not None and issuer == self._settings.oidc_issuer:
                claims = await run_in_threadpool(self._verify_external, token)
                username = claims.get(self._settings.oidc_username_claim)
                if not isinstance(username, str) or not username:
                    raise InvalidToken("external token lacks the username claim")
                return TokenClaims(subject=username, issuer=str(issuer), external=True)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        raise InvalidToken("unknown token issuer")

    def _verify_external(self, token: str) -> dict[str, Any]:
        assert self._jwks is not None
        signing_key = self._jwks.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"],
            audience=self._settings.oidc_audience,
            issuer=self._settings.oidc_issuer,
            options={
                "require": ["exp", "iss", "sub"],
                "verify_aud": self._settings.oidc_audience is not None,
            },
        )
        return claims


@dataclass(frozen=True)
class Actor:
    """The authenticated user a request acts for, as every service sees it."""

    user_id: uuid.UUID
    username: str
    organization_id: uuid.UUID
    organization_code: str
    role: str


@dataclass(frozen=True)
class Security:
    """Password hashing, tokens and the keyring of identifying data, built once per app."""

    passwords: Passwords
    tokens: Tokens
    keyring: Keyring

    @classmethod
    def from_settings(cls, settings: Settings) -> Security:
        return cls(
            passwords=Passwords(settings), tokens=Tokens(settings), keyring=Keyring(settings)
        )
