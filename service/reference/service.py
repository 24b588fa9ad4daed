"""Reference data: Peru's regions and their population, the specialized prosecutor offices,
and the named datasets shipped with Ruta."""

from __future__ import annotations

import csv
import tomllib
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.db import insert_ignoring_conflicts, table_of
from service.reference.models import ProsecutorOffice, Region, RegionPopulation

DATASETS = ("peru-2017",)


# Regions found, by database: reference data is never deleted, so a region once found is
# not looked up again (an intake names one every time).
_KNOWN_REGIONS: set[tuple[str, str]] = set()


async def region_exists(session: AsyncSession, code: str) -> bool:
    """Whether Peru's department with this INEI code is in the reference data."""
    known = (str(session.get_bind().engine.url), code)
    if known in _KNOWN_REGIONS:
        return True
    if (await session.get(Region, code)) is None:
        return False
    _KNOWN_REGIONS.add(known)
    return True


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


# Census files shipped with Ruta: `<name>-<year>.csv`, their source in the leading comment.
POPULATION_FILES = {2017: "peru-population-2017.csv"}


def region_populations() -> list[dict[str, Any]]:
    """Every region's censused population in each shipped census, with the census's source
    (the comment lines at the top of its file)."""
    rows: list[dict[str, Any]] = []
    for year, name in POPULATION_FILES.items():
        text = resources.files("service.reference").joinpath(name).read_text("utf-8")
        lines = text.splitlines()
        source = " ".join(line.lstrip("# ").strip() for line in lines if line.startswith("#"))
        data = [line for line in lines if line and not line.startswith("#")]
        rows += [
            {
                "region": row["ubigeo"],
                "year": year,
                "population": int(row[f"population_{year}"]),
                "source": source[:300],
            }
            for row in csv.DictReader(data)
        ]
    return rows


async def upsert_region_populations(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert the census figures not yet present; a census, once loaded, is not changed."""
    await insert_ignoring_conflicts(
        session, table_of(RegionPopulation), rows, on=["region", "year"]
    )


def populations_for(year: int) -> sa.Select[tuple[str, int, int]]:
    """Each region's population from the latest census up to `year` (the earliest census when
    none is that old): `region`, `population`, `census_year`. As SQL, for the statistics."""
    pop = table_of(RegionPopulation)
    census = sa.func.coalesce(
        sa.select(sa.func.max(pop.c.year)).where(pop.c.year <= year).scalar_subquery(),
        sa.select(sa.func.min(pop.c.year)).scalar_subquery(),
    )
    return sa.select(pop.c.region, pop.c.population, pop.c.year.label("census_year")).where(
        pop.c.year == census
    )


async def list_prosecutor_offices(session: AsyncSession) -> list[ProsecutorOffice]:
    """The specialized prosecutor offices, by code."""
    rows = await session.exec(select(ProsecutorOffice).order_by(col(ProsecutorOffice.code)))
    return list(rows.all())


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
