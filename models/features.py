"""From canonical samples to per-device multivariate frames: the detectors' input.

A device's *frame* at time t holds one value per column ``metric@instance``
(:attr:`autonoc.core.types.Sample.key`): the newest sample of that column, if
it is fresh at t. Frames on a regular time grid (:func:`grid_frames`) are
what models train on; :class:`FrameBuilder` assembles the same frames online,
one per device and scoring cycle.

What the rules below guarantee (normalisation itself is fitted on training
data inside the detectors, not here):

- **Gaps are NaN, never zero.** A column is fresh while its newest sample is
  at most ``stale_factor`` × its own polling cadence old (one poll late still
  counts; two missed polls are a gap). Collectors emit no rate after a counter
  reset, so that rate is simply a missing sample: a gap, like a lost poll.
- **Slow and fast groups mix.** Each column keeps its own cadence, so optics
  every 10 s and interfaces every 30 s share one frame without holes.
- **Interfaces come and go.** :func:`align` puts a frame on a model's fixed
  columns: a removed interface reads NaN (no evidence, no alarm), a new one
  is left out and reported, until the device is retrained.
- **Flat lines do not flood.** A column with zero spread in training (an
  error counter that never moved, a status flag) is kept, since a change in it
  is exactly what matters; the detectors' scale floors keep its tiny wobbles
  from alarming (see :mod:`models.zscore`). :func:`flat_columns` lists them
  for the model's metadata.

Feature selection is per kind of device (:data:`FEATURE_SPECS`): routers and
switches by interface rates, errors, discards, utilisation and status, CPU,
memory and BGP; optical gear by its ``opt_*``, ``amp_*`` and ``roadm_*``
sensors. Uptime and speeds are left out: they grow or change by design.
Traffic volumes are taken as ``log10(1 + x)``: traffic varies by factors, and
on a log scale a busy link going dark (ten decades) outweighs an idle backup
link taking over the traffic (five), which on a linear scale would look like
the bigger change. Pre-FEC BER is taken as ``log10``. Errors, discards and
counts stay linear: their normal level is zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from autonoc.core.types import Sample
from models.base import FloatArray

__all__ = [
    "FEATURE_SPECS",
    "ROLE_SPECS",
    "DeviceFrames",
    "FeatureSpec",
    "Frame",
    "FrameBuilder",
    "align",
    "column_key",
    "flat_columns",
    "grid_frames",
    "infer_kind",
    "spec_for",
    "split_key",
]

_BER_FLOOR = 1e-15


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Which canonical metrics a kind of device is modelled on, and how each is scaled.

    Attributes:
        kind: ``router`` or ``optical``.
        metrics: metric names taken as they are.
        prefixes: metric-name prefixes taken too (``opt_``).
        log_metrics: taken as ``log10(1 + max(x, 0))`` (traffic volumes).
        log10_metrics: taken as ``log10(max(x, 1e-15))`` (error ratios such as BER).
        exclude: never taken, even when a prefix matches.
    """

    kind: str
    metrics: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    log_metrics: frozenset[str] = frozenset()
    log10_metrics: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()

    def selects(self, metric: str) -> bool:
        """Whether ``metric`` is one of this kind's features."""
        if metric in self.exclude:
            return False
        return metric in self.metrics or metric.startswith(self.prefixes)

    def transform(self, metric: str, value: float) -> float:
        """``value`` on the scale the detectors see."""
        if metric in self.log_metrics:
            return math.log10(1.0 + max(value, 0.0))
        if metric in self.log10_metrics:
            return math.log10(max(value, _BER_FLOOR))
        return value

    def transform_array(self, metric: str, values: FloatArray) -> FloatArray:
        """:meth:`transform` over an array (NaN stays NaN)."""
        if metric in self.log_metrics:
            return np.asarray(np.log10(1.0 + np.maximum(values, 0.0)), dtype=np.float64)
        if metric in self.log10_metrics:
            return np.asarray(np.log10(np.maximum(values, _BER_FLOOR)), dtype=np.float64)
        return values

    def inverse(self, metric: str, value: float) -> float:
        """Back from the detectors' scale to the metric's unit (for "expected" values)."""
        if not math.isfinite(value):
            return value
        if metric in self.log_metrics:
            return float(10.0**value - 1.0)
        if metric in self.log10_metrics:
            return float(10.0**value)
        return value


