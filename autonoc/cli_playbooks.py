"""``autonoc playbooks ...`` and ``autonoc config backup``: the remediation catalog by hand.

``playbooks run NAME --dry-run`` renders a plan and its configuration diff
against the running device and changes nothing. ``--apply`` asks the same
policy gate the agents use: a playbook at autonomy ``auto`` runs, one at
``approve`` runs only with ``--yes`` (the person at the terminal approves it,
and the audit log says so), one at ``suggest`` never runs from here.

Mount with ``app.add_typer(playbooks_app, name="playbooks")`` and
``app.add_typer(config_app, name="config")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autonoc.cli_collect import InventoryOpt, _inventory
from autonoc.cli_common import JsonOpt, console, emit, err, fail, load_settings
from autonoc.core.errors import AutonocError, PlaybookValidationError, PolicyDenied
from autonoc.core.settings import Settings

__all__ = ["config_app", "playbooks_app", "tickets_app"]

playbooks_app = typer.Typer(
    help="The remediation catalog: list, show, dry-run and run playbooks.",
    no_args_is_help=True,
)
config_app = typer.Typer(
    help="Device configurations: back them up as restore points.", no_args_is_help=True
)
tickets_app = typer.Typer(help="Tickets playbooks opened for people.", no_args_is_help=True)


@playbooks_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """Every catalog playbook: what it treats, on which roles, its risk and default autonomy."""
    from playbooks.base import Catalog

    try:
        catalog = Catalog.load()
    except AutonocError as exc:
        raise fail(exc) from exc
    rows: list[dict[str, Any]] = [
        {
            "name": s.name,
            "fault_kinds": list(s.fault_kinds),
            "roles": list(s.roles),
            "risk": s.risk.value,
            "autonomy": s.autonomy.value,
            "target": s.target,
            "description": " ".join(s.description.split()),
        }
        for s in catalog
    ]
    if as_json:
        emit(rows)
        return
    table = Table("playbook", "treats", "roles", "risk", "autonomy")
    for r in rows:
        table.add_row(
            r["name"], ", ".join(r["fault_kinds"]), ", ".join(r["roles"]), r["risk"], r["autonomy"]
        )
    console.print(table)


@playbooks_app.command("show")
def show_cmd(name: str, as_json: JsonOpt = False) -> None:
    """One playbook in full: parameters with bounds, prechecks, actions, verification, rollback."""
    from playbooks.base import Catalog

    try:
        spec = Catalog.load().get(name)
    except AutonocError as exc:
        raise fail(exc) from exc
    data = spec.model_dump(mode="json")
    data["worst_case_s"] = spec.worst_case_s()
    if as_json:
        emit(data)
        return
    console.print(
        f"[bold]{spec.name}[/bold]  risk {spec.risk.value}, autonomy {spec.autonomy.value}"
    )
    console.print(" ".join(spec.description.split()))
    console.print(f"treats {', '.join(spec.fault_kinds)} on {', '.join(spec.roles)}")
    console.print(f"target: {spec.target or 'the device'}; worst case {spec.worst_case_s():g} s")
    params = Table("parameter", "type", "default", "min", "max", "description")
    for pname, p in spec.params.items():
        params.add_row(
            pname,
            p.type if not p.choices else f"choice {list(p.choices)}",
            "" if p.default is None else str(p.default),
            "" if p.minimum is None else f"{p.minimum:g}",
            "" if p.maximum is None else f"{p.maximum:g}",
            p.description,
        )
    console.print(params)
    for title, items in (
        ("prechecks", spec.prechecks),
        ("actions", spec.actions),
        ("verify", spec.verify.conditions),
        ("rollback", spec.rollback),
    ):
        console.print(f"[bold]{title}[/bold]")
        for item in items:
            console.print(f"  {item.model_dump(exclude_defaults=True)}")


def _parse_params(items: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; values are YAML scalars (``3``, ``2.5``, ``true``, ``eth1``)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise PlaybookValidationError(f"--param {item!r}: write it as NAME=VALUE")
        value = yaml.safe_load(raw) if raw else ""
        if not isinstance(value, str | int | float | bool):
            raise PlaybookValidationError(f"--param {item!r}: the value must be a scalar")
        out[key] = value
    return out


@contextlib.contextmanager
def _engine(settings: Settings, inventory_path: Path | None) -> Iterator[Any]:
    import redis

    from autonoc.core.db import check_database, make_engine, upgrade
    from autonoc.core.redis import redis_endpoint
    from collectors.netconf import NetconfSessionPool
    from collectors.snmp import SnmpClient
    from worker.execute import build_engine

    inventory, _ = _inventory(settings, inventory_path)
    with contextlib.ExitStack() as stack:
        db = make_engine(settings)
        stack.callback(db.dispose)
        check_database(db)
        upgrade(db)
        endpoint = stack.enter_context(redis_endpoint(settings))
        client = redis.Redis.from_url(endpoint.url, socket_connect_timeout=5)
        stack.callback(client.close)
        snmp = SnmpClient(settings.snmp)
        stack.callback(snmp.close)
        pool = NetconfSessionPool(workers=2)
        stack.callback(pool.close_all)
        yield build_engine(inventory, db, client, snmp, pool, actor=f"cli:{getpass.getuser()}")


@playbooks_app.command("run")
def run_cmd(
    name: str,
    device: Annotated[str, typer.Option("--device", "-d", help="the inventory device")],
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="the component: interface, neighbour, port, process"),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE (repeatable)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="render and diff; change nothing")
    ] = False,
    apply: Annotated[bool, typer.Option("--apply", help="run it through the policy gate")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="approve a playbook whose autonomy is 'approve'")
    ] = False,
    incident: Annotated[int | None, typer.Option(help="the incident this run answers")] = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Dry-run or apply one playbook on one device.

    Examples:

        autonoc playbooks run drain-link -d pe1 -t eth3 --dry-run

        autonoc playbooks run raise-amplifier-gain -d amp-a-b -p gain_change_db=2 \\
            -p min_output_dbm=1 --apply --yes
    """
    if dry_run == apply:
        err.print("say what to do: --dry-run or --apply")
        raise typer.Exit(2)
    settings = load_settings()
    try:
        params = _parse_params(param or [])
        with _engine(settings, inventory) as engine:
            plan = engine.plan(name, device, target, params, incident_id=incident)
            if dry_run:
                dry = asyncio.run(engine.dry_run(plan))
                _show_dry_run(dry.as_dict(), as_json)
                return
            approval = _gate(settings, engine, plan, yes)
            run_id = f"cli-{plan.hash}-{time.time_ns()}"
            if not as_json:
                console.print(f"applying {plan.playbook} to {plan.device}:{plan.target} ...")
            result = asyncio.run(engine.apply(plan, run_id=run_id, approval=approval))
    except AutonocError as exc:
        raise fail(exc) from exc
    data = {"run_id": run_id, **result.model_dump(mode="json")}
    if as_json:
        emit(data)
    else:
        for step in result.steps:
            mark = "[green]ok[/green]" if step.ok else "[red]failed[/red]"
            console.print(f"  {mark} {step.name}: {step.detail}")
        if result.verdict is not None:
            for check in result.verdict.checks:
                mark = "[green]✓[/green]" if check.passed else "[red]✗[/red]"
                console.print(f"  {mark} {check.name} ({check.observed})")
        status = "verified" if result.ok else ("rolled back" if result.rolled_back else "failed")
        console.print(f"{plan.playbook}: {status}" + (f": {result.error}" if result.error else ""))
    if not result.ok:
        raise typer.Exit(1)


