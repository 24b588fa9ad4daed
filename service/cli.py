"""The `ruta` command: serve, migrate, seed, user, audit, openapi, simulate, stats."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import Annotated

import typer
import yaml
from sqlmodel.ext.asyncio.session import AsyncSession

from service import cli_facilities, cli_users
from service.audit import rules as audit_rules
from service.audit import service as audit_service
from service.cli_retention import app as retention_app
from service.cli_support import acting_as, database_reachable, write
from service.cli_support import run as _run
from service.core import metrics, migrations
from service.core.crypto import Keyring
from service.core.db import Database
from service.core.logs import configure_logging
from service.core.security import Actor, Security
from service.core.settings import Settings
from service.identity import service as identity_service
from service.identity.rules import Permission, Role
from service.main import audit_keys, create_app, open_stats_database
from service.pathway import demo as demo_flow
from service.pathway import seed as reference_seed
from service.pathway import sweep as sweep_flow
from service.persons import service as person_service
from service.planning import calibration
from service.referrals import service as referral_service
from service.simulation import model as simulation_model
from service.simulation import report as simulation_report
from service.simulation import runner as simulation_runner
from service.simulation import scenario as simulation_scenario
from service.stats import exchange as stats_exchange
from service.stats import service as stats_service
from service.stats.schemas import ReleasePublic

app = typer.Typer(
    help="Ruta: case management for Peru's victim-referral pathway.", no_args_is_help=True
)
audit_app = typer.Typer(help="Inspect the audit trail.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage the keys that protect identifying data.", no_args_is_help=True)
referrals_app = typer.Typer(help="Referral housekeeping.", no_args_is_help=True)
demo_app = typer.Typer(
    help="Synthetic data for demonstrations and benchmarks.", no_args_is_help=True
)
app.add_typer(cli_users.app, name="user")
app.add_typer(cli_facilities.app, name="facility")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(referrals_app, name="referrals")
stats_app = typer.Typer(
    help="Publish statistics: the annual report, CTDC export and import.", no_args_is_help=True
)
app.add_typer(stats_app, name="stats")
app.add_typer(demo_app, name="demo")
app.add_typer(retention_app, name="retention")

DEMO_ACCOUNTS = (
    ("demo-police", "PNP", Role.identifier),
    ("demo-mimp", "MIMP", Role.caseworker),
    ("demo-shelter", "MIMP", Role.shelter_staff),
    ("demo-defender", "MINJUS", Role.legal_aid),
    ("demo-unhcr", "UNHCR", Role.caseworker),
    ("demo-consulate", "RREE", Role.identifier),
    ("demo-prosecutor", "MP", Role.caseworker),
    ("demo-court", "PJ", Role.caseworker),
    ("demo-analyst", "MIMP", Role.analyst),
    ("demo-auditor", "MIMP", Role.auditor),
    ("demo-admin", "MIMP", Role.admin),
)


@app.command()
def migrate(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply pending database migrations (safe to run from several processes at once)."""
    with database_reachable():
        migrations.upgrade(Settings(), revision)
    typer.echo(f"database at {revision}")


@app.command()
def seed(dataset: Annotated[str, typer.Argument(help="Dataset name")] = "peru-2017") -> None:
    """Load reference data: regions, institutions, prosecutor offices and facilities
    (idempotent)."""
    settings = Settings()
    with database_reachable():
        migrations.upgrade(settings)
    report = _run(settings, lambda db: _seed(db, dataset))
    typer.echo(
        f"seeded {dataset}: {report.regions} regions,"
        f" {report.organizations} new organizations,"
        f" {report.prosecutor_offices} new prosecutor offices,"
        f" {report.facilities} new facilities"
    )


async def _seed(db: Database, dataset: str) -> reference_seed.SeedReport:
    async with db.session() as session:
        return await reference_seed.seed(session, dataset=dataset)