_TRAFFIC = frozenset({"if_in_bps", "if_out_bps", "if_in_pps", "if_out_pps"})

#: Feature selection per kind of device.
FEATURE_SPECS: dict[str, FeatureSpec] = {
    "router": FeatureSpec(
        kind="router",
        metrics=_TRAFFIC
        | {
            "if_in_errors_ps",
            "if_out_errors_ps",
            "if_in_discards_ps",
            "if_out_discards_ps",
            "if_in_util",
            "if_out_util",
            "if_oper_up",
            "cpu_util_pct",
            "mem_used_pct",
            "bgp_peer_up",
            "bgp_prefixes_accepted",
        },
        log_metrics=_TRAFFIC,
    ),
    "optical": FeatureSpec(
        kind="optical",
        prefixes=("opt_", "amp_", "roadm_"),
        log10_metrics=frozenset({"opt_pre_fec_ber"}),
        # Set points, not measurements: they change by command.
        exclude=frozenset({"amp_target_gain_db"}),
    ),
}

#: Inventory roles (:class:`autonoc.core.inventory.Role` values) to feature kinds.
ROLE_SPECS: dict[str, str] = {
    "router": "router",
    "switch": "router",
    "transponder": "optical",
    "amplifier": "optical",
    "roadm": "optical",
}


def spec_for(role_or_kind: str) -> FeatureSpec:
    """The feature spec of an inventory role (``roadm``) or a kind (``optical``).

    Raises:
        KeyError: neither a known role nor a known kind.
    """
    kind = ROLE_SPECS.get(role_or_kind, role_or_kind)
    try:
        return FEATURE_SPECS[kind]
    except KeyError:
        known = ", ".join(sorted({*ROLE_SPECS, *FEATURE_SPECS}))
        raise KeyError(f"no feature spec for {role_or_kind!r} (known: {known})") from None


def infer_kind(metrics: Iterable[str]) -> str:
    """``optical`` when any metric is an optical sensor's, else ``router``.

    For devices whose inventory role is not at hand (the telemetry bus carries none).
    """
    optical = FEATURE_SPECS["optical"].prefixes
    return "optical" if any(m.startswith(optical) for m in metrics) else "router"


def column_key(metric: str, instance: str) -> str:
    """``metric@instance``, or ``metric`` for a device-wide metric."""
    return f"{metric}@{instance}" if instance else metric


def split_key(key: str) -> tuple[str, str]:
    """``(metric, instance)`` of a column key."""
    metric, _, instance = key.partition("@")
    return metric, instance


# -- frames on a grid, for training ------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceFrames:
    """One device's frames on a regular grid.

    Attributes:
        device: the device.
        kind: its feature kind.
        ts: grid times, epoch seconds, shape ``(n,)``.
        columns: column keys, sorted.
        values: transformed values, shape ``(n, len(columns))``; NaN where stale or missing.
    """

    device: str
    kind: str
    ts: FloatArray
    columns: tuple[str, ...]
    values: FloatArray

    def coverage(self) -> FloatArray:
        """Per column, the fraction of grid rows that hold a value."""
        if self.values.shape[0] == 0:
            return np.zeros(len(self.columns))
        return np.asarray(np.mean(~np.isnan(self.values), axis=0), dtype=np.float64)

    def keep(self, min_coverage: float) -> DeviceFrames:
        """Only the columns with at least ``min_coverage`` of rows filled, and the rows
        that hold at least one value."""
        cols = self.coverage() >= min_coverage
        values = self.values[:, cols]
        rows = ~np.all(np.isnan(values), axis=1) if values.shape[1] else np.zeros(0, bool)
        return DeviceFrames(
            self.device,
            self.kind,
            self.ts[rows],
            tuple(c for c, k in zip(self.columns, cols, strict=True) if k),
            values[rows],
        )


