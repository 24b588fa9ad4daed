"""A release's counts cost one statement per table, plus a fixed few: the counted persons
are computed once for all the tables, not again for each."""

from __future__ import annotations

from datetime import date

from service.core.db import Database
from service.core.time import utcnow
from service.stats.catalogue import CATALOGUE, breakdown
from service.stats.counting import Scope, count_tables
from tests.support.statements import counting_statements

# Four kept results (the scoped identifications, the persons of the period and up to its
# end, the cases' standing), each created, analyzed and dropped; R1's populations; V9's hours.
FIXED = 4 * 3 + 2


async def test_whole_catalogue_is_counted_in_one_statement_per_table_plus_a_fixed_few(
    db: Database,
) -> None:
    tables = [(spec, breakdown(spec, None)) for spec in CATALOGUE.values()]
    scope = Scope(start=date(2016, 1, 1), end=date(2016, 12, 31), known_on=utcnow())
    async with db.session(write=False) as session:
        await session.connection()  # the transaction's BEGIN is not the count's
        with counting_statements(db) as statements:
            counted = await count_tables(session, tables=tables, scope=scope)
            whole = len(statements)
            # The kept results are dropped: the same transaction can count again.
            again = await count_tables(session, tables=tables[:1], scope=scope)
    assert [t.code for t in counted] == list(CATALOGUE)
    assert again[0].cells == counted[0].cells
    assert whole <= len(tables) + FIXED, statements.statements[:whole]
