"""Online detection: samples from the telemetry bus in, Anomaly events out.

:class:`DetectionService` runs in cycles. Each :meth:`~DetectionService.run_once`
reads what the bus has (through an injected :class:`SampleFeed`; the CLI and
the worker hand it a consumer of ``autonoc:samples`` in the group ``detect``),
folds the samples into each device's newest frame
(:class:`models.features.FrameBuilder`), scores every device that got new
samples, all of them in one batch per kind of detector (the cycle's frames
are one matrix; robust z-scores of a whole fleet are one vectorised pass, and
``forecast`` devices that share a network are one batched forward pass through
:class:`~models.forecast.FleetScorer`, which keeps their windows and moving
averages from cycle to cycle), and publishes an :class:`Anomaly` per
device over its threshold through an injected :class:`AnomalySink`, onto
``autonoc:anomalies``. Entries are acknowledged only after the anomalies
they caused were published: at-least-once, and a sample delivered twice is
ignored by the frame builder.

A device with a trained model (:mod:`models.registry`) is scored by it; a
device without one learns a robust z-score on its first ``fallback_warmup``
frames and says so: its anomalies name the detector
``"robust_z (fallback: no trained model)"``.

Each anomaly carries the ranked attributions (metric, component, value in
the metric's unit, expected value), the component they point at first
(ranked by evidence of a cause before loudness, :mod:`models.attribution`:
a port that went down before the backup port its traffic moved to),
``severity`` from ``score / threshold`` (below 2: warning, below 4: major,
else critical) and the evidence window (the first frame of this anomalous
run to this frame). While a device stays anomalous on the same component,
repeats are held back for ``repeat_s`` seconds of telemetry time; one normal
frame ends the run. A cycle's anomalies are published likeliest cause first
(:func:`models.attribution.cause_order`), not loudest first.

Stream entry format, version 1 (all field values are text)::

    autonoc:anomalies  v=1 kind=anomaly d={"device": ..., "ts": ..., "score": ...,
                                           "threshold": ..., "detector": ..., "severity": ...,
                                           "component": ..., "window_start": ...,
                                           "attributions": [{"metric", "instance", "score",
                                                             "value", "expected"}, ...]}
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np
import structlog

from autonoc.core.errors import BackendUnavailable
from autonoc.core.types import Anomaly, Attribution, Sample, Severity
from models.attribution import Layer, cause_order, rank_components
from models.base import Detector, FloatArray
from models.features import FrameBuilder, FrameRows, IntArray, min_scales, spec_for, split_key
from models.registry import DeviceModel, LoadedModels
from models.zscore import RobustZScore

__all__ = [
    "ANOMALIES_STREAM",
    "FALLBACK_LABEL",
    "AnomalySink",
    "CycleResult",
    "DetectStats",
    "DetectionService",
    "FeedEntry",
    "ListSink",
    "MemoryFeed",
    "SampleFeed",
    "anomaly_from_json",
    "anomaly_to_json",
    "decode_anomaly",
    "encode_anomaly",
    "severity_for",
]

log = structlog.get_logger(__name__)

ANOMALIES_STREAM = "autonoc:anomalies"
FORMAT_VERSION = "1"
FALLBACK_LABEL = "robust_z (fallback: no trained model)"
#: Anomalies held for the next cycle while the sink is away, at most.
_MAX_OUTBOX = 10_000


# -- the anomaly codec -------------------------------------------------------------


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def anomaly_to_json(a: Anomaly) -> dict[str, Any]:
    """``a`` as JSON-ready data (non-finite numbers become null)."""
    return {
        "device": a.device,
        "ts": a.ts,
        "score": _num(a.score),
        "threshold": _num(a.threshold),
        "detector": a.detector,
        "severity": str(a.severity),
        "component": a.component,
        "window_start": _num(a.window_start),
        "attributions": [
            {
                "metric": t.metric,
                "instance": t.instance,
                "score": _num(t.score),
                "value": _num(t.value),
                "expected": _num(t.expected),
            }
            for t in a.attributions
        ],
    }


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def anomaly_from_json(d: Mapping[str, Any]) -> Anomaly:
    """The inverse of :func:`anomaly_to_json` (null numbers read as NaN).

    Raises:
        KeyError, TypeError, ValueError: a field is missing or of the wrong type.
    """
    return Anomaly(
        device=str(d["device"]),
        ts=float(d["ts"]),
        score=_float(d["score"]),
        threshold=_float(d["threshold"]),
        detector=str(d["detector"]),
        attributions=tuple(
            Attribution(
                metric=str(t["metric"]),
                instance=str(t["instance"]),
                score=_float(t["score"]),
                value=_float(t["value"]),
                expected=_float(t["expected"]),
            )
            for t in d.get("attributions", ())
        ),
        severity=Severity(d.get("severity", Severity.WARNING)),
        component=str(d.get("component", "")),
        window_start=None if d.get("window_start") is None else float(d["window_start"]),
    )


def encode_anomaly(a: Anomaly) -> dict[str, str]:
    """One ``autonoc:anomalies`` stream entry's fields (JSON, never pickle)."""
    return {
        "v": FORMAT_VERSION,
        "kind": "anomaly",
        "d": json.dumps(anomaly_to_json(a), separators=(",", ":"), allow_nan=False),
    }