async def _demo_accounts(db: Database, security: Security) -> list[tuple[str, str, str, str]]:
    accounts = []
    async with db.session() as session:
        for username, org, role in DEMO_ACCOUNTS:
            password = secrets.token_urlsafe(12)
            if await identity_service.user_exists(session, username):
                await identity_service.set_password(
                    session, security=security, actor=None, username=username, password=password
                )
            else:
                await identity_service.create_user(
                    session,
                    security=security,
                    actor=None,
                    username=username,
                    organization_code=org,
                    role=role,
                    password=password,
                )
            accounts.append((username, org, role.value, password))
    return accounts


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    demo: Annotated[bool, typer.Option(help="Seed reference data and print demo accounts")] = False,
) -> None:
    """Apply pending migrations, then serve the API."""
    import uvicorn

    settings = Settings()
    configure_logging(settings)
    with database_reachable():
        migrations.upgrade(settings)
    if demo:
        if settings.environment == "production":
            raise typer.BadParameter("--demo is refused when RUTA_ENVIRONMENT=production")
        _run(settings, lambda db: _seed(db, "peru-2017"))
        accounts = _run(settings, lambda db: _demo_accounts(db, Security.from_settings(settings)))
        typer.echo("Demo accounts (passwords are new at every --demo start):")
        for username, org, role, password in accounts:
            typer.echo(f"  {username:<16} {org:<7} {role:<14} {password}")
        typer.echo(
            f"Token: curl -d 'username=demo-police&password=...' http://{host}:{port}/v1/auth/token"
        )
    with _shared_metrics(settings, workers=workers):
        uvicorn.run(
            "service.main:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=bool(settings.forwarded_allow_ips),
            forwarded_allow_ips=settings.forwarded_allow_ips,
            # Logging is Ruta's (core/logs.py): one line per request, without query strings.
            log_config=None,
            access_log=False,
            # A worker imports the whole app before answering the supervisor's health check;
            # on a loaded host that takes longer than uvicorn's default 5 s, and the worker
            # would be killed and restarted again and again.
            timeout_worker_healthcheck=30,
        )


@contextlib.contextmanager
def _shared_metrics(settings: Settings, *, workers: int) -> Iterator[None]:
    """With several workers, one empty directory for all their metrics (core/metrics.py):
    RUTA_METRICS_DIR, or a private temporary one removed afterwards."""
    if workers == 1:
        yield
        return
    if settings.metrics_dir is not None:
        metrics.prepare_multiprocess_dir(settings.metrics_dir)
        yield
        return
    with tempfile.TemporaryDirectory(prefix="ruta-metrics-") as directory:
        metrics.prepare_multiprocess_dir(Path(directory) / "workers")
        yield


def _signing_key(settings: Settings) -> bytes:
    return settings.secret("audit_signing_key")


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            exists=True,
            dir_okay=False,
            help="A checkpoint file (ruta audit checkpoint): every chain must still reach it",
        ),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help="The checkpoint's public key (base64, ruta audit public-key); default: the"
            " one of RUTA_AUDIT_SIGNING_KEY",
        ),
    ] = None,
) -> None:
    """Recompute every audit chain; exit 1 naming the first event that does not verify.
    With --checkpoint, check its signature and that no chain lost the events it reached."""
    settings = Settings()
    signed = None
    if checkpoint is not None:
        signed = _checked_checkpoint(settings, checkpoint, public_key)
    elif public_key is not None:
        raise typer.BadParameter("--public-key goes with --checkpoint")

    async def work(db: Database) -> audit_service.VerificationReport:
        async with db.session(write=False) as session:
            keys = audit_keys(settings)
            if signed is None:
                return await audit_service.verify_chains(session, keys=keys)
            return await audit_service.verify_against_checkpoint(
                session, keys=keys, checkpoint=signed
            )

    report = _run(settings, work)
    if report.first_break is not None and report.first_break.key_mismatch:
        typer.echo(
            f"audit trail NOT VERIFIED, wrong audit key: {report.first_break.describe()}", err=True
        )
        raise typer.Exit(1)
    if report.first_break is not None:
        typer.echo(f"audit trail BROKEN: {report.first_break.describe()}", err=True)
        raise typer.Exit(1)
    reached = ""
    if signed is not None:
        reached = f", reaching checkpoint of {signed.created_at.isoformat()}"
    typer.echo(f"audit trail verified: {report.events} events in {report.chains} chains{reached}")


