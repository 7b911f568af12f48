"""``autonoc lab ...``: the simulated network, its faults and its scenarios.

Mount it on the main app with ``app.add_typer(lab_app, name="lab")``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from autonoc.cli_common import JsonOpt, console, emit, err, fail, load_settings
from autonoc.core.errors import AutonocError

__all__ = ["lab_app"]

lab_app = typer.Typer(
    help="The lab: the simulator (SNMP and NETCONF on loopback), FRR in network namespaces, "
    "or containerlab; faults and scenarios.",
    no_args_is_help=True,
)
fault_app = typer.Typer(
    help="Inject, list and clear faults in the running lab.", no_args_is_help=True
)
scenario_app = typer.Typer(help="Run scripted fault scenarios.", no_args_is_help=True)
lab_app.add_typer(fault_app, name="fault")
lab_app.add_typer(scenario_app, name="scenario")


def _target(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        err.print(f"error: --trap-target must be HOST:PORT, not {value!r}")
        raise typer.Exit(2)
    return host, int(port)


# ---- up / status / down -------------------------------------------------------

Backend = Literal["simulator", "netns", "containerlab"]
BackendOpt = Annotated[
    str,
    typer.Option(
        help="simulator (our devices on loopback), netns (FRR + snmpd in network "
        "namespaces; root), or containerlab (wraps `containerlab deploy`; Docker)"
    ),
]


def _backend(value: str) -> Backend:
    if value not in ("simulator", "netns", "containerlab"):
        err.print(f"error: --backend must be simulator, netns or containerlab, not {value!r}")
        raise typer.Exit(2)
    return value  # type: ignore[return-value]


def _netns_up(topology: str) -> None:
    from lab.netns.lab import NetnsLab
    from lab.netns.topology import DEFAULT_TOPOLOGY, load_netns_topology

    settings = load_settings()
    topo = (
        DEFAULT_TOPOLOGY
        if topology in ("metro-ring", "ring4")
        else load_netns_topology(Path(topology))
    )
    lab = NetnsLab(topo, settings.home)
    inventory = settings.home / "lab" / "netns" / "inventory.yaml"
    with console.status(f"starting {len(topo.routers)} FRR routers in network namespaces"):
        lab.start()  # tears down what it built if it fails or is interrupted
    lab.write_inventory(inventory)
    console.print(
        f"namespace lab up: {topo.name}, {len(topo.routers)} routers "
        f"({', '.join(lab.namespace(r.name) for r in topo.routers)}), inventory {inventory}; "
        "`autonoc lab down --backend netns` removes it"
    )


def _containerlab_up(topology: str) -> None:
    from lab.containerlab import deploy

    settings = load_settings()
    inventory = settings.home / "lab" / "containerlab" / "inventory.yaml"
    result = deploy(Path(topology), inventory)
    console.print(
        f"containerlab lab {result.lab} deployed: {result.devices} devices, inventory "
        f"{inventory}; `autonoc lab down --backend containerlab --topology {topology}` "
        "destroys it"
    )


@lab_app.command("up")
def lab_up(
    topology: Annotated[
        str,
        typer.Option(
            help="simulator: preset (metro-ring, leaf-spine, ring4, ring4-wide) or a YAML file; "
            "netns: ring4 (default) or a YAML file; containerlab: a *.clab.yml file"
        ),
    ] = "metro-ring",
    backend: BackendOpt = "simulator",
    devices: Annotated[
        int | None, typer.Option(help="a generated Clos fabric of N routers instead")
    ] = None,
    speed: Annotated[float, typer.Option(help="simulated seconds per wall second")] = 1.0,
    detach: Annotated[bool, typer.Option("--detach", help="run as a daemon and return")] = False,
    snmp_version: Annotated[
        str, typer.Option(help="credentials in the inventory: v2c or v3")
    ] = "v2c",
    netconf: Annotated[bool, typer.Option(help="serve NETCONF over SSH too")] = True,
    trap_target: Annotated[
        str | None, typer.Option(help="HOST:PORT that receives the devices' SNMP traps")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the topology's random values")] = 7,
) -> None:
    """Serve the lab until Ctrl-C (or in the background with --detach).

    `autonoc lab status` tells how to reach every device; `autonoc lab fault`
    breaks things.
    """
    from lab.service import run_lab, start_detached

    chosen = _backend(backend)
    if chosen != "simulator":
        try:
            if chosen == "netns":
                _netns_up(topology)
            else:
                _containerlab_up(topology)
        except AutonocError as exc:
            raise fail(exc) from exc
        except KeyboardInterrupt:
            err.print("interrupted: what was created has been removed")
            raise typer.Exit(130) from None
        return
    if snmp_version not in ("v2c", "v3"):
        err.print(f"error: --snmp-version must be v2c or v3, not {snmp_version!r}")
        raise typer.Exit(2)
    target = _target(trap_target)
    try:
        settings = load_settings()
        if detach:
            args = [f"--topology={topology}", f"--speed={speed}", f"--snmp-version={snmp_version}"]
            args += [f"--seed={seed}", "--netconf" if netconf else "--no-netconf"]
            if devices is not None:
                args.append(f"--devices={devices}")
            if trap_target:
                args.append(f"--trap-target={trap_target}")
            status = start_detached(settings.home, args)
            console.print(
                f"lab up in the background (pid {status['pid']}): {len(status['devices'])} "
                f"devices, inventory {status['inventory']}; `autonoc lab down` stops it"
            )
            return

        def ready(status: dict[str, Any]) -> None:
            console.print(
                f"lab up: {status['topology']}, {len(status['devices'])} devices at "
                f"{status['speed']}x, inventory {status['inventory']}; "
                "`autonoc lab status` lists endpoints; Ctrl-C or `autonoc lab down` stops it"
            )

        version: Literal["v2c", "v3"] = "v3" if snmp_version == "v3" else "v2c"
        run_lab(
            settings.home,
            topology=None if devices is not None else topology,
            devices=devices,
            speed=speed,
            host=settings.lab.host,
            snmp_version=version,
            netconf=netconf,
            trap_target=target,
            seed=seed,
            on_ready=ready,
        )
    except AutonocError as exc:
        raise fail(exc) from exc
    console.print("lab down")


@lab_app.command("status")
def lab_status(as_json: JsonOpt = False) -> None:
    """The running lab's devices and endpoints (exit 1 when no lab runs).

    The JSON output includes credentials, for tools that must reach the devices.
    """
    from lab.service import read_status

    try:
        status = read_status(load_settings().home)
    except AutonocError as exc:
        raise fail(exc) from exc
    if status is None:
        if as_json:
            emit({"running": False})
        else:
            console.print("no lab is running; start one with `autonoc lab up`")
        raise typer.Exit(1)
    if as_json:
        emit({"running": True, **status})
        return
    table = Table(title=f"lab {status['topology']} (pid {status['pid']}, {status['speed']}x)")
    for column in ("device", "role", "snmp", "netconf"):
        table.add_column(column)
    for d in status["devices"]:
        snmp, nc = d["snmp"], d["netconf"]
        table.add_row(
            d["name"],
            d["role"],
            f"{snmp['version']} {snmp['host']}:{snmp['port']}",
            f"{nc['host']}:{nc['port']}" if nc else "",
        )
    console.print(table)
    console.print(f"inventory: {status['inventory']} (credentials: `autonoc lab status --json`)")


@lab_app.command("down")
def lab_down(
    backend: Annotated[
        str | None,
        typer.Option(help="simulator, netns or containerlab; default: whatever runs"),
    ] = None,
    topology: Annotated[
        str | None, typer.Option(help="containerlab: the *.clab.yml to destroy")
    ] = None,
) -> None:
    """Stop the running lab (the namespace lab: remove every namespace, link and daemon)."""
    from lab.netns.lab import running_lab
    from lab.netns.registry import teardown
    from lab.service import stop_lab

    chosen = _backend(backend) if backend is not None else None
    try:
        home = load_settings().home
        if chosen == "containerlab":
            from lab.containerlab import destroy

            if topology is None:
                err.print("error: --backend containerlab needs --topology FILE.clab.yml")
                raise typer.Exit(2)
            destroy(Path(topology))
            console.print(f"containerlab lab {topology} destroyed")
            return
        stopped = False
        if chosen in (None, "netns"):
            reg = running_lab(home)
            if reg is not None:
                left = teardown(reg)
                if left:
                    raise AutonocError("namespace lab teardown left: " + "; ".join(left))
                console.print(f"namespace lab {reg.data.get('lab')} removed")
                stopped = True
        if chosen in (None, "simulator") and stop_lab(home):
            console.print("lab stopped")
            stopped = True
    except AutonocError as exc:
        raise fail(exc) from exc
    if not stopped:
        console.print("no lab was running")


# ---- faults --------------------------------------------------------------------


def _netns_faults() -> Any:
    """The namespace lab's faults when one is recorded for this home, else None."""
    from lab.netns.faults import NetnsFaults
    from lab.netns.lab import running_lab

    home = load_settings().home
    return NetnsFaults(home) if running_lab(home) is not None else None


