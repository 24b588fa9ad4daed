"""Free text about a victim sealed: referral reasons and consent overrides' justifications

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29 03:30:00

A caseworker's free text may name people: it is sealed under the person's data key (as a
transition's note or an interview's justification), never kept in clear.

- `referral` and `referral_status_change`: `reason` (clear text, up to 500 characters) gives
  way to `reason_code` (the system's reason: `unanswered_past_deadline`, `case_closed`,
  `consent_revoked`, `consent_refused`) and `reason_ciphertext` (a caseworker's reason, sealed).
- `consent_override`: `justification` gives way to `justification_ciphertext`.

Existing texts are sealed here, through the deployment's keyring (the settings Alembic runs
with: the same master keys as the service). A text whose person was erased (no data key any
more) cannot be sealed for her and is dropped, never kept in clear. The downgrade never
puts a text back in clear: it restores the codes and writes a placeholder where a caseworker's
text was.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import context, op
from service.core.crypto import Keyring, WrappedKey, seal
from service.core.settings import Settings

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SYSTEM_REASONS = ("unanswered_past_deadline", "case_closed", "consent_revoked", "consent_refused")
_REASON_TABLES = ("referral", "referral_status_change")
_DROPPED = "(sealed in 0021; not restored by the downgrade)"


def _keyring() -> Keyring:
    settings = context.config.attributes.get("settings")
    return Keyring(settings if isinstance(settings, Settings) else Settings())


class _Sealer:
    """Seals texts for persons through the keyring, built only when a text needs it."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self._keyring: Keyring | None = None
        self._keys: dict[str, bytes | None] = {}

    def seal(self, person_id: object, payload: dict[str, str]) -> bytes | None:
        owner = str(person_id if isinstance(person_id, uuid.UUID) else uuid.UUID(str(person_id)))
        if owner not in self._keys:
            if self._keyring is None:
                self._keyring = _keyring()
            row = self._conn.execute(
                sa.text("SELECT master_key_id, wrapped_key FROM person_key WHERE person_id = :p"),
                {"p": person_id},
            ).first()
            self._keys[owner] = (
                None
                if row is None
                else self._keyring.unwrap(WrappedKey(row[0], bytes(row[1])), owner=owner)
            )
        data_key = self._keys[owner]
        return None if data_key is None else seal(data_key, payload, owner=owner)


def _seal_reasons(conn: sa.Connection, sealer: _Sealer, table: str) -> None:
    """A system code moves to `reason_code`; a caseworker's text is sealed."""
    if table == "referral":
        source = "referral t JOIN case_file c ON c.id = t.case_id"
    else:
        source = (
            "referral_status_change t JOIN referral r ON r.id = t.referral_id"
            " JOIN case_file c ON c.id = r.case_id"
        )
    rows = conn.execute(
        sa.text(f"SELECT t.id, t.reason, c.person_id FROM {source} WHERE t.reason IS NOT NULL")  # noqa: S608 - fixed names
    ).all()
    for row_id, reason, person_id in rows:
        if reason in _SYSTEM_REASONS:
            values: dict[str, object] = {"code": reason, "sealed": None}
        else:
            values = {"code": None, "sealed": sealer.seal(person_id, {"reason": reason})}
        conn.execute(
            sa.text(
                f"UPDATE {table} SET reason_code = :code, reason_ciphertext = :sealed"  # noqa: S608
                " WHERE id = :id"
            ),
            {**values, "id": row_id},
        )


def upgrade() -> None:
    for table in _REASON_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("reason_code", sa.String(length=32), nullable=True))
            batch_op.add_column(sa.Column("reason_ciphertext", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("consent_override", schema=None) as batch_op:
        batch_op.add_column(sa.Column("justification_ciphertext", sa.LargeBinary(), nullable=True))

    conn = op.get_bind()
    sealer = _Sealer(conn)
    for table in _REASON_TABLES:
        _seal_reasons(conn, sealer, table)
    overrides = conn.execute(
        sa.text(
            "SELECT o.id, o.justification, c.person_id FROM consent_override o"
            " JOIN case_file c ON c.id = o.case_id"
        )
    ).all()
    for row_id, justification, person_id in overrides:
        conn.execute(
            sa.text(
                "UPDATE consent_override SET justification_ciphertext = :sealed WHERE id = :id"
            ),
            {"sealed": sealer.seal(person_id, {"justification": justification}), "id": row_id},
        )

    for table in _REASON_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("reason")
    with op.batch_alter_table("consent_override", schema=None) as batch_op:
        batch_op.drop_column("justification")


def downgrade() -> None:
    with op.batch_alter_table("consent_override", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "justification",
                sa.String(length=1000),
                nullable=False,
                server_default=_DROPPED,
            )
        )
    with op.batch_alter_table("consent_override", schema=None) as batch_op:
        batch_op.alter_column("justification", server_default=None)
        batch_op.drop_column("justification_ciphertext")
    for table in _REASON_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("reason", sa.String(length=500), nullable=True))
        op.execute(
            f"UPDATE {table} SET reason = COALESCE(reason_code, "  # noqa: S608 - fixed names
            f"CASE WHEN reason_ciphertext IS NULL THEN NULL ELSE '{_DROPPED}' END)"
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("reason_ciphertext")
            batch_op.drop_column("reason_code")
