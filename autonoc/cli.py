"""The ``autonoc`` command: each subcommand parses, builds settings, sets up
logging and calls one function.

Exit codes: 0 success; 1 the job ran and failed (e.g. an incident not
resolved, a doctor check failed); 2 bad input or configuration.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autonoc import __version__
from autonoc.cli_audit import audit_app
from autonoc.cli_collect import collect_app
from autonoc.cli_common import JsonOpt, console, emit, err, fail, load_settings
from autonoc.cli_detect import detect_app, register_model_commands
from autonoc.cli_lab import lab_app
from autonoc.cli_models import models_app
from autonoc.cli_playbooks import config_app, playbooks_app, tickets_app
from autonoc.core.errors import AutonocError, ConfigError

app = typer.Typer(
    help="autonoc: detect, diagnose and fix network faults through safe, verified, "
    "audited playbooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
inventory_app = typer.Typer(help="Validate and import device inventories.", no_args_is_help=True)
incidents_app = typer.Typer(help="Incidents and their timelines.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(inventory_app, name="inventory")
app.add_typer(incidents_app, name="incidents")
app.add_typer(db_app, name="db")
app.add_typer(lab_app, name="lab")
app.add_typer(collect_app, name="collect")
app.add_typer(detect_app, name="detect")
register_model_commands(models_app)
app.add_typer(models_app, name="models")
app.add_typer(audit_app, name="audit")
app.add_typer(playbooks_app, name="playbooks")
app.add_typer(config_app, name="config")
app.add_typer(tickets_app, name="tickets")


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False,
) -> None:
    if version:
        console.print(f"autonoc {__version__}")
        raise typer.Exit(0)


# ---- demo ---------------------------------------------------------------------


@app.command()
def demo(as_json: JsonOpt = False) -> None:
    """Run the closed loop once on the embedded simulated network.

    Starts Redis (embedded unless AUTONOC_REDIS_URL is set), the database
    (SQLite under AUTONOC_HOME unless AUTONOC_DATABASE_URL is set), a lab of
    four routers speaking SNMP on loopback and a Celery worker; learns normal
    traffic, shuts an interface, and lets autonoc detect, diagnose, fix and
    verify. Ends within about two minutes and leaves no process behind.
    """
    from autonoc.demo import run_demo

    try:
        settings = load_settings()
        t0 = time.monotonic()

        def narrate(kind: str, message: str) -> None:
            if not as_json:
                console.print(
                    f"[dim]{time.monotonic() - t0:6.1f}s[/] [bold]{kind:>10}[/] {message}",
                    highlight=False,
                )

        outcome = run_demo(settings, narrate)
    except AutonocError as exc:
        raise fail(exc) from exc
    except KeyboardInterrupt:
        err.print("interrupted: everything the demo started has been stopped")
        raise typer.Exit(130) from None
    incident = outcome.incident
    if as_json:
        emit(
            {
                "resolved": outcome.resolved,
                "polls": outcome.polls,
                "raw_anomalies": outcome.raw_anomalies,
                "seconds": round(outcome.seconds, 1),
                "incident": incident.model_dump(mode="json") if incident else None,
                "notes": outcome.notes,
            }
        )
    else:
        console.print()
        if incident is not None:
            _print_incident(incident)
        for note in outcome.notes:
            console.print(f"note: {note}")
        verdict = (
            "[bold green]RESOLVED and verified[/]"
            if outcome.resolved
            else ("[bold red]NOT resolved[/]")
        )
        console.print(
            f"\n{verdict} in {outcome.seconds:.0f} s, {outcome.polls} polls. "
            f"`autonoc incidents list` shows it; worker log: {outcome.worker_log}"
        )
    raise typer.Exit(0 if outcome.resolved else 1)


# ---- worker and beat -----------------------------------------------------------

_FLEET_HELP = """
A fleet shares one Redis, database and inventory (AUTONOC_REDIS_URL,
AUTONOC_DATABASE_URL, AUTONOC_INVENTORY). On its machines run:

  autonoc beat                       exactly one: schedules polls, detection
  autonoc worker --queues poll -c 4  on each machine that shares the polling
  autonoc worker --queues detect     exactly one: detection state is in memory
  autonoc worker                     remediate,default: playbooks (1 or more)

