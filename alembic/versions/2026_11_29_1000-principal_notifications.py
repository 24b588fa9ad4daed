"""A change to who a user is, announced to every worker (PostgreSQL)

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-29 10:00:00

Workers remember a token's principal for a few seconds (RUTA_PRINCIPAL_CACHE_SECONDS). On
PostgreSQL each of them also LISTENs on the channel `ruta_principals`, and forgets what it
remembers as soon as these triggers announce a change: a user disabled, given another role,
moved to another organization, renamed or given a new token generation (a password reset),
a user deleted, or an organization changed. Whoever makes the change (`ruta user`, an API
route, SQL typed by hand), every worker of every host hears it once the change commits.
SQLite has no such channel: there the cache's seconds are the bound.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "ruta_principals"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION ruta_announce_principals() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER app_user_announced"
        " AFTER UPDATE OF username, organization_id, role, is_active, token_generation"
        " OR DELETE ON app_user"
        " FOR EACH STATEMENT EXECUTE FUNCTION ruta_announce_principals()"
    )
    op.execute(
        "CREATE TRIGGER organization_announced"
        " AFTER UPDATE OF code, name, kind, region OR DELETE ON organization"
        " FOR EACH STATEMENT EXECUTE FUNCTION ruta_announce_principals()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER organization_announced ON organization")
    op.execute("DROP TRIGGER app_user_announced ON app_user")
    op.execute("DROP FUNCTION ruta_announce_principals()")