def decode_anomaly(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> Anomaly:
    """The anomaly of one stream entry.

    Raises:
        ValueError: not a version-1 anomaly entry.
    """
    text = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    if text.get("v") != FORMAT_VERSION or text.get("kind") != "anomaly" or "d" not in text:
        raise ValueError(f"not a version-{FORMAT_VERSION} anomaly entry: {sorted(text)}")
    try:
        return anomaly_from_json(json.loads(text["d"]))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"bad anomaly payload: {exc}") from exc


def severity_for(score: float, threshold: float) -> Severity:
    """Severity from ``score / threshold``: below 2 warning, below 4 major, else critical."""
    ratio = score / threshold if threshold > 0 else math.inf
    if ratio >= 4.0:
        return Severity.CRITICAL
    if ratio >= 2.0:
        return Severity.MAJOR
    return Severity.WARNING


# -- what the service is composed with --------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One delivered bus entry: its ID (to acknowledge) and its samples (none if undecodable)."""

    id: str
    samples: Sequence[Sample]


class SampleFeed(Protocol):
    """New samples, delivered at least once (a consumer group on ``autonoc:samples``)."""

    def read(self, count: int, block_ms: int | None) -> Sequence[FeedEntry]:
        """Up to ``count`` entries, waiting up to ``block_ms`` when there are none."""
        ...

    def ack(self, ids: Sequence[str]) -> None:
        """Mark entries as done."""
        ...

    def retry_pending(self) -> None:
        """Deliver unacknowledged entries again on the next read."""
        ...


class AnomalySink(Protocol):
    """Where anomalies go (the ``autonoc:anomalies`` stream)."""

    def publish(self, anomalies: Sequence[Anomaly]) -> None: ...


class MemoryFeed:
    """A :class:`SampleFeed` in process: entries handed over in order (replays, benchmarks)."""

    def __init__(self) -> None:
        self.entries: list[FeedEntry] = []
        self._n = 0

    def push(self, samples: Sequence[Sample]) -> None:
        """Queue one entry (a poll's samples)."""
        self._n += 1
        self.entries.append(FeedEntry(str(self._n), list(samples)))

    def read(self, count: int, block_ms: int | None) -> list[FeedEntry]:
        out, self.entries = self.entries[:count], self.entries[count:]
        return out

    def ack(self, ids: Sequence[str]) -> None:
        """Nothing to acknowledge: an entry is gone once read."""

    def retry_pending(self) -> None:
        """Nothing is pending in process."""