def _checked_checkpoint(
    settings: Settings, path: Path, public_key: str | None
) -> audit_rules.Checkpoint:
    """The checkpoint in `path`, its signature verified; exit 1 when it does not verify."""
    try:
        key = (
            base64.b64decode(public_key, validate=True)
            if public_key is not None
            else audit_rules.public_key_of(_signing_key(settings))
        )
    except ValueError:
        raise typer.BadParameter("--public-key: not base64") from None
    if len(key) != 32:
        raise typer.BadParameter("--public-key: an Ed25519 public key has 32 bytes")
    try:
        signed = audit_rules.parse_checkpoint(path.read_text(encoding="utf-8"))
        audit_rules.verify_signature(signed, key)
    except (audit_rules.CheckpointError, UnicodeDecodeError) as exc:
        typer.echo(f"checkpoint {path} NOT VERIFIED: {exc}", err=True)
        raise typer.Exit(1) from None
    return signed


@audit_app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[
        Path | None,
        typer.Option(help="Write the checkpoint to this file (default: standard output)"),
    ] = None,
) -> None:
    """Sign the head of every audit chain (RUTA_AUDIT_SIGNING_KEY) and write the checkpoint
    outside the database: keep it elsewhere, to detect later deletion of the newest events."""
    settings = Settings()

    async def work(db: Database) -> audit_rules.Checkpoint:
        async with db.session(write=False) as session:
            return await audit_service.checkpoint_heads(
                session, signing_key=_signing_key(settings), key_id=settings.audit_signing_key_id
            )

    signed = _run(settings, work)
    text = signed.to_json()
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(out)
    reached = sum(h.seq for h in signed.heads)
    typer.echo(f"wrote {out}: {len(signed.heads)} chains, {reached} events", err=True)


@audit_app.command("public-key")
def audit_public_key() -> None:
    """Print the public key (base64) that verifies checkpoints: store it outside Ruta."""
    settings = Settings()
    public = audit_rules.public_key_of(_signing_key(settings))
    typer.echo(base64.b64encode(public).decode())
    typer.echo(
        f"key {settings.audit_signing_key_id}, {audit_rules.public_key_fingerprint(public)}",
        err=True,
    )


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-wrap every person's data key under the active master key (RUTA_MASTER_KEY_ID).

    Put the previous master key in RUTA_RETIRED_MASTER_KEYS first; once this has run, it
    may be removed.
    """
    settings = Settings()
    keyring = Keyring(settings)

    async def work(db: Database) -> int:
        async with db.session() as session:
            count = await person_service.rotate_master_key(session, keyring=keyring)
            audit_service.record_event(
                session,
                actor=None,
                action="keys.rotated",
                entity_type="master_key",
                entity_id=keyring.active_id,
                changes={"data_keys_rewrapped": {"to": count}},
            )
            return count

    count = _run(settings, work)
    typer.echo(f"re-wrapped {count} data keys under master key {keyring.active_id}")


@referrals_app.command("expire")
def referrals_expire() -> None:
    """Expire referrals left unanswered past their deadline (the service also does it)."""
    settings = Settings()

    async def work(db: Database) -> int:
        async with db.session() as session:
            return await referral_service.expire_overdue_referrals(session)

    typer.echo(f"expired {_run(settings, work)} overdue referrals")


@app.command()
def sweep() -> None:
    """Expire overdue referrals, bed holds and requests that waited too long, once (what each
    worker does every RUTA_REFERRAL_SWEEP_SECONDS); for cron when the in-process sweep is off."""
    settings = Settings()

    async def work(db: Database) -> sweep_flow.SweepReport:
        return await sweep_flow.sweep(db, settings=settings)

    typer.echo(_run(settings, work).describe())


@app.command()
def openapi(
    output: Annotated[Path, typer.Option(help="Where to write the spec")] = Path(
        "openapi/openapi.json"
    ),
) -> None:
    """Write the OpenAPI contract front-ends build against."""
    spec = create_app(Settings()).openapi()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(spec, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    typer.echo(f"wrote {output}")


def _load_scenario(source: str, seed: int | None) -> simulation_scenario.Scenario:
    try:
        loaded = simulation_scenario.load(source)
    except simulation_scenario.ScenarioError as exc:
        for name, reason in exc.problems:
            typer.echo(f"{source}: {name}: {reason}", err=True)
        raise typer.Exit(2) from None
    return loaded if seed is None else loaded.model_copy(update={"seed": seed})


def _simulate_with_progress(
    scenario: simulation_scenario.Scenario,
    *,
    replications: int | None,
    workers: int | None,
    occupancy_every: float | None,
    executor: Executor | None = None,
) -> simulation_runner.Summary:
    total = replications or scenario.replications
    with typer.progressbar(length=total, label=scenario.name, file=sys.stderr) as bar:
        return simulation_runner.simulate(
            scenario,
            replications=total,
            workers=workers,
            progress=bar.update,
            occupancy_every=occupancy_every,
            executor=executor,
        )


@contextlib.contextmanager
def _executor(dask: str | None) -> Iterator[Executor | None]:
    """A Dask cluster's executor when a scheduler is named (`pip install distributed`), else
    None: the runner's own process pool."""
    if dask is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        typer.echo("--dask needs the distributed package (pip install distributed)", err=True)
        raise typer.Exit(2) from None
    with Client(dask) as client:  # type: ignore[no-untyped-call]
        yield client.get_executor()


