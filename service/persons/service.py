"""Persons: encrypted identity, blind-index duplicate detection, linking, key rotation."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.audit.service import record_event
from service.core.crypto import Keyring, WrappedKey, open_sealed, seal
from service.core.db import (
    Rows,
    for_update,
    insert_rows,
    instance_row,
    persistent,
    row_of,
    session_rows,
    table_of,
)
from service.core.errors import InvalidInput
from service.core.security import Actor
from service.core.time import utcnow
from service.persons import rules
from service.persons.exceptions import BIRTH_DATE_ERRORS, PersonErased, PersonNotFound
from service.persons.models import (
    Person,
    PersonBlindIndex,
    PersonErasure,
    PersonIdentifierClaim,
    PersonIdentity,
    PersonKey,
)
from service.persons.schemas import (
    ErasurePublic,
    ErasureRequest,
    PersonCreate,
    PersonFacts,
    PersonIdentifying,
    PossibleDuplicate,
)

IDENTIFYING_FIELDS = frozenset(
    {"given_name", "family_name", "document", "phone", "address", "birth_date"}
)


def _digests(keyring: Keyring, data: PersonCreate) -> dict[rules.MatchKind, str]:
    digests = {}
    if data.document is not None:
        normalized = rules.normalize_document(data.document.type, data.document.number)
        digests[rules.MatchKind.document] = keyring.blind_index("document", normalized)
    if data.given_name and data.family_name and data.birth_date:
        key = rules.name_and_birth_date_key(data.given_name, data.family_name, data.birth_date)
        digests[rules.MatchKind.name_and_birth_date] = keyring.blind_index("name_dob", key)
    return digests


async def _persons_matching(
    session: AsyncSession, kind: rules.MatchKind, digest: str
) -> list[uuid.UUID]:
    rows = await session.exec(
        select(PersonBlindIndex.person_id)
        .join(Person, col(Person.id) == col(PersonBlindIndex.person_id))
        .where(
            PersonBlindIndex.kind == kind.value,
            PersonBlindIndex.digest == digest,
            col(Person.merged_into).is_(None),
        )
        .order_by(col(Person.created_at))
    )
    return list(dict.fromkeys(rows.all()))


# The data keys of persons created in the session's transaction, by person id: recording
# their identity then costs no read of the key just written.
_NEW_DATA_KEYS = "ruta_new_data_keys"


async def _data_key(session: AsyncSession, keyring: Keyring, person_id: uuid.UUID) -> bytes:
    """The person's data key; PersonErased once it was deleted."""
    new: bytes | None = session.info.get(_NEW_DATA_KEYS, {}).get(person_id)
    if new is not None:
        return new
    key = await session.get(PersonKey, person_id)
    if key is None:
        raise PersonErased
    return keyring.unwrap(WrappedKey(key.master_key_id, key.wrapped_key), owner=str(person_id))


async def _identity_rows(
    session: AsyncSession,
    *,
    keyring: Keyring,
    person_id: uuid.UUID,
    organization_id: uuid.UUID,
    data: PersonCreate,
    digests: dict[rules.MatchKind, str],
) -> list[Rows]:
    """The rows that record what identifies the person (sealed) and her blind indexes."""
    rows: list[Rows] = []
    payload = data.model_dump(mode="json", include=set(IDENTIFYING_FIELDS))
    if any(v is not None for v in payload.values()):
        data_key = await _data_key(session, keyring, person_id)
        record = row_of(
            PersonIdentity,
            person_id=person_id,
            recorded_by_org=organization_id,
            ciphertext=seal(data_key, payload, owner=str(person_id)),
        )
        rows.append(Rows(PersonIdentity, [record]))
    indexes = [
        row_of(PersonBlindIndex, person_id=person_id, kind=kind.value, digest=digest)
        for kind, digest in digests.items()
    ]
    # Ignoring conflicts: two identifications joining one person at once may bring the same
    # new identifier.
    rows.append(Rows(PersonBlindIndex, indexes, ignoring_conflicts_on=_BLIND_INDEX_KEY))
    return rows


