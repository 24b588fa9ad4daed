"""A case, its identifications and the organizations involved in it."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.core.db import partial_unique_index
from service.core.preconditions import Versioned
from service.core.time import utcnow
from service.core.types import UTCDateTime, code_column


class CaseFile(Versioned, table=True):
    """One person's path through the referral pathway; holds no identifying data."""

    __tablename__ = "case_file"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    person_id: uuid.UUID = Field(foreign_key="person.id", index=True)
    status: str = Field(sa_type=code_column(), index=True)
    victim_status: str = Field(sa_type=code_column())
    is_witness: bool = False
    # Where the person is now, a caseworker's free text that may name her or those who keep
    # her: sealed under her data key (`{"current_location": ...}`), never kept in clear.
    current_location_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Identification(SQLModel, table=True):
    """An institution meeting a person it suspects is a victim."""

    __tablename__ = "identification"
    __table_args__ = (
        sa.Index("ix_identification_case_id_created_at", "case_id", "created_at"),
        # A Peruvian region or a foreign country, never both, never neither.
        sa.CheckConstraint(
            "(region IS NOT NULL AND exploitation_country IS NULL)"
            " OR (region IS NULL AND exploitation_country IS NOT NULL"
            " AND exploitation_country <> 'PER')",
            name="one_place_of_exploitation",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id")
    # The person record this identification named when it was made. Never re-pointed: a
    # later link of two records is dated on the person (`merged_at`), so statistics can
    # count persons as they were known on any day.
    person_id: uuid.UUID = Field(foreign_key="person.id", index=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    identified_by: uuid.UUID = Field(foreign_key="app_user.id")
    identified_on: date = Field(index=True)
    # The person's age in completed years on `identified_on` (the conservative rule of
    # persons.rules.age_on_date), stored exactly for statistics; None when unknown.
    person_age: int | None = None
    region: str | None = Field(default=None, foreign_key="region.code", max_length=2, index=True)
    exploitation_country: str | None = Field(default=None, max_length=3, index=True)
    place: str = Field(max_length=200)
    context: str = Field(sa_type=code_column())
    operation_ref: str | None = Field(default=None, max_length=100)
    indicators: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# The partial unique index's condition: the rows of the current version.
CURRENT_EXPLOITATION = "superseded_at IS NULL"


class IdentificationExploitation(SQLModel, table=True):
    """One suspected form of exploitation of an identification (a row each, for statistics).
    A correction supersedes the rows it replaces (dated) instead of deleting them, so the
    forms known on any past day can be counted again."""

    __tablename__ = "identification_exploitation"
    __table_args__ = (
        partial_unique_index(
            "uq_identification_exploitation_current",
            "identification_id",
            "form",
            "sector",
            where=CURRENT_EXPLOITATION,
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    identification_id: uuid.UUID = Field(foreign_key="identification.id", index=True)
    form: str = Field(sa_type=code_column(), index=True)
    sector: str | None = Field(default=None, sa_type=code_column())
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    superseded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IdentificationRoute(SQLModel, table=True):
    """One country of the migration path of an identification (a row each, for statistics)."""

    __tablename__ = "identification_route"
    __table_args__ = (sa.UniqueConstraint("identification_id", "position"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    identification_id: uuid.UUID = Field(foreign_key="identification.id", index=True)
    position: int
    country: str = Field(max_length=3, index=True)
    role: str = Field(sa_type=code_column())


class CaseInvolvement(SQLModel, table=True):
    """A dated period in which an organization is involved in a case, and why."""

    __tablename__ = "case_involvement"
    __table_args__ = (
        sa.Index("ix_case_involvement_case_id_organization_id", "case_id", "organization_id"),
        sa.Index("ix_case_involvement_organization_id_case_id", "organization_id", "case_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    basis: str = Field(sa_type=code_column())
    source_id: uuid.UUID | None = None
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CaseTransition(SQLModel, table=True):
    """A dated move of a case between states, with who, why and what triggered it."""

    __tablename__ = "case_transition"
    __table_args__ = (sa.Index("ix_case_transition_case_id_at", "case_id", "at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id")
    from_status: str = Field(sa_type=code_column())
    to_status: str = Field(sa_type=code_column(), index=True)
    reason: str | None = Field(default=None, sa_type=code_column())
    trigger: str = Field(sa_type=code_column())
    # The caller's free-text note, which may identify the person: sealed under their data key.
    note_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    actor_user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    organization_id: uuid.UUID | None = Field(default=None, foreign_key="organization.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def has_note(self) -> bool:
        return self.note_ciphertext is not None


class Screening(SQLModel, table=True):
    """A decision on victim status, by the deciding organization; notes are encrypted."""

    __tablename__ = "screening"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    victim_status: str = Field(sa_type=code_column())
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    screened_by: uuid.UUID = Field(foreign_key="app_user.id")
    notes_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    screened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
