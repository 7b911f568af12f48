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
switches by interface rates, errors, discards and status, CPU,
memory and BGP; optical gear by its ``opt_*``, ``amp_*`` and ``roadm_*``
sensors. Uptime and speeds are left out: they grow or change by design.
Traffic volumes are taken as ``log10(max(x, idle))`` with an idle level of
1 Mbit/s (1,000 packets/s): traffic varies by factors, and on a log scale a
busy link going dark outweighs an idle backup link taking over the traffic,
which on a linear scale would look like the bigger change; below the idle
level, routing chatter and its jitter read as one constant. BGP prefix counts
are log-scaled too, so a session going down weighs like a consequence, not
more than the link under it. Pre-FEC BER is taken as ``log10``. Errors and
discards stay linear: their normal level is zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter

import numpy as np
from numpy.typing import NDArray

from autonoc.core.types import Sample
from models.base import FloatArray

__all__ = [
    "FEATURE_SPECS",
    "ROLE_SPECS",
    "DeviceFrames",
    "FeatureSpec",
    "Frame",
    "FrameBuilder",
    "FrameRows",
    "align",
    "column_key",
    "flat_columns",
    "grid_frames",
    "infer_kind",
    "min_scales",
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
        log_metrics: taken as ``log10(max(x, idle))`` (traffic volumes, prefix counts).
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
            return math.log10(max(value, _log_floor(metric)))
        if metric in self.log10_metrics:
            return math.log10(max(value, _BER_FLOOR))
        return value

    def transform_array(self, metric: str, values: FloatArray) -> FloatArray:
        """:meth:`transform` over an array (NaN stays NaN)."""
        if metric in self.log_metrics:
            return np.asarray(np.log10(np.maximum(values, _log_floor(metric))), dtype=np.float64)
        if metric in self.log10_metrics:
            return np.asarray(np.log10(np.maximum(values, _BER_FLOOR)), dtype=np.float64)
        return values

    def inverse(self, metric: str, value: float) -> float:
        """Back from the detectors' scale to the metric's unit (for "expected" values)."""
        if not math.isfinite(value):
            return value
        if metric in self.log_metrics:
            return float(10.0**value)
        if metric in self.log10_metrics:
            return float(10.0**value)
        return value


_TRAFFIC = frozenset({"if_in_bps", "if_out_bps", "if_in_pps", "if_out_pps"})

#: Below these a log-scaled metric is "idle": routing chatter (tens of kbit/s) and its
#: jitter are not traffic, and must not give an idle port a near-zero training spread
#: on which any jitter alarms. Prefix counts are log-scaled from 1.
_LOG_FLOORS = {"if_in_bps": 1e6, "if_out_bps": 1e6, "if_in_pps": 1e3, "if_out_pps": 1e3}


def _log_floor(metric: str) -> float:
    return _LOG_FLOORS.get(metric, 1.0)


#: The smallest change of a feature (on the detectors' scale) that means something,
#: by metric; prefixes match families. Log-scaled volumes are in decades.
_MIN_SCALES: dict[str, float] = {
    "if_in_bps": 0.05,
    "if_out_bps": 0.05,
    "if_in_pps": 0.05,
    "if_out_pps": 0.05,
    "bgp_prefixes_accepted": 0.05,
    "if_in_errors_ps": 1.0,
    "if_out_errors_ps": 1.0,
    "if_in_discards_ps": 1.0,
    "if_out_discards_ps": 1.0,
    "if_oper_up": 0.1,
    "bgp_peer_up": 0.1,
    "cpu_util_pct": 2.0,
    "mem_used_pct": 1.0,
    "opt_pre_fec_ber": 0.05,
    "opt_laser_bias_ma": 0.5,
    "opt_module_temp_c": 0.5,
    "opt_cd_ps_nm": 5.0,
    "opt_post_fec_uncorrectable": 1.0,
}
#: dB and dBm readings: a tenth of a dB is about what optics report reliably.
_MIN_SCALE_DB = 0.1


def min_scales(columns: Sequence[str]) -> FloatArray:
    """Per column (``metric@instance``), the smallest change worth a z of 1.

    Passed to :meth:`models.zscore.RobustZScore.fit` so that a short, quiet
    training window cannot make normal jitter look like a fault.
    """
    out = np.zeros(len(columns))
    for i, column in enumerate(columns):
        metric = column.partition("@")[0]
        if metric in _MIN_SCALES:
            out[i] = _MIN_SCALES[metric]
        elif metric.endswith(("_db", "_dbm")):
            out[i] = _MIN_SCALE_DB
        elif metric == "amp_pump_current_ma":
            out[i] = 1.0
    return out


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
            "if_oper_up",
            "cpu_util_pct",
            "mem_used_pct",
            "bgp_peer_up",
            "bgp_prefixes_accepted",
        },
        # Utilisation is left out: it is the bit rate over a constant speed, and on a
        # linear scale it would undo the log scaling of the rates.
        log_metrics=_TRAFFIC | {"bgp_prefixes_accepted"},
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

