"""`ruta retention`: what retention would erase, erasing it, and the erasure register that
reaches restored backups."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli_support import run as _run
from service.cli_support import write
from service.core.crypto import Keyring
from service.core.db import Database
from service.core.settings import Settings
from service.pathway import retention
from service.persons import service as person_service
from service.persons.rules import ErasureBasis

app = typer.Typer(
    help="Retention: erase the identifying data of persons whose cases closed long ago"
    " (RUTA_RETENTION_DAYS).",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]


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
        "kept_in_legal_work": plan.kept_in_legal_work,
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
        f" {plan.kept_too_recent} with another case closed too recently,"
        f" {plan.kept_in_legal_work} in a proceeding not yet decided or with a defender"
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

    done = write(
        settings,
        lambda session: retention.run_retention(session, keyring=keyring, periods=periods),
    )
    typer.echo(json.dumps(_as_json(done), indent=2) if as_json else _describe(done, verb="erased"))


@app.command("register")
def register(
    output: Annotated[
        Path | None, typer.Option(help="Write it here (JSON Lines) rather than to stdout")
    ] = None,
) -> None:
    """Export the erasure register (person ids, legal bases, days: nothing identifying).
    Keep it outside the database, refreshed after every erasure: after restoring a backup,
    `ruta retention reapply` erases again whoever the backup still holds."""
    settings = Settings()

    async def work(db: Database) -> list[person_service.RegisterEntry]:
        async with db.session(write=False) as session:
            return await person_service.erasure_register(session)

    lines = [
        json.dumps(
            {
                "person_id": str(entry.person_id),
                "legal_basis": entry.legal_basis.value,
                "erased_at": entry.erased_at.isoformat(),
            }
        )
        for entry in _run(settings, work)
    ]
    text = "".join(f"{line}\n" for line in lines)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {len(lines)} erasures to {output}", err=True)


def _read_register(source: Path) -> list[person_service.RegisterEntry]:
    entries = []
    for number, line in enumerate(source.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            entries.append(
                person_service.RegisterEntry(
                    person_id=uuid.UUID(data["person_id"]),
                    legal_basis=ErasureBasis(data["legal_basis"]),
                    erased_at=datetime.fromisoformat(data["erased_at"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            typer.echo(f"{source}:{number}: not an erasure register entry", err=True)
            raise typer.Exit(2) from None
    return entries


@app.command("reapply")
def reapply(source: Annotated[Path, typer.Argument(help="An erasure register file")]) -> None:
    """After restoring a backup: erase again every person of the register that the restored
    database holds unerased (it was taken before her erasure). Run it before serving."""
    settings = Settings()
    entries = _read_register(source)
    keyring = Keyring(settings)

    report = write(
        settings,
        lambda session: person_service.reapply_erasures(session, keyring=keyring, register=entries),
    )
    typer.echo(
        f"erased again {report.erased} person records; {report.already} already erased;"
        f" {report.absent} not in this database"
    )
