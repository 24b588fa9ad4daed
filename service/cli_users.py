"""`ruta user`: staff accounts, for the operator at the server (the audit trail records
these changes with no acting user: the operator is whoever runs the command, as for
`ruta user add`)."""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from service.cli_support import run, write
from service.core.db import Database
from service.core.security import Security
from service.core.settings import Settings
from service.identity import service as identity_service
from service.identity.exceptions import UnknownOrganization, UnknownUser
from service.identity.rules import Role
from service.identity.schemas import UserSummary

app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)

T = TypeVar("T")
MIN_PASSWORD_LENGTH = 12

Username = Annotated[str, typer.Argument(help="The user's username")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]


def _password_from_stdin() -> str:
    """One line of standard input, never echoed nor logged."""
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise typer.BadParameter(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
        )
    return password


def _change(username: str, change: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run an account change in one transaction; a refusal exits 2, an unknown user naming
    it (the operator's own input, on their own terminal)."""
    return write(
        Settings(), change, naming={UnknownUser: lambda _: f"no user has the username {username!r}"}
    )


@app.command("add")
def user_add(
    username: Annotated[str, typer.Argument()],
    org: Annotated[str, typer.Option("--org", help="Organization code, e.g. PNP")],
    role: Annotated[Role, typer.Option("--role")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user; without --password-stdin the user signs in only through OpenID Connect."""
    password = _password_from_stdin() if password_stdin else None
    settings = Settings()
    security = Security.from_settings(settings)

    async def work(session: AsyncSession) -> None:
        await identity_service.create_user(
            session,
            security=security,
            actor=None,
            username=username,
            organization_code=org,
            role=role,
            password=password,
        )

    # An unknown organization is the operator's own input: named (the API never does).
    write(settings, work, naming={UnknownOrganization: lambda exc: f"{exc.detail} ({org})"})
    typer.echo(f"user {username} ({role.value}) added to {org}")


@app.command("list")
def user_list(
    org: Annotated[
        str | None, typer.Option("--org", help="Only this organization's users, e.g. PNP")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, for scripts")] = False,
) -> None:
    """Staff accounts: username, organization, role, whether active, whether they have a
    password, and the last password sign-in on record."""
    settings = Settings()

    async def work(db: Database) -> list[UserSummary]:
        async with db.session(write=False) as session:
            return await identity_service.list_users(session, organization_code=org)

    users = run(settings, work)
    if as_json:
        typer.echo(json.dumps([u.model_dump(mode="json") for u in users], indent=2))
        return
    typer.echo(f"{'USERNAME':<24} {'ORG':<8} {'ROLE':<14} {'ACTIVE':<7} {'PASSWORD':<9} LAST LOGIN")
    for u in users:
        last = u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "-"
        typer.echo(
            f"{u.username:<24} {u.organization:<8} {u.role.value:<14}"
            f" {'yes' if u.active else 'no':<7} {'yes' if u.password else 'no':<9} {last}"
        )
    typer.echo(f"{len(users)} users", err=True)


def _set_active(username: str, *, active: bool) -> None:
    changed = _change(
        username,
        lambda session: identity_service.set_active(
            session, actor=None, username=username, active=active
        ),
    )
    state = "enabled" if active else "disabled"
    if not changed:
        typer.echo(f"user {username} was already {state}")
    elif active:
        typer.echo(f"user {username} enabled: they sign in anew (earlier tokens stay revoked)")
    else:
        typer.echo(f"user {username} disabled: their tokens no longer work")


@app.command("disable")
def user_disable(username: Username) -> None:
    """Disable a user: sign-in refused, and every token they hold refused (at once on
    PostgreSQL, within RUTA_PRINCIPAL_CACHE_SECONDS on SQLite). The last active
    administrator is never disabled."""
    _set_active(username, active=False)


@app.command("enable")
def user_enable(username: Username) -> None:
    """Enable a disabled user again (tokens from before the disabling stay revoked)."""
    _set_active(username, active=True)


@app.command("reset-password")
def user_reset_password(username: Username, password_stdin: PasswordStdin = False) -> None:
    """Give a user a new password and revoke every token they hold. Without
    --password-stdin a random password is generated and printed once, on this terminal."""
    generated = not password_stdin
    password = secrets.token_urlsafe(15) if generated else _password_from_stdin()
    security = Security.from_settings(Settings())
    _change(
        username,
        lambda session: identity_service.set_password(
            session, security=security, actor=None, username=username, password=password
        ),
    )
    typer.echo(f"password of {username} reset: their earlier tokens no longer work")
    if generated:
        typer.echo(f"new password (shown once, pass it on privately): {password}")


@app.command("set-role")
def user_set_role(username: Username, role: Annotated[Role, typer.Argument()]) -> None:
    """Give a user another role (in force at once on PostgreSQL, within
    RUTA_PRINCIPAL_CACHE_SECONDS on SQLite). The last active administrator keeps the admin
    role."""
    before = _change(
        username,
        lambda session: identity_service.set_role(
            session, actor=None, username=username, role=role
        ),
    )
    if before is None:
        typer.echo(f"user {username} already has the role {role.value}")
    else:
        typer.echo(f"user {username}: role {before} -> {role.value}")