_BLIND_INDEX_KEY = ("person_id", "kind", "digest")


async def _claimant(session: AsyncSession, kind: rules.MatchKind, digest: str) -> uuid.UUID | None:
    rows = await session_rows(
        session, _claimant_statement(), {"kind": kind.value, "digest": digest}
    )
    person_id: uuid.UUID | None = rows[0].person_id if rows else None
    return person_id


@functools.cache
def _claimant_statement() -> sa.Select[Any]:
    """Who holds an identifier (`kind`, `digest`): Core, built once (every intake asks)."""
    claims = table_of(PersonIdentifierClaim)
    return sa.select(claims.c.person_id).where(
        claims.c.kind == sa.bindparam("kind", type_=claims.c.kind.type),
        claims.c.digest == sa.bindparam("digest", type_=claims.c.digest.type),
    )


async def _surviving(session: AsyncSession, person_id: uuid.UUID) -> Person:
    person = await get_person(session, person_id)
    while person.merged_into is not None:
        person = await get_person(session, person.merged_into)
    return person


async def _new_person(
    session: AsyncSession,
    *,
    keyring: Keyring,
    data: PersonCreate,
    identified_on: date,
    claiming: str | None = None,
) -> tuple[Person, bool]:
    """A new person and her data key; with `claiming`, a document's digest she claims in the
    same statement. Returns her and whether she holds the document: the database decides (on
    PostgreSQL an insert that collides with an uncommitted claim waits for it and then
    yields; on SQLite the writing transaction already holds the write lock). One statement
    on PostgreSQL (core.db.insert_rows); the person stays an instance in the session, which
    the identification reads her age from."""
    if data.birth_date is not None:
        age, birth_year, estimate = (
            rules.age_on(data.birth_date, identified_on),
            data.birth_date.year,
            False,
        )
    elif data.age_estimate is not None:
        age, birth_year, estimate = data.age_estimate, None, True
    else:
        age, birth_year, estimate = None, None, True
    person = Person(
        birth_year=birth_year,
        age_at_identification=age,
        age_is_estimate=estimate,
        gender=data.gender.value,
        nationality=data.nationality,
        indigenous_people=data.indigenous_people,
        languages=list(data.languages),
        lgbti=data.lgbti,
    )
    data_key = Keyring.new_data_key()
    session.info.setdefault(_NEW_DATA_KEYS, {})[person.id] = data_key
    wrapped = keyring.wrap(data_key, owner=str(person.id))
    key = row_of(
        PersonKey,
        person_id=person.id,
        master_key_id=wrapped.master_key_id,
        wrapped_key=wrapped.blob,
    )
    parts = [instance_row(person), Rows(PersonKey, [key])]
    holds = True
    if claiming is None:
        await insert_rows(session, *parts)
    else:
        claim = row_of(
            PersonIdentifierClaim,
            kind=rules.MatchKind.document.value,
            digest=claiming,
            person_id=person.id,
        )
        claims = table_of(PersonIdentifierClaim)
        won = await insert_rows(
            session,
            *parts,
            Rows(PersonIdentifierClaim, [claim], ignoring_conflicts_on=("kind", "digest")),
            returning=claims.c.person_id,
        )
        holds = won == [person.id]
    persistent(session, person)
    return person, holds


async def _person_of_document(
    session: AsyncSession,
    *,
    keyring: Keyring,
    data: PersonCreate,
    identified_on: date,
    digest: str,
) -> tuple[Person, bool]:
    """The person holding the document, and True; or a new person claiming it, and False."""
    claimant = await _claimant(session, rules.MatchKind.document, digest)
    if claimant is not None:
        return await _surviving(session, claimant), True
    person, holds = await _new_person(
        session, keyring=keyring, data=data, identified_on=identified_on, claiming=digest
    )
    if holds:
        return person, False
    # An identification of the same document running at this moment claimed it first: the
    # person just created is deleted, nothing of it left behind. (Deleted rather than
    # created in a savepoint: the savepoint's two statements would cost every intake.)
    await _forget_new_person(session, person)
    claimant = await _claimant(session, rules.MatchKind.document, digest)
    if claimant is None:  # claims are never deleted
        raise RuntimeError("a document claim vanished")
    return await _surviving(session, claimant), True