IntArray = NDArray[np.intp]

# A column's transform for a kind of device: not one of its features, as is,
# log10(max(x, floor)) for three floors, log10(x).
_SKIP, _LINEAR, _LOG1P, _LOG10, _LOG_PPS, _LOG_BPS = -1, 0, 1, 2, 3, 4
_CODE_FLOORS = {_LOG1P: 1.0, _LOG_PPS: 1e3, _LOG_BPS: 1e6}
_SAMPLE_KEY = attrgetter("device", "metric", "instance")
_SAMPLE_TS = attrgetter("ts")
_SAMPLE_VALUE = attrgetter("value")


def _code(spec: FeatureSpec, metric: str) -> int:
    if not spec.selects(metric):
        return _SKIP
    if metric in spec.log_metrics:
        floor = _log_floor(metric)
        return next(code for code, f in _CODE_FLOORS.items() if f == floor)
    if metric in spec.log10_metrics:
        return _LOG10
    return _LINEAR


def _transform_codes(codes: NDArray[np.int8], raw: FloatArray) -> FloatArray:
    """``raw`` on the detectors' scale, column by column (NaN where the code is _SKIP)."""
    out: FloatArray = np.where(codes >= 0, raw, np.nan)
    for code, floor in _CODE_FLOORS.items():
        mask = codes == code
        if mask.any():
            out[mask] = np.log10(np.maximum(out[mask], floor))
    mask = codes == _LOG10
    if mask.any():
        out[mask] = np.log10(np.maximum(out[mask], _BER_FLOOR))
    return out


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


@dataclass(frozen=True, slots=True)
class FrameRows:
    """Many devices' newest frames at once, each on the columns asked for it.

    Device ``i``'s row is ``values[bounds[i]:bounds[i + 1]]`` (:meth:`row`),
    in the order of the columns asked for it: what :func:`align` gives for one
    frame, for a whole scoring cycle in a few array operations.

    Attributes:
        devices: the devices, in the order asked.
        kinds: each device's feature kind.
        ts: each device's newest sample time.
        bounds: row offsets into ``values``, shape ``(len(devices) + 1,)``.
        values: transformed values; NaN where the column is stale, unknown to
            the device, or not a feature of its kind.
        raw: the same columns as collected, NaN likewise.
        fresh: per device, how many fresh feature columns it has in all (0: an
            empty frame, nothing to score).
        extra: per device, how many of those are not among the columns asked
            (a new interface; :meth:`FrameBuilder.extra_columns` names them).
    """

    devices: tuple[str, ...]
    kinds: tuple[str, ...]
    ts: FloatArray
    bounds: IntArray
    values: FloatArray
    raw: FloatArray
    fresh: IntArray
    extra: IntArray

    def row(self, i: int) -> FloatArray:
        """Device ``i``'s transformed row (a view)."""
        return self.values[self.bounds[i] : self.bounds[i + 1]]

    def raw_row(self, i: int) -> FloatArray:
        """Device ``i``'s values as collected (a view)."""
        return self.raw[self.bounds[i] : self.bounds[i + 1]]


@dataclass(slots=True, eq=False)
class _Device:
    name: str
    number: int
    kind: str | None = None
    kind_row: int = -1
    keys: list[str] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    sample_keys: list[tuple[str, str, str]] = field(default_factory=list)
    columns: tuple[str, ...] | None = None
    slot_array: IntArray | None = None
    layout: tuple[tuple[str, ...], int, IntArray] | None = None


