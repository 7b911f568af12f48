"""Evaluation runner: fit on train, score test causally, report honest metrics.

For each series and detector: ``fit(X_train)`` (which also sets
``threshold_`` from the training scores alone), then ``score(X_test)``. The
batch detectors here score each row from that row alone, so scoring the
whole test block at once is causal: the score at time t uses no data after t
and nothing from the test labels. Alarms are ``score > threshold_``.

Per series: VUS-PR, AUC-PR, point-wise F1 at the deployed threshold (no point
adjustment), event recall (an alarm in the event or within ``tolerance_s``
after its start) and false alarms per day. Per detector: the mean and
standard deviation over series. NaN (no anomaly in a series) is written as
``null`` and left out of the means.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from models.base import DetectorRegistry, FloatArray, default_registry
from models.datasets import Series
from models.metrics import auc_pr, event_recall, false_alarms_per_day, point_f1, vus_pr

__all__ = ["BASELINES", "evaluate", "evaluation_registry"]

#: The reference detectors every results table carries (data README).
BASELINES = frozenset({"random", "robust_z", "pca", "iforest"})

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


def _json_float(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def _stats(values: list[float | None]) -> tuple[float | None, float | None]:
    kept = [v for v in values if v is not None]
    if not kept:
        return None, None
    return float(np.mean(kept)), float(np.std(kept))


def evaluate(
    series_list: Sequence[Series],
    detector_names: Sequence[str],
    seed: int = 0,
    *,
    dataset: str = "",
    tolerance_s: float = 60.0,
    max_buffer: int = 100,
    registry: DetectorRegistry | None = None,
    on_step: Callable[[str, str], None] | None = None,
    on_scores: ScoresHook | None = None,
) -> dict[str, Any]:
    """Fit and score every detector on every series; return the results as JSON-ready data.

    Args:
        series_list: from :mod:`models.datasets`.
        detector_names: registry names; ``seed`` goes to those taking one.
        tolerance_s: event-recall tolerance after an event's start.
        max_buffer: VUS-PR's largest buffer length.
        on_step: called with (detector, series) after each fit-and-score.
        on_scores: called with (detector, series, test scores, threshold).

    Returns:
        ``{"dataset", "results": [...], "summary": [...]}`` as documented in
        the module docstring of :mod:`models.evaluate`.
    """
    registry = registry or evaluation_registry()
    results: list[dict[str, Any]] = []
    for name in detector_names:
        for series in series_list:
            detector = registry.create(name)
            if "seed" in inspect.signature(type(detector).__init__).parameters:
                detector = registry.create(name, seed=seed)
            detector.fit(series.X_train)
            scores = detector.score(series.X_test)
            alarms = scores > detector.threshold_
            recall = event_recall(series.events, alarms, series.timestamps, tolerance_s)
            results.append(
                {
                    "detector": name,
                    "series": series.name,
                    "vus_pr": _json_float(vus_pr(series.y_test, scores, max_buffer=max_buffer)),
                    "auc_pr": _json_float(auc_pr(series.y_test, scores)),
                    "f1": _json_float(point_f1(series.y_test, alarms).f1),
                    "event_recall": _json_float(recall.recall),
                    "false_alarms_per_day": _json_float(
                        false_alarms_per_day(series.y_test, alarms, series.timestamps)
                    ),
                }
            )
            if on_scores is not None:
                on_scores(name, series, scores, detector.threshold_)
            if on_step is not None:
                on_step(name, series.name)
    summary = []
    for name in detector_names:
        rows = [r for r in results if r["detector"] == name]
        vus_mean, vus_std = _stats([r["vus_pr"] for r in rows])
        summary.append(
            {
                "detector": name,
                "kind": "baseline" if name in BASELINES else "model",
                "vus_pr_mean": vus_mean,
                "vus_pr_std": vus_std,
                "auc_pr_mean": _stats([r["auc_pr"] for r in rows])[0],
                "f1_mean": _stats([r["f1"] for r in rows])[0],
            }
        )
    return {"dataset": dataset, "results": results, "summary": summary}