async def _forget_new_person(session: AsyncSession, person: Person) -> None:
    """Delete a person created in this transaction, before anything refers to it but its
    data key."""
    session.info.get(_NEW_DATA_KEYS, {}).pop(person.id, None)
    key = await session.get(PersonKey, person.id)
    if key is not None:
        await session.delete(key)
        await session.flush()
    await session.delete(person)
    await session.flush()


def _refuse_implausible_birth(data: PersonCreate, *, identified_on: date) -> None:
    if data.birth_date is None:
        return
    problem = rules.birth_date_problem(
        data.birth_date, identified_on=identified_on, today=utcnow().date()
    )
    if problem is not None:
        error, message = BIRTH_DATE_ERRORS[problem]
        raise error(message)


async def identify_person(
    session: AsyncSession,
    *,
    keyring: Keyring,
    organization_id: uuid.UUID,
    data: PersonCreate,
    identified_on: date,
) -> tuple[Person, list[PossibleDuplicate], list[Rows]]:
    """The person of a new identification: the same person when the document matches one
    already recorded (even one recorded at this very moment), otherwise a new person;
    candidates that share name and birth date are listed for a caseworker to link. Then the
    rows recording what identifies her (sealed) and her blind indexes, which the caller
    inserts with its own (core.db.insert_rows: one statement on PostgreSQL)."""
    _refuse_implausible_birth(data, identified_on=identified_on)
    digests = _digests(keyring, data)
    duplicates: list[PossibleDuplicate] = []
    if rules.MatchKind.document in digests:
        person, linked = await _person_of_document(
            session,
            keyring=keyring,
            data=data,
            identified_on=identified_on,
            digest=digests[rules.MatchKind.document],
        )
        if linked:
            duplicates.append(
                PossibleDuplicate(
                    person_id=person.id, matched_on=rules.MatchKind.document, linked=True
                )
            )
    else:
        person, _ = await _new_person(
            session, keyring=keyring, data=data, identified_on=identified_on
        )
    if rules.MatchKind.name_and_birth_date in digests:
        for candidate in await _persons_matching(
            session,
            rules.MatchKind.name_and_birth_date,
            digests[rules.MatchKind.name_and_birth_date],
        ):
            if candidate != person.id and all(d.person_id != candidate for d in duplicates):
                duplicates.append(
                    PossibleDuplicate(
                        person_id=candidate,
                        matched_on=rules.MatchKind.name_and_birth_date,
                        linked=False,
                    )
                )
    rows = await _identity_rows(
        session,
        keyring=keyring,
        person_id=person.id,
        organization_id=organization_id,
        data=data,
        digests=digests,
    )
    return person, duplicates, rows


async def get_person(session: AsyncSession, person_id: uuid.UUID) -> Person:
    person = await session.get(Person, person_id)
    if person is None:
        raise LookupError(f"person {person_id} does not exist")
    return person


# The person's non-identifying columns: what `facts_of` reads and `facts_from` is given.
FACT_COLUMNS = (
    "id",
    "birth_year",
    "age_at_identification",
    "age_is_estimate",
    "gender",
    "nationality",
    "indigenous_people",
    "languages",
    "lgbti",
)


def facts_of(person_id: uuid.UUID | sa.ColumnElement[uuid.UUID]) -> sa.Subquery:
    """The person's non-identifying columns (one row, named as on the person: FACT_COLUMNS),
    to join into another domain's read: the same statement, no round trip of its own."""
    person = table_of(Person)
    return (
        sa.select(*(person.c[name] for name in FACT_COLUMNS))
        .where(person.c.id == person_id)
        .subquery("person_facts")
    )


