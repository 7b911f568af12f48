"""``autonoc detect run`` and ``autonoc models train|list|promote``: online detection and
the model registry.

Mount with::

    app.add_typer(detect_app, name="detect")
    register_model_commands(models_app)     # adds train, list, promote to `autonoc models`
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autonoc.cli_common import JsonOpt, console, emit, err, fail, load_settings
from autonoc.core.errors import AutonocError, ConfigError
from autonoc.core.settings import Settings
from autonoc.core.types import Anomaly

__all__ = [
    "detect_app",
    "list_command",
    "promote_command",
    "register_model_commands",
    "train_command",
]

detect_app = typer.Typer(
    help="Score live telemetry from the bus and publish anomalies.", no_args_is_help=True
)

#: How often ``detect run`` looks for a newly promoted model version, seconds.
_RELOAD_EVERY_S = 10.0
_SEVERITY_STYLE = {"warning": "yellow", "major": "red", "critical": "bold red"}


def _kinds(settings: Settings, inventory: Path | None) -> dict[str, str]:
    """Device roles from the inventory (option, setting, or the running lab's), if any."""
    from collectors.inventory import load_inventory
    from lab.service import read_status

    path = inventory or settings.inventory
    if path is None:
        status = read_status(settings.home)
        if status is not None:
            path = Path(status["inventory"])
    if path is None:
        return {}
    return {d.name: str(d.role) for d in load_inventory(path).devices}


def _registry_error(exc: ValueError) -> AutonocError:
    return ConfigError(str(exc))


def _print_anomaly(a: Anomaly) -> None:
    when = datetime.fromtimestamp(a.ts, UTC).strftime("%H:%M:%S")
    style = _SEVERITY_STYLE.get(str(a.severity), "")
    top = ", ".join(
        f"{t.metric}{'@' + t.instance if t.instance else ''}={t.value:.4g} "
        f"(expected {t.expected:.4g})"
        for t in a.attributions[:3]
    )
    where = f"{a.device}:{a.component}" if a.component else a.device
    console.print(
        f"{when} [{style}]{a.severity!s:>8}[/] {where} score {a.score:.1f} > {a.threshold:.1f} "
        f"[dim]{a.detector}[/] {top}",
        highlight=False,
    )


InventoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--inventory", "-i", help="inventory.yaml for device roles (default: inferred from metrics)"
    ),
]


@detect_app.command("run")
def run_command(
    duration: Annotated[
        float | None, typer.Option(help="stop after this many seconds (default: until Ctrl-C)")
    ] = None,
    inventory: InventoryOpt = None,
    warmup: Annotated[
        int, typer.Option(help="frames a device without a trained model learns from")
    ] = 8,
    as_json: Annotated[
        bool, typer.Option("--json", help="print each anomaly as one JSON line on stdout")
    ] = False,
) -> None:
    """Score new samples from the telemetry bus continuously; anomalies go onto
    ``autonoc:anomalies`` and are printed as they come. Stops on Ctrl-C or SIGTERM.
    """
    import redis

    from autonoc.core.redis import redis_endpoint
    from models.detect_service import CycleResult, anomaly_to_json
    from models.registry import ModelRegistry, RegistryError
    from worker.detect import build_service

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        settings = load_settings()
        kinds = _kinds(settings, inventory)
        settings.home.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            endpoint = stack.enter_context(redis_endpoint(settings))
            client = redis.Redis.from_url(endpoint.url, socket_connect_timeout=5, socket_timeout=30)
            stack.callback(client.close)
            try:
                service = build_service(
                    client,
                    settings,
                    consumer=f"{socket.gethostname()}:{os.getpid()}",
                    kinds=kinds,
                    fallback_warmup=warmup,
                )
            except RegistryError as exc:
                raise _registry_error(exc) from exc
            if not as_json:
                version = service.version or "none promoted: every device falls back to robust_z"
                console.print(
                    f"detecting on bus {endpoint.display}; models {version}. Ctrl-C stops.",
                    highlight=False,
                )

            registry = ModelRegistry.for_home(settings.home)
            check_at = [time.monotonic() + _RELOAD_EVERY_S]

            def on_cycle(result: CycleResult) -> None:
                if time.monotonic() >= check_at[0]:
                    # A version promoted meanwhile takes over at the next cycle.
                    check_at[0] = time.monotonic() + _RELOAD_EVERY_S
                    promoted = registry.promoted()
                    if promoted != service.version:
                        service.load(registry.load_promoted())
                        if not as_json:
                            console.print(f"loaded models {promoted}", highlight=False)
                for anomaly in result.anomalies:
                    if as_json:
                        typer.echo(json.dumps(anomaly_to_json(anomaly)))
                    else:
                        _print_anomaly(anomaly)

            previous = {
                sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
            }
            for sig, handler in previous.items():
                stack.callback(signal.signal, sig, handler)
            if duration is not None:
                timer = threading.Timer(duration, stop.set)
                timer.daemon = True
                timer.start()
                stack.callback(timer.cancel)
            service.run(stop, block_ms=500, on_cycle=on_cycle)
    except AutonocError as exc:
        raise fail(exc) from exc
    stats = service.stats
    summary = {
        "version": service.version,
        "cycles": stats.cycles,
        "samples": stats.samples,
        "scored": stats.scored,
        "anomalies": stats.anomalies,
        "suppressed": stats.suppressed,
        "fallback_devices": len(stats.fallback_devices),
    }
    if as_json:
        err.print(json.dumps(summary), highlight=False)
    else:
        console.print(
            f"stopped: {stats.samples} samples, {stats.scored} device frames scored, "
            f"{stats.anomalies} anomalies ({stats.suppressed} repeats held back), "
            f"{len(stats.fallback_devices)} devices on the fallback detector",
            highlight=False,
        )


