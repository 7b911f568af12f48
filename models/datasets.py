"""Loaders for the public evaluation sets in ``shared/data`` (see its README).

Each loader returns :class:`Series` objects with the train / test split the
data README prescribes. Timestamps are Unix seconds (UTC) for the test part.
Bad input raises :class:`DatasetError` naming the file (and line and column
where there is one) and what was wrong.

- :func:`load_smd_layout`: SMD and CDN folders (``kpiN.csv``, ``label.csv``).
- :func:`load_nab`: the Numenta Anomaly Benchmark, NAB's probationary split.
- :func:`load_optical`: OSA lightpath monitoring, normal file A and fault file B.
- :func:`load_cisco`: Cisco IOS-XR streaming telemetry (dataset 11), one
  multivariate series per router, counters turned into rates, labels from the
  injected events.
- :func:`load_csv`: any CSV with a timestamp column, numeric columns and a
  0/1 label column.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.base import FloatArray
from models.metrics import events_from_labels

__all__ = [
    "CISCO_LABELLED_EVENTS",
    "KNOWN_TRAIN_POINTS",
    "DatasetError",
    "Series",
    "counter_rates",
    "load_cisco",
    "load_csv",
    "load_nab",
    "load_optical",
    "load_smd_layout",
]

#: Series whose train part is not the first half (data README).
KNOWN_TRAIN_POINTS = {"vod1": 10_656}
#: NAB's probationary period: detectors learn on the first 15 % of each file,
#: at most 750 rows (NAB's ``Sweeper._getProbationaryLength``).
NAB_PROBATION = 0.15
NAB_PROBATION_MAX = 750
#: Optical: train on the first 70 % of the normal file A.
OPTICAL_TRAIN_FRACTION = 0.7


class DatasetError(ValueError):
    """A data file is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class Series:
    """One evaluation series: anomaly-free training rows, labelled test rows.

    ``events`` are inclusive index ranges into the test part (labelled runs,
    NAB's windows, or Cisco's event windows) for event metrics; ``event_times``
    (when known) are the events' true start times, in seconds, so detection
    delays count from the event rather than from the first sample after it.
    ``columns`` names the features (``metric@component`` where there is one).
    """

    name: str
    X_train: FloatArray
    X_test: FloatArray
    y_test: NDArray[np.int64]
    timestamps: FloatArray
    events: list[tuple[int, int]] = field(default_factory=list)
    columns: tuple[str, ...] = ()
    event_times: tuple[float, ...] = ()
    event_names: tuple[str, ...] = ()


def _read_row(path: Path) -> FloatArray:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    text = path.read_text().strip()
    try:
        return np.array([float(v) for v in text.split(",")], dtype=np.float64)
    except ValueError as exc:
        raise DatasetError(f"{path}: expected one row of comma-separated numbers ({exc})") from exc