def person_facts(person: Person, *, minor: bool) -> PersonFacts:
    """What the case shows of the person: nothing identifying. Whether the person is a minor
    is decided by the caller, on the day of the event it qualifies."""
    return facts_from(person.model_dump(), minor=minor)


def facts_from(person: Mapping[str, Any], *, minor: bool) -> PersonFacts:
    """`person_facts` of the person's columns by name (a row read through `facts_of`)."""
    return PersonFacts.model_validate(fact_values(person, minor=minor))


def fact_values(person: Mapping[str, Any], *, minor: bool) -> dict[str, Any]:
    """PersonFacts' values (its fields, in its order) of the person's columns by name: for a
    view sent as values (cases.service.CaseValues)."""
    return {
        "id": person["id"],
        "age_at_identification": person["age_at_identification"],
        "age_is_estimate": person["age_is_estimate"],
        "minor": minor,
        "gender": rules.Gender(person["gender"]).value,
        "nationality": person["nationality"],
        "indigenous_people": person["indigenous_people"],
        "languages": person["languages"],
        "lgbti": person["lgbti"],
    }


async def read_identifying(
    session: AsyncSession, *, keyring: Keyring, person_id: uuid.UUID
) -> PersonIdentifying:
    """The newest identifying record of the person and of records linked into it, read in
    one statement with their data keys; PersonErased once she was erased."""
    records = identifying_records_of(person_id)
    connection = await session.connection()
    rows = (
        await connection.execute(sa.select(records).order_by(records.c.recorded_at.desc()))
    ).all()
    return await identifying_from(session, keyring=keyring, person_id=person_id, records=rows)


def identifying_records_of(person_id: uuid.UUID | sa.ColumnElement[uuid.UUID]) -> sa.Subquery:
    """The identifying records of the person and of records linked into it, each with its
    data key (`owner`, `ciphertext`, `master_key_id`, `wrapped_key`, `recorded_at`), to read
    newest first, here or joined into another domain's read, and open with
    `identifying_from`. A record whose data key is gone (erased) cannot be opened: the inner
    join leaves it out."""
    identity, key, person = table_of(PersonIdentity), table_of(PersonKey), table_of(Person)
    # The person and the records merged into hers, found by index (the primary key and
    # ix_person_merged_into), then their records by theirs: an OR of the person and a
    # subquery over `identity` made PostgreSQL scan every record and every key.
    records = sa.select(person.c.id).where(
        sa.or_(person.c.id == person_id, person.c.merged_into == person_id)
    )
    return (
        sa.select(
            identity.c.person_id.label("owner"),
            identity.c.ciphertext,
            key.c.master_key_id,
            key.c.wrapped_key,
            identity.c.recorded_at,
        )
        .join(key, key.c.person_id == identity.c.person_id)
        .where(identity.c.person_id.in_(records))
        .subquery("identifying_record")
    )


async def identifying_from(
    session: AsyncSession,
    *,
    keyring: Keyring,
    person_id: uuid.UUID,
    records: Sequence[Any],
) -> PersonIdentifying:
    """The person's identifying data, opened from the rows of `identifying_records_of`
    (newest first: a field keeps its newest known value); PersonErased once she was erased."""
    # An erased person has neither records nor key: only then is it worth asking why.
    if not records and await _any_erased(session, [person_id]):
        raise PersonErased
    return opened_identifying(keyring=keyring, person_id=person_id, records=records)


def opened_identifying(
    *, keyring: Keyring, person_id: uuid.UUID, records: Sequence[Any]
) -> PersonIdentifying:
    """`identifying_from` when there are records (she is not erased): no statement."""
    merged: dict[str, Any] = {}
    keys: dict[uuid.UUID, bytes] = {}
    for record in records:
        owner = record.owner
        if owner not in keys:
            wrapped = WrappedKey(record.master_key_id, bytes(record.wrapped_key))
            keys[owner] = keyring.unwrap(wrapped, owner=str(owner))
        payload = open_sealed(keys[owner], bytes(record.ciphertext), owner=str(owner))
        for name, value in payload.items():
            if merged.get(name) is None and value is not None:
                merged[name] = value
    return PersonIdentifying.model_validate(
        {"person_id": person_id, **{name: merged.get(name) for name in IDENTIFYING_FIELDS}}
    )