class ListSink:
    """An :class:`AnomalySink` that keeps what it is given."""

    def __init__(self) -> None:
        self.published: list[Anomaly] = []

    def publish(self, anomalies: Sequence[Anomaly]) -> None:
        self.published.extend(anomalies)


# -- the service -------------------------------------------------------------------


@dataclass
class CycleResult:
    """What one :meth:`DetectionService.run_once` did."""

    entries: int = 0
    samples: int = 0
    scored: int = 0
    warming: int = 0
    anomalies: list[Anomaly] = field(default_factory=list)


@dataclass
class DetectStats:
    """Totals since the service started, for status lines and health metrics."""

    cycles: int = 0
    entries: int = 0
    samples: int = 0
    scored: int = 0
    anomalies: int = 0
    suppressed: int = 0
    failures: int = 0
    fallback_devices: set[str] = field(default_factory=set)
    new_columns: dict[str, set[str]] = field(default_factory=dict)


@dataclass(slots=True)
class _DeviceState:
    label: str
    columns: tuple[str, ...] = ()
    detector: Detector | None = None
    kind: str = "router"
    fallback: bool = False
    warm: list[tuple[tuple[str, ...], FloatArray]] = field(default_factory=list)
    rows: deque[FloatArray] = field(default_factory=lambda: deque(maxlen=1))
    run_start: float | None = None
    last_emit_ts: float | None = None
    last_component: str | None = None
    # Window scorers (forecast): the detector's per-series state and which devices
    # share one network (their windows live in that network's _Fleet).
    series: Any = None
    network: object = None
    #: How the detector is scored: "z" (robust z batch), "windows" or "one"; None: not yet.
    path: str | None = None


@dataclass(slots=True)
class _Fleet:
    """Devices whose series go through one network's :class:`~models.forecast.FleetScorer`
    (their series are the scorer's, device after device)."""

    devices: tuple[str, ...]
    scorer: Any
    lengths: list[int]
    index: dict[str, int] = field(init=False)
    bounds: IntArray = field(init=False)

    def __post_init__(self) -> None:
        self.index = {d: k for k, d in enumerate(self.devices)}
        self.bounds = np.zeros(len(self.devices) + 1, dtype=np.intp)
        np.cumsum(self.lengths, out=self.bounds[1:])


@dataclass(slots=True)
class _Scored:
    device: str
    ts: float
    state: _DeviceState
    score: float
    contributions: FloatArray
    expected: FloatArray
    raw: FloatArray
    #: The row on the detector's scale (what ``expected`` is on).
    values: FloatArray


def _context(detector: Detector) -> int:
    """Rows a detector needs to score its newest one (1 for row-wise detectors)."""
    window = getattr(detector, "window", None)
    return max(1, int(window) + 1) if isinstance(window, int | np.integer) else 1


def _scores_windows(detector: Detector) -> bool:
    """Whether the detector scores many series' newest points in one batch
    (:meth:`models.forecast.ForecastDetector.fleet_scorer`)."""
    return all(
        callable(getattr(detector, name, None)) for name in ("fleet_scorer", "series_state")
    ) and isinstance(getattr(detector, "window", None), int)


def _network_key(detector: Detector) -> object:
    """Equal for detectors that compute the same function of a window (same weights and
    settings), so their devices' series go through one forward pass."""
    weights = getattr(detector, "weights_", None)
    if not isinstance(weights, np.ndarray):
        return id(detector)
    settings = tuple(
        getattr(detector, a, None) for a in ("window", "hidden", "clip", "smooth", "num_threads")
    )
    digest = hashlib.blake2b(np.ascontiguousarray(weights).tobytes(), digest_size=16).digest()
    return (type(detector), settings, digest)


