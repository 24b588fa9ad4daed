"""Where the person is now: a caseworker's free text that may name her or those who keep
her, sealed under her data key, opened for the organizations that may read the case, audited
only as changed."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.cases.models import CaseFile
from service.core.crypto import Keyring, WrappedKey
from service.core.security import Actor
from service.persons import service as person_service


async def sealed_location(
    session: AsyncSession,
    keyring: Keyring,
    person_id: uuid.UUID,
    location: str | None,
    *,
    key: WrappedKey | None = None,
) -> bytes | None:
    """Where the person is now, sealed under her data key (None: not known). `key`: her
    wrapped data key, if the caller read it already."""
    if location is None:
        return None
    return await person_service.seal_for_person(
        session,
        keyring=keyring,
        person_id=person_id,
        payload={"current_location": location},
        key=key,
    )


async def _opened_location(
    session: AsyncSession,
    keyring: Keyring,
    *,
    person_id: uuid.UUID,
    sealed: bytes | None,
    key: WrappedKey | None = None,
) -> str | None:
    """Where the person is now, opened; None when not known or once she was erased. `key`:
    her wrapped data key, if the caller read it already."""
    if sealed is None:
        return None
    opened = await person_service.open_for_person(
        session, keyring=keyring, person_id=person_id, sealed=bytes(sealed), key=key
    )
    return None if opened is None else str(opened["current_location"])


def location_audited(changed: bool) -> dict[str, Any]:
    """What the audit trail keeps of a location given or corrected: that it was, never the
    text (sealed for the person, it must go when she is erased)."""
    return {"current_location": {"changed": True}} if changed else {}


async def correct_location(
    session: AsyncSession, *, actor: Actor, keyring: Keyring, case: CaseFile, to: str | None
) -> bool:
    """Seal the new location if it differs from the one stored (opened and compared: sealing
    the same text again gives other bytes); audited without the text. Whether it did."""
    # Read once, to open the old text and seal the new (when her record was linked since,
    # the old one is opened through the record it was sealed for).
    key = (
        await person_service.wrapped_key(session, case.person_id)
        if case.current_location_ciphertext is not None or to is not None
        else None
    )
    before = await _opened_location(
        session, keyring, person_id=case.person_id, sealed=case.current_location_ciphertext, key=key
    )
    if to == before:
        return False
    record_event(
        session,
        actor=actor,
        action="case.updated",
        entity_type="case",
        entity_id=case.id,
        changes=location_audited(True),
    )
    case.current_location_ciphertext = await sealed_location(
        session, keyring, case.person_id, to, key=key
    )
    return True


async def location_in_view(
    keyring: Keyring,
    row: sa.Row[Any],
    case: Mapping[str, Any],
    *,
    session: Callable[[], AbstractAsyncContextManager[AsyncSession]],
) -> str | None:
    """Where the person is now, opened with her wrapped key as a row of the case view's
    statement carries it (`key_person_id`, `key_master_key_id`, `key_wrapped_key`): no round
    trip, and no session, unless it was sealed for a record since linked into hers (or she
    was erased), which `open_for_person` then reads in `session()`."""
    person_id = case["person_id"]
    sealed = case["current_location_ciphertext"]
    if sealed is None:
        return None
    # The statement read the key of the stored person: unflushed, the object may name another.
    key = (
        WrappedKey(row.key_master_key_id, bytes(row.key_wrapped_key))
        if row.key_person_id == person_id and row.key_wrapped_key is not None
        else None
    )
    if key is not None:
        opened = person_service.open_with_key(
            keyring, key, person_id=person_id, sealed=bytes(sealed)
        )
        if opened is not None:
            return str(opened["current_location"])
    async with session() as reading:
        return await _opened_location(reading, keyring, person_id=person_id, sealed=sealed, key=key)