# -- autonoc models train | list | promote -------------------------------------------


def train_command(
    from_history: Annotated[
        bool, typer.Option("--from-history", help="train on the SQL telemetry history")
    ] = False,
    days: Annotated[float, typer.Option(help="days of history to train on")] = 7.0,
    detector: Annotated[
        str, typer.Option(help="registered detector ('forecast' falls back to robust_z)")
    ] = "forecast",
    device: Annotated[list[str] | None, typer.Option(help="only this device (repeatable)")] = None,
    step: Annotated[
        float | None, typer.Option(help="grid step, seconds (default: each device's poll cadence)")
    ] = None,
    inventory: InventoryOpt = None,
    promote: Annotated[bool, typer.Option(help="promote the new version at once")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train one detector per device on the history; write a new registry version."""
    from autonoc.core.db import check_database, make_engine, upgrade
    from collectors.store import SampleStore
    from models.registry import ModelRegistry, RegistryError, train_from_history

    if not from_history:
        err.print("error: pass --from-history (the SQL telemetry history is the only source)")
        raise typer.Exit(2)
    try:
        settings = load_settings()
        kinds = _kinds(settings, inventory)
        registry = ModelRegistry.for_home(settings.home)
        engine = make_engine(settings)
        try:
            check_database(engine)
            upgrade(engine)
            store = SampleStore(engine)
            with Progress(
                TextColumn("training"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[last]}"),
                TimeElapsedColumn(),
                console=err,
                disable=as_json,
            ) as bar:
                task = bar.add_task("train", total=None, last="")

                def progress(done: int, total: int, name: str) -> None:
                    bar.update(task, completed=done, total=total, last=name)

                try:
                    version = train_from_history(
                        store,
                        registry,
                        devices=device,
                        days=days,
                        detector=detector,
                        kinds=kinds,
                        step=step,
                        progress=progress,
                    )
                    if promote:
                        registry.promote(version.version)
                except RegistryError as exc:
                    raise _registry_error(exc) from exc
        finally:
            engine.dispose()
    except AutonocError as exc:
        raise fail(exc) from exc
    meta = version.meta
    out = {
        **version.summary(),
        "promoted": promote,
        "skipped_devices": meta.get("skipped", {}),
    }
    if as_json:
        emit(out)
        return
    console.print(
        f"wrote {version.version}: {meta['detector']} on {out['devices']} devices "
        f"({out['skipped']} skipped), {version.path}"
        + (
            "; promoted"
            if promote
            else f"; promote with `autonoc models promote {version.version}`"
        ),
        highlight=False,
    )
    for name, reason in sorted(meta.get("skipped", {}).items()):
        console.print(f"  skipped {name}: {reason}", highlight=False)


def _fmt_ts(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def list_command(as_json: JsonOpt = False) -> None:
    """List the registry's versions; the promoted one is marked."""
    from models.registry import ModelRegistry, RegistryError

    try:
        settings = load_settings()
        try:
            versions = ModelRegistry.for_home(settings.home).list()
        except RegistryError as exc:
            raise _registry_error(exc) from exc
    except AutonocError as exc:
        raise fail(exc) from exc
    rows = [v.summary() for v in versions]
    if as_json:
        emit(rows)
        return
    if not rows:
        console.print("no model versions yet: train one with `autonoc models train --from-history`")
        return
    table = Table(title=f"models in {settings.home / 'models'}")
    for column in ("version", "promoted", "created", "detector", "devices", "trained on"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["version"],
            "*" if row["promoted"] else "",
            str(row["created_at"]),
            str(row["detector"]),
            f"{row['devices']}" + (f" ({row['skipped']} skipped)" if row["skipped"] else ""),
            f"{_fmt_ts(row['train_start'])} to {_fmt_ts(row['train_end'])}",
        )
    console.print(table)


def promote_command(
    version: Annotated[str, typer.Argument(help="the version to promote, e.g. v0003")],
) -> None:
    """Make VERSION the models the detection service loads (within seconds)."""
    from models.registry import ModelRegistry, RegistryError

    try:
        settings = load_settings()
        try:
            ModelRegistry.for_home(settings.home).promote(version)
        except RegistryError as exc:
            raise _registry_error(exc) from exc
    except AutonocError as exc:
        raise fail(exc) from exc
    console.print(f"promoted {version}", highlight=False)


def register_model_commands(app: typer.Typer) -> None:
    """Add ``train``, ``list`` and ``promote`` to the ``autonoc models`` app."""
    app.command("train")(train_command)
    app.command("list")(list_command)
    app.command("promote")(promote_command)