def _top_k_rows(values: FloatArray, bounds: IntArray, ks: list[int]) -> FloatArray:
    """Mean of the ``ks[i]`` largest of ``values[bounds[i]:bounds[i + 1]]``, by rows of
    equal length and ``k`` at a time."""
    n = len(ks)
    lengths = np.diff(bounds)
    scores = np.zeros(n)
    buckets: dict[tuple[int, int], list[int]] = {}
    for i, (length, k) in enumerate(zip(lengths.tolist(), ks, strict=True)):
        if length:
            buckets.setdefault((length, max(1, min(k, length))), []).append(i)
    for (length, k), members in buckets.items():
        index = np.asarray(members, dtype=np.intp)
        block = values[bounds[index][:, None] + np.arange(length)]
        top = np.partition(block, length - k, axis=1)[:, length - k :]
        scores[index] = top.mean(axis=1)
    return scores


def _expected(detector: Detector, X: FloatArray) -> FloatArray:
    """What the detector took as normal for the newest row (NaN where it cannot say)."""
    expected = getattr(detector, "expected", None)
    if callable(expected):
        newest: FloatArray = np.asarray(expected(X), dtype=np.float64)[-1]
        return newest
    for attr in ("median_", "mean_"):
        value = getattr(detector, attr, None)
        if isinstance(value, np.ndarray) and value.shape == (X.shape[1],):
            return np.asarray(value, dtype=np.float64)
    return np.full(X.shape[1], np.nan)


