"""Persons: encrypted identity, blind-index duplicate detection, linking, key rotation."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.core.crypto import Keyring, WrappedKey, open_sealed, seal
from service.core.db import insert_ignoring_conflicts, table_of
from service.core.errors import InvalidInput
from service.core.time import utcnow
from service.persons import rules
from service.persons.exceptions import BIRTH_DATE_ERRORS
from service.persons.models import (
    Person,
    PersonBlindIndex,
    PersonIdentifierClaim,
    PersonIdentity,
    PersonKey,
)
from service.persons.schemas import (
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
    new: bytes | None = session.info.get(_NEW_DATA_KEYS, {}).get(person_id)
    if new is not None:
        return new
    key = await session.get(PersonKey, person_id)
    if key is None:
        raise LookupError(f"person {person_id} has no data key (erased)")
    return keyring.unwrap(WrappedKey(key.master_key_id, key.wrapped_key), owner=str(person_id))


async def _record_identity(
    session: AsyncSession,
    *,
    keyring: Keyring,
    person_id: uuid.UUID,
    organization_id: uuid.UUID,
    data: PersonCreate,
    digests: dict[rules.MatchKind, str],
) -> None:
    payload = data.model_dump(mode="json", include=set(IDENTIFYING_FIELDS))
    if any(v is not None for v in payload.values()):
        data_key = await _data_key(session, keyring, person_id)
        session.add(
            PersonIdentity(
                person_id=person_id,
                recorded_by_org=organization_id,
                ciphertext=seal(data_key, payload, owner=str(person_id)),
            )
        )
    await session.flush()
    # Ignoring conflicts: two identifications joining one person at once may bring the same
    # new identifier.
    await insert_ignoring_conflicts(
        session,
        table_of(PersonBlindIndex),
        [
            {"id": uuid.uuid4(), "person_id": person_id, "kind": kind.value, "digest": digest}
            for kind, digest in digests.items()
        ],
        on=["person_id", "kind", "digest"],
    )


async def _claimant(session: AsyncSession, kind: rules.MatchKind, digest: str) -> uuid.UUID | None:
    return (
        await session.exec(
            select(PersonIdentifierClaim.person_id).where(
                PersonIdentifierClaim.kind == kind.value, PersonIdentifierClaim.digest == digest
            )
        )
    ).first()


async def _surviving(session: AsyncSession, person_id: uuid.UUID) -> Person:
    person = await get_person(session, person_id)
    while person.merged_into is not None:
        person = await get_person(session, person.merged_into)
    return person


async def _claim(
    session: AsyncSession, kind: rules.MatchKind, digest: str, person_id: uuid.UUID
) -> bool:
    """Whether the person now holds the identifier. The database decides: on PostgreSQL an
    insert that collides with an uncommitted claim waits for it and then yields; on SQLite
    the writing transaction already holds the write lock."""
    claim = {
        "id": uuid.uuid4(),
        "kind": kind.value,
        "digest": digest,
        "person_id": person_id,
        "claimed_at": utcnow(),
    }
    claims = table_of(PersonIdentifierClaim)
    won = await insert_ignoring_conflicts(
        session, claims, [claim], on=["kind", "digest"], returning=claims.c.person_id
    )
    return won == [person_id]


async def _new_person(
    session: AsyncSession, *, keyring: Keyring, data: PersonCreate, identified_on: date
) -> Person:
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
    session.add(person)
    await session.flush()
    data_key = Keyring.new_data_key()
    session.info.setdefault(_NEW_DATA_KEYS, {})[person.id] = data_key
    wrapped = keyring.wrap(data_key, owner=str(person.id))
    session.add(
        PersonKey(
            person_id=person.id, master_key_id=wrapped.master_key_id, wrapped_key=wrapped.blob
        )
    )
    await session.flush()
    return person


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
    person = await _new_person(session, keyring=keyring, data=data, identified_on=identified_on)
    if await _claim(session, rules.MatchKind.document, digest, person.id):
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
) -> tuple[Person, list[PossibleDuplicate]]:
    """The person of a new identification: the same person when the document matches one
    already recorded (even one recorded at this very moment), otherwise a new person;
    candidates that share name and birth date are listed for a caseworker to link."""
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
        person = await _new_person(session, keyring=keyring, data=data, identified_on=identified_on)
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
    await _record_identity(
        session,
        keyring=keyring,
        person_id=person.id,
        organization_id=organization_id,
        data=data,
        digests=digests,
    )
    return person, duplicates


async def get_person(session: AsyncSession, person_id: uuid.UUID) -> Person:
    person = await session.get(Person, person_id)
    if person is None:
        raise LookupError(f"person {person_id} does not exist")
    return person


def facts_of(person_id: uuid.UUID | sa.BindParameter[uuid.UUID]) -> sa.Subquery:
    """The person's non-identifying columns (one row, named as on the person), to join into
    another domain's read: the same statement, no round trip of its own."""
    person = table_of(Person)
    return (
        sa.select(
            person.c.id,
            person.c.birth_year,
            person.c.age_at_identification,
            person.c.age_is_estimate,
            person.c.gender,
            person.c.nationality,
            person.c.indigenous_people,
            person.c.languages,
            person.c.lgbti,
        )
        .where(person.c.id == person_id)
        .subquery("person_facts")
    )