def _calibrated(year: int, *, census: bool) -> simulation_scenario.Scenario:
    """The scenario the database's records of `year` give (see planning.calibration)."""
    settings = Settings()

    async def work(db: Database) -> calibration.Calibration:
        async with db.session(write=False) as session:
            return await calibration.calibrate(
                session, year=year, census=census, max_wait_days=settings.waitlist_max_days
            )

    try:
        found = _run(settings, work)
    except (calibration.CalibrationError, simulation_scenario.ScenarioError) as exc:
        typer.echo(f"--from-db: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"calibrated from {year}: {found.persons} persons, {found.operations} operations, "
        f"{found.stays} ended stays",
        err=True,
    )
    return found.scenario


@app.command()
def simulate(
    scenario: Annotated[
        str | None,
        typer.Argument(help="A scenario file (YAML or JSON) or a built-in: peru-2016"),
    ] = None,
    compare: Annotated[
        str | None, typer.Option(help="A second scenario, side by side on the same random numbers")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write charts: PATH (occupancy fan) and PATH-beds.png (beds curve)"),
    ] = None,
    replications: Annotated[int | None, typer.Option(min=2, help="Override the scenario's")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes (default: cores)")] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            envvar="RUTA_DASK_SCHEDULER",
            help="Run the replications on this Dask scheduler (tcp://host:8786) instead of"
            " local processes; --workers is then how many chunks run at once",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Override the scenario's seed")] = None,
    beds_for: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Search the beds at --facility for this placement rate"
        ),
    ] = None,
    facility: Annotated[
        str | None, typer.Option(help="The facility the bed search and chart vary (default: first)")
    ] = None,
    from_db: Annotated[
        bool, typer.Option("--from-db", help="Calibrate the scenario from the database's records")
    ] = False,
    year: Annotated[
        int | None, typer.Option(min=2000, max=2100, help="With --from-db: the year to calibrate")
    ] = None,
    census: Annotated[
        bool,
        typer.Option(
            help="With --from-db: start today from the beds occupied now (else a year's warm-up)"
        ),
    ] = True,
    out: Annotated[
        Path | None,
        typer.Option(help="With --from-db: write the calibrated scenario here and stop"),
    ] = None,
) -> None:
    """Simulate referral capacity: placement, unmet needs, waits and occupancy, with 95% CIs.
    With --from-db --year, the scenario is calibrated from the recorded cases first."""
    from service.simulation import plots  # matplotlib only when charts are asked for

    if from_db == (scenario is not None) or (from_db and year is None):
        typer.echo("give a scenario, or --from-db with --year", err=True)
        raise typer.Exit(2)
    if scenario is None:
        assert year is not None
        first = _calibrated(year, census=census)
        if out is not None:
            data = first.model_dump(mode="json")
            out.write_text(
                f"# {year} as recorded, for editing (ruta simulate --from-db)\n"
                + yaml.safe_dump(data, sort_keys=False, width=100),
                encoding="utf-8",
            )
            typer.echo(f"wrote {out}")
            return
        first = first if seed is None else first.model_copy(update={"seed": seed})
    else:
        first = _load_scenario(scenario, seed)
    code = facility or first.facilities[0].code
    if code not in {f.code for f in first.facilities}:
        typer.echo(
            f"{scenario or first.name}: facility: no facility {code!r} in the scenario", err=True
        )
        raise typer.Exit(2)
    with _executor(dask) as executor:
        every = plots.OCCUPANCY_EVERY if plot else None
        summary = _simulate_with_progress(
            first,
            replications=replications,
            workers=workers,
            occupancy_every=every,
            executor=executor,
        )
        if compare is None:
            typer.echo(simulation_report.render(summary))
        else:
            # Common random numbers: the second scenario runs on the first one's seed and count.
            second = _load_scenario(compare, seed if seed is not None else first.seed)
            other = _simulate_with_progress(
                second,
                replications=replications or first.replications,
                workers=workers,
                occupancy_every=None,
                executor=executor,
            )
            typer.echo(simulation_report.render_comparison(summary, other))
        points: dict[int, simulation_runner.Summary] = {}
        if beds_for is not None:
            search = simulation_runner.beds_for_target(
                first,
                facility=code,
                target=beds_for,
                replications=replications,
                workers=workers,
                executor=executor,
            )
            typer.echo(simulation_report.render_search(search))
            points = search.tried
        if plot is not None:
            model = simulation_model.compile_scenario(first)
            plots.occupancy_fan(summary, model.beds, model.codes, plot)
            if not points:
                beds = next(f.beds for f in first.facilities if f.code == code)
                for more in sorted({max(0, round(beds * k)) for k in (0.5, 1, 1.5, 2, 3, 4)}):
                    points[more] = simulation_runner.simulate(
                        first.with_beds(code, more),
                        replications=replications,
                        workers=workers,
                        executor=executor,
                    )
            curve = plot.with_name(f"{plot.stem}-beds.png")
            plots.beds_curve(points, code, curve)
            typer.echo(f"wrote {plot} and {curve}")