class DetectionService:
    """Scores the fleet's newest frames each cycle and publishes anomalies.

    Args:
        feed: new samples (injected: a bus consumer in production, a fake in tests).
        sink: where anomalies go.
        models: the promoted models (:meth:`models.registry.ModelRegistry.load_promoted`);
            ``None``: every device falls back.
        kinds: device to inventory role or feature kind, where known.
        fallback_warmup: frames a device without a trained model learns from.
        fallback_factory: builds that device's detector.
        max_attributions: attributions per anomaly, at most.
        batch: entries per read.
        max_entries: entries per cycle, at most (the rest wait for the next).
        repeat_s: while a device stays anomalous on one component, an anomaly
            at most this often (telemetry seconds).
        stale_factor: see :class:`models.features.FrameBuilder`.
    """

    def __init__(
        self,
        feed: SampleFeed,
        sink: AnomalySink,
        models: LoadedModels | None = None,
        *,
        kinds: Mapping[str, str] | None = None,
        fallback_warmup: int = 8,
        fallback_factory: Callable[[], Detector] = RobustZScore,
        max_attributions: int = 5,
        batch: int = 200,
        max_entries: int = 5000,
        repeat_s: float = 60.0,
        stale_factor: float = 1.5,
    ) -> None:
        if fallback_warmup < 2:
            raise ValueError(f"fallback_warmup must be at least 2 frames, got {fallback_warmup}")
        self.feed = feed
        self.sink = sink
        self.fallback_warmup = fallback_warmup
        self.fallback_factory = fallback_factory
        self.max_attributions = max_attributions
        self.batch = batch
        self.max_entries = max_entries
        self.repeat_s = repeat_s
        self.frames = FrameBuilder(kinds, stale_factor=stale_factor)
        self.stats = DetectStats()
        self.models: LoadedModels | None = None
        self._states: dict[str, _DeviceState] = {}
        self._fleets: dict[object, _Fleet] = {}
        # Devices scored this cycle that were under their threshold and not kept as _Scored.
        self._quiet = 0
        self._outbox: list[Anomaly] = []
        self.load(models)

    @property
    def version(self) -> str | None:
        """The loaded model version, if any."""
        return self.models.version if self.models is not None else None

    def load(self, models: LoadedModels | None) -> None:
        """Switch to ``models`` (a newly promoted version); devices start afresh."""
        self.models = models
        self._states.clear()
        self._fleets.clear()
        self.stats.fallback_devices.clear()

    # -- a cycle -------------------------------------------------------------------

    def _read(self, block_ms: int | None) -> list[FeedEntry]:
        entries = list(self.feed.read(self.batch, block_ms))
        while entries and len(entries) < self.max_entries:
            more = self.feed.read(min(self.batch, self.max_entries - len(entries)), None)
            if not more:
                break
            entries.extend(more)
        return entries

    def run_once(self, block_ms: int | None = None) -> CycleResult:
        """Read what the bus has, score the devices it touched, publish, acknowledge.

        Raises:
            BackendUnavailable: the feed or the sink failed; nothing was
                acknowledged, so the entries come again.
        """
        result = CycleResult()
        try:
            entries = self._read(block_ms)
            if not entries and not self._outbox:
                return result
            samples = [s for e in entries for s in e.samples]
            result.entries, result.samples = len(entries), len(samples)
            touched = self.frames.add(samples)
            self._quiet = 0
            scored = self._score(sorted(touched), result)
            found = [a for s in scored if (a := self._anomaly(s)) is not None]
            # Likeliest cause first: by the evidence layer of each anomaly's component,
            # then by how far over its threshold it is (models.attribution).
            order = cause_order(
                [layer for _, layer in found],
                [a.score / a.threshold if a.threshold > 0 else math.inf for a, _ in found],
            )
            new = [found[i][0] for i in order]
            # Anomalies a failed cycle could not publish go first: their entries come
            # again, but the frame builder has seen those samples and skips them.
            anomalies, self._outbox = self._outbox + new, []
            if anomalies:
                try:
                    self.sink.publish(anomalies)
                except BackendUnavailable:
                    self._outbox = anomalies[-_MAX_OUTBOX:]
                    raise
            self.feed.ack([e.id for e in entries])
        except BackendUnavailable:
            self.stats.failures += 1
            self.feed.retry_pending()
            raise
        result.anomalies = anomalies
        result.scored = len(scored) + self._quiet
        self.stats.cycles += 1
        self.stats.entries += result.entries
        self.stats.samples += result.samples
        self.stats.scored += result.scored
        self.stats.anomalies += len(anomalies)
        return result

    def run(
        self,
        stop: threading.Event,
        *,
        block_ms: int = 1000,
        on_cycle: Callable[[CycleResult], None] | None = None,
        max_backoff_s: float = 30.0,
    ) -> None:
        """Run cycles until ``stop`` is set; Redis going away is waited out, not raised."""
        delay = 0.5
        while not stop.is_set():
            try:
                result = self.run_once(block_ms)
            except BackendUnavailable as exc:
                log.warning("detect_waiting", error=str(exc), retry_in_s=delay)
                stop.wait(delay)
                delay = min(delay * 2, max_backoff_s)
                continue
            delay = 0.5
            if on_cycle is not None:
                on_cycle(result)

    # -- per device ----------------------------------------------------------------

    def _model(self, device: str) -> DeviceModel | None:
        return self.models.devices.get(device) if self.models is not None else None

    def _state(self, device: str, kind: str) -> _DeviceState:
        state = self._states.get(device)
        if state is not None:
            return state
        model = self._model(device)
        if model is not None:
            state = _DeviceState(
                label=model.detector.name,
                columns=model.columns,
                detector=model.detector,
                kind=model.kind,
            )
            state.rows = deque(maxlen=_context(model.detector))
        else:
            state = _DeviceState(label=FALLBACK_LABEL, kind=kind, fallback=True)
            self.stats.fallback_devices.add(device)
            log.info("detect_fallback", device=device, warmup=self.fallback_warmup)
        self._states[device] = state
        return state

    def _fit_fallback(self, device: str, state: _DeviceState) -> None:
        frames = [
            {k: v for k, v in zip(keys, row.tolist(), strict=True) if not math.isnan(v)}
            for keys, row in state.warm
        ]
        keys = sorted({k for f in frames for k in f})
        X = np.array([[f.get(k, np.nan) for k in keys] for f in frames], dtype=np.float64)
        filled = np.mean(~np.isnan(X), axis=0) >= 0.5 if X.size else np.zeros(0, bool)
        state.columns = tuple(k for k, keep in zip(keys, filled, strict=True) if keep)
        X = X[:, filled]
        detector = self.fallback_factory()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if isinstance(detector, RobustZScore):
                detector.fit(X, min_scale=min_scales(state.columns))
            else:
                detector.fit(X)
        state.detector = detector
        state.rows = deque(maxlen=_context(detector))
        state.warm.clear()
        log.info("detect_fallback_trained", device=device, columns=len(state.columns))

    def _note_new(self, device: str, new: list[str]) -> None:
        if not new:
            return
        seen = self.stats.new_columns.setdefault(device, set())
        fresh = [k for k in new if k not in seen]
        if fresh:
            seen.update(fresh)
            log.info("detect_new_columns_ignored", device=device, columns=fresh[:10])

    def _columns(self, device: str) -> tuple[str, ...]:
        """The columns a device's frame is read on this cycle: its model's, or (while its
        fallback warms up) every column it has."""
        state = self._states.get(device)
        if state is not None and state.detector is not None:
            return state.columns
        if state is None and (model := self._model(device)) is not None:
            return model.columns
        return self.frames.columns(device)

    def _score(self, devices: Sequence[str], result: CycleResult) -> list[_Scored]:
        """Score the newest frames of ``devices``: the cycle's frames come out of the
        frame builder as one matrix; robust z-scores are one vectorised pass over it."""
        if not devices:
            return []
        columns = [self._columns(d) for d in devices]
        rows = self.frames.rows(devices, columns)
        fresh, extra = rows.fresh.tolist(), rows.extra.tolist()
        zbatch: list[tuple[int, _DeviceState]] = []
        wbatch: list[tuple[int, _DeviceState]] = []
        others: list[tuple[int, _DeviceState]] = []
        for i, device in enumerate(devices):
            if not fresh[i]:
                continue
            state = self._state(device, rows.kinds[i])
            if state.detector is None:
                state.warm.append((columns[i], rows.row(i).copy()))
                if len(state.warm) >= self.fallback_warmup:
                    self._fit_fallback(device, state)
                result.warming += 1
                continue
            if extra[i]:
                self._note_new(device, self.frames.extra_columns(device, state.columns))
            if state.path is None:
                state.path = (
                    "z"
                    if type(state.detector) is RobustZScore
                    else "windows"
                    if _scores_windows(state.detector)
                    else "one"
                )
            if state.path == "z":
                zbatch.append((i, state))
            elif state.path == "windows":
                wbatch.append((i, state))
            else:
                state.rows.append(rows.row(i))
                others.append((i, state))
        scored = self._score_robust_z(rows, zbatch) + self._score_windows(rows, wbatch)
        return scored + [self._score_one(rows, i, state) for i, state in others]

    def _score_robust_z(
        self, rows: FrameRows, batch: list[tuple[int, _DeviceState]]
    ) -> list[_Scored]:
        """Every robust z-score of the cycle in one vectorised pass."""
        if not batch:
            return []
        index = np.fromiter((i for i, _ in batch), np.intp, len(batch))
        lengths = np.diff(rows.bounds)[index]
        if len(batch) == len(rows.devices):
            x, raw = rows.values, rows.raw
        else:
            take = np.zeros(len(rows.devices), dtype=bool)
            take[index] = True
            elements = np.repeat(take, np.diff(rows.bounds))
            x, raw = rows.values[elements], rows.raw[elements]
        dets = [cast(RobustZScore, s.detector) for _, s in batch]
        median = np.concatenate([d.median_ for d in dets])
        scale = np.concatenate([d.scale_ for d in dets])
        if median.size != x.size:
            raise ValueError("a robust_z model's columns do not match its detector")
        with np.errstate(invalid="ignore"):
            z = np.nan_to_num(np.abs(x - median) / scale, nan=0.0, posinf=0.0)
        bounds = np.zeros(len(batch) + 1, dtype=np.intp)
        np.cumsum(lengths, out=bounds[1:])
        scores = np.zeros(len(batch))
        filled = lengths > 0
        if filled.any():
            scores[filled] = np.maximum.reduceat(z, bounds[:-1][filled])
        out = []
        ts = rows.ts
        for k, (i, state) in enumerate(batch):
            lo, hi = bounds[k], bounds[k + 1]
            out.append(
                _Scored(
                    rows.devices[i],
                    float(ts[i]),
                    state,
                    float(scores[k]),
                    z[lo:hi],
                    median[lo:hi],
                    raw[lo:hi],
                    x[lo:hi],
                )
            )
        return out

    def _fleet(self, network: object, names: Sequence[str]) -> _Fleet:
        """The fleet of ``network`` holding every device in ``names``: the one of the last
        cycle, or a new one that continues its devices' state and adds the new ones."""
        fleet = self._fleets.get(network)
        if fleet is not None and all(n in fleet.index for n in names):
            return fleet
        old = [] if fleet is None else [d for d in fleet.devices if d in self._states]
        devices = tuple(
            old + [n for n in dict.fromkeys(names) if fleet is None or n not in fleet.index]
        )
        states = [self._states[d] for d in devices]
        detector: Any = states[0].detector
        scorer = detector.fleet_scorer(type(states[0].series).concat([st.series for st in states]))
        new = _Fleet(devices, scorer, [len(st.series) for st in states])
        if fleet is not None:
            mapping = np.full(len(scorer), -1, dtype=np.intp)
            for k, d in enumerate(devices):
                j = fleet.index.get(d)
                if j is not None:
                    lo = new.bounds[k]
                    mapping[lo : new.bounds[k + 1]] = np.arange(
                        fleet.bounds[j], fleet.bounds[j + 1], dtype=np.intp
                    )
            scorer.carry(fleet.scorer, mapping)
        self._fleets[network] = new
        return new

    def _score_windows(
        self, rows: FrameRows, batch: list[tuple[int, _DeviceState]]
    ) -> list[_Scored]:
        """Window scorers' devices: one batched step per shared network.

        Each network's devices form a fleet (:class:`models.forecast.FleetScorer`)
        that keeps their windows and moving averages from cycle to cycle, so a
        cycle costs one normalisation of the new values and one forward pass. A
        device of the fleet without a fresh frame this cycle reads as a gap
        (missing values), as a stale column does in a frame.
        """
        groups: dict[object, list[tuple[int, _DeviceState]]] = {}
        for i, state in batch:
            detector: Any = state.detector
            if state.network is None:
                state.network = _network_key(detector)
                state.series = detector.series_state()
            groups.setdefault(state.network, []).append((i, state))
        out = []
        for network, members in groups.items():
            fleet = self._fleet(network, [rows.devices[i] for i, _ in members])
            index = np.fromiter((i for i, _ in members), np.intp, len(members))
            at = np.fromiter((fleet.index[rows.devices[i]] for i, _ in members), np.intp)
            lengths = np.diff(rows.bounds)[index]
            if not np.array_equal(lengths, fleet.bounds[at + 1] - fleet.bounds[at]):
                raise ValueError("a window model's columns do not match its series state")
            total = int(lengths.sum())
            within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            source = np.repeat(rows.bounds[index], lengths) + within
            target = np.repeat(fleet.bounds[at], lengths) + within
            newest = np.full(len(fleet.scorer), np.nan)
            newest[target] = rows.values[source]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                values = np.asarray(fleet.scorer.step(newest), dtype=np.float64)
            mine = np.nan_to_num(values[target], nan=0.0, posinf=0.0)
            bounds = np.zeros(len(members) + 1, dtype=np.intp)
            np.cumsum(lengths, out=bounds[1:])
            scores = _top_k_rows(
                mine, bounds, [int(getattr(st.detector, "k_", 1)) for _, st in members]
            )
            thresholds = np.fromiter(
                (float(cast(Detector, st.detector).threshold_) for _, st in members),
                np.float64,
                len(members),
            )
            # Devices under their threshold need no attribution: end their runs here.
            over = scores > thresholds
            loud = np.flatnonzero(over).tolist()
            for k in np.flatnonzero(~over).tolist():
                quiet = members[k][1]
                quiet.run_start = quiet.last_emit_ts = quiet.last_component = None
            self._quiet += len(members) - len(loud)
            medians = fleet.scorer.state.median
            for k in loud:
                i, state = members[k]
                lo, hi = bounds[k], bounds[k + 1]
                out.append(
                    _Scored(
                        rows.devices[i],
                        float(rows.ts[i]),
                        state,
                        float(scores[k]),
                        mine[lo:hi],
                        np.asarray(medians[target[lo:hi]], dtype=np.float64),
                        rows.raw_row(i),
                        rows.row(i),
                    )
                )
        return out

    def _score_one(self, rows: FrameRows, i: int, state: _DeviceState) -> _Scored:
        detector = state.detector
        assert detector is not None
        X = np.vstack(list(state.rows))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            score = float(detector.score(X)[-1])
            contributions = np.nan_to_num(
                np.asarray(detector.contributions(X), dtype=np.float64)[-1], nan=0.0, posinf=0.0
            )
            expected = _expected(detector, X)
        return _Scored(
            rows.devices[i],
            float(rows.ts[i]),
            state,
            score,
            contributions,
            expected,
            rows.raw_row(i),
            X[-1],
        )

    # -- anomalies -----------------------------------------------------------------

    def _attributions(self, s: _Scored) -> tuple[str, Layer, tuple[Attribution, ...]]:
        """The component the evidence points at, its layer, and the ranked attributions.

        Components are ranked by evidence of a cause before loudness
        (:func:`models.attribution.rank_components`): a port that went oper down
        outranks the backup port its traffic moved to, however far that one's
        rates jumped. The top component's metrics come first, then the rest.
        """
        contributions = s.contributions
        columns = s.state.columns
        assert s.state.detector is not None
        ranked = rank_components(
            columns,
            contributions,
            s.values,
            s.expected,
            float(s.state.detector.threshold_),
        )
        if not ranked:
            return "", Layer.NONE, ()
        top, layer = ranked[0].component, ranked[0].layer
        # Metrics that moved by less than a hundredth of the biggest mover say nothing.
        floor = 0.01 * float(contributions.max())
        order = sorted(
            (i for i in range(len(columns)) if contributions[i] > floor),
            key=lambda i: (split_key(columns[i])[1] != top, -float(contributions[i]), columns[i]),
        )[: self.max_attributions]
        spec = spec_for(s.state.kind)
        attributions = []
        for i in order:
            metric, instance = split_key(columns[i])
            attributions.append(
                Attribution(
                    metric=metric,
                    instance=instance,
                    score=float(contributions[i]),
                    value=float(s.raw[i]),
                    expected=spec.inverse(metric, float(s.expected[i])),
                )
            )
        return top, layer, tuple(attributions)

    def _anomaly(self, s: _Scored) -> tuple[Anomaly, Layer] | None:
        state = s.state
        assert state.detector is not None
        threshold = float(state.detector.threshold_)
        ts = s.ts
        if not s.score > threshold:
            state.run_start = state.last_emit_ts = state.last_component = None
            return None
        if state.run_start is None:
            state.run_start = ts
        component, layer, attributions = self._attributions(s)
        if (
            state.last_emit_ts is not None
            and component == state.last_component
            and ts - state.last_emit_ts < self.repeat_s
        ):
            self.stats.suppressed += 1
            return None
        state.last_emit_ts, state.last_component = ts, component
        anomaly = Anomaly(
            device=s.device,
            ts=ts,
            score=s.score,
            threshold=threshold,
            detector=state.label,
            attributions=attributions,
            severity=severity_for(s.score, threshold),
            component=component,
            window_start=state.run_start,
        )
        return anomaly, layer