def _cadence(ts: FloatArray) -> float:
    """A series' polling interval: the median gap between its samples (NaN with one)."""
    if ts.size < 2:
        return math.nan
    gaps = np.diff(ts)
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if gaps.size else math.nan


def _grid_column(
    ts: FloatArray, values: FloatArray, grid: FloatArray, max_age: float
) -> FloatArray:
    """Values of one sorted series at each grid time: newest sample at most ``max_age`` old."""
    idx = np.searchsorted(ts, grid, side="right") - 1
    out = np.full(grid.shape, np.nan)
    have = idx >= 0
    safe = np.where(have, idx, 0)
    fresh = have & (grid - ts[safe] <= max_age)
    out[fresh] = values[safe[fresh]]
    return out


def grid_frames(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    device: str = "",
    kind: str | None = None,
    step: float | None = None,
    start: float | None = None,
    end: float | None = None,
    stale_factor: float = 1.5,
) -> DeviceFrames:
    """One device's frames on a grid of ``step`` seconds, aligned to multiples of ``step``.

    Args:
        series: column key to ``(timestamps, values)`` (any order; duplicates: last wins).
        device: the device's name (carried along).
        kind: feature kind; ``None`` infers it from the metrics.
        step: grid spacing; ``None`` takes the shortest cadence among the columns.
        start, end: grid span; ``None`` takes the samples' span.
        stale_factor: a value stays fresh for this many of its column's cadences.

    Columns the kind does not select are dropped; the rest are transformed
    (:meth:`FeatureSpec.transform`). A grid time after a column's last sample
    by more than ``stale_factor`` × cadence is NaN for that column.
    """
    kind = kind or infer_kind(split_key(k)[0] for k in series)
    spec = spec_for(kind)
    chosen = sorted(k for k in series if spec.selects(split_key(k)[0]))
    cols: dict[str, tuple[FloatArray, FloatArray]] = {}
    for key in chosen:
        ts = np.asarray(series[key][0], dtype=np.float64)
        vs = np.asarray(series[key][1], dtype=np.float64)
        order = np.argsort(ts, kind="stable")
        ts, vs = ts[order], vs[order]
        if ts.size:
            # Duplicated timestamps: keep the last of each.
            last = np.append(ts[1:] != ts[:-1], True)
            ts, vs = ts[last], vs[last]
        cols[key] = (ts, spec.transform_array(split_key(key)[0], vs))
    cadences = {k: _cadence(ts) for k, (ts, _) in cols.items()}
    known = [c for c in cadences.values() if math.isfinite(c)]
    if step is None:
        step = min(known) if known else 1.0
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    all_ts = [ts for ts, _ in cols.values() if ts.size]
    if start is None:
        start = min(float(ts[0]) for ts in all_ts) if all_ts else 0.0
    if end is None:
        end = max(float(ts[-1]) for ts in all_ts) if all_ts else start - step
    first = math.ceil(start / step) * step
    n = max(0, int(math.floor(end / step) - math.ceil(start / step)) + 1)
    grid = first + step * np.arange(n, dtype=np.float64)
    values = np.full((n, len(chosen)), np.nan)
    for j, key in enumerate(chosen):
        ts, vs = cols[key]
        if not ts.size or not n:
            continue
        cadence = cadences[key] if math.isfinite(cadences[key]) else step
        values[:, j] = _grid_column(ts, vs, grid, stale_factor * max(cadence, step))
    return DeviceFrames(device, kind, grid, tuple(chosen), values)


def flat_columns(frames: DeviceFrames) -> list[str]:
    """Columns with zero spread over their filled rows (constant, or all missing)."""
    flat = []
    for j, key in enumerate(frames.columns):
        col = frames.values[:, j]
        col = col[~np.isnan(col)]
        if col.size == 0 or float(np.ptp(col)) == 0.0:
            flat.append(key)
    return flat


