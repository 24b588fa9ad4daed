"""The person a case is about: non-identifying facts in clear, identity encrypted apart."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column


class Person(SQLModel, table=True):
    """A (suspected) victim: only what statistics need, in clear."""

    __tablename__ = "person"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    birth_year: int | None = None
    age_at_identification: int | None = None
    age_is_estimate: bool = False
    gender: str = Field(sa_type=code_column())
    nationality: str | None = Field(default=None, max_length=3, index=True)
    indigenous_people: str | None = Field(default=None, max_length=80)
    languages: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    lgbti: bool | None = None
    # Set when a caseworker links this record to the same person recorded earlier.
    merged_into: uuid.UUID | None = Field(default=None, foreign_key="person.id", index=True)
    # When that link was made: statistics "as known on" a day before it count two persons.
    merged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PersonKey(SQLModel, table=True):
    """The person's data key, wrapped by a master key. Deleting it erases the person."""

    __tablename__ = "person_key"

    person_id: uuid.UUID = Field(primary_key=True, foreign_key="person.id")
    master_key_id: str = Field(max_length=32)
    wrapped_key: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    rewrapped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PersonIdentity(SQLModel, table=True):
    """One dated record of identifying data, encrypted under the person's data key."""

    __tablename__ = "person_identity"
    __table_args__ = (
        sa.Index("ix_person_identity_person_id_recorded_at", "person_id", "recorded_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    person_id: uuid.UUID = Field(foreign_key="person.id")
    recorded_by_org: uuid.UUID = Field(foreign_key="organization.id")
    ciphertext: bytes = Field(sa_type=sa.LargeBinary)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PersonBlindIndex(SQLModel, table=True):
    """A keyed digest of a normalized identifier, to find the same person again."""

    __tablename__ = "person_blind_index"
    __table_args__ = (sa.UniqueConstraint("person_id", "kind", "digest"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    person_id: uuid.UUID = Field(foreign_key="person.id", index=True)
    kind: str = Field(sa_type=code_column())
    digest: str = Field(max_length=64, index=True)


class PersonIdentifierClaim(SQLModel, table=True):
    """The one person an identifier belongs to (the same document means the same person).

    One row per (kind, digest), claimed with an insert the database arbitrates: of two
    identifications of one document at once, the second's insert waits for the first to
    commit and then finds the claim taken, so it never creates a second person. It always
    names a surviving person: linking a record into another moves its claims along.
    """

    __tablename__ = "person_identifier_claim"
    __table_args__ = (sa.UniqueConstraint("kind", "digest"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(sa_type=code_column())
    digest: str = Field(max_length=64)
    person_id: uuid.UUID = Field(foreign_key="person.id", index=True)
    claimed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PersonErasure(SQLModel, table=True):
    """That a person record was erased: when, on what legal basis, by whom. What identified
    the person (data key, identity records, blind indexes, identifier claims) is gone; the
    non-identifying facts stay, so statistics do not change.

    The justification an administrator gives is kept only as a keyed digest
    (`justification_digest`): it proves later which text was given (an inspector holding
    the paper file recomputes it) but cannot be read back, so a justification that names the
    person does not undo the erasure."""

    __tablename__ = "person_erasure"

    person_id: uuid.UUID = Field(primary_key=True, foreign_key="person.id")
    legal_basis: str = Field(sa_type=code_column())
    justification_digest: str | None = Field(default=None, max_length=64)
    # The administrator who asked; None for `ruta retention run` and erasures found by 0024.
    erased_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    erased_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
