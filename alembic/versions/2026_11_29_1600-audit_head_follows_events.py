"""A chain head follows the events appended to its chain (a trigger)

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-29 16:00:00

Every writing transaction appends its audit events to one chain and moves that chain's head
(`audit_chain_head`: the last seq and hash) to the last of them. The application did both, an
INSERT and an UPDATE: two round trips in every write. From here the database moves the head
itself, AFTER INSERT of each event: one round trip fewer in every writing transaction, and
no event can be appended, by the application or by SQL typed by hand, without the head
following it. The head only moves forward (a seq lower than the head's leaves it).

The application from this revision on relies on the trigger (service/audit/service.py):
`/readyz` answers 503 until the database is at the head revision. On SQLite, a later
migration that rebuilds `audit_event` (batch_alter_table) drops its triggers and must
create this one again, as 0005 and 0010 did for the append-only ones.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ADVANCE = (
    "UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash"
    " WHERE chain = NEW.chain AND seq < NEW.seq"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION ruta_audit_head_follows() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                {_ADVANCE};
                RETURN NULL;
            END
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_event_moves_head AFTER INSERT ON audit_event"
            " FOR EACH ROW EXECUTE FUNCTION ruta_audit_head_follows()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_event_moves_head AFTER INSERT ON audit_event"
            f" BEGIN {_ADVANCE}; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_moves_head ON audit_event")
        op.execute("DROP FUNCTION ruta_audit_head_follows()")
    else:
        op.execute("DROP TRIGGER audit_event_moves_head")