def align(frame: Mapping[str, float], columns: Sequence[str]) -> tuple[FloatArray, list[str]]:
    """``frame`` as one row in ``columns``' order, and the keys it has beyond them.

    A column the frame lacks (a removed interface, a gap) is NaN; keys not in
    ``columns`` (a new interface) are returned, not scored.
    """
    row = np.array([frame.get(c, math.nan) for c in columns], dtype=np.float64)
    return row, sorted(set(frame).difference(columns))


# -- frames online -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """One device's newest frame.

    Attributes:
        device: the device.
        kind: its feature kind.
        ts: the newest sample's timestamp.
        values: column key to transformed value (fresh columns only).
        raw: column key to the value as collected (for attributions).
    """

    device: str
    kind: str
    ts: float
    values: dict[str, float]
    raw: dict[str, float]


@dataclass(slots=True)
class _Column:
    ts: float
    value: float
    cadence: float = math.nan


@dataclass(slots=True)
class _Device:
    kind: str | None = None
    columns: dict[str, _Column] = field(default_factory=dict)
    newest: float = -math.inf


class FrameBuilder:
    """Keeps each device's newest value per column and builds frames on demand.

    Args:
        kinds: device name to feature kind or inventory role, where known;
            other devices' kind is inferred from their metrics.
        stale_factor: a value is fresh for this many of its column's cadences.
        default_cadence: assumed cadence of a column seen only once, in seconds.
    """

    def __init__(
        self,
        kinds: Mapping[str, str] | None = None,
        *,
        stale_factor: float = 1.5,
        default_cadence: float = 60.0,
    ) -> None:
        self._kinds = {d: ROLE_SPECS.get(k, k) for d, k in (kinds or {}).items()}
        self.stale_factor = stale_factor
        self.default_cadence = default_cadence
        self._devices: dict[str, _Device] = {}

    def add(self, samples: Iterable[Sample]) -> set[str]:
        """Take in samples; returns the devices that got a newer sample.

        A sample not newer than the column's newest is ignored, so an entry
        delivered twice changes nothing.
        """
        touched: set[str] = set()
        for s in samples:
            dev = self._devices.get(s.device)
            if dev is None:
                dev = self._devices[s.device] = _Device(kind=self._kinds.get(s.device))
            key = s.key
            col = dev.columns.get(key)
            if col is None:
                dev.columns[key] = _Column(s.ts, s.value)
            elif s.ts > col.ts:
                gap = s.ts - col.ts
                # The cadence follows the shortest recent gap, so a missed poll does
                # not stretch what counts as fresh.
                col.cadence = (
                    gap if math.isnan(col.cadence) else min(gap, 0.5 * (col.cadence + gap))
                )
                col.ts, col.value = s.ts, s.value
            else:
                continue
            if s.ts > dev.newest:
                dev.newest = s.ts
            touched.add(s.device)
        return touched

    def devices(self) -> list[str]:
        return sorted(self._devices)

    def kind(self, device: str) -> str:
        dev = self._devices.get(device)
        if dev is None:
            return self._kinds.get(device, "router")
        if dev.kind is None:
            dev.kind = infer_kind(split_key(k)[0] for k in dev.columns)
        return dev.kind

    def frame(self, device: str) -> Frame | None:
        """The device's frame at its newest sample's time; None for an unknown device."""
        dev = self._devices.get(device)
        if dev is None:
            return None
        spec = spec_for(self.kind(device))
        now = dev.newest
        values: dict[str, float] = {}
        raw: dict[str, float] = {}
        for key, col in dev.columns.items():
            metric = split_key(key)[0]
            if not spec.selects(metric):
                continue
            cadence = col.cadence if not math.isnan(col.cadence) else self.default_cadence
            if now - col.ts > self.stale_factor * cadence + 1e-9:
                continue
            raw[key] = col.value
            values[key] = spec.transform(metric, col.value)
        return Frame(device, spec.kind, now, values, raw)

    def forget(self, device: str) -> None:
        self._devices.pop(device, None)
