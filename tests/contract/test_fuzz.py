"""Schemathesis over the whole published contract, authenticated as an admin and as a
caseworker: no 500, declared statuses and media types, responses that match their schemas,
invalid data refused and valid data accepted (schemathesis.toml says which, and why not)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from service.core.idempotency import KEY_PATTERN, MAX_KEY_LENGTH
from service.core.security import Security
from service.core.settings import Settings
from service.core.types import EARLIEST_INSTANT, LATEST_INSTANT
from service.identity.rules import Role
from service.main import create_app, open_database
from tests.support.databases import (
    create_database,
    drop_database,
    make_settings,
    migrate_and_seed,
)
from tests.support.factories import Factory

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "schemathesis.toml"
SPEC = ROOT / "openapi" / "openapi.json"

# A date-time the contract accepts lies between EARLIEST_INSTANT and LATEST_INSTANT (the
# `x-ruta-range` note of core/types.Instant); JSON Schema cannot bound a date-time, so valid
# data is drawn inside that range, with offsets.
schemathesis.openapi.format(
    "date-time",
    st.builds(
        lambda moment, minutes: moment.astimezone(timezone(timedelta(minutes=minutes))).isoformat(),
        st.datetimes(
            min_value=EARLIEST_INSTANT.replace(tzinfo=None) + timedelta(days=1),
            max_value=LATEST_INSTANT.replace(tzinfo=None) - timedelta(days=1),
            timezones=st.just(UTC),
        ),
        st.integers(min_value=-12 * 60, max_value=14 * 60),
    ),
)


@pytest.fixture(scope="module")
async def fuzz_settings(var_dir: Path) -> AsyncIterator[Settings]:
    """A database of its own: what the fuzzer creates (facilities for anyone, cases with any
    facts) must not change what the other tests find in the shared one."""
    url = await create_database(var_dir)
    settings = make_settings(url, var_dir)
    await migrate_and_seed(settings)
    yield settings
    await drop_database(url)


@pytest.fixture(scope="module")
async def fuzz_headers(fuzz_settings: Settings) -> AsyncIterator[dict[str, dict[str, str]]]:
    db = open_database(fuzz_settings)
    factory = Factory(db, Security.from_settings(fuzz_settings))
    admin = await factory.user("MIMP", Role.admin)
    caseworker = await factory.user("PNP", Role.caseworker)
    yield {"admin": admin.headers, "caseworker": caseworker.headers}
    await db.dispose()


@pytest.fixture(scope="module")
def fuzz_app(fuzz_settings: Settings) -> FastAPI:
    # An app of its own: schemathesis serves it from its own event loop and runs its lifespan.
    return create_app(fuzz_settings)


# The published contract, which tests/test_openapi.py holds equal to what the app serves.
schema = schemathesis.openapi.from_path(SPEC, config=SchemathesisConfig.from_path(CONFIG))


def _fresh_idempotency_key(case: schemathesis.Case[Any]) -> None:
    """Give a call with a valid Idempotency-Key a key never used before. The fuzzer draws keys
    from the header's schema (one printable character is valid), so it draws the same key
    again for another request, which Ruta rightly refuses (422 `idempotency_key_reused`: the
    contract says so) but a "valid data is accepted" check cannot know. An invalid key is left
    as drawn, to be refused."""
    headers = case.headers
    if not headers:
        return
    name = next((n for n in headers if n.lower() == "idempotency-key"), None)
    if name is None:
        return
    value = headers[name]
    if isinstance(value, str) and len(value) <= MAX_KEY_LENGTH and re.match(KEY_PATTERN, value):
        headers[name] = f"fuzz-{uuid.uuid4()}"


@pytest.mark.slow
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_contract_holds_for_any_input(
    case: schemathesis.Case[Any], fuzz_app: FastAPI, fuzz_headers: dict[str, dict[str, str]]
) -> None:
    for headers in fuzz_headers.values():
        _fresh_idempotency_key(case)
        case.call_and_validate(app=fuzz_app, headers=headers)


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "caseworker"])
def test_what_is_created_can_be_used_through_the_links(
    fuzz_app: FastAPI, fuzz_headers: dict[str, dict[str, str]], role: str
) -> None:
    """Stateful: create, then follow the contract's links (read it, act on it)."""
    headers = fuzz_headers[role]
    machine = schema.as_state_machine()
    workflow: type[schemathesis.stateful.APIStateMachine] = type(
        "AuthenticatedWorkflow",
        (machine,),
        {"get_call_kwargs": lambda self, case: _call_kwargs(case, fuzz_app, headers)},
    )
    workflow.run(
        settings=settings(
            max_examples=10,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )


def _call_kwargs(
    case: schemathesis.Case[Any], app: FastAPI, headers: dict[str, str]
) -> dict[str, Any]:
    _fresh_idempotency_key(case)
    return {"app": app, "headers": headers}
