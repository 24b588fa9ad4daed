"""CTDC exchange: importing the Counter Trafficking Data Collaborative's files as datasets
of their own, for comparison, and exporting the year's victims as k-anonymized CTDC
microdata. Both audited."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.core.security import Actor
from service.core.time import utcnow
from service.stats import counting, ctdc
from service.stats.anonymize import k_anonymize
from service.stats.ctdc import CtdcRow
from service.stats.exceptions import CtdcDatasetExists
from service.stats.models import CtdcDataset, CtdcRecord
from service.stats.rules import K_THRESHOLD

# CTDC's global file holds over 100,000 victims: inserted many at a time, not one by one.
CTDC_BATCH = 5_000


async def import_ctdc(
    session: AsyncSession, *, actor: Actor | None, name: str, source: str, rows: Sequence[CtdcRow]
) -> CtdcDataset:
    """Keep a CTDC file's rows as a dataset of their own, for comparison: never mixed with
    Ruta's cases, never counted in its tables. Audited."""
    taken = await session.exec(select(CtdcDataset.id).where(CtdcDataset.name == name))
    if taken.first() is not None:
        raise CtdcDatasetExists("A CTDC dataset of this name was already imported.")
    dataset = CtdcDataset(name=name, source=source, records=len(rows))
    session.add(dataset)
    await session.flush()
    records = [
        {
            "id": uuid.uuid4(),
            "dataset_id": dataset.id,
            "line": row.line,
            "year": row.year,
            "datasource": row.datasource,
            "gender": row.gender,
            "age_band": row.age_band.label if row.age_band else None,
            "age_lowest": row.age_band.lowest if row.age_band else None,
            "age_highest": row.age_band.highest if row.age_band else None,
            "majority_status": row.majority_status,
            "citizenship": row.citizenship,
            "country_of_exploitation": row.country_of_exploitation,
            "exploitation": row.exploitation,
            "fields": row.other,
        }
        for row in rows
    ]
    for start in range(0, len(records), CTDC_BATCH):
        await session.execute(sa.insert(CtdcRecord), records[start : start + CTDC_BATCH])
    record_event(
        session,
        actor=actor,
        action="stats.ctdc_imported",
        entity_type="ctdc_dataset",
        entity_id=dataset.id,
        changes={"name": {"to": name}, "source": {"to": source}, "records": {"to": len(rows)}},
    )
    return dataset


@dataclass(frozen=True)
class CtdcExport:
    """A k-anonymized CTDC file and what it took: how many persons were left out, and how far
    each quasi-identifier was generalized (0: as recorded)."""

    text: str
    records: int
    suppressed: int
    levels: dict[str, int]


async def export_ctdc(
    session: AsyncSession,
    *,
    actor: Actor,
    year: int,
    known_on: datetime | None = None,
    reading: AsyncSession | None = None,
) -> CtdcExport:
    """The year's persons (those V1 counts, each once) as CTDC microdata, k-anonymized
    (k = 11) on their quasi-identifiers; nothing else about them leaves. Audited (in
    `session`); read from `reading` (the statistics replica) when given."""
    moment = known_on or utcnow()
    scope = counting.Scope(start=date(year, 1, 1), end=date(year, 12, 31), known_on=moment)
    persons = await counting.counted_persons(reading or session, scope=scope)
    records = [
        ctdc.quasi_identifiers(
            year=year,
            age=p.age,
            gender=p.gender,
            nationality=p.nationality,
            country_of_exploitation=p.country_of_exploitation,
            sexual=p.sexual,
            labour=p.labour,
            other=p.other,
            sector=p.sector,
        )
        for p in persons
    ]
    anonymized = k_anonymize(records, ctdc.hierarchies(), k=K_THRESHOLD)
    record_event(
        session,
        actor=actor,
        action="stats.ctdc_exported",
        entity_type="ctdc_export",
        entity_id=str(year),
        changes={
            "known_on": {"to": moment},
            "records": {"to": len(anonymized.records)},
            "suppressed": {"to": anonymized.suppressed},
            "generalized": {"to": anonymized.levels},
        },
    )
    return CtdcExport(
        text=ctdc.export_csv(anonymized.records),
        records=len(anonymized.records),
        suppressed=anonymized.suppressed,
        levels=anonymized.levels,
    )