class FrameBuilder:
    """Keeps each device's newest value per column and builds frames on demand.

    Each column (device, metric, instance) has a fixed slot in flat arrays of
    newest timestamp, value and cadence, so a poll cycle's samples are folded
    in with a few array operations (:meth:`add`) and a cycle's frames come out
    as one matrix (:meth:`rows`); :meth:`frame` gives one device's frame as a
    mapping.

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
        self._numbers: list[_Device | None] = []
        self._slot_of: dict[tuple[str, str, str], int] = {}
        # Per slot: newest timestamp, its value, cadence (NaN until two samples), owner.
        self._n = 0
        self._ts: FloatArray = np.full(64, -math.inf)
        self._value: FloatArray = np.full(64, math.nan)
        self._cadence: FloatArray = np.full(64, math.nan)
        self._owner: IntArray = np.full(64, -1, dtype=np.intp)
        self._metrics: list[str] = []
        # Per kind in use (row) and slot: the transform code.
        self._specs: list[FeatureSpec] = []
        self._codes: NDArray[np.int8] = np.full((0, 64), _SKIP, dtype=np.int8)
        self._metric_codes: dict[str, list[int]] = {}
        # Per device number: newest sample time, kind row (-1: not resolved yet).
        self._newest: FloatArray = np.full(16, -math.inf)
        self._kind_rows: IntArray = np.full(16, -1, dtype=np.intp)

    # -- storage -------------------------------------------------------------------

    def _grow_slots(self, need: int) -> None:
        cap = self._ts.size
        if need <= cap:
            return
        new = max(need, 2 * cap)
        extra = new - cap
        self._ts = np.concatenate([self._ts, np.full(extra, -math.inf)])
        self._value = np.concatenate([self._value, np.full(extra, math.nan)])
        self._cadence = np.concatenate([self._cadence, np.full(extra, math.nan)])
        self._owner = np.concatenate([self._owner, np.full(extra, -1, dtype=np.intp)])
        pad = np.full((self._codes.shape[0], extra), _SKIP, dtype=np.int8)
        self._codes = np.concatenate([self._codes, pad], axis=1)

    def _new_device(self, name: str) -> _Device:
        number = len(self._numbers)
        dev = _Device(name, number, kind=self._kinds.get(name))
        self._numbers.append(dev)
        self._devices[name] = dev
        if number >= self._newest.size:
            extra = self._newest.size
            self._newest = np.concatenate([self._newest, np.full(extra, -math.inf)])
            self._kind_rows = np.concatenate([self._kind_rows, np.full(extra, -1, np.intp)])
        return dev

    def _codes_of(self, metric: str) -> list[int]:
        codes = self._metric_codes.get(metric)
        if codes is None:
            codes = self._metric_codes[metric] = [_code(spec, metric) for spec in self._specs]
        return codes

    def _new_slot(self, sample_key: tuple[str, str, str]) -> int:
        device, metric, instance = sample_key
        dev = self._devices.get(device) or self._new_device(device)
        key = column_key(metric, instance)
        slot = dev.index.get(key)
        if slot is None:
            slot = self._n
            self._grow_slots(slot + 1)
            self._n += 1
            self._owner[slot] = dev.number
            self._metrics.append(metric)
            if self._specs:
                self._codes[:, slot] = self._codes_of(metric)
            dev.keys.append(key)
            dev.slots.append(slot)
            dev.index[key] = slot
            dev.columns = dev.slot_array = None
        dev.sample_keys.append(sample_key)
        self._slot_of[sample_key] = slot
        return slot

    def _kind_row(self, dev: _Device) -> int:
        """The device's kind, resolved once (inferred from the columns it has by then)."""
        if dev.kind_row >= 0:
            return dev.kind_row
        if dev.kind is None:
            dev.kind = infer_kind(split_key(k)[0] for k in dev.keys)
        spec = spec_for(dev.kind)
        kinds = [known.kind for known in self._specs]
        if spec.kind in kinds:
            row = kinds.index(spec.kind)
        else:
            row = len(self._specs)
            self._specs.append(spec)
            self._metric_codes.clear()
            codes = np.full((1, self._codes.shape[1]), _SKIP, dtype=np.int8)
            codes[0, : self._n] = [_code(spec, m) for m in self._metrics]
            self._codes = np.concatenate([self._codes, codes])
        dev.kind_row = row
        self._kind_rows[dev.number] = row
        return row

    # -- samples in ----------------------------------------------------------------

    def add(self, samples: Iterable[Sample]) -> set[str]:
        """Take in samples; returns the devices that got a newer sample.

        A sample not newer than the column's newest is ignored, so an entry
        delivered twice changes nothing. Samples are applied in the order given.
        """
        batch = samples if isinstance(samples, list | tuple) else list(samples)
        n = len(batch)
        if not n:
            return set()
        # Keys are looked up as they are made and dropped at once: a list of them
        # would set off the garbage collector over every sample of the cycle.
        slot_of = self._slot_of.get
        slots = np.fromiter(map(slot_of, map(_SAMPLE_KEY, batch), repeat(-1)), np.intp, n)
        for i in np.flatnonzero(slots < 0).tolist():
            key = _SAMPLE_KEY(batch[i])
            slot = self._slot_of.get(key)
            slots[i] = self._new_slot(key) if slot is None else slot
        ts = np.fromiter(map(_SAMPLE_TS, batch), np.float64, n)
        values = np.fromiter(map(_SAMPLE_VALUE, batch), np.float64, n)
        owners = [self._update(slots[i], ts[i], values[i]) for i in self._rounds(slots)]
        touched = np.unique(np.concatenate(owners)) if owners else np.zeros(0, np.intp)
        names = self._numbers
        return {dev.name for i in touched.tolist() if (dev := names[i]) is not None}

    def _rounds(self, slots: IntArray) -> list[IntArray | slice]:
        """Sample positions in rounds that each touch a column at most once, in order.

        Usually one round (a column polled once per cycle); a backlog of several
        polls gives one round per poll, so each round can be applied at once and
        still mean the same as applying the samples one by one.
        """
        seen = np.zeros(self._n, dtype=bool)
        seen[slots] = True
        if np.count_nonzero(seen) == slots.size:
            return [slice(None)]
        order = np.argsort(slots, kind="stable")
        ordered = slots[order]
        first = np.ones(ordered.size, dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        positions = np.arange(ordered.size)
        start = np.maximum.accumulate(np.where(first, positions, 0))
        rank = np.empty(ordered.size, dtype=np.intp)
        rank[order] = positions - start
        return [np.flatnonzero(rank == r) for r in range(int(rank.max()) + 1)]

    def _update(self, slots: IntArray, ts: FloatArray, values: FloatArray) -> IntArray:
        """Apply samples to distinct columns; returns the owners of those applied."""
        current = self._ts[slots]
        newer = ts > current
        if not newer.all():
            slots, ts, values, current = slots[newer], ts[newer], values[newer], current[newer]
        gap = ts - current
        cadence = self._cadence[slots]
        # The cadence follows the shortest recent gap, so a missed poll does not
        # stretch what counts as fresh; a column's first sample has none.
        cadence = np.where(np.isnan(cadence), gap, np.minimum(gap, 0.5 * (cadence + gap)))
        cadence[np.isinf(current)] = math.nan
        self._cadence[slots] = cadence
        self._ts[slots] = ts
        self._value[slots] = values
        owners = self._owner[slots]
        np.maximum.at(self._newest, owners, ts)
        return owners

    # -- frames out ----------------------------------------------------------------

    def devices(self) -> list[str]:
        return sorted(self._devices)

    def kind(self, device: str) -> str:
        """The device's feature kind (fixed once a frame of it was built)."""
        dev = self._devices.get(device)
        if dev is None:
            return self._kinds.get(device, "router")
        if dev.kind is None:
            dev.kind = infer_kind(split_key(k)[0] for k in dev.keys)
        return dev.kind

    def columns(self, device: str) -> tuple[str, ...]:
        """Every column key the device has sent, in the order first seen (features or not)."""
        dev = self._devices.get(device)
        if dev is None:
            return ()
        if dev.columns is None:
            dev.columns = tuple(dev.keys)
        return dev.columns

    def _layout(self, dev: _Device, columns: Sequence[str]) -> IntArray:
        key = columns if isinstance(columns, tuple) else tuple(columns)
        cached = dev.layout
        if (
            cached is not None
            and cached[1] == len(dev.keys)
            and (cached[0] is key or cached[0] == key)
        ):
            return cached[2]
        index = dev.index
        slots = np.fromiter((index.get(c, -1) for c in key), np.intp, len(key))
        dev.layout = (key, len(dev.keys), slots)
        return slots

    def _all_slots(self, dev: _Device) -> IntArray:
        if dev.slot_array is None:
            dev.slot_array = np.asarray(dev.slots, dtype=np.intp)
        return dev.slot_array

    def _usable(
        self, slots: IntArray, numbers: IntArray
    ) -> tuple[NDArray[np.bool_], NDArray[np.int8]]:
        """Which of ``slots`` (owned by devices ``numbers``) are fresh features, and their codes."""
        have = slots >= 0
        safe = np.where(have, slots, 0)
        cadence = self._cadence[safe]
        cadence = np.where(np.isnan(cadence), self.default_cadence, cadence)
        age = self._newest[numbers] - self._ts[safe]
        codes = self._codes[self._kind_rows[numbers], safe]
        usable = have & (codes >= 0) & (age <= self.stale_factor * cadence + 1e-9)
        return usable, codes

    def rows(self, devices: Sequence[str], columns: Sequence[Sequence[str]]) -> FrameRows:
        """The newest frames of ``devices``, device ``i``'s on ``columns[i]`` (distinct keys).

        A column the device lacks, stale or not a feature of its kind reads NaN.
        Pass the same tuple of columns from cycle to cycle: each device keeps
        where its columns are, until it sends a column it had not sent before.

        Raises:
            KeyError: a device that has sent no sample (or was forgotten).
        """
        return self._gather(devices, columns)[0]

    def _gather(
        self, devices: Sequence[str], columns: Sequence[Sequence[str]]
    ) -> tuple[FrameRows, NDArray[np.bool_]]:
        n = len(devices)
        numbers = np.empty(n, dtype=np.intp)
        layouts: list[IntArray] = []
        everything: list[IntArray] = []
        kinds = []
        for i, (device, cols) in enumerate(zip(devices, columns, strict=True)):
            dev = self._devices.get(device)
            if dev is None:
                raise KeyError(f"no samples of device {device!r} yet")
            kinds.append(self._specs[self._kind_row(dev)].kind)
            numbers[i] = dev.number
            layouts.append(self._layout(dev, cols))
            everything.append(self._all_slots(dev))
        lengths = np.fromiter(map(len, layouts), np.intp, n)
        bounds = np.zeros(n + 1, dtype=np.intp)
        np.cumsum(lengths, out=bounds[1:])
        slots = np.concatenate(layouts) if layouts else np.zeros(0, np.intp)
        usable, codes = self._usable(slots, np.repeat(numbers, lengths))
        raw = np.where(usable, self._value[np.where(slots >= 0, slots, 0)], math.nan)
        values = _transform_codes(codes, raw)
        position = np.repeat(np.arange(n), lengths)
        asked = np.bincount(position[usable], minlength=n)
        all_lengths = np.fromiter(map(len, everything), np.intp, n)
        every = np.concatenate(everything) if everything else np.zeros(0, np.intp)
        fresh_all, _ = self._usable(every, np.repeat(numbers, all_lengths))
        fresh = np.bincount(np.repeat(np.arange(n), all_lengths)[fresh_all], minlength=n)
        rows = FrameRows(
            devices=tuple(devices),
            kinds=tuple(kinds),
            ts=self._newest[numbers],
            bounds=bounds,
            values=values,
            raw=raw,
            fresh=fresh.astype(np.intp),
            extra=(fresh - asked).astype(np.intp),
        )
        return rows, usable

    def frame(self, device: str) -> Frame | None:
        """The device's frame at its newest sample's time; None for an unknown device."""
        dev = self._devices.get(device)
        if dev is None:
            return None
        keys = self.columns(device)
        rows, usable = self._gather([device], [keys])
        values: dict[str, float] = {}
        raw: dict[str, float] = {}
        for i in np.flatnonzero(usable).tolist():
            values[keys[i]] = float(rows.values[i])
            raw[keys[i]] = float(rows.raw[i])
        return Frame(device, rows.kinds[0], float(rows.ts[0]), values, raw)

    def extra_columns(self, device: str, columns: Sequence[str]) -> list[str]:
        """The device's fresh feature columns beyond ``columns`` (new interfaces), sorted."""
        frame = self.frame(device)
        return [] if frame is None else sorted(set(frame.values).difference(columns))

    def forget(self, device: str) -> None:
        dev = self._devices.pop(device, None)
        if dev is None:
            return
        for key in dev.sample_keys:
            self._slot_of.pop(key, None)
        # The slots stay unused: a device that comes back gets new ones.
        self._owner[dev.slots] = -1
        self._ts[dev.slots] = -math.inf
        self._numbers[dev.number] = None
