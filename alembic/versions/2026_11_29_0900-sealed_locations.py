"""Where the person is now sealed under her data key

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-29 09:00:00

`case_file.current_location` is free text a caseworker types about where the person is now
(a shelter, a relative's house, a named street): it may name her or those who keep her. It
gives way to `current_location_ciphertext`, sealed under the person's data key as 0021
sealed referral reasons, so that erasing her leaves nothing of it readable.

Existing texts are sealed here through the deployment's keyring (the settings Alembic runs
with). A text whose person was erased (no data key any more) cannot be sealed for her and is
dropped, never kept in clear. The downgrade never puts a text back in clear: it writes a
placeholder where a sealed location was.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import context, op
from service.core.crypto import Keyring, WrappedKey, seal
from service.core.settings import Settings

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROPPED = "(sealed in 0025; not restored by the downgrade)"


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
    with op.batch_alter_table("case_file", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("current_location_ciphertext", sa.LargeBinary(), nullable=True)
        )

    conn = op.get_bind()
    sealer = _Sealer(conn)
    rows = conn.execute(
        sa.text(
            "SELECT id, current_location, person_id FROM case_file"
            " WHERE current_location IS NOT NULL"
        )
    ).all()
    for case_id, location, person_id in rows:
        conn.execute(
            sa.text("UPDATE case_file SET current_location_ciphertext = :sealed WHERE id = :id"),
            {"sealed": sealer.seal(person_id, {"current_location": location}), "id": case_id},
        )

    with op.batch_alter_table("case_file", schema=None) as batch_op:
        batch_op.drop_column("current_location")


def downgrade() -> None:
    with op.batch_alter_table("case_file", schema=None) as batch_op:
        batch_op.add_column(sa.Column("current_location", sa.String(length=200), nullable=True))
    op.execute(
        "UPDATE case_file SET current_location ="  # noqa: S608 - a fixed placeholder
        f" CASE WHEN current_location_ciphertext IS NULL THEN NULL ELSE '{_DROPPED}' END"
    )
    with op.batch_alter_table("case_file", schema=None) as batch_op:
        batch_op.drop_column("current_location_ciphertext")
