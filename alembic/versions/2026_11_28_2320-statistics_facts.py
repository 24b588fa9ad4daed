"""the facts statistics count, dated so a past release can be recomputed

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 23:20:00

- `identification.person_id`: the person record the identification named when it was made
  (never re-pointed), and `identification.person_age`: the person's age on that day, stored
  exactly. Backfilled from the case's person and the age rule of persons.rules.age_on_date
  (copied here: a migration must not change when the rule does).
- `person.merged_at`: when a record was linked into another (backfilled with the time of
  this migration for links made before it: that is when Ruta starts knowing their date).
- `identification_exploitation.recorded_at` / `superseded_at`: a correction supersedes the
  forms it replaces instead of deleting them; the unique constraint becomes a partial index
  over the current rows.
- `consent.covers_statistics`: whether the purposes name statistics, a column of its own
  for SQL on both databases (backfilled from the JSON purposes).
- `statistics_basis`: a legal basis, other than consent, for counting a case.
- `region_population`: each region's censused population per census year, with its source
  (the 2017 census is loaded by the seed): the denominators of the rates per 100,000.
- `stats_release`: a published release of anonymized tables, its parameters and digest.
- `custody_period.recorded_at` / `end_recorded_at`: when Ruta learnt of the period and of
  its end (backfilled with the start and the end: the best there is).
"""

import json
from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
import sqlmodel

import service.core.types
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT = sa.text("superseded_at IS NULL")


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _age_on(
    *, age: int | None, estimate: bool, birth_year: int | None, first_on: date, on: date
) -> int | None:
    """persons.rules.age_on_date as of this revision: the youngest age the records allow."""
    if age is None:
        return None
    latest_birth = _years_before(first_on, age)
    if birth_year is not None and not estimate:
        latest_birth = min(latest_birth, date(birth_year, 12, 31))
    years = (
        on.year - latest_birth.year - ((on.month, on.day) < (latest_birth.month, latest_birth.day))
    )
    return max(0, years)


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _backfill_identifications(bind: sa.engine.Connection) -> None:
    rows = bind.execute(
        sa.text(
            "SELECT i.id, i.identified_on, i.created_at, c.person_id, p.age_at_identification,"
            " p.age_is_estimate, p.birth_year"
            " FROM identification i JOIN case_file c ON c.id = i.case_id"
            " JOIN person p ON p.id = c.person_id"
            " ORDER BY i.created_at, i.id"
        )
    ).all()
    first_on: dict[object, date] = {}
    update = sa.text(
        "UPDATE identification SET person_id = :person_id, person_age = :age WHERE id = :id"
    ).bindparams(sa.bindparam("id", type_=sa.Uuid()), sa.bindparam("person_id", type_=sa.Uuid()))
    for ident_id, identified_on, _created, person_id, age, estimate, birth_year in rows:
        on = _as_date(identified_on)
        first = first_on.setdefault(person_id, on)
        bind.execute(
            update,
            {
                "id": ident_id,
                "person_id": person_id,
                "age": _age_on(
                    age=age, estimate=bool(estimate), birth_year=birth_year, first_on=first, on=on
                ),
            },
        )


