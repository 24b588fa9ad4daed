"""One waitlist order: the SQL production runs and `rules.priority` agree on random waitlists,
and so does the position the API answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.capacity import rules
from service.capacity.models import PlacementRequest
from service.capacity.service import waitlist
from service.core.db import Database, table_of
from service.core.security import Security
from tests.support.audit import create_cases, make_actor
from tests.support.databases import query

SIZE = 24
BASE = datetime(2016, 6, 14, 8, 0, tzinfo=UTC)

entries = st.lists(
    st.tuples(
        st.booleans(),  # minor
        st.integers(min_value=0, max_value=3),  # risk level
        st.integers(min_value=0, max_value=4),  # minutes after BASE: ties are common
        st.uuids(version=4),
    ),
    min_size=1,
    max_size=SIZE,
    unique_by=lambda e: e[3],
)


@pytest.fixture(scope="module")
async def case_ids(db: Database, app: object) -> list[uuid.UUID]:
    """Cases for the random requests to hang off (one waiting request per case)."""
    security: Security = app.state.security  # type: ignore[attr-defined]
    actor = await make_actor(db, security)
    await create_cases(db, actor, SIZE)
    rows = await query(
        db,
        "SELECT c.id FROM case_file c JOIN identification i ON i.case_id = c.id"
        " WHERE i.identified_by = :user",
        user=actor.user_id.hex if db.dialect == "sqlite" else actor.user_id,
    )
    ids = [uuid.UUID(str(r[0])) for r in rows]
    assert len(ids) == SIZE
    return ids


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(drawn=entries)
async def test_the_sql_order_and_the_positions_follow_rules_priority(
    db: Database, case_ids: list[uuid.UUID], drawn: list[tuple[bool, int, int, uuid.UUID]]
) -> None:
    session = AsyncSession(db.engine, expire_on_commit=False)
    try:
        # Alone on the list: everyone else's requests are set aside in this transaction only.
        requests = table_of(PlacementRequest)
        await session.exec(
            sa.update(requests).where(requests.c.status == "waiting").values(status="withdrawn")
        )
        rows = [
            PlacementRequest(
                id=request_id,
                case_id=case_ids[n],
                status="waiting",
                minor=minor,
                risk_level=risk,
                needs={},
                region="17",
                requested_at=BASE + timedelta(minutes=minutes),
            )
            for n, (minor, risk, minutes, request_id) in enumerate(drawn)
        ]
        session.add_all(rows)
        await session.flush()

        in_sql = (
            await session.exec(
                select(PlacementRequest.id)
                .where(col(PlacementRequest.id).in_([r.id for r in rows]))
                .order_by(*waitlist.order_by())
            )
        ).all()
        expected = [r.id for r in sorted(rows, key=lambda r: rules.priority(waitlist.entry(r)))]
        positions = {r.id: await waitlist.position(session, r) for r in rows}

        assert list(in_sql) == expected
        assert [positions[i] for i in expected] == list(range(1, len(rows) + 1))
    finally:
        await session.rollback()
        await session.close()