async def link_person(
    session: AsyncSession, *, person_id: uuid.UUID, candidate_id: uuid.UUID
) -> Person:
    """Join a person record into an earlier one they share an identifier with."""
    if person_id == candidate_id:
        raise InvalidInput("person_id", "is already this case's person")
    mine = set(
        (
            await session.exec(
                select(PersonBlindIndex.kind, PersonBlindIndex.digest).where(
                    PersonBlindIndex.person_id == person_id
                )
            )
        ).all()
    )
    theirs = set(
        (
            await session.exec(
                select(PersonBlindIndex.kind, PersonBlindIndex.digest).where(
                    PersonBlindIndex.person_id == candidate_id
                )
            )
        ).all()
    )
    candidate = await session.get(Person, candidate_id)
    if candidate is None or candidate.merged_into is not None or not mine & theirs:
        raise InvalidInput("person_id", "is not a possible duplicate of this case's person")
    person = await get_person(session, person_id)
    person.merged_into = candidate_id
    person.merged_at = utcnow()
    session.add(person)
    await session.flush()
    # A claim names a surviving person: the document of a linked record now leads to the
    # record it was linked into.
    await session.exec(
        sa.update(PersonIdentifierClaim)
        .where(col(PersonIdentifierClaim.person_id) == person_id)
        .values(person_id=candidate_id)
    )
    return candidate


async def seal_for_person(
    session: AsyncSession,
    *,
    keyring: Keyring,
    person_id: uuid.UUID,
    payload: dict[str, Any],
    key: WrappedKey | None = None,
) -> bytes:
    """Encrypt sensitive free text about a person (screening notes) under their data key.
    `key`: that key wrapped, when the caller read it already (`wrapped_key`): no round trip
    for it."""
    data_key = (
        await _data_key(session, keyring, person_id)
        if key is None
        else keyring.unwrap(key, owner=str(person_id))
    )
    return seal(data_key, payload, owner=str(person_id))


def open_with_key(
    keyring: Keyring, key: WrappedKey, *, person_id: uuid.UUID, sealed: bytes
) -> dict[str, Any] | None:
    """What `seal_for_person` sealed for this person, opened with her wrapped data key as the
    caller read it: no round trip. None when her key does not open it (it was sealed for a
    record since linked into hers): `open_for_person` then looks further."""
    try:
        return open_sealed(keyring.unwrap(key, owner=str(person_id)), sealed, owner=str(person_id))
    except InvalidTag:
        return None


async def open_for_person(
    session: AsyncSession,
    *,
    keyring: Keyring,
    person_id: uuid.UUID,
    sealed: bytes,
    key: WrappedKey | None = None,
) -> dict[str, Any] | None:
    """Decrypt what `seal_for_person` sealed for this person or for a record since linked into
    it; None when the person was erased (the data key is gone). `key`: the person's wrapped
    data key, when the caller read it in a statement of its own (`wrapped_key_of`), so that
    opening costs no round trip; the records linked into hers are read only when her key does
    not open it."""
    erased = False
    if key is not None:
        opened = open_with_key(keyring, key, person_id=person_id, sealed=sealed)
        if opened is not None:
            return opened
    else:
        try:
            data_key = await _data_key(session, keyring, person_id)
        except PersonErased:
            erased = True  # perhaps the record it was sealed for
        else:
            try:
                return open_sealed(data_key, sealed, owner=str(person_id))
            except InvalidTag:
                pass  # sealed for a record since linked into hers
    linked = (await session.exec(select(Person.id).where(Person.merged_into == person_id))).all()
    for owner in linked:
        try:
            data_key = await _data_key(session, keyring, owner)
        except PersonErased:
            erased = True
            continue
        try:
            return open_sealed(data_key, sealed, owner=str(owner))
        except InvalidTag:
            continue  # sealed for another of the linked records
    if erased:
        return None
    # Every key is there and none opens it: altered, or not this person's.
    raise ValueError(f"the sealed payload belongs to no record of person {person_id}")


