"""Benchmark: detection speed, from a poll cycle's samples to scored devices.

For each detector (``random`` excluded: it reads no data) and fleet size, a
:class:`models.detect_service.DetectionService` is given one trained model per
device and fed cycles of one poll per device (``--metrics`` canonical router
metrics each: interface rates, errors and status, CPU, memory) from an
in-memory feed. Measured, per cycle (median of ``--cycles`` after one warm-up
cycle, which sets up each device's state and is reported apart as "first"):

- **cycle**: :meth:`~models.detect_service.DetectionService.run_once` as a whole,
  wall and CPU seconds: ingest (:meth:`models.features.FrameBuilder.add`),
  frames (:meth:`~models.features.FrameBuilder.rows`), scoring and the anomaly
  decisions;
- **scoring**: the cycle less ingest and frames;
- **throughput**: series-points scored per second of scoring (devices × metrics
  / scoring s).

Decoding the bus entries (:func:`collectors.bus.decode_samples`, JSON to
``Sample`` objects) happens before the service sees a sample; its cost for the
same cycle is reported beside the table, not inside the cycle.

Per-device scikit-learn models (``pca``, ``iforest``) score one device at a
time; where a full cycle would take longer than ``--budget`` seconds it is
measured on fewer devices and scaled linearly, and the table says so.
``forecast`` (when registered) is scored through its batched path: every
device of the fleet shares one network (the design: one network per role), so
a cycle is one batched forward pass over devices × metrics windows.

Training time is per device-model, on one day of 1-minute frames
(1,440 rows × ``--metrics`` columns); for ``forecast`` also the time to adapt
the shared network to one more device (:meth:`series_state`), which is what a
fleet pays per device.

Usage::

    taskset -c 0,1 .venv/bin/python -m bench.detect [--devices 1000,10000]
        [--metrics 50] [--cycles 5] [--detectors robust_z,pca,iforest,forecast]
        [--json] [--no-write]

The section between ``<!-- bench:detect -->`` and ``<!-- /bench:detect -->`` in
docs/benchmarks.md is replaced (appended when absent) unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autonoc.core.types import Anomaly, Sample
from bench.report import write_section
from collectors.bus import decode_samples, encode_samples
from models.base import Detector, FloatArray, default_registry
from models.detect_service import DetectionService, FeedEntry, MemoryFeed
from models.features import FrameBuilder, spec_for, split_key
from models.registry import DeviceModel, LoadedModels

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
MARK_BEGIN = "<!-- bench:detect -->"
MARK_END = "<!-- /bench:detect -->"
TARGET_S = 1.0
T0 = 1_700_000_000.0
STEP = 60.0
TRAIN_ROWS = 1440  # one day of 1-minute frames
INTERFACE_METRICS = ("if_in_bps", "if_out_bps", "if_in_errors_ps", "if_oper_up")
DEFAULT_DETECTORS = ("robust_z", "pca", "iforest", "forecast")


# -- the fleet -----------------------------------------------------------------------


def fleet_columns(metrics: int) -> tuple[str, ...]:
    """``metrics`` router columns: CPU, memory, then interfaces' rates, errors, status."""
    cols = ["cpu_util_pct", "mem_used_pct"]
    i = 0
    while len(cols) < metrics:
        cols.append(f"{INTERFACE_METRICS[i % 4]}@eth{i // 4 + 1}")
        i += 1
    return tuple(sorted(cols[:metrics]))


def raw_values(
    rng: np.random.Generator, columns: Sequence[str], rows: int, t0: float
) -> FloatArray:
    """``rows`` polls of ``columns`` in their units: diurnal traffic, rare errors, up links."""
    t = t0 + STEP * np.arange(rows)
    day = np.sin(2 * np.pi * (t % 86400.0) / 86400.0)[:, None]
    out = np.empty((rows, len(columns)))
    for j, key in enumerate(columns):
        metric = split_key(key)[0]
        if metric in ("if_in_bps", "if_out_bps"):
            level = rng.uniform(8.0, 10.0)
            out[:, j] = 10 ** (level + 0.3 * day[:, 0] + 0.02 * rng.standard_normal(rows))
        elif metric == "if_in_errors_ps":
            out[:, j] = np.where(rng.random(rows) < 0.01, rng.exponential(2.0, rows), 0.0)
        elif metric == "if_oper_up":
            out[:, j] = 1.0
        else:
            out[:, j] = 40.0 + 10.0 * day[:, 0] + rng.normal(0.0, 2.0, rows)
    return out


def transformed(columns: Sequence[str], raw: FloatArray) -> FloatArray:
    """``raw`` on the detectors' scale (the log transforms of :mod:`models.features`)."""
    spec = spec_for("router")
    return np.column_stack(
        [spec.transform_array(split_key(c)[0], raw[:, j]) for j, c in enumerate(columns)]
    )