def _gate(settings: Settings, engine: Any, plan: Any, yes: bool) -> str:
    from agents.policy import Outcome, PolicyGate

    spec = engine.catalog.get(plan.playbook)
    decision = PolicyGate(settings.policy).decide(plan, spec)
    engine.audit.append(
        engine.actor,
        "policy_decision",
        f"{plan.device}:{plan.target}",
        decision.as_dict(),
    )
    if decision.outcome is Outcome.RUN:
        return "policy:auto"
    if decision.outcome is Outcome.NEEDS_APPROVAL:
        if not yes:
            raise PolicyDenied(
                f"{decision.reason}: review `--dry-run`, then add --yes to approve plan {plan.hash}"
            )
        engine.audit.append(
            engine.actor,
            "approved",
            f"{plan.device}:{plan.target}",
            {"plan_hash": plan.hash, "by": engine.actor, "via": "cli --yes"},
        )
        return f"cli:{getpass.getuser()}:{plan.hash}"
    raise PolicyDenied(f"{decision.reason}; nothing was run")


def _show_dry_run(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit(data)
        return
    console.print(f"plan {data['plan_hash']} (dry run: nothing was changed)")
    for line in data["steps"]:
        console.print(f"  {line}")
    if data["diff"]:
        console.print("[bold]configuration diff against running[/bold]")
        for line in data["diff"]:
            console.print(f"  {line}", markup=False, highlight=False)
    for note in data["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")


@config_app.command("backup")
def backup_cmd(
    device: Annotated[
        list[str] | None, typer.Option("--device", "-d", help="only these devices")
    ] = None,
    good: Annotated[
        bool, typer.Option("--good", help="vouch for it: a restore point for config-rollback")
    ] = False,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read each NETCONF device's running configuration into the archive.

    An unreachable device is reported and skipped; the others are saved.
    """
    from autonoc.core.db import check_database, make_engine, upgrade
    from playbooks.journal import ConfigArchive
    from playbooks.netconf_session import ConfigSession, xml_text

    settings = load_settings()
    try:
        inv, _ = _inventory(settings, inventory)
        db = make_engine(settings)
        check_database(db)
        upgrade(db)
    except AutonocError as exc:
        raise fail(exc) from exc
    archive = ConfigArchive(db)
    wanted = set(device or [])
    rows: list[dict[str, Any]] = []
    try:
        for dev in inv.devices:
            if (wanted and dev.name not in wanted) or dev.netconf is None:
                continue
            try:
                session = ConfigSession(dev)
                try:
                    text = xml_text(session.get_config())
                finally:
                    session.close()
                snap = archive.save(dev.name, text, good=good, source="cli backup")
                rows.append({"device": dev.name, "ok": True, "snapshot": snap.id, "good": good})
            except AutonocError as exc:
                rows.append({"device": dev.name, "ok": False, "error": str(exc)})
    finally:
        db.dispose()
    if as_json:
        emit(rows)
    else:
        for r in rows:
            if r["ok"]:
                console.print(
                    f"{r['device']}: snapshot {r['snapshot']}" + (" (good)" if good else "")
                )
            else:
                console.print(f"[red]{r['device']}: {r['error']}[/red]")
    if any(not r["ok"] for r in rows):
        raise typer.Exit(1)


@tickets_app.command("list")
def tickets_cmd(
    status: Annotated[str, typer.Option(help="open, closed or all")] = "open",
    as_json: JsonOpt = False,
) -> None:
    """Tickets playbooks opened (field visits, vendor cases)."""
    from autonoc.core.db import check_database, make_engine, upgrade
    from playbooks.journal import TicketBook

    settings = load_settings()
    try:
        db = make_engine(settings)
        check_database(db)
        upgrade(db)
        rows = TicketBook(db).list(None if status == "all" else status)
        db.dispose()
    except AutonocError as exc:
        raise fail(exc) from exc
    data = [dataclasses.asdict(t) for t in rows]
    if as_json:
        emit(data)
        return
    table = Table("id", "queue", "status", "device", "component", "reason")
    for t in rows:
        table.add_row(str(t.id), t.queue, t.status, t.device, t.component, t.reason)
    console.print(table)