def _control(request: dict[str, Any]) -> dict[str, Any]:
    from lab.control import control_request
    from lab.service import control_path

    netns = _netns_faults()
    if netns is not None:  # the namespace lab: faults through the kernel and FRR
        if request["op"] == "inject":
            return {"fault": netns.inject(request["kind"], request["target"], request["params"])}
        if request["op"] == "faults":
            return {"faults": netns.active()}
        return {"cleared": netns.clear(request["id"])}
    return control_request(control_path(load_settings().home), request)


@fault_app.command("inject")
def fault_inject(
    kind: Annotated[str, typer.Argument(help="fault kind; `autonoc lab fault kinds` lists them")],
    target: Annotated[
        str,
        typer.Option(help="device, DEVICE:IF, span:A:B or bgp:DEVICE:PEER (netns: r1, r1:eth1)"),
    ],
    param: Annotated[
        list[str] | None, typer.Option(help="KEY=NUMBER, repeatable (e.g. extra_db=9)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Inject a fault into the running lab (the namespace lab when one runs for this home)."""
    from lab.faults import parse_params

    try:
        reply = _control(
            {"op": "inject", "kind": kind, "target": target, "params": parse_params(param or [])}
        )
    except AutonocError as exc:
        raise fail(exc) from exc
    fault = reply["fault"]
    if as_json:
        emit(fault)
        return
    console.print(f"fault {fault['id']}: {fault['kind']} on {fault['target']} {fault['params']}")


@fault_app.command("list")
def fault_list(as_json: JsonOpt = False) -> None:
    """The running lab's active faults (the ground truth)."""
    try:
        faults = _control({"op": "faults"})["faults"]
    except AutonocError as exc:
        raise fail(exc) from exc
    if as_json:
        emit(faults)
        return
    if not faults:
        console.print("no active faults")
        return
    table = Table(title="active faults")
    for column in ("id", "kind", "target", "params", "present"):
        table.add_column(column)
    for f in faults:
        table.add_row(
            str(f["id"]), f["kind"], f["target"], json.dumps(f["params"]), str(f["present"])
        )
    console.print(table)


@fault_app.command("clear")
def fault_clear(
    fault_id: Annotated[
        int | None, typer.Argument(help="fault id; all faults when omitted")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Clear one fault, or all of them."""
    try:
        cleared = _control({"op": "clear", "id": fault_id})["cleared"]
    except AutonocError as exc:
        raise fail(exc) from exc
    if as_json:
        emit(cleared)
        return
    console.print(f"cleared {len(cleared)} fault(s)")


@fault_app.command("kinds")
def fault_kinds(backend: BackendOpt = "simulator", as_json: JsonOpt = False) -> None:
    """Every fault kind, with an example target and its parameters."""
    from lab.faults import FAULT_HELP
    from lab.netns.faults import NETNS_FAULTS

    if _backend(backend) == "netns":
        rows: list[dict[str, Any]] = [
            {"kind": k, "example_target": t, "what": what, "params": p}
            for k, (t, what, p) in NETNS_FAULTS.items()
        ]
    else:
        rows = [
            {"kind": k.value, "example_target": t, "what": what, "params": p}
            for k, (t, what, p) in FAULT_HELP.items()
        ]
    if as_json:
        emit(rows)
        return
    table = Table(title="fault kinds")
    for column in ("kind", "example target", "what", "params (defaults)"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["kind"], r["example_target"], r["what"], json.dumps(r["params"]))
    console.print(table)


# ---- scenarios -----------------------------------------------------------------


@scenario_app.command("run")
def scenario_run(
    file: Annotated[Path, typer.Argument(help="a scenario YAML (see lab/scenarios/)")],
    speed: Annotated[float | None, typer.Option(help="override the file's speed")] = None,
    serve: Annotated[
        bool, typer.Option(help="serve the devices over SNMP/NETCONF while it runs")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Run a scenario: warm up, inject faults on schedule, record the ground truth."""
    from lab.network import LabNetwork
    from lab.runner import LabRunner
    from lab.scenario import load_scenario, run_scenario
    from lab.service import lab_dir

    try:
        settings = load_settings()
        scenario = load_scenario(file)
        inventory_path = lab_dir(settings.home) / f"scenario-{scenario.name}.yaml"

        @contextlib.contextmanager
        def served(network: LabNetwork) -> Iterator[Path]:
            with LabRunner(network, host=settings.lab.host, netconf=True) as runner:
                runner.write_inventory(inventory_path)
                if not as_json:
                    err.print(
                        f"serving {scenario.topology.preset or scenario.topology.file}; "
                        f"inventory {inventory_path}"
                    )
                try:
                    yield inventory_path
                finally:
                    inventory_path.unlink(missing_ok=True)

        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} sim-s"),
            TimeRemainingColumn(),
            console=err,
            disable=as_json,
        ) as bar:
            task = bar.add_task(scenario.name, total=scenario.duration_s)
            report = run_scenario(
                scenario,
                speed=speed,
                base_dir=file.parent,
                serve=served if serve else None,
                progress=lambda done, total: bar.update(task, completed=done),
            )
    except AutonocError as exc:
        raise fail(exc) from exc
    if as_json:
        emit(report.as_dict())
        return
    table = Table(title=f"scenario {report.scenario} ({report.topology}, {report.speed}x)")
    for column in ("t (sim s)", "what", "detail"):
        table.add_column(column)
    for e in report.timeline:
        if e.what in ("link_down", "link_up", "bgp_down", "bgp_up") and len(report.timeline) > 40:
            continue
        table.add_row(f"{e.t:.0f}", e.what, json.dumps(e.detail)[:90])
    console.print(table)
    console.print(
        f"healthy at end: {report.healthy_at_end}; unhealthy for {report.unhealthy_s:.0f} sim-s; "
        f"wall {report.wall_s:.1f} s"
    )
