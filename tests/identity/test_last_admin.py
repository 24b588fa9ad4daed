"""The last active administrator is never disabled nor given another role: through `ruta
user`, through the identity service (any route that changes users), and when two changes
race on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.db import Database
from service.core.security import Security
from service.core.settings import Settings
from service.identity import service as identity_service
from service.identity.exceptions import LastAdministrator
from service.identity.rules import Role
from service.main import open_database
from tests.support.cli import ruta
from tests.support.databases import query
from tests.support.factories import Factory, SignedInUser
from tests.support.races import race_on_a_lock


@dataclass(frozen=True)
class Fresh:
    """A database of its own: no administrator but those a test creates."""

    settings: Settings
    db: Database
    factory: Factory


@pytest.fixture
async def fresh(fresh_settings: Settings) -> AsyncIterator[Fresh]:
    db = open_database(fresh_settings)
    try:
        yield Fresh(fresh_settings, db, Factory(db, Security.from_settings(fresh_settings)))
    finally:
        await db.dispose()


async def _accounts(db: Database) -> dict[str, tuple[str, bool]]:
    """(role, active) of every account, by username."""
    rows = await query(db, "SELECT username, role, is_active FROM app_user")
    return {username: (role, bool(active)) for username, role, active in rows}


async def _actions(db: Database, user: SignedInUser) -> list[str]:
    """The audited administration actions on one account, in order."""
    rows = await query(
        db,
        "SELECT action FROM audit_event WHERE entity_id = :id AND action LIKE 'user.%'"
        " ORDER BY occurred_at",
        id=str(user.actor.user_id),
    )
    return [action for (action,) in rows]


async def test_ruta_user_refuses_to_disable_or_demote_the_last_active_admin(fresh: Fresh) -> None:
    s = fresh.settings
    first = (await fresh.factory.user("MIMP", Role.admin)).actor.username
    last_admin = await fresh.factory.user("MIMP", Role.admin)
    last = last_admin.actor.username
    staff = (await fresh.factory.user("PNP", Role.identifier)).actor.username
    successor = (await fresh.factory.user("MIMP", Role.caseworker)).actor.username

    first_disabled = ruta(s, "user", "disable", first)  # another administrator remains
    disable_refused = ruta(s, "user", "disable", last)
    demote_refused = ruta(s, "user", "set-role", last, "analyst")
    accounts_meanwhile = await _accounts(fresh.db)
    # A disabled administrator is no administrator to keep; staff are not administrators.
    first_demoted = ruta(s, "user", "set-role", first, "analyst")
    staff_disabled = ruta(s, "user", "disable", staff)
    # Once another administrator is appointed, the former last one may go.
    appointed = ruta(s, "user", "set-role", successor, "admin")
    last_disabled = ruta(s, "user", "disable", last)

    assert first_disabled.returncode == 0, first_disabled.stderr
    for refused in (disable_refused, demote_refused):
        assert refused.returncode == 2
        assert "error: This is the last active administrator" in refused.stderr
        assert refused.stdout == ""
    assert accounts_meanwhile[last] == ("admin", True)
    assert first_demoted.returncode == 0, first_demoted.stderr
    assert staff_disabled.returncode == 0, staff_disabled.stderr
    assert appointed.returncode == 0, appointed.stderr
    assert last_disabled.returncode == 0, last_disabled.stderr
    accounts = await _accounts(fresh.db)
    assert {name: accounts[name] for name in (first, last, staff, successor)} == {
        first: ("analyst", False),
        last: ("admin", False),
        staff: ("identifier", False),
        successor: ("admin", True),
    }
    # The refused changes wrote nothing, not even an audit event.
    assert await _actions(fresh.db, last_admin) == ["user.created", "user.disabled"]


async def test_the_identity_service_refuses_losing_the_last_admin_with_a_409_problem(
    fresh: Fresh,
) -> None:
    last = (await fresh.factory.user("MIMP", Role.admin)).actor.username
    disabled = (await fresh.factory.user("MIMP", Role.admin)).actor.username
    async with fresh.db.session() as session:
        await identity_service.set_active(session, actor=None, username=disabled, active=False)

    refusals = []
    for change in (
        lambda session: identity_service.set_active(
            session, actor=None, username=last, active=False
        ),
        lambda session: identity_service.set_role(
            session, actor=None, username=last, role=Role.auditor
        ),
    ):
        with pytest.raises(LastAdministrator) as refused:
            async with fresh.db.session() as session:
                await change(session)
        refusals.append(refused.value)
    # Enabling and promoting never take an administrator away.
    async with fresh.db.session() as session:
        enabled = await identity_service.set_active(
            session, actor=None, username=disabled, active=True
        )
    async with fresh.db.session() as session:
        demoted = await identity_service.set_role(
            session, actor=None, username=last, role=Role.auditor
        )

    assert [(r.status, r.code) for r in refusals] == [(409, "last_administrator")] * 2
    assert enabled is True
    assert demoted == "admin"
    accounts = await _accounts(fresh.db)
    assert (accounts[last], accounts[disabled]) == (("auditor", True), ("admin", True))


Change = Callable[[AsyncSession, str], Awaitable[object]]


async def _disable(session: AsyncSession, username: str) -> object:
    return await identity_service.set_active(session, actor=None, username=username, active=False)


async def _demote(session: AsyncSession, username: str) -> object:
    return await identity_service.set_role(
        session, actor=None, username=username, role=Role.analyst
    )


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("first_change", "second_change"),
    [(_disable, _disable), (_demote, _disable), (_disable, _demote)],
    ids=["disable-disable", "demote-disable", "disable-demote"],
)
async def test_two_concurrent_changes_cannot_both_take_away_the_last_two_admins(
    fresh: Fresh, first_change: Change, second_change: Change
) -> None:
    one = (await fresh.factory.user("MIMP", Role.admin)).actor.username
    two = (await fresh.factory.user("MIMP", Role.admin)).actor.username
    # The second change, its count taken while the first is uncommitted, must wait for it.
    race = await race_on_a_lock(
        fresh.db,
        lambda session: first_change(session, one),
        lambda session: second_change(session, two),
    )

    assert not race.second_finished_alone
    assert not isinstance(race.first, BaseException), race.first
    assert isinstance(race.second, LastAdministrator), race.second
    accounts = await _accounts(fresh.db)
    assert [name for name, (role, active) in accounts.items() if role == "admin" and active] == [
        two
    ]
    # Two created, one changed: the refused change recorded nothing.
    assert await query(fresh.db, "SELECT count(*) FROM audit_event WHERE action LIKE 'user.%'") == [
        (3,)
    ]