def _backfill_consents(bind: sa.engine.Connection) -> None:
    update = sa.text("UPDATE consent SET covers_statistics = :covers WHERE id = :id").bindparams(
        sa.bindparam("id", type_=sa.Uuid())
    )
    for consent_id, purposes in bind.execute(sa.text("SELECT id, purposes FROM consent")).all():
        listed = purposes if isinstance(purposes, list) else json.loads(purposes or "[]")
        bind.execute(update, {"id": consent_id, "covers": "statistics" in listed})


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "stats_release",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("known_on", service.core.types.UTCDateTime(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("tables", sa.JSON(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", service.core.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_stats_release_created_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_stats_release_organization_id_organization"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_release")),
    )
    op.create_table(
        "region_population",
        sa.Column("region", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.CheckConstraint("population > 0", name=op.f("ck_region_population_population_positive")),
        sa.ForeignKeyConstraint(
            ["region"], ["region.code"], name=op.f("fk_region_population_region_region")
        ),
        sa.PrimaryKeyConstraint("region", "year", name=op.f("pk_region_population")),
    )
    op.create_table(
        "statistics_basis",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", service.core.types.UTCDateTime(), nullable=False),
        sa.Column("withdrawn_at", service.core.types.UTCDateTime(), nullable=True),
        sa.Column("withdrawn_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "withdrawn_at IS NULL OR withdrawn_at >= recorded_at",
            name=op.f("ck_statistics_basis_withdrawn_after_recorded"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_statistics_basis_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_statistics_basis_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["app_user.id"], name=op.f("fk_statistics_basis_recorded_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["withdrawn_by"],
            ["app_user.id"],
            name=op.f("fk_statistics_basis_withdrawn_by_app_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statistics_basis")),
    )
    with op.batch_alter_table("statistics_basis", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_statistics_basis_case_id"), ["case_id"], unique=False)

    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("covers_statistics", sa.Boolean(), nullable=True))
    _backfill_consents(bind)
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.alter_column("covers_statistics", existing_type=sa.Boolean(), nullable=False)

    with op.batch_alter_table("identification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("person_age", sa.Integer(), nullable=True))
    _backfill_identifications(bind)
    with op.batch_alter_table("identification", schema=None) as batch_op:
        batch_op.alter_column("person_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.create_index(
            batch_op.f("ix_identification_person_id"), ["person_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_identification_person_id_person"), "person", ["person_id"], ["id"]
        )

    with op.batch_alter_table("identification_exploitation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recorded_at", service.core.types.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("superseded_at", service.core.types.UTCDateTime(), nullable=True)
        )
    op.execute(
        "UPDATE identification_exploitation SET recorded_at = (SELECT i.created_at"
        " FROM identification i WHERE i.id = identification_exploitation.identification_id)"
    )
    with op.batch_alter_table("identification_exploitation", schema=None) as batch_op:
        batch_op.alter_column(
            "recorded_at", existing_type=service.core.types.UTCDateTime(), nullable=False
        )
        batch_op.drop_constraint(
            batch_op.f("uq_identification_exploitation_identification_id_form_sector"),
            type_="unique",
        )
        batch_op.create_index(
            "uq_identification_exploitation_current",
            ["identification_id", "form", "sector"],
            unique=True,
            postgresql_where=CURRENT,
            sqlite_where=CURRENT,
        )

    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_at", service.core.types.UTCDateTime(), nullable=True))
    op.execute("UPDATE person SET merged_at = CURRENT_TIMESTAMP WHERE merged_into IS NOT NULL")

    with op.batch_alter_table("custody_period", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recorded_at", service.core.types.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("end_recorded_at", service.core.types.UTCDateTime(), nullable=True)
        )
    op.execute("UPDATE custody_period SET recorded_at = start_at, end_recorded_at = end_at")
    with op.batch_alter_table("custody_period", schema=None) as batch_op:
        batch_op.alter_column(
            "recorded_at", existing_type=service.core.types.UTCDateTime(), nullable=False
        )


def downgrade() -> None:
    superseded = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT count(*) FROM identification_exploitation WHERE superseded_at IS NOT NULL"
            )
        )
        .scalar_one()
    )
    if superseded:
        # Before 0015 a correction deleted the forms it replaced: do the same.
        op.execute("DELETE FROM identification_exploitation WHERE superseded_at IS NOT NULL")
    with op.batch_alter_table("custody_period", schema=None) as batch_op:
        batch_op.drop_column("end_recorded_at")
        batch_op.drop_column("recorded_at")

    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("merged_at")

    with op.batch_alter_table("identification_exploitation", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_identification_exploitation_current", postgresql_where=CURRENT, sqlite_where=CURRENT
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_identification_exploitation_identification_id_form_sector"),
            ["identification_id", "form", "sector"],
        )
        batch_op.drop_column("superseded_at")
        batch_op.drop_column("recorded_at")

    with op.batch_alter_table("identification", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_identification_person_id_person"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_identification_person_id"))
        batch_op.drop_column("person_age")
        batch_op.drop_column("person_id")

    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_column("covers_statistics")

    with op.batch_alter_table("statistics_basis", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_statistics_basis_case_id"))

    op.drop_table("statistics_basis")
    op.drop_table("region_population")
    op.drop_table("stats_release")