On one machine: autonoc worker --queues poll,detect,remediate,default --beat
"""


def _queues(spec: str, collect: bool, detect: bool) -> list[str]:
    from worker.app import DETECT_QUEUE, POLL_QUEUE, QUEUES

    names = [q.strip() for q in spec.split(",") if q.strip()]
    for used, flag, queue in (
        (collect, "--collect", POLL_QUEUE),
        (detect, "--detect", DETECT_QUEUE),
    ):
        if used:
            names.append(queue)
            err.print(f"note: {flag} is deprecated; use --queues {','.join(names)}")
    unknown = [q for q in names if q not in QUEUES]
    if unknown or not names:
        raise ConfigError(
            f"--queues {spec!r}: unknown queue {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(QUEUES)}"
        )
    return list(dict.fromkeys(names))


@app.command(epilog=_FLEET_HELP)
def worker(
    queues: Annotated[
        str,
        typer.Option(
            "--queues",
            "-Q",
            help="comma-separated queues to serve: poll, detect, remediate, default",
        ),
    ] = "remediate,default",
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="pool processes (tasks at once)")
    ] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
    hostname: Annotated[
        str | None,
        typer.Option(help="node name (default autonoc-<queues>@<host>); unique per worker"),
    ] = None,
    beat: Annotated[
        bool,
        typer.Option(
            "--beat",
            help="also schedule polling and detection in this process (like `autonoc beat`; "
            "one per fleet)",
        ),
    ] = False,
    collect: Annotated[
        bool, typer.Option("--collect", help="deprecated: add poll to --queues")
    ] = False,
    detect: Annotated[
        bool, typer.Option("--detect", help="deprecated: add detect to --queues")
    ] = False,
) -> None:
    """Run a Celery worker on the given queues (default: remediate,default).

    poll: sharded polling; detect: the detection cycle (one process in the
    fleet); remediate: playbooks that change devices; default: the rest.
    Pool processes get hard time limits; a playbook is acknowledged only
    once it finished, so a worker that dies mid-change hands it on.
    """
    from worker.app import DETECT_QUEUE, make_celery

    try:
        names = _queues(queues, collect, detect)
        if DETECT_QUEUE in names and concurrency > 1:
            raise ConfigError(
                f"--queues {','.join(names)} with --concurrency {concurrency}: detection keeps "
                "device state in one process; serve detect from its own "
                "`autonoc worker --queues detect` (concurrency 1)"
            )
        settings = load_settings()
        if not settings.redis_url:
            raise ConfigError("AUTONOC_REDIS_URL: the worker needs the platform's Redis URL")
        celery = make_celery(settings, settings.redis_url)
    except AutonocError as exc:
        raise fail(exc) from exc
    argv = [
        "worker",
        f"--loglevel={loglevel}",
        # prefork: the only pool in which Celery enforces time limits and
        # notices a pool process that died (task_reject_on_worker_lost).
        "--pool=prefork",
        f"--concurrency={concurrency}",
        "-Q",
        ",".join(names),
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        hostname or f"autonoc-{'-'.join(names)}@%h",
    ]
    if beat:
        settings.home.mkdir(parents=True, exist_ok=True)
        argv += ["--beat", "--schedule", str(settings.home / "celerybeat-schedule")]
    celery.worker_main(argv)


@app.command(epilog=_FLEET_HELP)
def beat(
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
) -> None:
    """Schedule polling and detection (Celery beat); run exactly one in the fleet.

    Sends autonoc.collect to the poll queue per poll interval and shard
    (AUTONOC_COLLECT__INTERVALS, AUTONOC_COLLECT__SHARDS) and autonoc.detect to
    the detect queue; a task no worker took within its interval expires. Answers
    `celery inspect ping` as autonoc-beat@<host>, and refuses to start while
    another autonoc beat answers. Keeps its state in AUTONOC_HOME/celerybeat-schedule.
    """
    from worker.app import BEAT_NODENAME, make_celery, running_beats

    try:
        settings = load_settings()
        if not settings.redis_url:
            raise ConfigError("AUTONOC_REDIS_URL: beat needs the platform's Redis URL")
        celery = make_celery(settings, settings.redis_url)
        others = running_beats(celery)
        if others:
            raise ConfigError(
                f"another beat is running ({', '.join(others)}): run exactly one, or every "
                "device is polled twice; stop it first"
            )
    except AutonocError as exc:
        raise fail(exc) from exc
    settings.home.mkdir(parents=True, exist_ok=True)
    celery.start(
        [
            "beat",
            f"--loglevel={loglevel}",
            "--schedule",
            str(settings.home / "celerybeat-schedule"),
            "--enable-remote-control",
            "--hostname",
            BEAT_NODENAME,
        ]
    )


# ---- doctor -------------------------------------------------------------------


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """Check this machine: Python, torch, Redis, the database, free simulator ports."""
    from autonoc.doctor import run_checks

    try:
        settings = load_settings()
    except AutonocError as exc:
        raise fail(exc) from exc
    checks = run_checks(settings)
    if as_json:
        emit([c.__dict__ for c in checks])
    else:
        table = Table(title="autonoc doctor")
        for column in ("check", "status", "detail"):
            table.add_column(column)
        for c in checks:
            table.add_row(c.name, "[green]ok[/]" if c.ok else "[red]FAIL[/]", c.detail)
        console.print(table)
    raise typer.Exit(0 if all(c.ok for c in checks) else 1)


# ---- inventory ----------------------------------------------------------------


@inventory_app.command("validate")
def inventory_validate(
    path: Annotated[Path, typer.Argument(help="inventory.yaml to check")],
    as_json: JsonOpt = False,
) -> None:
    """Validate an inventory file; errors name the file, line and field (exit 2)."""
    from collectors.inventory import load_inventory

    try:
        inventory = load_inventory(path)
    except AutonocError as exc:
        if as_json:
            problems = getattr(exc, "problems", [])
            emit(
                {
                    "valid": False,
                    "path": str(path),
                    "problems": [
                        {"line": line, "field": field, "message": message}
                        for line, field, message in problems
                    ]
                    or [{"line": None, "field": "", "message": str(exc)}],
                }
            )
            raise typer.Exit(2) from exc
        raise fail(exc) from exc
    roles = sorted({d.role.value for d in inventory.devices})
    summary: dict[str, Any] = {
        "valid": True,
        "path": str(path),
        "devices": len(inventory.devices),
        "links": len(inventory.links),
        "roles": roles,
    }
    if as_json:
        emit(summary)
    else:
        console.print(
            f"{path}: valid: {summary['devices']} devices, {summary['links']} links "
            f"({', '.join(roles) or 'no roles'})"
        )


@inventory_app.command("import-clab")
def inventory_import_clab(
    topology_data: Annotated[Path, typer.Argument(help="containerlab's topology-data.json")],
    output: Annotated[Path, typer.Option("--output", "-o", help="inventory.yaml to write")],
    community: Annotated[
        str | None,
        typer.Option(
            help="SNMP v2c community to set on every node", envvar="AUTONOC_CLAB_COMMUNITY"
        ),
    ] = None,
) -> None:
    """Write an inventory from a containerlab deployment's topology-data.json."""
    from collectors.inventory import dump_inventory, import_containerlab

    try:
        inventory = import_containerlab(topology_data, snmp_community=community)
        dump_inventory(inventory, output, reveal_secrets=True)
    except AutonocError as exc:
        raise fail(exc) from exc
    console.print(f"wrote {output}: {len(inventory.devices)} devices, {len(inventory.links)} links")


