"""Alarm thresholds calibrated on training scores alone.

Two rules, both fitted on the scores a detector gives its own (anomaly-free)
training data, never on test data:

- :func:`quantile_threshold`: the ``q`` quantile of the training scores.
- :func:`pot_threshold`: peaks over threshold (Siffer et al., KDD 2017, "SPOT"):
  fit a generalized Pareto distribution to the excesses over an initial high
  quantile and extrapolate to the score exceeded with probability ``risk``.
  When the tail is too short or the fit fails, it falls back to the
  ``1 - risk`` quantile, so it always returns a finite number.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from models.base import FloatArray

__all__ = ["calibrate", "pot_threshold", "quantile_threshold"]

#: Fewer tail excesses than this and the Pareto fit is not worth trusting.
MIN_EXCESSES = 10


def _finite(train_scores: FloatArray) -> FloatArray:
    scores = np.asarray(train_scores, dtype=np.float64).ravel()
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        raise ValueError("no finite training scores to calibrate a threshold on")
    return scores


def quantile_threshold(train_scores: FloatArray, q: float = 0.99) -> float:
    """The ``q`` quantile of the finite training scores.

    Raises:
        ValueError: ``q`` is outside [0, 1] or no score is finite.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    return float(np.quantile(_finite(train_scores), q))


def pot_threshold(
    train_scores: FloatArray, risk: float = 1e-3, init_quantile: float = 0.98
) -> float:
    """Peaks-over-threshold: the score exceeded with probability ``risk``.

    Args:
        train_scores: scores of the training data.
        risk: target probability of a normal point exceeding the threshold.
        init_quantile: the quantile above which excesses are fitted.

    Returns:
        ``t + σ/γ · ((risk·n/N_t)^(-γ) - 1)`` (``t - σ·ln(risk·n/N_t)`` when γ ≈ 0),
        never below the initial quantile ``t``; the ``1 - risk`` quantile when
        fewer than :data:`MIN_EXCESSES` excesses exist or the fit fails.
    """
    if not 0.0 < risk < 1.0:
        raise ValueError(f"risk must be in (0, 1), got {risk}")
    if not 0.0 < init_quantile < 1.0:
        raise ValueError(f"init_quantile must be in (0, 1), got {init_quantile}")
    scores = _finite(train_scores)
    fallback = float(np.quantile(scores, 1.0 - risk))
    t = float(np.quantile(scores, init_quantile))
    excesses = scores[scores > t] - t
    if excesses.size < MIN_EXCESSES or float(np.ptp(excesses)) == 0.0:
        return fallback
    from scipy.stats import genpareto

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gamma, _, sigma = genpareto.fit(excesses, floc=0.0)
    except (RuntimeError, ValueError, FloatingPointError):
        return fallback
    ratio = risk * scores.size / excesses.size
    if not (math.isfinite(gamma) and math.isfinite(sigma) and sigma > 0):
        return fallback
    if abs(gamma) < 1e-8:
        z = t - sigma * math.log(ratio)
    else:
        z = t + sigma / gamma * (ratio ** (-gamma) - 1.0)
    return float(max(z, t)) if math.isfinite(z) else fallback


def calibrate(train_scores: FloatArray, method: str, q: float, risk: float) -> float:
    """Dispatch on ``method`` ("quantile" or "pot"); used by the detectors' ``fit``."""
    if method == "quantile":
        return quantile_threshold(train_scores, q)
    if method == "pot":
        return pot_threshold(train_scores, risk=risk)
    raise ValueError(f"threshold method must be 'quantile' or 'pot', got {method!r}")
