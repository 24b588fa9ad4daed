"""Reference data: Peru's regions, and the named datasets shipped with Ruta."""

from __future__ import annotations

import csv
import tomllib
from importlib import resources
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.db import insert_ignoring_conflicts, table_of
from service.reference.models import Region

DATASETS = ("peru-2017",)


async def region_exists(session: AsyncSession, code: str) -> bool:
    return (await session.get(Region, code)) is not None


def regions() -> list[dict[str, str]]:
    """Peru's departments with their INEI ubigeo codes, from the shipped CSV."""
    text = resources.files("service.reference").joinpath("peru-regions.csv").read_text("utf-8")
    return [
        {"code": row["ubigeo"], "name": row["name"], "capital": row["capital"]}
        for row in csv.DictReader(text.splitlines())
    ]


async def upsert_regions(session: AsyncSession, rows: list[dict[str, str]]) -> None:
    """Insert the regions not yet present; existing ones are left as they are."""
    await insert_ignoring_conflicts(session, table_of(Region), rows, on=["code"])


def load_dataset(name: str) -> dict[str, Any]:
    """The parsed seed file of a dataset (see service/reference/<name>.toml)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    raw = resources.files("service.reference").joinpath(f"{name}.toml").read_text("utf-8")
    parsed: dict[str, Any] = tomllib.loads(raw)
    return parsed