def poll_entries(
    devices: Sequence[str], columns: Sequence[str], values: FloatArray, ts: float, cycle: int
) -> list[FeedEntry]:
    """One bus entry per device: its poll of every column at ``ts``."""
    parts = [split_key(c) for c in columns]
    return [
        FeedEntry(
            f"{cycle}-{d}",
            [
                Sample(device, metric, instance, ts, float(v))
                for (metric, instance), v in zip(parts, values[d].tolist(), strict=True)
            ],
        )
        for d, device in enumerate(devices)
    ]


class NullSink:
    def __init__(self) -> None:
        self.count = 0

    def publish(self, anomalies: Sequence[Anomaly]) -> None:
        self.count += len(anomalies)


# -- measurements --------------------------------------------------------------------


@dataclass
class Training:
    detector: str
    rows: int
    columns: int
    fit_s: float
    models: int
    adapt_s: float | None = None
    note: str = ""


@dataclass
class Cycle:
    detector: str
    devices: int
    metrics: int
    measured_devices: int
    cycles: int
    first_s: float
    wall_s: float
    cpu_s: float
    ingest_s: float
    frames_s: float
    scoring_s: float
    anomalies: int
    extrapolated: bool = False
    note: str = ""
    walls: list[float] = field(default_factory=list)

    @property
    def series(self) -> int:
        return self.devices * self.metrics

    @property
    def points_per_s(self) -> float:
        return self.series / self.scoring_s if self.scoring_s > 0 else math.inf

    @property
    def within_target(self) -> bool:
        return self.wall_s < TARGET_S


def train_models(
    name: str, columns: tuple[str, ...], distinct: int, seed: int
) -> tuple[list[Detector], Training]:
    """``distinct`` detectors fitted on one day of frames each, and the time that took."""
    registry = default_registry()
    rng = np.random.default_rng(seed)
    detectors: list[Detector] = []
    times = []
    frames = []
    for _ in range(distinct):
        X = transformed(columns, raw_values(rng, columns, TRAIN_ROWS, T0 - TRAIN_ROWS * STEP))
        frames.append(X)
        detector = registry.create(name)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            detector.fit(X)
        times.append(time.perf_counter() - started)
        detectors.append(detector)
    training = Training(name, TRAIN_ROWS, len(columns), statistics.median(times), distinct)
    adapt = getattr(detectors[0], "series_state", None)
    if callable(adapt):
        X = transformed(columns, raw_values(rng, columns, TRAIN_ROWS, T0 - TRAIN_ROWS * STEP))
        started = time.perf_counter()
        adapt(X)
        training.adapt_s = time.perf_counter() - started
        training.note = "adapt = `series_state(X)`: the shared network fitted to one more device"
    return detectors, training


def _timed(fn: Callable[..., Any], bucket: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - started)

    return wrapper


def run_cycles(
    name: str,
    detectors: Sequence[Detector],
    columns: tuple[str, ...],
    devices: int,
    cycles: int,
    seed: int,
) -> Cycle:
    """One service over ``devices`` devices; the first cycle, then ``cycles`` measured ones."""
    names = [f"r{i:06d}" for i in range(devices)]
    models = LoadedModels(
        "bench",
        {},
        {
            d: DeviceModel(d, "router", columns, detectors[i % len(detectors)], {})
            for i, d in enumerate(names)
        },
    )
    feed, sink = MemoryFeed(), NullSink()
    service = DetectionService(
        feed, sink, models, batch=devices + 1, max_entries=devices + 1, repeat_s=0.0
    )
    ingest: list[float] = []
    frames: list[float] = []
    builder: FrameBuilder = service.frames
    builder.add = _timed(builder.add, ingest)  # type: ignore[method-assign]
    builder.rows = _timed(builder.rows, frames)  # type: ignore[method-assign]
    rng = np.random.default_rng(seed + devices)
    walls: list[float] = []
    cpus: list[float] = []
    firsts: list[float] = []
    ingests: list[float] = []
    framings: list[float] = []
    for c in range(cycles + 1):
        ts = T0 + STEP * c
        values = raw_values(rng, columns, devices, ts).reshape(devices, len(columns))
        feed.entries = poll_entries(names, columns, values, ts, c)
        ingest.clear()
        frames.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        result = service.run_once()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if result.scored != devices:
            raise RuntimeError(f"{name}: scored {result.scored} of {devices} devices")
        if c == 0:
            firsts.append(wall)
            continue
        walls.append(wall)
        cpus.append(cpu)
        ingests.append(sum(ingest))
        framings.append(sum(frames))
    wall = statistics.median(walls)
    ingest_s, frames_s = statistics.median(ingests), statistics.median(framings)
    scoring_s = statistics.median(
        w - i - f for w, i, f in zip(walls, ingests, framings, strict=True)
    )
    return Cycle(
        detector=name,
        devices=devices,
        metrics=len(columns),
        measured_devices=devices,
        cycles=cycles,
        first_s=firsts[0],
        wall_s=wall,
        cpu_s=statistics.median(cpus),
        ingest_s=ingest_s,
        frames_s=frames_s,
        scoring_s=max(scoring_s, 1e-9),
        anomalies=sink.count,
        walls=walls,
    )


