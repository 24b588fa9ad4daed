"""Run Alembic from code: `ruta migrate`, `ruta serve`, the tests and /readyz."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from alembic import command
from service.core.settings import Settings


def migrations_dir() -> Path:
    """alembic/ of the checkout the package runs from, or of the working directory."""
    candidates = [
        os.environ.get("RUTA_ALEMBIC_DIR"),
        Path(__file__).resolve().parents[2] / "alembic",
        Path.cwd() / "alembic",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "env.py").is_file():
            return Path(candidate)
    raise FileNotFoundError("alembic/ not found: run from the repository or set RUTA_ALEMBIC_DIR")


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(slug)s"
    )
    cfg.attributes["settings"] = settings
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Apply pending migrations; safe when several processes call it at once."""
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def check(settings: Settings) -> None:
    """Raise when the models and the migrations disagree."""
    command.check(alembic_config(settings))


def head_revisions(settings: Settings) -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config(settings)).get_heads())


def current_revisions(connection: sa.Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())
