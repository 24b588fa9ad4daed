"""A waiting person's risk-change reason sealed under her data key

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29 03:40:00

`placement_request_risk_change.reason` is a caseworker's free text about why a waiting
person's risk changed: the most likely to name her or those around her. It gives way to
`reason_ciphertext`, sealed under the person's data key as 0021 sealed referral reasons (no
`reason_code`: the system never writes this reason). `allocation_decision.reason` stays: only
the placement rules write it (why they placed, waitlisted or found no facility), never a
caseworker. `facility_capacity_change.reason` is about a facility, not a person.

Existing texts are sealed here through the deployment's keyring (the settings Alembic runs
with). A text whose person was erased (no data key any more) cannot be sealed for her and is
dropped, never kept in clear. The downgrade never puts a text back in clear: it writes a
placeholder where a sealed reason was.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import context, op
from service.core.crypto import Keyring, WrappedKey, seal
from service.core.settings import Settings

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "placement_request_risk_change"
_DROPPED = "(sealed in 0022; not restored by the downgrade)"


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


def upgrade() -> None:
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason_ciphertext", sa.LargeBinary(), nullable=True))

    conn = op.get_bind()
    sealer = _Sealer(conn)
    rows = conn.execute(
        sa.text(
            "SELECT t.id, t.reason, c.person_id FROM placement_request_risk_change t"
            " JOIN placement_request r ON r.id = t.request_id"
            " JOIN case_file c ON c.id = r.case_id"
        )
    ).all()
    for row_id, reason, person_id in rows:
        conn.execute(
            sa.text(
                "UPDATE placement_request_risk_change SET reason_ciphertext = :sealed"
                " WHERE id = :id"
            ),
            {"sealed": sealer.seal(person_id, {"reason": reason}), "id": row_id},
        )

    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.drop_column("reason")


def downgrade() -> None:
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reason", sa.String(length=300), nullable=False, server_default=_DROPPED)
        )
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.alter_column("reason", server_default=None)
        batch_op.drop_column("reason_ciphertext")
