"""PNG plots of detector scores, thresholds and labels (matplotlib, Agg backend).

matplotlib is imported when a plot is drawn, not with this module, so the
rest of :mod:`models` works without it; a missing matplotlib raises
:class:`PlotError` saying what to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from models.base import FloatArray
from models.datasets import Series

__all__ = ["PlotError", "plot_detectors", "plot_scores", "plot_writer", "safe_name"]

#: Shades for labelled events and colours for alarms.
_EVENT = "#f4a259"
_ALARM = "#c0392b"


class PlotError(RuntimeError):
    """Plotting is not possible here (matplotlib is missing)."""


def _pyplot() -> Any:
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError as exc:
        raise PlotError("plots need matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def safe_name(text: str) -> str:
    """``text`` as a file-name part: anything but letters, digits, ``.-_`` becomes ``_``."""
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in text).strip("_")


def _hours(series: Series) -> FloatArray:
    t = np.asarray(series.timestamps, dtype=np.float64)
    return (t - t[0]) / 3600.0 if t.size else t


def _draw(ax: Any, series: Series, scores: FloatArray, threshold: float, title: str) -> None:
    x = _hours(series)
    finite = scores[np.isfinite(scores)]
    for start, end in series.events:
        ax.axvspan(x[start], x[end] if end > start else x[start] + 1e-3, color=_EVENT, alpha=0.35)
    ax.plot(x, scores, lw=0.6, color="#2c3e50", label="score")
    top = float(finite.max()) if finite.size else 1.0
    if np.isfinite(threshold):
        ax.axhline(threshold, color=_ALARM, lw=0.8, ls="--", label="threshold (from training)")
        alarms = scores > threshold
        # Alarms as a strip along the bottom, so they never hide the scores.
        ax.plot(
            x[alarms],
            np.zeros(int(alarms.sum())),
            "|",
            color=_ALARM,
            ms=6,
            transform=ax.get_xaxis_transform(),
            label="alarm",
        )
        if threshold > 0 and top > 20 * threshold:
            # Heavy tails would flatten everything under the threshold.
            ax.set_yscale("symlog", linthresh=threshold)
    ax.set_title(title, fontsize=9, loc="left")
    ax.tick_params(labelsize=7)


def plot_scores(
    path: str | Path, detector: str, series: Series, scores: FloatArray, threshold: float
) -> Path:
    """One detector's test scores, its threshold, its alarms and the labelled events.

    Returns:
        The PNG's path.

    Raises:
        PlotError: matplotlib is not installed.
    """
    plt = _pyplot()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(11, 2.8))
    _draw(
        ax, series, np.asarray(scores, dtype=np.float64), threshold, f"{detector} on {series.name}"
    )
    ax.set_xlabel("hours into the test part (shaded: labelled anomalies)", fontsize=8)
    ax.legend(loc="upper right", fontsize=7)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out


def plot_detectors(
    path: str | Path, series: Series, runs: Mapping[str, tuple[FloatArray, float]]
) -> Path:
    """Every detector's scores on one series, stacked on a shared time axis.

    Args:
        runs: ``{detector: (test scores, threshold)}``, drawn in that order.
    """
    plt = _pyplot()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(
        len(runs), 1, figsize=(11, 1.7 * len(runs) + 0.6), sharex=True, squeeze=False
    )
    for ax, (name, (scores, threshold)) in zip(axes[:, 0], runs.items(), strict=True):
        _draw(ax, series, np.asarray(scores, dtype=np.float64), threshold, name)
    axes[-1, 0].set_xlabel("hours into the test part (shaded: labelled anomalies)", fontsize=8)
    fig.suptitle(series.name, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out


def plot_writer(directory: str | Path) -> Callable[[str, Series, FloatArray, float], None]:
    """A hook for :func:`models.evaluate.evaluate` (``on_scores``) writing
    ``<detector>-<series>.png`` under ``directory``.

    Raises:
        PlotError: matplotlib is not installed (checked now, not at the first plot).
    """
    _pyplot()
    root = Path(directory)

    def hook(name: str, series: Series, scores: FloatArray, threshold: float) -> None:
        plot_scores(
            root / f"{safe_name(name)}-{safe_name(series.name)}.png",
            name,
            series,
            scores,
            threshold,
        )

    return hook
