"""``autonoc collect ...``: poll devices once, or continuously into the bus and history.

Mount it on the main app with ``app.add_typer(collect_app, name="collect")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autonoc.cli_common import JsonOpt, console, emit, err, fail, load_settings
from autonoc.core.errors import AutonocError, ConfigError
from autonoc.core.inventory import Inventory
from autonoc.core.settings import Settings

__all__ = ["collect_app"]

collect_app = typer.Typer(
    help="Poll devices over SNMP and NETCONF: once, or continuously into the telemetry bus.",
    no_args_is_help=True,
)

InventoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        "-i",
        help="inventory.yaml (default: AUTONOC_INVENTORY, else the running lab's)",
    ),
]


def _inventory(settings: Settings, path: Path | None) -> tuple[Inventory, Path]:
    from collectors.inventory import load_inventory
    from lab.service import read_status

    if path is None:
        path = settings.inventory
    if path is None:
        status = read_status(settings.home)
        if status is not None:
            path = Path(status["inventory"])
    if path is None:
        raise ConfigError(
            "no inventory: pass --inventory FILE, set AUTONOC_INVENTORY, "
            "or start a lab with `autonoc lab up --detach`"
        )
    return load_inventory(path), path


@collect_app.command("once")
def collect_once_cmd(
    inventory: InventoryOpt = None,
    group: Annotated[
        list[str] | None,
        typer.Option(
            help="only this metric group (repeatable): interfaces, system, bgp, optics, inventory"
        ),
    ] = None,
    protocol: Annotated[
        list[str] | None, typer.Option(help="only this protocol (repeatable): snmp, netconf")
    ] = None,
    device: Annotated[list[str] | None, typer.Option(help="only this device (repeatable)")] = None,
    store: Annotated[
        bool, typer.Option("--store", help="write the samples to the SQL history too")
    ] = False,
    show_samples: Annotated[
        bool, typer.Option("--samples", help="list every sample (with --json: include them)")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Poll every device once and summarise: ok/failed with reasons, varbinds, duration.

    Exits 1 when any device failed, so scripts can tell.
    """
    from collectors.service import collect_once
    from collectors.store import SampleStore

    try:
        settings = load_settings()
        inv, path = _inventory(settings, inventory)
        devices = [d for d in inv.devices if device is None or d.name in device]
        if device:
            unknown = sorted(set(device) - {d.name for d in devices})
            if unknown:
                raise ConfigError(f"{path}: no device named {', '.join(unknown)}")
        started = time.perf_counter()
        if as_json:
            outcomes = asyncio.run(
                collect_once(settings, devices, groups=group, protocols=protocol)
            )
        else:
            with Progress(
                TextColumn("polling"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[last]}"),
                TimeElapsedColumn(),
                console=err,
            ) as bar:
                task = bar.add_task("poll", total=len(devices), last="")

                def advance(outcome: Any) -> None:
                    bar.update(task, advance=1, last=outcome.device.name)

                outcomes = asyncio.run(
                    collect_once(
                        settings, devices, groups=group, protocols=protocol, progress=advance
                    )
                )
                bar.update(task, completed=len(devices))
        seconds = time.perf_counter() - started
        stored = 0
        if store:
            from autonoc.core.db import check_database, make_engine, upgrade

            engine = make_engine(settings)
            try:
                check_database(engine)
                upgrade(engine)
                stored = SampleStore(engine).write(s for o in outcomes for s in o.result.samples)
            finally:
                engine.dispose()
    except AutonocError as exc:
        raise fail(exc) from exc

    rows = [
        {
            "device": o.device.name,
            "protocol": o.protocol,
            "groups": list(o.groups),
            "ok": not o.result.failed,
            "error": str(o.result.exception) if o.result.exception is not None else None,
            "varbinds": o.result.varbinds,
            "samples": len(o.result.samples),
            "ms": round(o.result.elapsed_ms, 1),
            **({"facts": o.result.facts} if o.result.facts else {}),
        }
        for o in outcomes
    ]
    failed_devices = sorted({o.device.name for o in outcomes if o.result.failed})
    summary = {
        "inventory": str(path),
        "devices": len(devices),
        "polls": len(outcomes),
        "ok": len({o.device.name for o in outcomes}) - len(failed_devices),
        "failed": len(failed_devices),
        "varbinds": sum(o.result.varbinds for o in outcomes),
        "samples": sum(len(o.result.samples) for o in outcomes),
        "stored": stored,
        "seconds": round(seconds, 3),
    }
    if as_json:
        out: dict[str, Any] = {**summary, "results": rows}
        if show_samples:
            out["sample_values"] = [
                {
                    "device": s.device,
                    "metric": s.metric,
                    "instance": s.instance,
                    "ts": s.ts,
                    "value": s.value,
                }
                for o in outcomes
                for s in o.result.samples
            ]
        emit(out)
    else:
        table = Table(title=f"collect once: {path}")
        for col in ("device", "protocol", "groups", "result", "varbinds", "samples", "ms"):
            table.add_column(
                col, justify="right" if col in ("varbinds", "samples", "ms") else "left"
            )
        for o in outcomes:
            result = o.result
            table.add_row(
                o.device.name,
                o.protocol,
                ",".join(o.groups),
                f"[red]failed[/]: {result.exception}" if result.failed else "[green]ok[/]",
                str(result.varbinds),
                str(len(result.samples)),
                f"{result.elapsed_ms:.0f}",
            )
        console.print(table)
        if show_samples:
            for o in outcomes:
                for s in o.result.samples:
                    console.print(f"{s.device} {s.key} = {s.value:.6g}", highlight=False)
        console.print(
            f"{summary['ok']} of {summary['devices']} devices ok, {summary['failed']} failed; "
            f"{summary['varbinds']} varbinds, {summary['samples']} samples in {seconds:.2f} s"
            + (f"; {stored} stored" if store else ""),
            highlight=False,
        )
    if failed_devices:
        raise typer.Exit(1)


