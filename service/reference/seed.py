"""Loading a named reference dataset: regions, institutions and facilities."""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity import service as capacity_service
from service.core.db import insert_ignoring_conflicts, table_of
from service.identity import service as identity_service
from service.reference.models import Region

DATASETS = ("peru-2017",)


def _regions() -> list[dict[str, str]]:
    text = resources.files("service.reference").joinpath("peru-regions.csv").read_text("utf-8")
    return [
        {"code": row["ubigeo"], "name": row["name"], "capital": row["capital"]}
        for row in csv.DictReader(text.splitlines())
    ]


def load_dataset(name: str) -> dict[str, Any]:
    """The parsed seed file of a dataset (see service/reference/<name>.toml)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    raw = resources.files("service.reference").joinpath(f"{name}.toml").read_text("utf-8")
    return tomllib.loads(raw)


@dataclass(frozen=True)
class SeedReport:
    regions: int
    organizations: int
    facilities: int


async def seed(session: AsyncSession, *, dataset: str = "peru-2017") -> SeedReport:
    """Load regions, institutions and facilities; running it again changes nothing."""
    data = load_dataset(dataset)
    regions = _regions()
    await insert_ignoring_conflicts(session, table_of(Region), regions, on=["code"])
    orgs = [
        {k: org.get(k) for k in ("code", "name", "kind", "region")} for org in data["organization"]
    ]
    created_orgs = await identity_service.upsert_organizations(session, orgs)
    created_facilities = await capacity_service.upsert_facilities(session, data["facility"])
    return SeedReport(
        regions=len(regions), organizations=created_orgs, facilities=created_facilities
    )
