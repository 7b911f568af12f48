"""Honest anomaly-detection metrics: no point adjustment anywhere.

- :func:`auc_pr`: area under the point-wise precision-recall curve
  (scikit-learn's average precision); threshold-free.
- :func:`vus_pr`: volume under the range-based PR surface (Paparrizos et al.,
  "Volume Under the Surface", VLDB 2022); threshold-free, tolerant of small
  misalignments between labels and scores.
- :func:`point_f1`: precision, recall and F1 of a deployed alarm series,
  point by point.
- :func:`event_recall`: share of labelled events found, with detection delays.
- :func:`false_alarms_per_day`: alarm episodes that touch no labelled anomaly,
  per day of data (divide by 24 for per device-hour).
- :func:`nab_score`: the Numenta Anomaly Benchmark's score of a deployed alarm
  series (standard profile by default), with the null and perfect detectors'
  scores it is normalised against.

The maintained VUS implementations on PyPI were not usable here: ``vus``
0.0.6 requires TensorFlow and ``TSB-AD`` 1.5 requires ``numpy<2`` and
``transformers``. :func:`vus_pr` therefore reimplements the definition used by
TSB-AD's ``RangeAUC_volume_opt`` (Apache-2.0), vectorised; the unit tests check
it against hand-computed cases and against a literal loop port.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from math import exp, nan

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "NAB_PROFILES",
    "EventRecall",
    "NabProfile",
    "NabScore",
    "PointF1",
    "auc_pr",
    "event_recall",
    "events_from_labels",
    "false_alarms_per_day",
    "nab_score",
    "point_f1",
    "vus_pr",
]

Event = tuple[int, int]
FloatVec = NDArray[np.float64]


def _labels(y: ArrayLike) -> NDArray[np.int64]:
    arr = np.asarray(y).ravel()
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError("labels must be 0/1 (or booleans)")
    return arr.astype(np.int64)


def _pair(y_true: ArrayLike, other: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    y = _labels(y_true)
    values = np.asarray(other, dtype=np.float64).ravel()
    if y.shape != values.shape:
        raise ValueError(f"labels have {y.size} points, scores/alarms have {values.size}")
    return y, values


def events_from_labels(y_true: ArrayLike) -> list[Event]:
    """Maximal runs of 1s as inclusive ``(start, end)`` index pairs."""
    y = _labels(y_true)
    padded = np.concatenate([[0], y, [0]])
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def auc_pr(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Point-wise average precision; NaN when the labels hold no anomaly."""
    from sklearn.metrics import average_precision_score

    y, s = _pair(y_true, scores)
    if y.sum() == 0:
        return float("nan")
    return float(average_precision_score(y, np.nan_to_num(s, nan=-np.inf)))


def _buffered_labels(y: NDArray[np.int64], events: Sequence[Event], window: int) -> FloatVec:
    """Labels with a soft buffer of ``window // 2`` points each side of every event.

    A buffer point at distance ``d`` from the event weighs ``sqrt(1 - d / window)``;
    overlapping weights add and are capped at 1.
    """
    label = y.astype(np.float64)
    n = label.size
    half = window // 2
    for s, e in events:
        after = np.arange(e + 1, min(e + half + 1, n))
        label[after] += np.sqrt(1 - (after - e) / window)
        before = np.arange(max(s - half, 0), s)
        label[before] += np.sqrt(1 - (s - before) / window)
    return np.minimum(label, 1.0)


def _merged(events: Sequence[Event], window: int, n: int) -> list[Event]:
    """Events widened by ``window // 2`` each side, overlapping ones merged."""
    half = window // 2
    merged: list[Event] = []
    start = max(events[0][0] - half, 0)
    for (_, e), (s_next, _) in pairwise(events):
        if e + half < s_next - half:
            merged.append((start, e + half))
            start = s_next - half
    merged.append((start, min(events[-1][1] + half, n - 1)))
    return merged


