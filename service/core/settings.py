"""Settings from the environment (prefix RUTA_), with secrets that refuse defaults."""

from __future__ import annotations

import base64
import fcntl
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
_GENERATED_SECRETS = (
    "secret_key",
    "audit_key",
    "master_key",
    "blind_index_key",
    "audit_signing_key",
)
# Secrets that are raw bytes, given (and generated) in base64.
_BASE64_SECRETS = ("master_key", "audit_signing_key")


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as RUTA_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="RUTA_", extra="ignore", frozen=True)

    environment: Literal["local", "test", "production"] = "local"
    database_url: str = DEFAULT_SQLITE_URL
    # A read replica (a hot standby) the statistics are counted in: tables, releases, reports
    # and exports read from it, in read-only transactions; what they record (the release,
    # its audit event, the privacy budget) still goes to database_url. Unset: database_url.
    stats_database_url: str | None = None
    var_dir: Path = Path("var")
    log_level: str = "INFO"
    sql_echo: bool = False
    db_pool_size: int = Field(default=10, ge=1)
    # PostgreSQL: seconds to open a connection, and to wait for one from a full pool, before
    # the request is answered 503 database_unavailable (never a hang); and how many times a
    # unit of work that may run again is retried after a deadlock, a serialization failure
    # or a connection found dead (service/core/db.py).
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    db_retries: int = Field(default=3, ge=0, le=20)
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
    # Ed25519 private key (base64 of the raw 32 bytes) that signs audit checkpoints, and its
    # id; the public key (`ruta audit public-key`) is kept away from the database.
    audit_signing_key: SecretStr | None = None
    audit_signing_key_id: str = Field(default="s1", min_length=1, max_length=32)

    access_token_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
    # How long a worker remembers a token's user (active, role, organization) before reading
    # it again: a disabled user, a new role or a password reset takes effect within this
    # many seconds in every worker. 0: read at every request (one statement each).
    principal_cache_seconds: float = Field(default=2.0, ge=0, le=30)
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

    # Failed-login rate limits (service/identity/rules.py login_refusal): failures within
    # the window, per address across usernames, per username and address, and per username
    # from addresses it never signed in from (a known address is never refused by that one).
    login_window_seconds: int = Field(default=900, ge=1)
    login_max_failures_per_username: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_max_failures_per_username_address: int = Field(default=5, ge=1)
    # An address a user signed in from stays known (exempt from the per-username limit) for
    # this many days after the last sign-in from it.
    login_known_address_days: int = Field(default=90, ge=1, le=3650)

    # Hours a referral may stay unanswered, by purpose (JSON object); unlisted purposes use
    # the defaults in service/referrals/rules.py.
    referral_deadline_hours: dict[str, int] = Field(default_factory=dict)
    # How often each worker expires overdue referrals (0 disables the sweep in this process).
    referral_sweep_seconds: int = Field(default=60, ge=0)
    # How long a POST's Idempotency-Key is kept (and its answer replayed); expired keys are
    # purged by the sweep and may be used again. A retry of a request still running waits
    # this many seconds for it (PostgreSQL) before it is answered 409.
    idempotency_key_ttl_seconds: int = Field(default=86_400, ge=1, le=30 * 86_400)
    idempotency_wait_seconds: float = Field(default=10.0, gt=0, le=300)
    # A request waiting longer than this expires and is counted as an unmet need.
    waitlist_max_days: int = Field(default=30, ge=1, le=365)
    # Days a closed case's person keeps her identifying data, by the case's closing reason
    # (JSON object; "default" for the reasons not named, none: those are never erased):
    # `ruta retention run` erases persons all of whose cases closed longer ago than this.
    retention_days: dict[str, int] = Field(default_factory=lambda: {"default": 1825})

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

    # Observability (service/core/logs.py, metrics.py, tracing.py). Log lines as JSON or
    # text; unset: JSON in production, text elsewhere.
    log_format: Literal["json", "text"] | None = None
    # Bearer token a Prometheus scraper sends to GET /metrics; unset, /metrics is open
    # outside production and absent (404) in production.
    metrics_token: SecretStr | None = None
    # Directory the worker processes of `ruta serve --workers N` share their metrics in
    # (emptied at every start); unset: a private temporary directory, removed at exit.
    metrics_dir: Path | None = None
    # OTLP/HTTP endpoint spans are exported to (needs `pip install 'ruta[otel]'`); the
    # standard OTEL_EXPORTER_OTLP_ENDPOINT is honoured too.
    otel_exporter_otlp_endpoint: str | None = None

    # Request rate limits (service/core/ratelimit.py): requests per window, per address on
    # every /v1 request and per authenticated user; 0 disables one. Kept in Redis when
    # RUTA_REDIS_URL is set (shared by every worker and host), else in each process.
    redis_url: str | None = None
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    rate_limit_per_address: int = Field(default=6000, ge=0)
    rate_limit_per_user: int = Field(default=1200, ge=0)

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
        if self.audit_signing_key is not None:
            _require_raw_key(self.audit_signing_key, "RUTA_AUDIT_SIGNING_KEY")
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        """The configured CORS origins."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def effective_log_format(self) -> Literal["json", "text"]:
        """The log format: as set, else JSON in production and text elsewhere."""
        if self.log_format is not None:
            return self.log_format
        return "json" if self.environment == "production" else "text"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def _local_secrets(self) -> dict[str, str]:
        path = self.var_dir / "secrets.json"
        found = _load_or_create_local_secrets(path)
        if any(name not in found for name in _GENERATED_SECRETS):
            # A secrets file from before a secret was added: complete it once.
            found = _complete_local_secrets(path)
        return found

    def secret(self, name: str) -> bytes:
        """The named secret as bytes; outside production, generated and kept locally if unset."""
        value: SecretStr | None = getattr(self, name)
        if value is not None:
            raw = value.get_secret_value()
        elif self.environment == "production":  # pragma: no cover - guarded by the validator
            raise RuntimeError(f"RUTA_{name.upper()} is not set")
        else:
            raw = self._local_secrets[name]
        if name in _BASE64_SECRETS:
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


def _require_raw_key(value: SecretStr, name: str) -> None:
    try:
        raw = base64.b64decode(value.get_secret_value(), validate=True)
    except ValueError:
        raise ValueError(f"{name} must be base64") from None
    if len(raw) != 32:
        raise ValueError(f"{name} must be the base64 of 32 bytes")


def _new_secret(name: str) -> str:
    if name in _BASE64_SECRETS:
        return base64.b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(48)


def _load_or_create_local_secrets(path: Path) -> dict[str, str]:
    """Load the local secrets file, creating it first if it does not exist.

    The secrets are written whole to a private temporary file in the same directory, flushed
    to disk, then linked to their final name: the link fails if another process got there
    first, so the first writer wins and nobody ever reads a half-written file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        generated = {name: _new_secret(name) for name in _GENERATED_SECRETS}
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


def _complete_local_secrets(path: Path) -> dict[str, str]:
    """Add the secrets a local secrets file lacks, keeping those it has.

    Under an exclusive lock, so that of several processes completing it at once only the
    first generates; the file is replaced whole, so a reader sees the old or the new one.
    """
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, str] = json.loads(path.read_text())
        missing = [name for name in _GENERATED_SECRETS if name not in data]
        if not missing:
            return data
        data |= {name: _new_secret(name) for name in missing}
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
        _fsync_directory(path.parent)
        return data


def _fsync_directory(directory: Path) -> None:
    """Make a new name in `directory` survive a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
