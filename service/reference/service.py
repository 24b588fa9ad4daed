"""Reference data: Peru's regions, the specialized prosecutor offices, and the named datasets
shipped with Ruta."""

from __future__ import annotations

import csv
import tomllib
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.db import insert_ignoring_conflicts, table_of
from service.reference.models import ProsecutorOffice, Region

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


async def prosecutor_office_exists(session: AsyncSession, code: str) -> bool:
    return (await session.get(ProsecutorOffice, code)) is not None


async def upsert_prosecutor_offices(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert the prosecutor offices whose codes are new (name and region of a dataset's
    entries); returns how many were created."""
    before = await _count_offices(session)
    offices = [{k: row[k] for k in ("code", "name", "region")} for row in rows]
    await insert_ignoring_conflicts(session, table_of(ProsecutorOffice), offices, on=["code"])
    return await _count_offices(session) - before


async def _count_offices(session: AsyncSession) -> int:
    return (await session.exec(select(sa.func.count()).select_from(ProsecutorOffice))).one()


def load_dataset(name: str) -> dict[str, Any]:
    """The parsed seed file of a dataset (see service/reference/<name>.toml)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    raw = resources.files("service.reference").joinpath(f"{name}.toml").read_text("utf-8")
    parsed: dict[str, Any] = tomllib.loads(raw)
    return parsed
