"""`ruta retention`: what retention would erase, and erasing it."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from service.core.crypto import Keyring
from service.core.db import Database
from service.core.requestid import bind_request_id
from service.core.settings import Settings
from service.main import open_database
from service.pathway import retention

app = typer.Typer(
    help="Retention: erase the identifying data of persons whose cases closed long ago"
    " (RUTA_RETENTION_DAYS).",
    no_args_is_help=True,
)

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def runner() -> T:
        bind_request_id(f"cli-{secrets.token_hex(8)}")
        db = open_database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(runner())


def _periods(settings: Settings) -> dict[str, int]:
    try:
        return retention.check_periods(settings.retention_days)
    except retention.InvalidRetentionPeriods as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _as_json(plan: retention.RetentionPlan) -> dict[str, Any]:
    return {
        "as_of": plan.as_of.isoformat(),
        "legal_basis": "retention_period_ended",
        "periods": plan.periods,
        "persons": len(plan.due),
        "by_closing_reason": {
            reason: {
                "days": retention.period_of(reason, plan.periods),
                "persons": len(due),
                "case_ids": sorted(str(c) for d in due for c in d.case_ids),
            }
            for reason, due in plan.by_reason().items()
        },
        "kept_with_open_case": plan.kept_with_open_case,
        "kept_too_recent": plan.kept_too_recent,
    }


def _describe(plan: retention.RetentionPlan, *, verb: str) -> str:
    lines = [
        f"{verb} {len(plan.due)} persons on the legal basis retention_period_ended"
        f" (as of {plan.as_of.isoformat(timespec='seconds')})"
    ]
    for reason, due in plan.by_reason().items():
        days = retention.period_of(reason, plan.periods)
        cases = sorted(str(c) for d in due for c in d.case_ids)
        lines.append(f"  closed as {reason}, after {days} days: {len(due)} persons")
        lines += [f"    case {c}" for c in cases]
    lines.append(
        f"kept: {plan.kept_with_open_case} persons with another case open,"
        f" {plan.kept_too_recent} with another case closed too recently"
    )
    return "\n".join(lines)


@app.command("plan")
def plan(as_json: JsonOption = False) -> None:
    """Show what `ruta retention run` would erase now: counts by closing reason and case
    ids, never a name. Changes nothing."""
    settings = Settings()
    periods = _periods(settings)

    async def work(db: Database) -> retention.RetentionPlan:
        async with db.session(write=False) as session:
            return await retention.plan_retention(session, periods=periods)

    found = _run(settings, work)
    text = _describe(found, verb="would erase")
    typer.echo(json.dumps(_as_json(found), indent=2) if as_json else text)


@app.command("run")
def run(as_json: JsonOption = False) -> None:
    """Erase the identifying data of every person all of whose cases closed longer ago than
    their retention period; audited, and idempotent (a second run erases nothing more)."""
    settings = Settings()
    periods = _periods(settings)
    keyring = Keyring(settings)

    async def work(db: Database) -> retention.RetentionPlan:
        async with db.session() as session:
            return await retention.run_retention(session, keyring=keyring, periods=periods)

    done = _run(settings, work)
    typer.echo(json.dumps(_as_json(done), indent=2) if as_json else _describe(done, verb="erased"))
