"""/v1/stats: the catalogue, published tables (JSON, or CSV with `Accept: text/csv`) and
releases. Analysts and administrators only; every call is audited."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Response, status

from service.core.db import SessionDep, StatsSessionDep, writes
from service.core.errors import InvalidInput, problem_responses
from service.core.http import Router
from service.core.security import Actor
from service.core.types import Instant
from service.identity.dependencies import AuthenticatedRoute, SettingsDep, require
from service.identity.rules import Permission
from service.stats import service
from service.stats.catalogue import By
from service.stats.schemas import (
    TABLE_CODE_PATTERN,
    CatalogueEntry,
    Period,
    PublishedTable,
    ReleaseCreate,
    ReleasePublic,
    ReleaseSummary,
    ReleaseVerification,
    ShownCell,
)

router = Router(prefix="/v1/stats", tags=["stats"], route_class=AuthenticatedRoute)

StatsReaderDep = Annotated[Actor, Depends(require(Permission.stats_read))]
CSV = "text/csv"


@router.get("/tables", response_model=list[CatalogueEntry], responses=problem_responses(401, 403))
async def list_tables(actor: StatsReaderDep) -> list[CatalogueEntry]:
    """The fixed catalogue: no free-form queries."""
    return service.catalogue_entries()


def _period(year: int | None, start: date | None, end: date | None) -> Period:
    if year is not None and (start is not None or end is not None):
        raise InvalidInput("year", "give year, or start and end, not both")
    if year is not None:
        return Period(start=date(year, 1, 1), end=date(year, 12, 31))
    if start is None or end is None:
        raise InvalidInput("year", "give year, or start and end")
    if end < start:
        raise InvalidInput("end", "is before start")
    return Period(start=start, end=end)


def _dimensions(by: str | None) -> list[By] | None:
    if by is None:
        return None
    names = [n.strip() for n in by.split(",") if n.strip()][:8]
    try:
        return [By(n) for n in names]
    except ValueError:
        known = ", ".join(b.value for b in By)
        raise InvalidInput("by", f"unknown dimension (known: {known})") from None


def _csv(table: PublishedTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [d.name for d in table.dimensions]
    writer.writerow([*names, "value", "suppressed", "rate_per_100k"])
    for cell in table.cells:
        row = [cell.coordinates[n] for n in names]
        if isinstance(cell, ShownCell):
            rate = "" if cell.rate_per_100k is None else cell.rate_per_100k
            writer.writerow([*row, cell.value, "false", rate])
        else:
            writer.writerow([*row, "", "true", ""])
    return out.getvalue()


@router.get(
    "/tables/{code}",
    response_model=PublishedTable,
    responses={
        **problem_responses(401, 403, 404, 422),
        200: {"content": {CSV: {"schema": {"type": "string"}}}},
    },
)
@writes
async def read_table(
    code: Annotated[str, Path(pattern=TABLE_CODE_PATTERN, max_length=8)],
    request: Request,
    actor: StatsReaderDep,
    session: SessionDep,
    reading: StatsSessionDep,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    start: date | None = None,
    end: date | None = None,
    by: Annotated[
        str | None, Query(description="One or two dimensions, comma-separated: region,form")
    ] = None,
    known_on: Instant | None = None,
) -> PublishedTable | Response:
    """One table of the catalogue over a year (or start..end), broken down by at most two
    dimensions (minor/adult and gender are added for tables about persons), as known now or
    on `known_on`. Suppressed cells read `{"suppressed": true}`."""
    table = await service.publish_table(
        session,
        actor=actor,
        code=code,
        by=_dimensions(by),
        period=_period(year, start, end),
        known_on=known_on,
        reading=reading,
    )
    if CSV in request.headers.get("accept", ""):
        return Response(content=_csv(table), media_type=CSV)
    return table


@router.post(
    "/releases",
    response_model=ReleasePublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_release(
    body: ReleaseCreate,
    actor: StatsReaderDep,
    session: SessionDep,
    reading: StatsSessionDep,
    settings: SettingsDep,
) -> ReleasePublic:
    """Publish tables together (default: the whole catalogue), so that a number two tables
    share is hidden in both or neither, and keep the release with its digest. With
    `{"method": "dp", "epsilon": "0.5"}`, a differentially private release spending that
    much of its year's budget (409 `privacy_budget_spent` once spent)."""
    return await service.create_release(
        session,
        actor=actor,
        data=body,
        epsilon_per_year=settings.dp_epsilon_per_year,
        reading=reading,
    )


@router.get("/releases", response_model=list[ReleaseSummary], responses=problem_responses(401, 403))
async def list_releases(actor: StatsReaderDep, session: SessionDep) -> list[ReleaseSummary]:
    """The releases published, newest first."""
    return await service.list_releases(session)


@router.get(
    "/releases/{release_id}",
    response_model=ReleasePublic,
    responses=problem_responses(401, 403, 404, 422),
)
@writes
async def read_release(
    release_id: uuid.UUID, actor: StatsReaderDep, session: SessionDep
) -> ReleasePublic:
    """A release as it was published."""
    return await service.read_release(session, actor=actor, release_id=release_id)


@router.post(
    "/releases/{release_id}/verify",
    response_model=ReleaseVerification,
    responses=problem_responses(401, 403, 404, 422),
)
async def verify_release(
    release_id: uuid.UUID, actor: StatsReaderDep, session: SessionDep, reading: StatsSessionDep
) -> ReleaseVerification:
    """Recompute the release as known on its day and compare its digest."""
    return await service.verify_release(
        session, actor=actor, release_id=release_id, reading=reading
    )
