"""Loading a named reference dataset: regions, institutions, prosecutor offices, and
facilities through capacity."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity import service as capacity_service
from service.identity import service as identity_service
from service.reference import service as reference_service
from service.reference.service import DATASETS

__all__ = ["DATASETS", "SeedReport", "seed"]


@dataclass(frozen=True)
class SeedReport:
    regions: int
    organizations: int
    prosecutor_offices: int
    facilities: int


async def seed(session: AsyncSession, *, dataset: str = "peru-2017") -> SeedReport:
    """Load regions, institutions, prosecutor offices and facilities; running it again changes
    nothing."""
    data = reference_service.load_dataset(dataset)
    regions = reference_service.regions()
    await reference_service.upsert_regions(session, regions)
    await reference_service.upsert_region_populations(
        session, reference_service.region_populations()
    )
    orgs = [
        {k: org.get(k) for k in ("code", "name", "kind", "region")} for org in data["organization"]
    ]
    created_orgs = await identity_service.upsert_organizations(session, orgs)
    created_offices = await reference_service.upsert_prosecutor_offices(
        session, data.get("prosecutor_office", [])
    )
    created_facilities = await capacity_service.upsert_facilities(session, data["facility"])
    return SeedReport(
        regions=len(regions),
        organizations=created_orgs,
        prosecutor_offices=created_offices,
        facilities=created_facilities,
    )
