"""Reference data: Peru's regions."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.reference.models import Region


async def region_exists(session: AsyncSession, code: str) -> bool:
    return (await session.get(Region, code)) is not None


async def list_regions(session: AsyncSession) -> list[Region]:
    return list((await session.exec(select(Region).order_by(col(Region.code)))).all())
