"""Statistics on a real hot standby: a PostgreSQL primary of the test's own and a streaming
replica made from it by pg_basebackup -R, each on its own port. The standby refuses every
write, temporary tables included; the statistics are counted there all the same, and the
release is recorded in the primary."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from service.core.db import Database
from service.core.time import utcnow
from service.identity.rules import Role
from service.main import create_app
from service.stats.catalogue import CATALOGUE, breakdown
from service.stats.counting import Scope, count_tables
from tests.stats.test_replica import YEAR, _identify, _total
from tests.support.databases import make_settings, migrate_and_seed, query
from tests.support.factories import Factory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

IDENTIFIED = 12
REPLAY_WAIT_SECONDS = 60


@dataclass(frozen=True)
class Cluster:
    primary_port: int
    standby_port: int

    def url(self, port: int) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/ruta"

    def dsn(self, port: int, database: str = "ruta") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_postgres(*argv: str) -> None:
    """Run a PostgreSQL tool as the postgres user (the servers refuse to run as root)."""
    subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None or shutil.which("runuser") is None or os.geteuid() != 0:
        pytest.skip("needs PostgreSQL's server tools and root (to run them as postgres)")
    bindir = Path(pg_ctl).resolve().parent
    postgres = pwd.getpwnam("postgres")
    root = Path(tempfile.mkdtemp(prefix="ruta-replica-"))
    os.chown(root, postgres.pw_uid, postgres.pw_gid)
    primary, standby = root / "primary", root / "standby"
    ports = Cluster(_free_port(), _free_port())
    started: list[Path] = []
    try:
        _as_postgres(str(bindir / "initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust")
        with (primary / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                f"port = {ports.primary_port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{root}'\nwal_level = replica\n"
                "max_wal_senders = 4\nfsync = off\n"
            )
        _as_postgres(
            str(bindir / "pg_ctl"), "-D", str(primary), "-l", f"{root}/primary.log", "-w", "start"
        )
        started.append(primary)
        _as_postgres(
            str(bindir / "pg_basebackup"),
            f"--dbname=host=127.0.0.1 port={ports.primary_port} user=postgres",
            "-D",
            str(standby),
            "-R",
            "-X",
            "stream",
        )
        with (standby / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"port = {ports.standby_port}\nhot_standby = on\n")
        _as_postgres(
            str(bindir / "pg_ctl"), "-D", str(standby), "-l", f"{root}/standby.log", "-w", "start"
        )
        started.append(standby)
        yield ports
    finally:
        for data in reversed(started):
            _as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


async def _replayed(cluster: Cluster) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    primary = await asyncpg.connect(cluster.dsn(cluster.primary_port, "postgres"))
    try:
        lsn = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
    finally:
        await primary.close()
    standby = await asyncpg.connect(cluster.dsn(cluster.standby_port, "postgres"))
    try:
        for _ in range(REPLAY_WAIT_SECONDS * 10):
            behind = await standby.fetchval(
                "SELECT pg_wal_lsn_diff($1::text::pg_lsn, pg_last_wal_replay_lsn())", lsn
            )
            if behind <= 0:
                return
            await asyncio.sleep(0.1)
    finally:
        await standby.close()
    raise AssertionError("the standby did not catch up")


async def test_statistics_are_counted_on_a_hot_standby(cluster: Cluster, var_dir: Path) -> None:
    admin = await asyncpg.connect(cluster.dsn(cluster.primary_port, "postgres"))
    try:
        await admin.execute("CREATE DATABASE ruta")
    finally:
        await admin.close()
    primary = make_settings(cluster.url(cluster.primary_port), var_dir)
    await migrate_and_seed(primary)
    settings = primary.model_copy(update={"stats_database_url": cluster.url(cluster.standby_port)})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        factory = Factory(app.state.db, app.state.security)
        police = await factory.user("PNP", Role.identifier)
        analyst = await factory.user("MIMP", Role.analyst)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.23", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ruta.test") as client:
            await _identify(client, police, IDENTIFIED)
            await _replayed(cluster)

            response = await client.post(
                "/v1/stats/releases",
                json={"year": YEAR, "tables": [{"code": "V1"}, {"code": "V4"}]},
                headers=analyst.headers,
            )

            assert response.status_code == 201, response.text
            release = response.json()
            assert [_total(t) for t in release["tables"]] == [IDENTIFIED, IDENTIFIED]
            verified = await client.post(
                f"/v1/stats/releases/{release['id']}/verify", headers=analyst.headers
            )
            assert verified.json()["reproduced"] is True
        stats_db: Database = app.state.stats_db
        assert await query(stats_db, "SELECT pg_is_in_recovery()") == [(True,)]
        stored = await query(app.state.db, "SELECT digest FROM stats_release")
        assert stored == [(release["digest"],)]
    # Temporary tables, the way counting works on a writable database, are refused there.
    unflagged = Database(settings, url=settings.stats_database_url)
    try:
        async with unflagged.session(write=False) as session:
            with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
                await count_tables(
                    session,
                    tables=[(CATALOGUE["V1"], breakdown(CATALOGUE["V1"], None))],
                    scope=Scope(start=date(YEAR, 1, 1), end=date(YEAR, 12, 31), known_on=utcnow()),
                )
    finally:
        await unflagged.dispose()
