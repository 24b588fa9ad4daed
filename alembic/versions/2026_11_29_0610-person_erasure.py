"""Erasure of a person recorded: person_erasure

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29 06:10:00

`person_erasure` says that a person record was erased, when, on what legal basis and by
whom (the justification only as a keyed digest). Before it, a person was erased by deleting
her `person_key` row by hand, which left her identity records, blind indexes and identifier
claims behind (a claim still naming her made a later identification of the same document
fail). Such persons are completed here: what could re-identify them is deleted, and the
erasure is recorded with the basis `unrecorded`. The downgrade drops the table; what was
deleted stays deleted.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel

import service.core.types
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITHOUT_KEY = "SELECT id FROM person WHERE id NOT IN (SELECT person_id FROM person_key)"


def upgrade() -> None:
    op.create_table(
        "person_erasure",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("legal_basis", sa.String(length=32), nullable=False),
        sa.Column(
            "justification_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column("erased_by", sa.Uuid(), nullable=True),
        sa.Column("erased_at", service.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["erased_by"], ["app_user.id"], name=op.f("fk_person_erasure_erased_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_person_erasure_person_id_person")
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_person_erasure")),
    )
    with op.batch_alter_table("person_erasure", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_person_erasure_erased_at"), ["erased_at"], unique=False
        )
    conn = op.get_bind()
    for table in ("person_identity", "person_blind_index", "person_identifier_claim"):
        conn.execute(sa.text(f"DELETE FROM {table} WHERE person_id IN ({_WITHOUT_KEY})"))  # noqa: S608
    erasure = sa.table(
        "person_erasure",
        sa.column("person_id", sa.Uuid()),
        sa.column("legal_basis", sa.String()),
        sa.column("erased_at", service.core.types.UTCDateTime(timezone=True)),
    )
    found = datetime.now(UTC)
    rows = [
        {"person_id": person_id, "legal_basis": "unrecorded", "erased_at": found}
        for (person_id,) in conn.execute(sa.text(_WITHOUT_KEY).columns(sa.column("id", sa.Uuid())))
    ]
    if rows:
        op.bulk_insert(erasure, rows)


def downgrade() -> None:
    with op.batch_alter_table("person_erasure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_erasure_erased_at"))
    op.drop_table("person_erasure")
