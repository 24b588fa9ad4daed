"""`ruta facility`: the facility directory for administrators without a front-end. Every
change goes through the capacity service, as through the API: dated in the capacity
history, never below the beds in use, audited under the administrator named by --as, and
freed or new beds offered to the waitlist at once."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity import service as capacity_service
from service.capacity.exceptions import FacilityNotFound
from service.capacity.rules import FacilityKind, FacilityStatus
from service.capacity.schemas import CapacityChange, CapacitySummary, FacilityCreate
from service.capacity.schemas import FacilityPublic as Facility
from service.cases.rules import ExploitationForm
from service.cli_support import acting_as, run, write
from service.core.db import Database
from service.core.security import Actor
from service.core.settings import Settings
from service.identity.rules import Permission
from service.persons.rules import Gender

app = typer.Typer(
    help="Facilities: list, add, change capacity, close, reopen.", no_args_is_help=True
)

T = TypeVar("T")

Code = Annotated[str, typer.Argument(help="The facility's code, e.g. CAR-LIMA-01")]
AsAdmin = Annotated[
    str, typer.Option("--as", help="The administrator making the change (a username)")
]
Reason = Annotated[str, typer.Option("--reason", help="Why: kept in the capacity history")]


async def _admin(session: AsyncSession, username: str) -> Actor:
    """The administrator a change is attributed to, in the capacity history and the audit
    trail, as through the API."""
    return await acting_as(session, username, Permission.facilities_manage, "manage facilities")


def _write(work: Callable[[AsyncSession], Awaitable[T]], code: str | None = None) -> T:
    """Run a change in one transaction; a refusal of the service exits 2 with its reason."""
    return write(
        Settings(), work, naming={FacilityNotFound: lambda _: f"no facility has the code {code!r}"}
    )


def _describe(f: Facility) -> str:
    return (
        f"{f.code}: {f.status.value}, capacity {f.capacity}, {f.occupied} occupied,"
        f" {f.held} held, {f.available} available"
    )


@app.command("list")
def facility_list(
    region: Annotated[str | None, typer.Option(help="Only this region (ubigeo, e.g. 15)")] = None,
    kind: Annotated[FacilityKind | None, typer.Option(help="Only this kind")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, for scripts")] = False,
) -> None:
    """Facilities with their status, capacity and occupancy (addresses are not shown), and
    the national figures with the waitlist."""
    settings = Settings()

    async def work(db: Database) -> tuple[list[Facility], CapacitySummary]:
        async with db.session(write=False) as session:
            found = await capacity_service.list_facilities(
                session, actor=None, region=region, kind=kind
            )
            return found, await capacity_service.capacity_summary(session)

    facilities, summary = run(settings, work)
    if as_json:
        typer.echo(json.dumps([f.model_dump(mode="json") for f in facilities], indent=2))
        return
    typer.echo(
        f"{'CODE':<24} {'REGION':<6} {'KIND':<27} {'STATUS':<18} {'OPERATOR':<9}"
        f" {'CAPACITY':>8} {'OCCUPIED':>8} {'HELD':>5} {'FREE':>5}"
    )
    for f in facilities:
        typer.echo(
            f"{f.code:<24} {f.region:<6} {f.kind.value:<27} {f.status.value:<18}"
            f" {f.operator:<9} {f.capacity:>8} {f.occupied:>8} {f.held:>5} {f.available:>5}"
        )
    n = summary.national
    typer.echo(
        f"national: capacity {n.capacity}, {n.occupied} occupied, {n.held} held,"
        f" {n.available} available, {n.waitlist} waiting",
        err=True,
    )


@app.command("add")
def facility_add(
    code: Code,
    as_user: AsAdmin,
    name: Annotated[str, typer.Option(help="The facility's name")],
    operator: Annotated[str, typer.Option(help="The operating organization's code, e.g. MIMP")],
    region: Annotated[str, typer.Option(help="Region (INEI ubigeo department code, e.g. 15)")],
    kind: Annotated[FacilityKind, typer.Option(help="The kind of facility")],
    capacity: Annotated[int, typer.Option(min=0, help="Beds")],
    min_age: Annotated[int, typer.Option(help="Youngest person taken")] = 0,
    max_age: Annotated[int, typer.Option(help="Oldest person taken")] = 120,
    gender: Annotated[
        list[Gender] | None, typer.Option(help="Genders taken (repeat; none: any)")
    ] = None,
    form: Annotated[
        list[ExploitationForm] | None,
        typer.Option(help="Forms of exploitation served (repeat; none: every form)"),
    ] = None,
    nationality: Annotated[
        list[str] | None,
        typer.Option(help="Only persons of these ISO alpha-3 nationalities (repeat; none: any)"),
    ] = None,
    lgbti_specialized: Annotated[
        bool, typer.Option("--lgbti-specialized", help="Specialized in LGBTI persons")
    ] = False,
    address: Annotated[
        str | None,
        typer.Option(help="Shown only to its operator and to organizations with a resident"),
    ] = None,
) -> None:
    """Add a facility: open, with its first capacity record; the waitlist is served at once."""
    try:
        data = FacilityCreate.model_validate(
            {
                "code": code,
                "name": name,
                "operator": operator,
                "region": region,
                "kind": kind,
                "capacity": capacity,
                "min_age": min_age,
                "max_age": max_age,
                "genders": gender or [],
                "exploitation_forms": form or [],
                "nationalities": nationality or [],
                "lgbti_specialized": lgbti_specialized,
                "address": address,
            }
        )
    except ValidationError as exc:
        for error in exc.errors(include_input=False):
            where = ".".join(str(p) for p in error["loc"]) or "facility"
            typer.echo(f"error: {where}: {error['msg']}", err=True)
        raise typer.Exit(2) from None

    async def work(session: AsyncSession) -> Facility:
        actor = await _admin(session, as_user)
        facility = await capacity_service.create_facility(session, actor=actor, data=data)
        [public] = await capacity_service.facilities_public(session, [facility], actor=None)
        return public

    typer.echo(f"added {_describe(_write(work))}")


def _change(code: str, as_user: str, change: CapacityChange) -> Facility:
    async def work(session: AsyncSession) -> Facility:
        actor = await _admin(session, as_user)
        facility = await capacity_service.get_facility_by_code(session, code)
        changed = await capacity_service.change_capacity(
            session, actor=actor, facility_id=facility.id, data=change
        )
        [public] = await capacity_service.facilities_public(session, [changed], actor=None)
        return public

    return _write(work, code)


def _capacity_change(
    reason: str, capacity: int | None = None, status: FacilityStatus | None = None
) -> CapacityChange:
    try:
        return CapacityChange.model_validate(
            {"capacity": capacity, "status": status, "reason": reason}
        )
    except ValidationError as exc:
        for error in exc.errors(include_input=False):
            where = ".".join(str(p) for p in error["loc"]) or "change"
            typer.echo(f"error: {where}: {error['msg']}", err=True)
        raise typer.Exit(2) from None


@app.command("set-capacity")
def facility_set_capacity(
    code: Code,
    capacity: Annotated[int, typer.Argument(min=0, help="The beds it has from now on")],
    as_user: AsAdmin,
    reason: Reason,
) -> None:
    """Set a facility's beds; refused below the beds in use (placed or held)."""
    changed = _change(code, as_user, _capacity_change(reason, capacity=capacity))
    typer.echo(f"changed {_describe(changed)}")


@app.command("close")
def facility_close(
    code: Code,
    as_user: AsAdmin,
    reason: Reason,
    temporarily: Annotated[
        bool, typer.Option("--temporarily", help="Temporarily closed (e.g. repairs)")
    ] = False,
) -> None:
    """Close a facility: it takes no one new; persons placed there stay until discharged
    or transferred."""
    status = FacilityStatus.temporarily_closed if temporarily else FacilityStatus.closed
    changed = _change(code, as_user, _capacity_change(reason, status=status))
    typer.echo(f"closed {_describe(changed)}")
    if changed.occupied or changed.held:
        typer.echo(
            f"{changed.occupied} persons placed and {changed.held} beds held there remain:"
            " discharge or transfer them",
            err=True,
        )


@app.command("reopen")
def facility_reopen(
    code: Code,
    as_user: AsAdmin,
    reason: Reason,
    capacity: Annotated[
        int | None, typer.Option(min=0, help="Its beds on reopening (default: as before)")
    ] = None,
) -> None:
    """Reopen a closed facility; its free beds are offered to the waitlist at once."""
    change = _capacity_change(reason, capacity=capacity, status=FacilityStatus.open)
    typer.echo(f"reopened {_describe(_change(code, as_user, change))}")