def vus_pr(
    y_true: ArrayLike, scores: ArrayLike, max_buffer: int = 100, n_thresholds: int = 250
) -> float:
    """Volume under the range-based precision-recall surface.

    For each buffer length ``ℓ`` in ``0..max_buffer`` the labels get a soft
    buffer of ``ℓ // 2`` points around each event (weights ``sqrt(1 - d/ℓ)``),
    and for each of ``n_thresholds`` thresholds taken at evenly spaced ranks of
    the sorted scores (alarm = score ≥ threshold):

    - TP = alarms on labelled points + buffer weights of alarmed buffer points;
    - recall = min(TP / ((P + P + alarmed buffer weight) / 2), 1), times the
      share of (widened) events holding at least one alarm;
    - precision = TP / number of alarms.

    The range-AP for ``ℓ`` is ``Σ (recall_k - recall_{k-1}) · precision_k``;
    VUS-PR is its mean over all ``ℓ``. NaN when the labels hold no anomaly.

    Args:
        max_buffer: the largest buffer length ``L`` (TSB-AD's ``slidingWindow``).
        n_thresholds: how many thresholds trace each PR curve.
    """
    y, s = _pair(y_true, scores)
    n = y.size
    events = events_from_labels(y)
    if not events:
        return float("nan")
    if max_buffer < 0 or n_thresholds < 1:
        raise ValueError("max_buffer must be ≥ 0 and n_thresholds ≥ 1")
    s = np.nan_to_num(s, nan=-np.inf)
    order = np.argsort(-s, kind="stable")
    sorted_scores = s[order]
    picks = np.linspace(0, n - 1, n_thresholds).astype(int)
    thresholds = sorted_scores[picks]
    # Alarms at threshold t are the scores ≥ t: a prefix of the sorted order.
    n_alarms = n - np.searchsorted(sorted_scores[::-1], thresholds, side="left")
    positives = float(y.sum())
    anomalous = y.astype(np.float64)
    aps = np.empty(max_buffer + 1)
    for window in range(max_buffer + 1):
        weights = _buffered_labels(y, events, window) if window >= 2 else anomalous
        buffer_weights = np.where(y == 1, 0.0, weights)
        tp = np.cumsum(weights[order])[n_alarms - 1]
        alarmed_buffer = np.cumsum(buffer_weights[order])[n_alarms - 1]
        widened = _merged(events, window, n)
        top = np.array([s[a : b + 1].max() for a, b in widened])
        existence = (top[None, :] >= thresholds[:, None]).sum(axis=1) / len(widened)
        recall = np.minimum(tp / ((2 * positives + alarmed_buffer) / 2), 1.0) * existence
        precision = tp / n_alarms
        steps = np.diff(np.concatenate([[0.0], recall]))
        aps[window] = float(np.dot(steps, precision))
    return float(aps.mean())


@dataclass(frozen=True, slots=True)
class PointF1:
    precision: float
    recall: float
    f1: float


def point_f1(y_true: ArrayLike, alarms: ArrayLike) -> PointF1:
    """Point-wise precision, recall and F1 of 0/1 ``alarms``; no point adjustment.

    Precision is 0 with no alarm; recall is NaN (and F1 NaN) with no labelled point.
    """
    y, a = _pair(y_true, alarms)
    predicted = a > 0
    actual = y == 1
    tp = float(np.sum(predicted & actual))
    precision = tp / predicted.sum() if predicted.any() else 0.0
    if not actual.any():
        return PointF1(precision, float("nan"), float("nan"))
    recall = tp / actual.sum()
    f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return PointF1(float(precision), float(recall), float(f1))


@dataclass(frozen=True, slots=True)
class EventRecall:
    """Events found, and each found event's delay (first alarm time - event start, s)."""

    found: int
    total: int
    delays_s: tuple[float, ...]

    @property
    def recall(self) -> float:
        return self.found / self.total if self.total else float("nan")


def event_recall(
    events: Sequence[Event],
    alarms: ArrayLike,
    timestamps: ArrayLike,
    tolerance_s: float = 0.0,
    start_times: Sequence[float] | None = None,
) -> EventRecall:
    """An event ``(start, end)`` (indices, inclusive) is found when an alarm falls in it
    or within ``tolerance_s`` seconds after its start.

    Args:
        events: inclusive index ranges, e.g. from :func:`events_from_labels`.
        alarms: one 0/1 per point.
        timestamps: one time (seconds) per point, non-decreasing.
        tolerance_s: how long after an event's start an alarm still counts.
        start_times: the events' true start times (seconds), when known (an
            injected fault's time, between two samples); tolerance and delay
            then count from it rather than from the first sample of the event.
    """
    a = np.asarray(alarms).ravel() > 0
    t = np.asarray(timestamps, dtype=np.float64).ravel()
    if a.shape != t.shape:
        raise ValueError(f"{a.size} alarms but {t.size} timestamps")
    if start_times is not None and len(start_times) != len(events):
        raise ValueError(f"{len(start_times)} start times for {len(events)} events")
    delays: list[float] = []
    for k, (start, end) in enumerate(events):
        if not 0 <= start <= end < a.size:
            raise ValueError(f"event ({start}, {end}) lies outside 0..{a.size - 1}")
        origin = float(t[start]) if start_times is None else float(start_times[k])
        in_event = np.zeros(a.size, dtype=bool)
        in_event[start : end + 1] = True
        in_event |= (t >= origin) & (t <= origin + tolerance_s)
        hits = np.flatnonzero(a & in_event)
        if hits.size:
            delays.append(float(max(t[hits[0]] - origin, 0.0)))
    return EventRecall(len(delays), len(events), tuple(delays))


