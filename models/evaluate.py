"""Evaluation runner: fit on train, score test causally, report honest metrics.

For each series, detector and seed: ``fit(X_train)`` (which also sets
``threshold_`` from the training scores alone), then scores for the test rows.
Scoring runs over the training rows followed by the test rows and keeps the
test part, so a detector that looks at a window of past rows has its context
at the first test row; every detector's score at row t uses rows ≤ t only
(the conformance suite checks it), so nothing after t and nothing from the
test labels reaches a score. Alarms are ``score > threshold_``.

Per series (JSON ``results``, one row per detector, series and seed):

- ``vus_pr``, ``auc_pr``: threshold-free (:mod:`models.metrics`);
- ``f1``, ``precision``, ``recall``: point-wise at the deployed threshold, no
  point adjustment;
- ``events``, ``events_found``, ``event_recall``: an event is found when an
  alarm falls in it or within ``tolerance_s`` after its start;
  ``detection_delay_s``: mean delay of the found events (null when none);
- ``events_found_onset``, ``event_recall_onset``: the same, counting only an alarm
  that *starts* there (the first point of an alarm episode): an alarm already on
  before the event tells an operator nothing new about it, so a detector that
  alarms all the time finds every event above but few here;
- ``false_alarms``, ``false_alarms_per_day``, ``false_alarms_per_hour``: alarm
  episodes touching no labelled point, per day / hour of test data (one
  series is one device, so per device-day / device-hour). An episode that
  touches a labelled point is not false however long it lasts, so read them
  with ``alarm_rate``, the share of test points alarmed: a detector alarming
  all the time has no false alarm but an alarm rate near 1;
- ``nab_score`` (NAB only, else null): NAB's standard-profile score of the
  deployed alarms, normalised to 0 (null detector) .. 100 (perfect).

Per detector (``summary``): ``kind`` (``baseline`` or ``model``), ``seeds``,
``series``; for the metrics above ``<metric>_mean`` (over series and seeds),
``<metric>_std`` (over series, of each series' seed mean) and
``<metric>_seed_std`` (over seeds, of each seed's mean over series);
``event_recall`` and ``event_recall_onset`` pooled over all events; ``nab_score`` as NAB computes a
corpus score (raw scores summed over series, then normalised), mean over seeds.
NaN (no anomaly in a series, no event found) is written as ``null`` and left
out of the means.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from models.base import DetectorRegistry, FloatArray, default_registry
from models.datasets import Series
from models.metrics import (
    NabScore,
    auc_pr,
    event_recall,
    events_from_labels,
    false_alarms_per_day,
    nab_score,
    point_f1,
    vus_pr,
)

__all__ = ["BASELINES", "MEAN_METRICS", "evaluate", "evaluation_registry", "score_series"]

#: The reference detectors every results table carries (data README).
BASELINES = frozenset({"random", "robust_z", "pca", "iforest"})

#: Per-series metrics the summary averages.
MEAN_METRICS = (
    "vus_pr",
    "auc_pr",
    "f1",
    "precision",
    "recall",
    "event_recall",
    "detection_delay_s",
    "false_alarms_per_day",
    "false_alarms_per_hour",
    "alarm_rate",
)

ScoresHook = Callable[[str, Series, FloatArray, float], None]


def evaluation_registry() -> DetectorRegistry:
    """The default registry plus ``random``, the floor every table reports.

    ``random`` is kept out of :func:`models.base.default_registry` on purpose:
    it cannot pass the conformance suite's "scores rise on a fault" checks, and
    nothing should deploy it.
    """
    from models.baselines import RandomDetector

    registry = default_registry()
    registry.register(RandomDetector.name, RandomDetector)
    return registry


def _json_float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _std(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.std(kept)) if kept else None


def score_series(
    registry: DetectorRegistry, name: str, series: Series, seed: int
) -> tuple[FloatArray, float]:
    """Fit detector ``name`` (seeded when it takes a seed) on the train part; return
    its causal scores of the test part and its threshold."""
    detector = registry.create(name)
    if "seed" in inspect.signature(type(detector).__init__).parameters:
        detector = registry.create(name, seed=seed)
    detector.fit(series.X_train)
    n_train = series.X_train.shape[0]
    scores = detector.score(np.vstack([series.X_train, series.X_test]))[n_train:]
    return np.asarray(scores, dtype=np.float64), float(detector.threshold_)


def _row(
    name: str,
    series: Series,
    seed: int,
    scores: FloatArray,
    threshold: float,
    *,
    tolerance_s: float,
    max_buffer: int,
    nab: bool,
) -> dict[str, Any]:
    alarms = scores > threshold
    y, t = series.y_test, series.timestamps
    starts = list(series.event_times) if len(series.event_times) == len(series.events) else None
    found = event_recall(series.events, alarms, t, tolerance_s, start_times=starts)
    onsets = alarms & ~np.concatenate([[False], alarms[:-1]])
    found_onset = event_recall(series.events, onsets, t, tolerance_s, start_times=starts)
    f1 = point_f1(y, alarms)
    per_day = false_alarms_per_day(y, alarms, t)
    false_runs = sum(1 for s, e in events_from_labels(alarms) if not y[s : e + 1].any())
    row: dict[str, Any] = {
        "detector": name,
        "series": series.name,
        "seed": seed,
        "vus_pr": _json_float(vus_pr(y, scores, max_buffer=max_buffer)),
        "auc_pr": _json_float(auc_pr(y, scores)),
        "f1": _json_float(f1.f1),
        "precision": _json_float(f1.precision),
        "recall": _json_float(f1.recall),
        "threshold": _json_float(threshold),
        "events": found.total,
        "events_found": found.found,
        "event_recall": _json_float(found.recall),
        "events_found_onset": found_onset.found,
        "event_recall_onset": _json_float(found_onset.recall),
        "detection_delay_s": _json_float(float(np.mean(found.delays_s)))
        if found.delays_s
        else None,
        "false_alarms": false_runs,
        "false_alarms_per_day": _json_float(per_day),
        "false_alarms_per_hour": _json_float(per_day / 24.0),
        "alarm_rate": float(alarms.mean()) if alarms.size else None,
        "nab_score": None,
    }
    if nab:
        score = nab_score(series.events, alarms)
        row["nab_score"] = _json_float(score.normalised)
        row["nab_raw"] = score.raw
    return row


def _summary(name: str, rows: list[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    series_names = list(dict.fromkeys(r["series"] for r in rows))
    out: dict[str, Any] = {
        "detector": name,
        "kind": "baseline" if name in BASELINES else "model",
        "seeds": list(seeds),
        "series": len(series_names),
    }
    for metric in MEAN_METRICS:
        per_series = [_mean([r[metric] for r in rows if r["series"] == s]) for s in series_names]
        per_seed = [_mean([r[metric] for r in rows if r["seed"] == k]) for k in seeds]
        out[f"{metric}_mean"] = _mean([r[metric] for r in rows])
        out[f"{metric}_std"] = _std(per_series)
        out[f"{metric}_seed_std"] = _std(per_seed)
    total = sum(r["events"] for r in rows)
    out["events"] = total // max(len(seeds), 1)
    out["event_recall"] = sum(r["events_found"] for r in rows) / total if total else None
    out["event_recall_onset"] = (
        sum(r["events_found_onset"] for r in rows) / total if total else None
    )
    out["false_alarms"] = sum(r["false_alarms"] for r in rows) / max(len(seeds), 1)
    if any("nab_raw" in r for r in rows):
        corpus = []
        for k in seeds:
            part = [r for r in rows if r["seed"] == k]
            total_score = NabScore(0.0, 0.0, 0.0)
            for r in part:
                n = r["events"]
                total_score = total_score + NabScore(r["nab_raw"], -1.0 * n, 1.0 * n)
            corpus.append(_json_float(total_score.normalised))
        out["nab_score"] = _mean(corpus)
        out["nab_score_seed_std"] = _std(corpus)
    else:
        out["nab_score"] = None
    return out


def evaluate(
    series_list: Sequence[Series],
    detector_names: Sequence[str],
    seed: int = 0,
    *,
    seeds: Sequence[int] | None = None,
    dataset: str = "",
    tolerance_s: float = 60.0,
    max_buffer: int = 100,
    registry: DetectorRegistry | None = None,
    on_step: Callable[[str, str], None] | None = None,
    on_scores: ScoresHook | None = None,
) -> dict[str, Any]:
    """Fit and score every detector on every series (for every seed); return JSON-ready data.

    Args:
        series_list: from :mod:`models.datasets`.
        detector_names: registry names; the seed goes to those taking one.
        seed: the seed when ``seeds`` is not given.
        seeds: run each detector once per seed; the summary averages over them.
        dataset: the data set's name; ``"nab"`` adds NAB scores.
        tolerance_s: event-recall tolerance after an event's start.
        max_buffer: VUS-PR's largest buffer length.
        on_step: called with (detector, series) after each fit-and-score.
        on_scores: called with (detector, series, test scores, threshold), for
            the first seed only.

    Returns:
        ``{"dataset", "seeds", "results": [...], "summary": [...]}`` as
        documented in this module's docstring.
    """
    registry = registry or evaluation_registry()
    run_seeds = list(seeds) if seeds else [seed]
    nab = dataset == "nab"
    results: list[dict[str, Any]] = []
    for name in detector_names:
        for series in series_list:
            for k, run_seed in enumerate(run_seeds):
                scores, threshold = score_series(registry, name, series, run_seed)
                results.append(
                    _row(
                        name,
                        series,
                        run_seed,
                        scores,
                        threshold,
                        tolerance_s=tolerance_s,
                        max_buffer=max_buffer,
                        nab=nab,
                    )
                )
                if on_scores is not None and k == 0:
                    on_scores(name, series, scores, threshold)
                if on_step is not None:
                    on_step(name, series.name)
    summary = [
        _summary(name, [r for r in results if r["detector"] == name], run_seeds)
        for name in detector_names
    ]
    return {"dataset": dataset, "seeds": run_seeds, "results": results, "summary": summary}