async def _stats_actor(session: AsyncSession, username: str) -> Actor:
    """The analyst or administrator a statistics command acts for: releases and exports are
    attributed to a person in the audit trail, as through the API."""
    return await acting_as(session, username, Permission.stats_read, "publish statistics")


@contextlib.asynccontextmanager
async def _stats_reading(settings: Settings) -> AsyncIterator[AsyncSession | None]:
    """A read-only session on the statistics replica (RUTA_STATS_DATABASE_URL), if set."""
    stats_db = open_stats_database(settings)
    if stats_db is None:
        yield None
        return
    try:
        async with stats_db.session(write=False) as reading:
            yield reading
    finally:
        await stats_db.dispose()


AsOption = Annotated[
    str, typer.Option("--as", help="The analyst or administrator publishing (a username)")
]
YearOption = Annotated[int, typer.Option(min=2000, max=2100, help="The year reported")]


@stats_app.command("report")
def stats_report(
    year: YearOption,
    as_user: AsOption,
    fmt: Annotated[str, typer.Option("--format", help="md, json, csv or html")] = "md",
    out: Annotated[Path, typer.Option(help="Directory for the report, summary and charts")] = Path(
        "report"
    ),
    charts: Annotated[bool, typer.Option(help="Draw the PNG charts")] = True,
) -> None:
    """Publish a release of the year (stored, audited, disclosure-controlled) and write the
    annual report in the shape of the TIP questionnaire, a one-page summary and charts."""
    from service.stats import report as stats_report_module

    if fmt not in stats_report_module.FORMATS:
        raise typer.BadParameter(f"--format: one of {', '.join(stats_report_module.FORMATS)}")
    settings = Settings()

    async def work(db: Database) -> ReleasePublic:
        async with db.session() as session, _stats_reading(settings) as reading:
            actor = await _stats_actor(session, as_user)
            request = stats_report_module.release_request(year)
            return await stats_service.create_release(
                session, actor=actor, data=request, reading=reading
            )

    release = _run(settings, work)
    built = stats_report_module.build(release)
    drawn: list[Path] = []
    if charts:
        from service.stats import charts as stats_charts  # matplotlib only when drawing

        drawn = stats_charts.draw(built, out)
    written = stats_report_module.write(built, out, fmt, drawn)
    for path in [*written, *drawn]:
        typer.echo(f"wrote {path}")
    typer.echo(f"release {release.id} (digest {release.digest})")