def person_facts(person: Person, *, minor: bool) -> PersonFacts:
    """What the case shows of the person: nothing identifying. Whether the person is a minor
    is decided by the caller, on the day of the event it qualifies."""
    return facts_from(person.model_dump(), minor=minor)


def facts_from(person: Mapping[str, Any], *, minor: bool) -> PersonFacts:
    """`person_facts` of the person's columns by name (a row read through `facts_of`)."""
    return PersonFacts(
        id=person["id"],
        age_at_identification=person["age_at_identification"],
        age_is_estimate=person["age_is_estimate"],
        minor=minor,
        gender=rules.Gender(person["gender"]),
        nationality=person["nationality"],
        indigenous_people=person["indigenous_people"],
        languages=person["languages"],
        lgbti=person["lgbti"],
    )


async def read_identifying(
    session: AsyncSession, *, keyring: Keyring, person_id: uuid.UUID
) -> PersonIdentifying:
    """The newest identifying record of the person and of records linked into it, read in
    one statement with their data keys."""
    identity, key, person = table_of(PersonIdentity), table_of(PersonKey), table_of(Person)
    linked = sa.select(person.c.id).where(person.c.merged_into == person_id)
    # A record whose data key is gone (erased) cannot be opened: the inner join skips it.
    connection = await session.connection()
    records = (
        await connection.execute(
            sa.select(
                identity.c.person_id, identity.c.ciphertext, key.c.master_key_id, key.c.wrapped_key
            )
            .join(key, key.c.person_id == identity.c.person_id)
            .where(sa.or_(identity.c.person_id == person_id, identity.c.person_id.in_(linked)))
            .order_by(identity.c.recorded_at.desc())
        )
    ).all()
    merged: dict[str, Any] = {}
    keys: dict[uuid.UUID, bytes] = {}
    for owner, ciphertext, master_key_id, wrapped_key in records:
        if owner not in keys:
            keys[owner] = keyring.unwrap(WrappedKey(master_key_id, wrapped_key), owner=str(owner))
        payload = open_sealed(keys[owner], ciphertext, owner=str(owner))
        # Newest first: a field keeps its newest known value.
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
    session: AsyncSession, *, keyring: Keyring, person_id: uuid.UUID, payload: dict[str, Any]
) -> bytes:
    """Encrypt sensitive free text about a person (screening notes) under their data key."""
    return seal(await _data_key(session, keyring, person_id), payload, owner=str(person_id))


async def open_for_person(
    session: AsyncSession, *, keyring: Keyring, person_id: uuid.UUID, sealed: bytes
) -> dict[str, Any] | None:
    """Decrypt what `seal_for_person` sealed for this person or for a record since linked into
    it; None when the person was erased (the data key is gone)."""
    linked = (await session.exec(select(Person.id).where(Person.merged_into == person_id))).all()
    erased = False
    for owner in (person_id, *linked):
        try:
            data_key = await _data_key(session, keyring, owner)
        except LookupError:
            erased = True  # perhaps the record it was sealed for
            continue
        try:
            return open_sealed(data_key, sealed, owner=str(owner))
        except InvalidTag:
            continue  # sealed for another of the linked records
    if erased:
        return None
    # Every key is there and none opens it: altered, or not this person's.
    raise ValueError(f"the sealed payload belongs to no record of person {person_id}")


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
