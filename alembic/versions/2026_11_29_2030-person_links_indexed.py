"""Records linked into a person found by index

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-29 20:30:00

Every read of a person's identifying data (and every read that gathers the records linked
with a person) looks for the records merged into hers: `person.merged_into = :id`. Without
an index each such read scanned the whole `person` table, and the identifying records with
it: the audited read slowed as the registry grew (603 to 255 reads per second over 5,000
intakes on one worker, measured 2026-11-29). An index on `merged_into`; the reads are
written so that the planner can use it (service/persons/service.py).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | Sequence[str] | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_person_merged_into"), "person", ["merged_into"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_person_merged_into"), table_name="person")