@stats_app.command("export-ctdc")
def stats_export_ctdc(
    year: YearOption,
    as_user: AsOption,
    out: Annotated[
        Path | None, typer.Option(help="The file to write (default: ctdc-YEAR.csv)")
    ] = None,
) -> None:
    """Write the year's victims as CTDC microdata, k-anonymized (k = 11): every combination
    of year, age, gender, citizenship, country and type of exploitation is shared by at
    least 11 persons."""
    settings = Settings()

    async def work(db: Database) -> stats_exchange.CtdcExport:
        async with db.session() as session, _stats_reading(settings) as reading:
            actor = await _stats_actor(session, as_user)
            return await stats_exchange.export_ctdc(
                session, actor=actor, year=year, reading=reading
            )

    exported = _run(settings, work)
    target = out or Path(f"ctdc-{year}.csv")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(exported.text, encoding="utf-8")
    generalized = ", ".join(f"{k} {v}" for k, v in exported.levels.items() if v) or "none"
    typer.echo(
        f"wrote {target}: {exported.records} records, {exported.suppressed} left out,"
        f" generalized: {generalized}"
    )


@stats_app.command("import-ctdc")
def stats_import_ctdc(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A CTDC CSV file")],
    name: Annotated[
        str | None, typer.Option(help="The dataset's name (default: the file's name)")
    ] = None,
) -> None:
    """Read a CTDC file into a dataset of its own, for comparison: never mixed with cases."""
    from service.stats import ctdc

    dataset = name or file.stem
    try:
        rows = ctdc.parse(file.read_text(encoding="utf-8-sig"))
    except ctdc.CtdcFormatError as exc:
        typer.echo(f"{file}: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = Settings()

    write(
        settings,
        lambda session: stats_exchange.import_ctdc(
            session, actor=None, name=dataset, source=file.name, rows=rows
        ),
    )
    years = sorted({r.year for r in rows if r.year is not None})
    span = f", {years[0]} to {years[-1]}" if years else ""
    typer.echo(f"imported {len(rows)} CTDC records as dataset {dataset!r}{span}")


@demo_app.command("generate")
def demo_generate(
    cases: Annotated[int, typer.Option(min=1, help="How many persons to identify")] = 100,
    seed: Annotated[int, typer.Option(min=0, help="The same seed gives the same facts")] = 2016,
    year: Annotated[
        int | None,
        typer.Option(help="Year of the identifications (default: this year)"),
    ] = None,
) -> None:
    """Create synthetic cases through the services, in the narrative's proportions (seeds the
    reference data first; refused in production)."""
    settings = Settings()
    if settings.environment == "production":
        raise typer.BadParameter("demo data is refused when RUTA_ENVIRONMENT=production")
    with database_reachable():
        migrations.upgrade(settings)
    _run(settings, lambda db: _seed(db, "peru-2017"))
    security = Security.from_settings(settings)
    chosen = year if year is not None else demo_flow.default_year()

    async def work(db: Database) -> demo_flow.DemoReport:
        with typer.progressbar(length=cases, label="cases", file=sys.stderr) as bar:
            return await demo_flow.generate(
                db,
                security=security,
                settings=settings,
                cases=cases,
                seed=seed,
                year=chosen,
                progress=bar.update,
            )

    report = _run(settings, work)
    typer.echo(report.describe())


def main() -> None:
    app()
