"""docker/compose.yaml and docker/Dockerfile, checked without a Docker engine: the services
and their order, that every RUTA_* variable is a setting Ruta reads (a misspelt one would be
ignored silently), that the configuration they make is a valid production one, and that the
commands they run are `ruta` commands with options that exist."""

from __future__ import annotations

import base64
import inspect
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from service import cli
from service.core import migrations
from service.core import settings as settings_module
from service.core.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"
# What an operator puts in the environment (or .env) before `docker compose up`.
OPERATOR_ENV = {
    "POSTGRES_PASSWORD": "pg-password",
    "RUTA_SECRET_KEY": "a-secret-key-long-enough-for-hs256-signing-000",
    "RUTA_AUDIT_KEY": "an-audit-key",
    "RUTA_MASTER_KEY": base64.b64encode(bytes(range(32))).decode(),
    "RUTA_BLIND_INDEX_KEY": "a-blind-index-key",
    "RUTA_AUDIT_SIGNING_KEY": base64.b64encode(bytes(range(32, 64))).decode(),
}
_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, enough for this file."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg or ""

    return _VARIABLE.sub(one, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def _settings_names() -> set[str]:
    return {f"RUTA_{name.upper()}" for name in Settings.model_fields}


def _ruta_command(argv: list[str]) -> None:
    """Parse a `ruta ...` command line as the CLI would, without running it."""
    assert argv[0] == "ruta", argv
    commands: dict[str, Any] = getattr(typer.main.get_command(cli.app), "commands", {})
    assert argv[1] in commands, f"no command ruta {argv[1]}"
    # Refuses an unknown option or a value of the wrong type, as the command line would.
    commands[argv[1]].make_context(argv[1], list(argv[2:]))


def test_compose_runs_postgresql_redis_a_migration_and_the_api(compose: dict[str, Any]) -> None:
    services = compose["services"]

    assert set(services) == {"db", "redis", "migrate", "api"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    api = services["api"]["depends_on"]
    assert api["migrate"] == {"condition": "service_completed_successfully"}
    assert api["db"] == {"condition": "service_healthy"}
    assert api["redis"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["db"] == {"condition": "service_healthy"}
    for name in ("db", "redis", "api"):
        assert "healthcheck" in services[name], name
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_every_ruta_variable_is_a_setting(compose: dict[str, Any]) -> None:
    known = _settings_names()
    for name, service in compose["services"].items():
        ruta = {k for k in _environment(service) if k.startswith("RUTA_")}
        assert ruta <= known, (name, ruta - known)
    docker_env = set(re.findall(r"\b(RUTA_\w+)=", (DOCKER / "Dockerfile").read_text()))
    # RUTA_ALEMBIC_DIR is read by migrations_dir, before any settings exist.
    assert "RUTA_ALEMBIC_DIR" in inspect.getsource(migrations.migrations_dir)
    assert docker_env - known == {"RUTA_ALEMBIC_DIR"}


def test_secrets_come_from_the_environment_and_make_a_valid_production_configuration(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = _environment(compose["services"]["api"])
    required = settings_module._GENERATED_SECRETS
    for name in required:
        variable = f"RUTA_{name.upper()}"
        # No default: compose refuses to start without it.
        assert api[variable].startswith(f"${{{variable}:?"), variable
    with pytest.raises(KeyError):
        _interpolate(api["RUTA_MASTER_KEY"], {})
    for key in list(Settings.model_fields):
        monkeypatch.delenv(f"RUTA_{key.upper()}", raising=False)
    for variable, value in api.items():
        monkeypatch.setenv(variable, _interpolate(value, OPERATOR_ENV))

    settings = Settings()

    assert settings.environment == "production"
    assert settings.database_url.startswith("postgresql+asyncpg://ruta:pg-password@db:5432/")
    # Unset by the operator: no replica, no trusted proxy.
    assert not settings.stats_database_url
    assert not settings.forwarded_allow_ips
    for name in required:
        assert getattr(settings, name) is not None


def test_the_commands_are_ruta_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    api = [_interpolate(str(a), {}) for a in services["api"]["command"]]

    _ruta_command(api)
    _ruta_command(services["migrate"]["command"])
    assert api[api.index("--workers") + 1] == "4"
    assert _interpolate(str(services["api"]["command"][-1]), {"API_WORKERS": "8"}) == "8"
    dockerfile = (DOCKER / "Dockerfile").read_text()
    [cmd] = re.findall(r"^CMD (\[.*\])$", dockerfile, flags=re.MULTILINE)
    _ruta_command(yaml.safe_load(cmd))


def test_the_image_runs_as_a_user_with_a_writable_metrics_directory() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    final = dockerfile.split("\nFROM ")[-1]

    [user] = re.findall(r"^USER (\S+)$", final, flags=re.MULTILINE)
    assert user not in ("root", "0")
    [metrics] = re.findall(r"RUTA_METRICS_DIR=(\S+)", final)
    chowns = [shlex.split(line) for line in re.findall(r"chown ([^\n\\]+)", final)]
    assert any(words[0] == f"{user}:{user}" and metrics in words for words in chowns)
    # Runtime dependencies only: the package without its [test] extra.
    [install] = re.findall(r"pip install [^\n]+", dockerfile)
    assert "[test]" not in install
    assert install.rstrip().endswith(" .")