def probe_seconds_per_device(detectors: Sequence[Detector], columns: tuple[str, ...]) -> float:
    """Rough per-device cost of one-at-a-time scoring, to decide whether to extrapolate."""
    row = transformed(columns, raw_values(np.random.default_rng(0), columns, 1, T0))
    det = detectors[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det.score(row)
        started = time.perf_counter()
        for _ in range(5):
            det.score(row)
            det.contributions(row)
    return (time.perf_counter() - started) / 5


def measure(
    name: str,
    detectors: Sequence[Detector],
    columns: tuple[str, ...],
    devices: int,
    cycles: int,
    budget_s: float,
    seed: int,
) -> Cycle:
    """Cycles at ``devices``; on fewer devices, scaled linearly, when that would exceed
    ``budget_s`` per cycle."""
    batched = name == "robust_z" or callable(getattr(detectors[0], "score_windows", None))
    if batched:
        return run_cycles(name, detectors, columns, devices, cycles, seed)
    per_device = probe_seconds_per_device(detectors, columns)
    if per_device * devices <= budget_s:
        return run_cycles(name, detectors, columns, devices, cycles, seed)
    subset = max(50, int(budget_s / per_device))
    subset = min(subset, devices)
    few = run_cycles(name, detectors, columns, subset, max(1, min(cycles, 2)), seed)
    scale = devices / subset
    return Cycle(
        detector=name,
        devices=devices,
        metrics=few.metrics,
        measured_devices=subset,
        cycles=few.cycles,
        first_s=few.first_s * scale,
        wall_s=few.wall_s * scale,
        cpu_s=few.cpu_s * scale,
        ingest_s=few.ingest_s * scale,
        frames_s=few.frames_s * scale,
        scoring_s=few.scoring_s * scale,
        anomalies=few.anomalies,
        extrapolated=True,
        note=f"measured on {subset} devices, × {scale:.1f}",
        walls=few.walls,
    )


def decode_seconds(devices: int, columns: tuple[str, ...], seed: int) -> float:
    """Decoding one cycle's bus entries (one per device) into samples."""
    names = [f"r{i:06d}" for i in range(devices)]
    values = raw_values(np.random.default_rng(seed), columns, devices, T0)
    fields = [encode_samples(e.samples) for e in poll_entries(names, columns, values, T0, 0)]
    started = time.perf_counter()
    for f in fields:
        decode_samples(f)
    return time.perf_counter() - started


# -- the report ----------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "cpu": cpu,
        "cores": str(cores),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": importlib.metadata.version("scikit-learn"),
        "load_1min": f"{os.getloadavg()[0]:.2f}",
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = str(torch.get_num_threads())
    except ImportError:
        info["torch"] = "not installed"
    return info


def _fmt(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def render(
    cycles: Sequence[Cycle],
    training: Sequence[Training],
    decode: dict[int, float],
    info: dict[str, str],
    command: str,
    detector_threads: dict[str, int],
) -> str:
    lines = [
        MARK_BEGIN,
        "## Detection speed: ingest, frames and scoring per cycle",
        "",
        f"Command: `{command}`",
        f"Machine: {info['cpu']}, {info['cores']} cores available, {info['os']}; Python "
        f"{info['python']}, numpy {info['numpy']}, scikit-learn {info['scikit-learn']}, torch "
        f"{info.get('torch', '?')} ({info.get('torch_threads', '?')} threads by default"
        + "".join(f"; `{k}` scores with {v}" for k, v in detector_threads.items())
        + f"). Load average at start: {info['load_1min']} (other work on the same cores "
        "makes wall times noisier; CPU s is the process's own).",
        "",
        "Each cycle: one poll per device of every metric, one bus entry per device, through "
        "`DetectionService.run_once` (ingest → frames → scoring → anomaly decisions). "
        "Median of the measured cycles; *first* is the first cycle, which also sets up "
        "every device's state. Scoring = cycle − ingest − frames. Throughput = "
        "series-points (devices × metrics) per second of scoring.",
        "",
        "| detector | devices | series | cycle s | CPU s | ingest s | frames s | scoring s "
        "| first s | series-points/s | < 1 s | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cycles:
        verdict = "yes" if c.within_target else "**no**"
        lines.append(
            f"| {c.detector} | {c.devices:,} | {c.series:,} | {_fmt(c.wall_s)} | {_fmt(c.cpu_s)} "
            f"| {_fmt(c.ingest_s)} | {_fmt(c.frames_s)} | {_fmt(c.scoring_s)} | "
            f"{_fmt(c.first_s)} | {c.points_per_s:,.0f} | {verdict} | "
            f"{c.note or f'{c.cycles} cycles'} |"
        )
    lines += [
        "",
        "Training, per device-model, on one day of 1-minute frames:",
        "",
        "| detector | rows × columns | fit s | models timed | adapt s | note |",
        "|---|---|---|---|---|---|",
    ]
    for t in training:
        adapt = _fmt(t.adapt_s) if t.adapt_s is not None else "–"
        lines.append(
            f"| {t.detector} | {t.rows:,} × {t.columns} | {_fmt(t.fit_s)} | {t.models} | "
            f"{adapt} | {t.note} |"
        )
    lines.append("")
    for devices, seconds in sorted(decode.items()):
        lines.append(
            f"Bus decode (`collectors.bus.decode_samples`, before the service): "
            f"{_fmt(seconds)} s for one cycle of {devices:,} devices."
        )
    best = [c for c in cycles if c.devices == max(x.devices for x in cycles)]
    if best:
        lines.append("")
        lines.append(
            f"**Target** (a {best[0].devices:,}-device × {best[0].metrics}-metric cycle under "
            f"{TARGET_S:g} s on {info['cores']} cores): "
            + "; ".join(
                f"{c.detector} {'met' if c.within_target else 'missed'} ({_fmt(c.wall_s)} s"
                f"{', extrapolated' if c.extrapolated else ''})"
                for c in best
            )
            + "."
        )
        base = next((c for c in best if c.detector == "robust_z"), None)
        if base is not None:
            lines.append("")
            lines.append(
                f"Cycle time relative to `robust_z` in the same run, {best[0].devices:,} "
                "devices: "
                + ", ".join(f"{c.detector} ×{c.wall_s / base.wall_s:.2f}" for c in best)
                + "."
            )
    lines.append(MARK_END)
    return "\n".join(lines) + "\n"


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("comma-separated positive integers, e.g. 1000,10000")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--devices", type=_sizes, default=[1000, 10000])
    parser.add_argument("--metrics", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=5, help="measured cycles per row")
    parser.add_argument(
        "--detectors",
        default=",".join(DEFAULT_DETECTORS),
        help="comma-separated; unregistered ones are skipped",
    )
    parser.add_argument("--distinct", type=int, default=8, help="distinct models per detector")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds a cycle may take before extrapolating"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    registered = set(default_registry())
    chosen = [d for d in args.detectors.split(",") if d and d != "random"]
    skipped = [d for d in chosen if d not in registered]
    chosen = [d for d in chosen if d in registered]
    columns = fleet_columns(args.metrics)
    info = machine()
    cycles: list[Cycle] = []
    training: list[Training] = []
    threads: dict[str, int] = {}
    for name in chosen:
        # forecast: one network shared by the fleet (one model); the others: a few
        # distinct per-device models, handed out round-robin (cost does not depend on
        # which weights a device has).
        distinct = (
            1 if callable(getattr(registry_probe(name), "score_windows", None)) else args.distinct
        )
        print(f"[{name}] training {distinct} model(s)…", file=sys.stderr)
        detectors, trained = train_models(name, columns, distinct, args.seed)
        training.append(trained)
        if isinstance(getattr(detectors[0], "num_threads", None), int):
            threads[name] = int(detectors[0].num_threads)  # type: ignore[attr-defined]
        for devices in args.devices:
            print(f"[{name}] {devices} devices…", file=sys.stderr)
            cycles.append(
                measure(name, detectors, columns, devices, args.cycles, args.budget, args.seed)
            )
    decode = {n: decode_seconds(n, columns, args.seed) for n in args.devices}
    command = "taskset -c 0,1 python -m bench.detect " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--json", "--no-write")
    )
    section = render(cycles, training, decode, info, command.strip(), threads)
    if skipped:
        section = section.replace(
            MARK_END, f"Not registered here, so not measured: {', '.join(skipped)}.\n{MARK_END}"
        )
    if args.json:
        print(
            json.dumps(
                {
                    "machine": info,
                    "cycles": [
                        asdict(c) | {"series": c.series, "points_per_s": c.points_per_s}
                        for c in cycles
                    ],
                    "training": [asdict(t) for t in training],
                    "decode_s": decode,
                    "skipped": skipped,
                },
                indent=2,
            )
        )
    else:
        print(section)
    if not args.no_write:
        write_section(DOC, section, MARK_BEGIN, MARK_END)
    return 0


def registry_probe(name: str) -> Detector:
    """An unfitted detector of ``name`` (to see what it offers)."""
    return default_registry().create(name)


if __name__ == "__main__":
    raise SystemExit(main())