async def wrapped_key(session: AsyncSession, person_id: uuid.UUID) -> WrappedKey | None:
    """The person's data key as stored (wrapped), None once she was erased: read once by a
    caller that both opens and seals for her. Core, not the ORM: no flush of pending changes
    first, and nothing held in the session."""
    key = wrapped_key_of(person_id)
    row = (
        await (await session.connection()).execute(
            sa.select(key.c.master_key_id, key.c.wrapped_key)
        )
    ).first()
    return None if row is None else WrappedKey(row.master_key_id, bytes(row.wrapped_key))


def wrapped_key_of(person_id: uuid.UUID | sa.ColumnElement[uuid.UUID]) -> sa.Subquery:
    """The person's wrapped data key (`person_id`, `master_key_id`, `wrapped_key`; no row once
    she was erased), to outer-join into another domain's read and pass to `open_for_person`:
    the same statement, no round trip of its own."""
    key = table_of(PersonKey)
    return (
        sa.select(key.c.person_id, key.c.master_key_id, key.c.wrapped_key)
        .where(key.c.person_id == person_id)
        .subquery("person_wrapped_key")
    )


async def rotate_master_key(session: AsyncSession, *, keyring: Keyring) -> int:
    """Re-wrap every data key not yet under the active master key; returns how many."""
    rows: Sequence[PersonKey] = (
        await session.exec(select(PersonKey).where(PersonKey.master_key_id != keyring.active_id))
    ).all()
    for row in rows:
        owner = str(row.person_id)
        data_key = keyring.unwrap(WrappedKey(row.master_key_id, row.wrapped_key), owner=owner)
        wrapped = keyring.wrap(data_key, owner=owner)
        row.master_key_id, row.wrapped_key, row.rewrapped_at = (
            wrapped.master_key_id,
            wrapped.blob,
            utcnow(),
        )
        session.add(row)
    await session.flush()
    return len(rows)


def same_person_ids(person_id: uuid.UUID) -> sa.Select[tuple[uuid.UUID]]:
    """The ids of this person record and of the records linked with it (merged into it, or
    it into them), as a subquery for `in_`: other domains ask in the same statement."""
    person = table_of(Person)
    root = sa.func.coalesce(
        sa.select(person.c.merged_into).where(person.c.id == person_id).scalar_subquery(),
        person_id,
    )
    return sa.select(person.c.id).where(sa.or_(person.c.id == root, person.c.merged_into == root))


def person_roots_on(known_on: datetime) -> sa.CTE:
    """Every person record with the surviving record it counts as (`person_id`, `root_id`),
    following the links known on `known_on` to any depth: a link made later is not followed,
    so a past count stays what it was. A recursive CTE, for the statistics' SQL."""
    person = table_of(Person)
    roots = (
        sa.select(person.c.id.label("person_id"), person.c.id.label("root_id"))
        .where(sa.or_(person.c.merged_into.is_(None), person.c.merged_at > known_on))
        .cte("person_root", recursive=True)
    )
    linked = person.alias("linked")
    return roots.union_all(
        sa.select(linked.c.id, roots.c.root_id)
        .join(roots, linked.c.merged_into == roots.c.person_id)
        .where(linked.c.merged_at <= known_on)
    )


def person_traits() -> sa.Select[tuple[uuid.UUID, str, str | None]]:
    """The non-identifying traits statistics break persons down by: `person_id`, `gender`,
    `nationality` (alpha-3 or NULL)."""
    person = table_of(Person)
    return sa.select(person.c.id.label("person_id"), person.c.gender, person.c.nationality)