def false_alarms_per_day(y_true: ArrayLike, alarms: ArrayLike, timestamps: ArrayLike) -> float:
    """Alarm episodes (runs of consecutive alarmed points) with no labelled point, per day.

    The span is ``last - first`` timestamp plus one median step, so ``n`` points
    at a 1-minute cadence cover ``n`` minutes.
    """
    y, a = _pair(y_true, alarms)
    t = np.asarray(timestamps, dtype=np.float64).ravel()
    if t.shape != y.shape:
        raise ValueError(f"{y.size} labels but {t.size} timestamps")
    if t.size == 0:
        return float("nan")
    step = float(np.median(np.diff(t))) if t.size > 1 else 0.0
    days = (float(t[-1] - t[0]) + step) / 86400.0
    if days <= 0:
        raise ValueError("timestamps span no time; pass seconds, non-decreasing")
    false_runs = sum(1 for s, e in events_from_labels(a > 0) if not y[s : e + 1].any())
    return false_runs / days


@dataclass(frozen=True, slots=True)
class NabProfile:
    """NAB's application profile: the weights of a detection, a false alarm, a miss."""

    tp: float
    fp: float
    fn: float


#: NAB's three profiles (``config/profiles.json``); "standard" is the headline.
NAB_PROFILES = {
    "standard": NabProfile(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_fp_rate": NabProfile(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_fn_rate": NabProfile(tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True, slots=True)
class NabScore:
    """NAB's raw score of one series, and the null and perfect detectors' scores on it.

    Scores add over series; normalise the sums (:meth:`normalised` on a
    summed ``NabScore``) for a corpus score, as NAB does.
    """

    raw: float
    null: float
    perfect: float

    def __add__(self, other: NabScore) -> NabScore:
        return NabScore(self.raw + other.raw, self.null + other.null, self.perfect + other.perfect)

    @property
    def normalised(self) -> float:
        """``100 · (raw - null) / (perfect - null)``: 0 = never alarm, 100 = perfect; NaN
        without windows."""
        span = self.perfect - self.null
        return 100.0 * (self.raw - self.null) / span if span > 0 else nan


def _scaled_sigmoid(position: float) -> float:
    """NAB's ``scaledSigmoid``: 0.987 at a window's left edge (-1), 0 at its right
    edge, toward -1 after it; -1 from 3 window-lengths on."""
    return -1.0 if position >= 3.0 else 2.0 / (1.0 + exp(5.0 * position)) - 1.0


def nab_score(
    windows: Sequence[Event], alarms: ArrayLike, profile: NabProfile | str = "standard"
) -> NabScore:
    """NAB's score of a deployed 0/1 alarm series over its scored points.

    The rules of NAB's ``Sweeper`` (numenta/NAB ``nab/sweeper.py``), applied to
    the points after the probationary period (pass only those):

    - a window holding alarms scores its earliest one:
      ``tp · S(-(right - i + 1) / width) / S(-1)`` with ``S`` the scaled sigmoid,
      so an alarm on the window's first point earns exactly ``tp``;
    - a window without alarm costs ``-fn``;
    - every alarmed point outside windows costs ``fp · S(d)``, ``d`` its distance
      past the preceding window's right edge in units of that window's width
      minus one, ``S = -1`` before any window (so a false alarm right after a
      window costs less than one far from it).

    The null detector (never alarms) scores ``-fn`` per window, the perfect one
    (an alarm on each window's first point) ``tp`` per window.

    Args:
        windows: inclusive index ranges, sorted, not overlapping.
        alarms: one 0/1 per scored point.
        profile: a :data:`NAB_PROFILES` name or weights.
    """
    weights = NAB_PROFILES[profile] if isinstance(profile, str) else profile
    a = np.asarray(alarms).ravel() > 0
    ordered = sorted(windows)
    for (_, e), (s_next, _) in pairwise(ordered):
        if s_next <= e:
            raise ValueError("NAB windows must not overlap")
    max_tp = _scaled_sigmoid(-1.0)
    raw = 0.0
    in_window = np.zeros(a.size, dtype=bool)
    for s, e in ordered:
        if not 0 <= s <= e < a.size:
            raise ValueError(f"window ({s}, {e}) lies outside 0..{a.size - 1}")
        in_window[s : e + 1] = True
        hits = np.flatnonzero(a[s : e + 1])
        if hits.size:
            i, width = s + int(hits[0]), e - s + 1
            raw += weights.tp * _scaled_sigmoid(-(e - i + 1) / width) / max_tp
        else:
            raw -= weights.fn
    rights = np.array([e for _, e in ordered], dtype=np.int64)
    widths = np.array([e - s + 1 for s, e in ordered], dtype=np.float64)
    for point in np.flatnonzero(a & ~in_window).tolist():
        before = int(np.searchsorted(rights, point, side="left")) - 1
        # NAB divides by (width - 1); a one-point window would divide by 0.
        position = 3.0 if before < 0 else (point - rights[before]) / max(widths[before] - 1.0, 1.0)
        raw += weights.fp * _scaled_sigmoid(float(position))
    n = len(ordered)
    return NabScore(raw=raw, null=-weights.fn * n, perfect=weights.tp * n)