# ---- incidents ----------------------------------------------------------------


def _repo() -> Any:
    from agents.incidents import IncidentRepo
    from autonoc.core.db import check_database, make_engine, upgrade

    settings = load_settings()
    engine = make_engine(settings)
    check_database(engine)
    upgrade(engine)
    return IncidentRepo(engine)


@incidents_app.command("list")
def incidents_list(
    limit: Annotated[int, typer.Option(min=1, help="newest N incidents")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List incidents, newest first."""
    try:
        incidents = _repo().list(limit=limit)
    except AutonocError as exc:
        raise fail(exc) from exc
    if as_json:
        emit([i.model_dump(mode="json") for i in incidents])
        return
    if not incidents:
        console.print("no incidents yet: `make demo` creates one")
        return
    table = Table(title="incidents")
    for column in ("id", "status", "fault", "device", "opened (UTC)", "closed"):
        table.add_column(column, no_wrap=True)
    table.add_column("title", overflow="fold")
    for i in incidents:
        table.add_row(
            str(i.id),
            i.status.value,
            i.fault_kind,
            f"{i.device}:{i.instance}",
            f"{i.opened_at:%Y-%m-%d %H:%M:%S}",
            f"{i.closed_at:%H:%M:%S}" if i.closed_at else "",
            i.title,
        )
    console.print(table)


@incidents_app.command("show")
def incidents_show(
    incident_id: Annotated[int, typer.Argument(help="incident id")],
    as_json: JsonOpt = False,
) -> None:
    """Show one incident with its timeline."""
    try:
        incident = _repo().get(incident_id)
    except KeyError:
        err.print(f"error: no incident {incident_id}; `autonoc incidents list` shows them")
        raise typer.Exit(2) from None
    except AutonocError as exc:
        raise fail(exc) from exc
    if as_json:
        emit(incident.model_dump(mode="json"))
    else:
        _print_incident(incident)


def _print_incident(incident: Any) -> None:
    table = Table(title=f"incident {incident.id}: {incident.status.value} · {incident.title}")
    table.add_column("at (UTC)")
    table.add_column("+s", justify="right")
    table.add_column("step")
    table.add_column("what happened")
    t0 = incident.timeline[0].ts if incident.timeline else incident.opened_at
    for event in incident.timeline:
        table.add_row(
            f"{event.ts:%H:%M:%S}",
            f"{(event.ts - t0).total_seconds():.1f}",
            event.kind,
            event.message,
        )
    console.print(table)


# ---- db -----------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database schema to the latest revision."""
    from autonoc.core.db import check_database, current_revision, make_engine, upgrade

    try:
        settings = load_settings()
        engine = make_engine(settings)
        check_database(engine)
        upgrade(engine)
        console.print(f"schema at {current_revision(engine)}")
    except AutonocError as exc:
        raise fail(exc) from exc


def main() -> None:
    app()