# --- erasure ------------------------------------------------------------------------------


async def _any_erased(session: AsyncSession, ids: Sequence[uuid.UUID]) -> bool:
    """Whether a data key of these person records is gone (erased, or deleted by hand)."""
    keys = (
        await session.exec(
            select(sa.func.count()).select_from(PersonKey).where(col(PersonKey.person_id).in_(ids))
        )
    ).one()
    return int(keys) < len(set(ids))


async def linked_person_ids(session: AsyncSession, person_id: uuid.UUID) -> list[uuid.UUID]:
    """Every record of the same person, to any depth of links: the surviving record the
    chain of `merged_into` leads to, first, then every record linked into it, directly or
    not."""
    root = await _surviving(session, person_id)
    found = [root.id]
    frontier = [root.id]
    while frontier:
        frontier = list(
            (
                await session.exec(select(Person.id).where(col(Person.merged_into).in_(frontier)))
            ).all()
        )
        found.extend(i for i in frontier if i not in found)
    return found


async def _erasure_public(
    session: AsyncSession, person_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> ErasurePublic | None:
    erasure = await session.get(PersonErasure, person_id, populate_existing=True)
    if erasure is None:
        return None
    records = (
        await session.exec(
            select(sa.func.count())
            .select_from(PersonErasure)
            .where(col(PersonErasure.person_id).in_(ids))
        )
    ).one()
    return ErasurePublic(
        person_id=person_id,
        legal_basis=rules.ErasureBasis(erasure.legal_basis),
        erased_at=erasure.erased_at,
        erased_by=erasure.erased_by,
        person_records=int(records),
    )


def justification_digest(keyring: Keyring, person_id: uuid.UUID, justification: str) -> str:
    """The keyed digest an erasure keeps of its justification (bound to the person record):
    whoever holds the text and the blind-index key can show it was this one; nobody can read
    it back."""
    return keyring.blind_index("erasure-justification", f"{person_id}:{justification}")


async def erase_person(
    session: AsyncSession,
    *,
    keyring: Keyring,
    person_id: uuid.UUID,
    basis: rules.ErasureBasis,
    justification: str | None,
    actor: Actor | None,
    audit: Mapping[str, object] | None = None,
    at: datetime | None = None,
) -> tuple[ErasurePublic, bool]:
    """Erase what identifies a person, in every record linked with it, and say so: the data
    keys (so names, documents and every text sealed for her can no longer be opened, here or
    in a backup once its master key is destroyed), the identity records, the blind indexes
    and the identifier claims (a later identification of the same document finds nobody and
    records a new person). The person's non-identifying facts and everything about her cases
    stay. Returns the erasure and whether it happened now (False: erased before, nothing
    done again). An erasure done now is audited as `person.erased` (by `actor`, None for the
    system) with its legal basis, the records erased and the caller's `audit` facts, nothing
    that identifies her. `at` dates it when it repeats an erasure decided earlier (after a
    restore)."""
    if await session.get(Person, person_id) is None:
        raise PersonNotFound("No person with this id.")
    ids = await linked_person_ids(session, person_id)
    # Concurrent erasures of one person: the second waits here for the first, then finds it.
    await session.exec(
        for_update(select(Person).where(col(Person.id).in_(ids)).order_by(col(Person.id)), session)
    )
    done = await _erasure_public(session, person_id, ids)
    if done is not None:
        return done, False
    for model in (PersonKey, PersonIdentity, PersonBlindIndex, PersonIdentifierClaim):
        await session.exec(sa.delete(model).where(col(model.person_id).in_(ids)))
    # A key created in this same transaction is also held in the session: forget it too.
    new_keys = session.info.get(_NEW_DATA_KEYS, {})
    for erased in ids:
        new_keys.pop(erased, None)
    now = at or utcnow()
    already = set(
        (
            await session.exec(
                select(PersonErasure.person_id).where(col(PersonErasure.person_id).in_(ids))
            )
        ).all()
    )
    session.add_all(
        PersonErasure(
            person_id=record,
            legal_basis=basis.value,
            justification_digest=(
                None
                if justification is None
                else justification_digest(keyring, record, justification)
            ),
            erased_by=None if actor is None else actor.user_id,
            erased_at=now,
        )
        for record in ids
        if record not in already
    )
    await session.flush()
    erasure = await _erasure_public(session, person_id, ids)
    assert erasure is not None
    record_event(
        session,
        actor=actor,
        action="person.erased",
        entity_type="person",
        entity_id=person_id,
        changes={
            "legal_basis": {"to": erasure.legal_basis.value},
            "person_records": {"to": erasure.person_records},
            **{name: {"to": value} for name, value in (audit or {}).items()},
        },
    )
    return erasure, True


async def erased_person_ids(
    session: AsyncSession, person_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these person records were erased."""
    return set(
        (
            await session.exec(
                select(PersonErasure.person_id).where(col(PersonErasure.person_id).in_(person_ids))
            )
        ).all()
    )


async def request_erasure(
    session: AsyncSession,
    *,
    actor: Actor,
    keyring: Keyring,
    person_id: uuid.UUID,
    data: ErasureRequest,
) -> ErasurePublic:
    """An administrator erases a person (her right to erasure, a court order, a record made
    in error): audited once, with the legal basis and nothing that identifies her; asked
    again, the same answer and nothing done twice."""
    erasure, _ = await erase_person(
        session,
        keyring=keyring,
        person_id=person_id,
        basis=rules.ErasureBasis(data.legal_basis.value),
        justification=data.justification,
        actor=actor,
        audit={"justification": "[digest]"},
    )
    return erasure


async def surviving_records(session: AsyncSession) -> dict[uuid.UUID, uuid.UUID]:
    """Every person record with the surviving record it now counts as (links to any depth)."""
    roots = person_roots_on(utcnow())
    connection = await session.connection()
    rows = await connection.execute(sa.select(roots.c.person_id, roots.c.root_id))
    return {person_id: root_id for person_id, root_id in rows.all()}


@dataclass(frozen=True)
class RegisterEntry:
    """One erased person record, as the erasure register kept outside the database holds
    it: an id, a basis and a day, nothing that identifies her."""

    person_id: uuid.UUID
    legal_basis: rules.ErasureBasis
    erased_at: datetime


async def erasure_register(session: AsyncSession) -> list[RegisterEntry]:
    """Every erasure recorded, oldest first: to keep outside the database, so that a
    restored backup taken before some of them can be erased again (`reapply_erasures`)."""
    rows = await session.exec(
        select(PersonErasure).order_by(col(PersonErasure.erased_at), col(PersonErasure.person_id))
    )
    return [
        RegisterEntry(
            person_id=row.person_id,
            legal_basis=rules.ErasureBasis(row.legal_basis),
            erased_at=row.erased_at,
        )
        for row in rows.all()
    ]


@dataclass(frozen=True)
class ReapplyReport:
    erased: int  # erased again now: the database was restored from before their erasure
    already: int  # erased in this database too
    absent: int  # not in this database (recorded after its backup was taken)


async def reapply_erasures(
    session: AsyncSession, *, keyring: Keyring, register: Sequence[RegisterEntry]
) -> ReapplyReport:
    """Erase again, after a restore, every person record of the register that the restored
    database still holds unerased: same legal basis, same day; each audited."""
    erased = already = absent = 0
    for entry in register:
        if await session.get(Person, entry.person_id) is None:
            absent += 1
            continue
        _, now = await erase_person(
            session,
            keyring=keyring,
            person_id=entry.person_id,
            basis=entry.legal_basis,
            justification=None,
            actor=None,
            audit={"reapplied_after_restore": True},
            at=entry.erased_at,
        )
        if now:
            erased += 1
        else:
            already += 1
    return ReapplyReport(erased=erased, already=already, absent=absent)