def _compact_time(value: float, path: Path) -> float:
    """``20190903000200`` (YYYYmmddHHMMSS, maybe as a float) as Unix seconds."""
    try:
        stamp = datetime.strptime(f"{int(value):014d}", "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise DatasetError(f"{path}: timestamp {value!r} is not YYYYmmddHHMMSS") from exc
    return stamp.timestamp()


def load_smd_layout(directory: str | Path, train_points: int | None = None) -> Series:
    """SMD / CDN layout: ``kpiN.csv`` (one row per KPI), ``timestamp.csv``, ``label.csv``.

    Args:
        directory: one machine or site, e.g. ``shared/data/smd/machine-1-1``.
        train_points: leading points used for training; default: the data
            README's split (VoD1: 10,656), else the first half.

    Raises:
        DatasetError: missing files, KPIs of different lengths, bad labels.
    """
    path = Path(directory)
    kpis = sorted(path.glob("kpi*.csv"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not kpis:
        raise DatasetError(f"{path}: no kpiN.csv files (is this an SMD/CDN series folder?)")
    columns = [_read_row(p) for p in kpis]
    n = columns[0].size
    for p, col in zip(kpis, columns, strict=True):
        if col.size != n:
            raise DatasetError(f"{p}: {col.size} points, but {kpis[0].name} has {n}")
    X = np.column_stack(columns)
    labels = _read_row(path / "label.csv")
    stamps = _read_row(path / "timestamp.csv")
    for name, arr in (("label.csv", labels), ("timestamp.csv", stamps)):
        if arr.size != n:
            raise DatasetError(f"{path / name}: {arr.size} points, but the KPIs have {n}")
    odd = np.flatnonzero(~np.isin(labels, (0.0, 1.0)))
    if odd.size:
        # SMD machine-1-1 holds one such value (0.075269 at point 28,478), a
        # glitch of the source's concatenation; read labels as ≥ 0.5.
        if odd.size > max(3, n // 1000) or not np.all((labels >= 0) & (labels <= 1)):
            raise DatasetError(f"{path / 'label.csv'}: labels must be 0 or 1")
        warnings.warn(
            f"{path / 'label.csv'}: {odd.size} label(s) neither 0 nor 1 at points "
            f"{odd[:3].tolist()}; read as label ≥ 0.5",
            stacklevel=2,
        )
        labels = (labels >= 0.5).astype(np.float64)
    split = train_points if train_points is not None else KNOWN_TRAIN_POINTS.get(path.name, n // 2)
    if not 0 < split < n:
        raise DatasetError(f"{path}: train_points={split} leaves no train or test part (n={n})")
    y = labels[split:].astype(np.int64)
    times = np.array([_compact_time(v, path / "timestamp.csv") for v in stamps[split:]])
    return Series(
        name=path.name,
        X_train=X[:split],
        X_test=X[split:],
        y_test=y,
        timestamps=times,
        events=events_from_labels(y),
    )


def _nab_time(text: str, where: str) -> float:
    try:
        stamp = datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
    except ValueError as exc:
        raise DatasetError(f"{where}: bad timestamp {text!r}") from exc
    return stamp.timestamp()


def load_nab(directory: str | Path, labels_json: str | Path) -> list[Series]:
    """NAB: every ``category/file.csv`` under ``directory`` listed in ``labels_json``.

    Training is NAB's probationary period (the first 15 %, at most 750 rows,
    as NAB's scorer counts it); the rest is the test part. Windows become
    point labels (1 inside a window) and are kept as ``events``. Files
    missing from ``labels_json`` are skipped.

    Raises:
        DatasetError: unreadable labels, a CSV without ``timestamp,value``.
    """
    root, labels_path = Path(directory), Path(labels_json)
    try:
        windows = json.loads(labels_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{labels_path}: cannot read NAB labels ({exc})") from exc
    series: list[Series] = []
    for key in sorted(windows):
        csv_path = root / key
        if not csv_path.is_file():
            continue
        with csv_path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
                raise DatasetError(f"{csv_path}: expected a 'timestamp,value' header")
            times, values = [], []
            for lineno, row in enumerate(reader, start=2):
                try:
                    values.append(float(row[1]))
                except (IndexError, ValueError) as exc:
                    raise DatasetError(f"{csv_path} line {lineno}: bad value ({exc})") from exc
                times.append(_nab_time(row[0], f"{csv_path} line {lineno}"))
        t = np.array(times)
        x = np.array(values).reshape(-1, 1)
        split = max(min(math.floor(NAB_PROBATION * t.size), NAB_PROBATION_MAX), 2)
        y = np.zeros(t.size, dtype=np.int64)
        for start, end in windows[key]:
            first, last = _nab_time(start, str(labels_path)), _nab_time(end, str(labels_path))
            y[(t >= first) & (t <= last)] = 1
        y_test = y[split:]
        series.append(
            Series(key, x[:split], x[split:], y_test, t[split:], events_from_labels(y_test))
        )
    if not series:
        raise DatasetError(f"{root}: no CSV file named in {labels_path}")
    return series


def _read_osa(path: Path) -> tuple[FloatArray, FloatArray]:
    """An OSA ``.dat``: SCPI header lines, a ``DATE,...`` header, then ``date time n,values``."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    rows: list[list[float]] = []
    times: list[float] = []
    seen_header = False
    width = 0
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not seen_header:
            if line.strip().startswith("DATE"):
                seen_header = True
                width = len(line.split(",")) - 1
            continue
        if not line.strip():
            continue
        first, *rest = line.split(",")
        try:
            stamp = datetime.strptime(" ".join(first.split()[:2]), "%Y/%m/%d %H:%M:%S")
            values = [float(v) for v in rest]
        except ValueError as exc:
            raise DatasetError(f"{path} line {lineno}: bad row ({exc})") from exc
        if len(values) != width:
            raise DatasetError(f"{path} line {lineno}: {len(values)} values, expected {width}")
        times.append(stamp.replace(tzinfo=UTC).timestamp())
        rows.append(values)
    if not seen_header:
        raise DatasetError(f"{path}: no 'DATE,...' header line (is this an OSA .dat file?)")
    if not rows:
        raise DatasetError(f"{path}: no data rows")
    return np.array(rows), np.array(times)


def load_optical(directory: str | Path) -> Series:
    """OSA lightpath monitoring: ``A_*.dat`` normal, ``B_*.dat`` fault.

    Train on the first 70 % of A; test on the rest of A (label 0) then all of B
    (label 1). B was recorded on another day, so its timestamps are shifted to
    follow A's end by one step, keeping test time monotonic for per-day rates.
    """
    path = Path(directory)
    a_files, b_files = sorted(path.glob("A_*.dat")), sorted(path.glob("B_*.dat"))
    if len(a_files) != 1 or len(b_files) != 1:
        raise DatasetError(f"{path}: expected one A_*.dat and one B_*.dat file")
    xa, ta = _read_osa(a_files[0])
    xb, tb = _read_osa(b_files[0])
    if xa.shape[1] != xb.shape[1]:
        raise DatasetError(
            f"{b_files[0]}: {xb.shape[1]} columns, but {a_files[0].name} has {xa.shape[1]}"
        )
    split = int(OPTICAL_TRAIN_FRACTION * len(xa))
    step = float(np.median(np.diff(ta))) if len(ta) > 1 else 1.0
    tb_shifted = tb - tb[0] + ta[-1] + step
    y = np.concatenate([np.zeros(len(xa) - split), np.ones(len(xb))]).astype(np.int64)
    return Series(
        name=a_files[0].stem.removeprefix("A_"),
        X_train=xa[:split],
        X_test=np.vstack([xa[split:], xb]),
        y_test=y,
        timestamps=np.concatenate([ta[split:], tb_shifted]),
        events=events_from_labels(y),
    )


# --- Cisco IOS-XR streaming telemetry (cisco-ie/telemetry dataset 11) ---------------------

#: Injected events that label the Cisco data; the other rows of ``events.csv.gz``
#: (subscription edits, telemetry clears, traffic start/stop) are bookkeeping.
CISCO_LABELLED_EVENTS = frozenset(
    {"break_bfd", "enable_bfd", "shutdown_interface", "enable_interface"}
)
_U64 = 2.0**64
_U32 = 2.0**32


@dataclass(frozen=True)
class _Source:
    """One YANG path's CSV: which columns become which canonical metrics.

    ``counters`` are cumulative (turned into per-second rates, times a factor);
    ``gauges`` are read as they are. ``key`` names the component column
    (interface, node); the feature is ``metric@component``, or ``metric``
    without a key.
    """

    stem: str
    key: str | None
    counters: tuple[tuple[str, str, float], ...] = ()
    gauges: tuple[tuple[str, str], ...] = ()
    discontinuity: str | None = None


_XR = "Cisco-IOS-XR-"
CISCO_SOURCES: tuple[_Source, ...] = (
    _Source(
        _XR + "infra-statsd-oper__infra-statistics_interfaces_interface_latest_generic-counters",
        key="interface-name",
        counters=(
            ("bytes-received", "if_in_bps", 8.0),
            ("bytes-sent", "if_out_bps", 8.0),
            ("packets-received", "if_in_pps", 1.0),
            ("packets-sent", "if_out_pps", 1.0),
            ("input-errors", "if_in_errors_ps", 1.0),
            ("output-errors", "if_out_errors_ps", 1.0),
            ("input-drops", "if_in_discards_ps", 1.0),
            ("output-drops", "if_out_discards_ps", 1.0),
            ("crc-errors", "if_crc_errors_ps", 1.0),
            ("carrier-transitions", "if_carrier_transitions_ps", 1.0),
        ),
        discontinuity="last-discontinuity-time",
    ),
    _Source(
        _XR + "wdsysmon-fd-oper__system-monitoring_cpu-utilization",
        key="node-name",
        gauges=(("total-cpu-one-minute", "cpu_util_pct"),),
    ),
    _Source(
        _XR + "nto-misc-oper__memory-summary_nodes_node_summary",
        key="node-name",
        gauges=(("free-physical-memory", "mem_free_bytes"),),
    ),
    _Source(
        _XR + "ipv4-bgp-oper__bgp_instances_instance_instance-active_default-vrf_process-info",
        key=None,
        gauges=(("global__established-neighbors-count-total", "bgp_established_neighbors"),),
    ),
    _Source(
        _XR + "ip-bfd-oper__bfd_summary",
        key=None,
        gauges=(
            ("session-state__up-count", "bfd_sessions_up"),
            ("session-state__down-count", "bfd_sessions_down"),
        ),
    ),
    _Source(
        _XR + "pfi-im-cmd-oper__interfaces_interface-summary",
        key=None,
        gauges=(
            ("interface-counts__up-interface-count", "if_up_count"),
            ("interface-counts__down-interface-count", "if_down_count"),
        ),
    ),
    _Source(
        _XR + "fib-common-oper__fib-statistics_nodes_node_drops",
        key="node-name",
        counters=(("total-number-of-drop-packets", "fib_drops_ps", 1.0),),
    ),
    _Source(
        _XR + "ip-tcp-oper__tcp_nodes_node_statistics_ipv4-traffic",
        key="node-name",
        counters=(
            ("tcp-input-packets", "tcp_in_pps", 1.0),
            ("tcp-retransmitted-packets", "tcp_retransmits_ps", 1.0),
        ),
    ),
)


def counter_rates(
    values: Sequence[float] | FloatArray,
    times: Sequence[float] | FloatArray,
    bits: int = 64,
    resets: Sequence[bool] | NDArray[np.bool_] | None = None,
) -> FloatArray:
    """Per-second rates of a cumulative counter, as the collectors derive them.

    The rate at sample ``i`` is ``(v[i] - v[i-1]) / (t[i] - t[i-1])``. It is NaN
    (not emitted) for the first sample, when time did not advance, when
    ``resets[i]`` is set (the device announced a discontinuity), when a 64-bit
    counter went backwards (a reset), or when a 32-bit counter went back and
    the increase a wrap would imply is half its range or more (more likely a
    reset than traffic that nearly lapped the counter). Otherwise a 32-bit step
    back is a wrap and is unwrapped (``collectors.rates.RateTracker``'s rule).

    Args:
        values: the counter's readings, in time order.
        times: their times in seconds.
        bits: the counter's width, 32 or 64.
        resets: per sample, whether the counter was reset since the one before.
    """
    if bits not in (32, 64):
        raise ValueError(f"bits must be 32 or 64, got {bits}")
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if v.shape != t.shape or v.ndim != 1:
        raise ValueError(f"values and times must be 1-D of one length, got {v.shape}, {t.shape}")
    rates = np.full(v.size, np.nan)
    if v.size < 2:
        return rates
    delta = np.diff(v)
    dt = np.diff(t)
    if bits == 32:
        wrapped = (delta < 0) & (delta + _U32 < _U32 / 2)
        delta = np.where(wrapped, delta + _U32, delta)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = delta / dt
    bad = (delta < 0) | ~(dt > 0) | ~np.isfinite(rate)
    if resets is not None:
        flags = np.asarray(resets, dtype=bool)
        if flags.shape != v.shape:
            raise ValueError(f"resets has {flags.size} flags for {v.size} values")
        bad |= flags[1:]
    rates[1:] = np.where(bad, np.nan, rate)
    return rates


def _gz_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of a gzip CSV, header first."""
    try:
        with gzip.open(path, "rt", newline="") as handle:
            yield from enumerate(csv.reader(handle), start=1)
    except (OSError, EOFError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read gzip CSV ({exc})") from exc


def _stamp(text: str, where: str) -> float:
    """ISO 8601 (naive = UTC) or Unix seconds as Unix seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise DatasetError(f"{where}: bad timestamp {text!r} (ISO 8601 or Unix seconds)") from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _number(text: str, where: str) -> float:
    if not text.strip():
        return float("nan")
    try:
        return float(text)
    except ValueError as exc:
        raise DatasetError(f"{where}: not a number ({text!r})") from exc


def _read_source(
    path: Path, source: _Source, router: str
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """One YANG path's CSV as ``{feature: (times, values)}``, counters as rates."""
    rows = _gz_rows(path)
    first = next(rows, None)
    if first is None:
        raise DatasetError(f"{path}: empty file")
    header = first[1]
    index = {name: i for i, name in enumerate(header)}
    wanted = [c for c, _, _ in source.counters] + [c for c, _ in source.gauges]
    needed = [*wanted, *(x for x in (source.key, source.discontinuity) if x)]
    missing = [c for c in needed if c not in index]
    if missing:
        raise DatasetError(f"{path}: no column(s) {', '.join(map(repr, missing))} in the header")
    producer = index.get("Producer")
    per_key: dict[str, list[tuple[float, list[float], float]]] = {}
    for lineno, cells in rows:
        if len(cells) != len(header):
            raise DatasetError(
                f"{path} line {lineno}: {len(cells)} cells, header has {len(header)}"
            )
        if producer is not None and cells[producer] != router:
            continue
        where = f"{path} line {lineno}"
        stamp = _stamp(cells[0], f"{where} column 1")
        values = [_number(cells[index[c]], f"{where} column {c!r}") for c in wanted]
        disc = (
            _number(cells[index[source.discontinuity]], f"{where} column {source.discontinuity!r}")
            if source.discontinuity
            else 0.0
        )
        per_key.setdefault(cells[index[source.key]] if source.key else "", []).append(
            (stamp, values, disc)
        )
    if not per_key:
        raise DatasetError(f"{path}: no rows for router {router!r}")
    out: dict[str, tuple[FloatArray, FloatArray]] = {}
    for key in sorted(per_key):
        entries = sorted(per_key[key], key=lambda e: e[0])
        t = np.array([e[0] for e in entries])
        data = np.array([e[1] for e in entries]).reshape(len(entries), len(wanted))
        disc_col = np.array([e[2] for e in entries])
        resets = np.concatenate([[False], np.diff(disc_col) != 0])
        suffix = f"@{key}" if key else ""
        for j, (_, metric, factor) in enumerate(source.counters):
            out[metric + suffix] = (t, factor * counter_rates(data[:, j], t, 64, resets))
        for j, (_, metric) in enumerate(source.gauges, start=len(source.counters)):
            out[metric + suffix] = (t, data[:, j])
    return out


def _as_of(times: FloatArray, values: FloatArray, grid: FloatArray) -> FloatArray:
    """The last valid value at or before each grid time (NaN before the first).

    Causal by construction: a grid row never sees a sample stamped after it.
    (The dataset's README suggests linear interpolation, which would look ahead.)
    """
    valid = np.isfinite(values)
    t, v = times[valid], values[valid]
    at = np.searchsorted(t, grid, side="right") - 1
    return (
        np.where(at >= 0, v[np.clip(at, 0, None)], np.nan) if t.size else np.full(grid.size, np.nan)
    )


def _cisco_events(path: Path) -> list[tuple[float, str]]:
    rows = _gz_rows(path)
    first = next(rows, None)
    if first is None or first[1][:2] != ["timestamp", "event"]:
        raise DatasetError(f"{path}: expected a 'timestamp,event,...' header")
    header = first[1]
    events = []
    for lineno, cells in rows:
        if len(cells) < 2:
            raise DatasetError(f"{path} line {lineno}: expected at least 'timestamp,event'")
        if cells[1] not in CISCO_LABELLED_EVENTS:
            continue
        stamp = _stamp(cells[0], f"{path} line {lineno} column 'timestamp'")
        row = dict(zip(header, cells, strict=False))
        what = " ".join(x for x in (row.get("device", ""), row.get("interface", "")) if x)
        events.append((stamp, f"{cells[1]} {what}".strip()))
    return sorted(events)


def load_cisco(
    directory: str | Path,
    router: str = "leaf7",
    *,
    step_s: float = 10.0,
    window_s: float = 60.0,
    train_points: int | None = None,
) -> Series:
    """Cisco IOS-XR model-driven telemetry of one router (dataset 11) as one series.

    **Features** (one column per ``metric@component``, see ``CISCO_SOURCES``):
    per HundredGigE interface, the bit, packet, error, discard, CRC and
    carrier-transition rates from the cumulative ``latest/generic-counters``
    (per-second rates at each sample; a changed ``last-discontinuity-time`` or
    a counter going backwards is a reset: no rate at that sample, the previous
    rate carries on); per node, CPU (1-minute), free memory, FIB drop rate and
    TCP input and retransmit rates; BGP established neighbours, BFD sessions
    up and down, interfaces up and down. Interfaces that carry no packet in
    the training part are dropped (decided on training data alone).

    **Alignment**: the sources report every ~10-12 s at their own times; rows
    are a regular grid every ``step_s`` seconds, each holding the latest sample
    of every column at or before its time (as-of, so causal). The grid starts
    when every column has a value and ends at the earliest last sample.

    **Labels**: ``events.csv.gz`` rows of :data:`CISCO_LABELLED_EVENTS` (BFD
    break/restore towards spine4, shutdown/enable of the router's interface).
    An event's window is ``[start, start + window_s]``; grid rows in it are
    labelled 1, matching the rule "found if an alarm falls within 60 s of its
    start".

    **Split**: the first labelled event (``break_bfd``) comes 6 s after
    telemetry starts, so there is no quiet time before it; it and any event
    before the grid's start plus ``window_s`` are "settling". Training is the
    grid rows from the last settling event + ``window_s`` up to (not including)
    the next event: on dataset 11, 07:04:07 to 07:23:01 UTC (about 19 minutes,
    ~113 rows; BFD already broken, all interfaces up). The test part is the
    rest. Events whose window runs past the data's end (the last shutdown, at
    the end of the capture) are not scored. ``train_points=N`` instead takes
    the first N rows after the settling as training; labelled events among them
    are not scored.

    Raises:
        DatasetError: a missing file, header or column, a malformed cell
            (file, line and column named), or no rows for ``router``.
    """
    path = Path(directory)
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder (expected cisco-ios-xr/dataset11)")
    columns: dict[str, tuple[FloatArray, FloatArray]] = {}
    for source in CISCO_SOURCES:
        file = path / f"{source.stem}.csv.gz"
        if not file.is_file():
            raise DatasetError(f"{file}: file not found")
        columns.update(_read_source(file, source, router))
    events = _cisco_events(path / "events.csv.gz") if (path / "events.csv.gz").is_file() else None
    if events is None:
        raise DatasetError(f"{path / 'events.csv.gz'}: file not found")
    starts = [float(t[np.isfinite(v)][0]) for t, v in columns.values() if np.isfinite(v).any()]
    if len(starts) < len(columns):
        dead = [k for k, (_, v) in columns.items() if not np.isfinite(v).any()]
        raise DatasetError(f"{path}: column(s) with no value at all: {', '.join(dead[:5])}")
    begin = max(starts)
    end = min(float(t[-1]) for t, _ in columns.values())
    if end - begin < 2 * step_s:
        raise DatasetError(f"{path}: the sources overlap for {end - begin:.0f} s only")
    grid = np.arange(math.ceil(begin / step_s) * step_s, end + 1e-9, step_s)
    names = sorted(columns)
    X = np.column_stack([_as_of(*columns[name], grid) for name in names])

    settling = [e for e in events if e[0] < grid[0] + window_s]
    later = [e for e in events if e[0] >= grid[0] + window_s]
    train_from = grid[0] if not settling else settling[-1][0] + window_s
    first = int(np.searchsorted(grid, train_from, side="left"))
    if train_points is not None:
        split = first + train_points
    elif later:
        split = int(np.searchsorted(grid, later[0][0], side="left"))
    else:
        raise DatasetError(f"{path}: no labelled event after the settling time")
    if not first < split < grid.size:
        raise DatasetError(
            f"{path}: training rows {first}..{split} leave no train or test part (n={grid.size})"
        )
    X_train, X_test, t_test = X[first:split], X[split:], grid[split:]

    # Drop interfaces that carry no packet in training (unused ports).
    idle = set()
    for name in names:
        metric, _, component = name.partition("@")
        if metric == "if_in_pps":
            pps = X_train[
                :, [names.index(f"if_in_pps@{component}"), names.index(f"if_out_pps@{component}")]
            ]
            if not np.nansum(np.abs(pps)) > 0:
                idle.add(component)
    keep = [
        i for i, n in enumerate(names) if not (n.startswith("if_") and n.partition("@")[2] in idle)
    ]

    y = np.zeros(t_test.size, dtype=np.int64)
    spans, times, labels = [], [], []
    for stamp, what in later:
        if stamp <= grid[split - 1] or stamp + window_s > t_test[-1]:
            continue
        inside = np.flatnonzero((t_test >= stamp) & (t_test <= stamp + window_s))
        if inside.size == 0:
            continue
        y[inside] = 1
        spans.append((int(inside[0]), int(inside[-1])))
        times.append(stamp)
        labels.append(what)
    return Series(
        name=f"{path.name}/{router}",
        X_train=X_train[:, keep],
        X_test=X_test[:, keep],
        y_test=y,
        timestamps=t_test,
        events=spans,
        columns=tuple(names[i] for i in keep),
        event_times=tuple(times),
        event_names=tuple(labels),
    )


# --- Generic CSV ------------------------------------------------------------------------------


def load_csv(
    file: str | Path,
    *,
    timestamp_column: str = "timestamp",
    label_column: str = "label",
    train_points: int | None = None,
) -> Series:
    """A CSV file as one series: a header row, then one row per time step.

    Layout: a ``timestamp_column`` (ISO 8601, naive read as UTC, or Unix
    seconds; non-decreasing), a ``label_column`` (0 normal, 1 anomalous), and
    any number of numeric feature columns (an empty cell is a missing value).
    Training is the first ``train_points`` rows (default: the first half);
    their labels should be 0 (a warning says how many are not). Events are the
    runs of label 1 in the test part.

    Raises:
        DatasetError: a missing column, a cell that is not a number or a 0/1
            label, time going backwards; the message names file, line, column.
    """
    path = Path(file)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        for needed in (timestamp_column, label_column):
            if needed not in header:
                raise DatasetError(f"{path} line 1: no column {needed!r} in the header {header!r}")
        t_at, y_at = header.index(timestamp_column), header.index(label_column)
        features = [i for i in range(len(header)) if i not in (t_at, y_at)]
        if not features:
            raise DatasetError(f"{path} line 1: no feature column besides timestamp and label")
        times: list[float] = []
        labels: list[int] = []
        rows: list[list[float]] = []
        for lineno, cells in enumerate(reader, start=2):
            if not cells or not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise DatasetError(
                    f"{path} line {lineno}: {len(cells)} cells, the header has {len(header)}"
                )
            where = f"{path} line {lineno} column"
            stamp = _stamp(cells[t_at], f"{where} {timestamp_column!r}")
            if times and stamp < times[-1]:
                raise DatasetError(f"{where} {timestamp_column!r}: time goes backwards")
            label = cells[y_at].strip()
            if label not in ("0", "1", "0.0", "1.0"):
                raise DatasetError(f"{where} {label_column!r}: label must be 0 or 1, got {label!r}")
            times.append(stamp)
            labels.append(int(float(label)))
            rows.append([_number(cells[i], f"{where} {header[i]!r}") for i in features])
    n = len(rows)
    split = train_points if train_points is not None else n // 2
    if not 0 < split < n:
        raise DatasetError(f"{path}: train_points={split} leaves no train or test part (n={n})")
    y = np.array(labels, dtype=np.int64)
    if y[:split].any():
        warnings.warn(
            f"{path}: {int(y[:split].sum())} labelled point(s) in the training part",
            stacklevel=2,
        )
    X = np.array(rows, dtype=np.float64)
    return Series(
        name=path.stem,
        X_train=X[:split],
        X_test=X[split:],
        y_test=y[split:],
        timestamps=np.array(times[split:]),
        events=events_from_labels(y[split:]),
        columns=tuple(header[i] for i in features),
    )
