"""Settings from the environment (prefix RUTA_), with secrets that refuse defaults."""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/ruta.db"

# Secrets that must be set in production; in local and test environments a missing one is
# generated once and kept in <var_dir>/secrets.json so that every worker process shares it.
_GENERATED_SECRETS = ("secret_key", "audit_key", "master_key", "blind_index_key")


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as RUTA_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="RUTA_", extra="ignore", frozen=True)

    environment: Literal["local", "test", "production"] = "local"
    database_url: str = DEFAULT_SQLITE_URL
    var_dir: Path = Path("var")
    log_level: str = "INFO"
    sql_echo: bool = False
    db_pool_size: int = Field(default=10, ge=1)
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)

    # Signing key for access tokens issued by Ruta (HS256).
    secret_key: SecretStr | None = None
    # Key of the audit chain's HMAC: without it nobody can recompute a chain they altered.
    audit_key: SecretStr | None = None
    audit_key_id: str = "a1"
    # Previous audit keys, still needed to verify the events they sealed: {"id": "key"}.
    retired_audit_keys: SecretStr | None = None
    # Master key that wraps the per-person data keys (base64, 32 bytes), and its id.
    master_key: SecretStr | None = None
    master_key_id: str = "k1"
    # Retired master keys still able to unwrap data keys: JSON object {"id": "base64"}.
    retired_master_keys: SecretStr | None = None
    # Key of the blind indexes used to find duplicates without plaintext.
    blind_index_key: SecretStr | None = None

    access_token_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
    token_issuer: str = "ruta"  # noqa: S105
    token_audience: str = "ruta-api"  # noqa: S105

    # Optional external OpenID Connect issuer whose tokens are accepted as well.
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_audience: str | None = None
    oidc_username_claim: str = "preferred_username"

    # Addresses of reverse proxies whose X-Forwarded-For is trusted (comma-separated);
    # unset, the client address is the direct peer, which the login rate limit counts.
    forwarded_allow_ips: str | None = None

    # Largest request body accepted, in bytes; a larger one is refused with 413 before it is
    # read (on its Content-Length) or as soon as it passes the limit (a chunked body).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Origins whose browsers may call the API (comma-separated, e.g.
    # "https://ruta.example.pe,https://campo.example.pe"); none by default.
    cors_origins: str = ""

    # Failed-login rate limits.
    login_window_seconds: int = Field(default=900, ge=1)
    login_max_failures_per_username: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)

    # Hours a referral may stay unanswered, by purpose (JSON object); unlisted purposes use
    # the defaults in service/referrals/rules.py.
    referral_deadline_hours: dict[str, int] = Field(default_factory=dict)
    # How often each worker expires overdue referrals (0 disables the sweep in this process).
    referral_sweep_seconds: int = Field(default=60, ge=0)
    # A request waiting longer than this expires and is counted as an unmet need.
    waitlist_max_days: int = Field(default=30, ge=1, le=365)

    # Custody held past these hours raises its alert again (service/protection/rules.py): a
    # child in a police station past the first, anyone held anywhere past the second.
    custody_minor_escalation_hours: int = Field(default=24, ge=1)
    custody_escalation_hours: int = Field(default=72, ge=1)
    # A case in care this many days without a public defender opens a no_defender alert.
    legal_aid_alert_days: int = Field(default=7, ge=1, le=365)
    # Court-ordered restitution still unpaid this many days after the order opens a
    # restitution_unpaid alert.
    restitution_alert_days: int = Field(default=90, ge=1, le=3650)

    # Capacity simulations (POST /v1/simulations): jobs run at once, each on one process of
    # a pool of this size; jobs queued or running at once, in every API process together,
    # beyond which a request is refused with 503.
    simulation_workers: int = Field(default=1, ge=1, le=64)
    simulation_queue: int = Field(default=8, ge=1, le=1000)
    # The differential-privacy budget of each release year: the epsilons of its DP releases
    # add up to at most this; a release that would pass it is refused.
    dp_epsilon_per_year: Decimal = Field(default=Decimal("1.0"), gt=0, le=100, decimal_places=6)

    # argon2id cost; lower only in tests.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost_kib: int = Field(default=65_536, ge=8)

    @model_validator(mode="after")
    def _require_secrets_in_production(self) -> Settings:
        if self.environment == "production":
            missing = [name for name in _GENERATED_SECRETS if getattr(self, name) is None]
            if missing:
                names = ", ".join(f"RUTA_{n.upper()}" for n in missing)
                raise ValueError(f"production requires {names} to be set")
            if (self.oidc_issuer is None) != (self.oidc_jwks_url is None):
                raise ValueError("RUTA_OIDC_ISSUER and RUTA_OIDC_JWKS_URL go together")
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        """The configured CORS origins."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def _local_secrets(self) -> dict[str, str]:
        return _load_or_create_local_secrets(self.var_dir / "secrets.json")

    def secret(self, name: str) -> bytes:
        """The named secret as bytes; outside production, generated and kept locally if unset."""
        value: SecretStr | None = getattr(self, name)
        if value is not None:
            raw = value.get_secret_value()
        elif self.environment == "production":  # pragma: no cover - guarded by the validator
            raise RuntimeError(f"RUTA_{name.upper()} is not set")
        else:
            raw = self._local_secrets[name]
        if name == "master_key":
            return base64.b64decode(raw)
        return raw.encode()

    def audit_key_map(self) -> dict[str, bytes]:
        """Every audit key by id: the retired ones and the active one."""
        retired = {}
        if self.retired_audit_keys is not None:
            data = json.loads(self.retired_audit_keys.get_secret_value())
            retired = {str(k): str(v).encode() for k, v in data.items()}
        return {**retired, self.audit_key_id: self.secret("audit_key")}

    def retired_master_key_map(self) -> dict[str, bytes]:
        if self.retired_master_keys is None:
            return {}
        data = json.loads(self.retired_master_keys.get_secret_value())
        return {str(k): base64.b64decode(v) for k, v in data.items()}


def _load_or_create_local_secrets(path: Path) -> dict[str, str]:
    """Load the local secrets file, creating it first if it does not exist.

    The secrets are written whole to a private temporary file in the same directory, flushed
    to disk, then linked to their final name: the link fails if another process got there
    first, so the first writer wins and nobody ever reads a half-written file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        generated = {
            "secret_key": secrets.token_urlsafe(48),
            "audit_key": secrets.token_urlsafe(48),
            "master_key": base64.b64encode(secrets.token_bytes(32)).decode(),
            "blind_index_key": secrets.token_urlsafe(48),
        }
        # mkstemp creates the file with mode 0600.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(generated, fh)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process published its secrets first: use theirs
            else:
                _fsync_directory(path.parent)
                return generated
        finally:
            os.unlink(temporary)
    data: dict[str, str] = json.loads(path.read_text())
    return data


def _fsync_directory(directory: Path) -> None:
    """Make a new name in `directory` survive a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