def _shard(value: str) -> tuple[int, int]:
    index, _, count = value.partition("/")
    if not (index.isdigit() and count.isdigit()) or not 0 <= int(index) < int(count):
        err.print(f"error: --shard must be INDEX/COUNT with 0 <= INDEX < COUNT, not {value!r}")
        raise typer.Exit(2)
    return int(index), int(count)


@collect_app.command("run")
def collect_run_cmd(
    inventory: InventoryOpt = None,
    shard: Annotated[
        str, typer.Option(help="poll only shard INDEX/COUNT of the devices (run COUNT processes)")
    ] = "0/1",
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Prometheus /metrics port (default AUTONOC_COLLECT__METRICS_PORT, 9700)"),
    ] = None,
    trap_port: Annotated[
        int | None,
        typer.Option(help="SNMP trap/inform port (default AUTONOC_COLLECT__TRAP_PORT, 1162)"),
    ] = None,
    metrics: Annotated[bool, typer.Option(help="serve /metrics")] = True,
    traps: Annotated[bool, typer.Option(help="receive traps and informs")] = True,
    history: Annotated[
        bool, typer.Option(help="also store the bus in the SQL history (one writer is enough)")
    ] = True,
    duration: Annotated[
        float | None, typer.Option(help="stop after this many seconds (default: until Ctrl-C)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Collect continuously: samples and trap events onto the Redis telemetry bus, the SQL
    history filled from it, latest values on /metrics. Stops on Ctrl-C or SIGTERM.
    """
    from autonoc.core.db import check_database, make_engine, upgrade
    from autonoc.core.redis import redis_endpoint
    from collectors.service import CollectService
    from collectors.store import SampleStore

    index, count = _shard(shard)
    try:
        settings = load_settings()
        updates: dict[str, Any] = {}
        if metrics_port is not None:
            updates["metrics_port"] = metrics_port
        if trap_port is not None:
            updates["trap_port"] = trap_port
        if updates:
            settings = settings.model_copy(
                update={"collect": settings.collect.model_copy(update=updates)}
            )
        inv, path = _inventory(settings, inventory)
        settings.home.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            endpoint = stack.enter_context(redis_endpoint(settings))
            import redis

            client = redis.Redis.from_url(endpoint.url, socket_connect_timeout=5, socket_timeout=30)
            stack.callback(client.close)
            engine = make_engine(settings)
            stack.callback(engine.dispose)
            check_database(engine)
            upgrade(engine)
            service = CollectService(
                settings,
                inv,
                redis_client=client,
                store=SampleStore(engine),
                history=history,
                shard=(index, count),
                metrics=metrics,
                traps=traps,
            )

            def ready() -> None:
                if as_json:
                    return
                where = []
                if service.metrics_server is not None:
                    where.append(f"metrics {service.metrics_server.url}")
                if service.trap_receiver is not None:
                    where.append(
                        f"traps udp {settings.collect.trap_host}:{service.trap_receiver.port}"
                    )
                console.print(
                    f"collecting from {len(service.devices)} devices "
                    f"({path}, shard {index}/{count}); "
                    f"bus {endpoint.display}; " + "; ".join(where) + ". Ctrl-C stops.",
                    highlight=False,
                )

            asyncio.run(_run_until_signal(service, duration, ready))
    except AutonocError as exc:
        raise fail(exc) from exc
    stats = service.stats
    summary = {
        "devices": len(service.devices),
        "polls": stats.polls,
        "failed": stats.failed,
        "samples": stats.samples,
        "published": stats.published,
        "events": stats.events,
        "publish_errors": stats.publish_errors,
        "stored_samples": service.writer.stats.stored_samples if service.writer else 0,
        "stored_events": service.writer.stats.stored_events if service.writer else 0,
    }
    if as_json:
        emit(summary)
    else:
        console.print(
            f"stopped: {stats.polls} polls ({stats.failed} failed), {stats.samples} samples, "
            f"{stats.events} trap events, {summary['stored_samples']} samples stored",
            highlight=False,
        )


async def _run_until_signal(service: Any, duration: float | None, ready: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    await service.run(stop, ready=ready)
