"""Reference detectors every results table carries: random, PCA, Isolation Forest.

All three follow the batch API in :mod:`models.base`. Each scores a row from
that row alone, so scoring a test series row by row is causal. ``threshold_``
comes from the detector's scores on its own training data
(:func:`models.thresholds.calibrate`: a quantile by default, or POT).

- :class:`RandomDetector`: seeded uniform scores that ignore the data. The
  honest floor: any metric a real detector reports should be read against it.
- :class:`PCADetector`: squared reconstruction error (SPE, the Q statistic)
  after standardising on the training data.
- :class:`IsolationForestDetector`: scikit-learn's Isolation Forest, seeded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from models.base import FloatArray, check_array
from models.thresholds import calibrate

__all__ = ["IsolationForestDetector", "PCADetector", "RandomDetector"]

_MAD_TO_SIGMA = 1.4826


class _Calibrated(ABC):
    """Shared behaviour: threshold options, feature-count checks, ``predict``."""

    name = ""

    def __init__(self, threshold: str = "quantile", q: float = 0.99, risk: float = 1e-3) -> None:
        if threshold not in ("quantile", "pot"):
            raise ValueError(f"threshold must be 'quantile' or 'pot', got {threshold!r}")
        if not 0.0 < q <= 1.0:
            raise ValueError(f"q must be in (0, 1], got {q}")
        self.threshold = threshold
        self.q = q
        self.risk = risk
        self.threshold_ = float("inf")

    def _check_fit(self, X: Any) -> FloatArray:
        arr = check_array(X)
        if arr.shape[0] < 2:
            raise ValueError(f"need at least 2 training rows, got {arr.shape[0]}")
        self.n_features_in_ = arr.shape[1]
        return arr

    def _check(self, X: Any) -> FloatArray:
        n_features = getattr(self, "n_features_in_", None)
        if n_features is None:
            raise ValueError(f"{type(self).__name__} is not fitted; call fit(X) first")
        return check_array(X, n_features)

    def _calibrate(self, train_scores: FloatArray) -> None:
        self.threshold_ = calibrate(train_scores, self.threshold, self.q, self.risk)

    @abstractmethod
    def score(self, X: FloatArray) -> FloatArray:
        """One anomaly score per row; higher is more anomalous."""

    def predict(self, X: FloatArray) -> NDArray[np.bool_]:
        """``score(X) > threshold_``."""
        return self.score(X) > self.threshold_


class RandomDetector(_Calibrated):
    """Uniform scores in [0, 1) from a seeded generator, blind to the data.

    ``score`` restarts the generator on every call, so the same number of rows
    always gets the same scores (deterministic, and equal after save/load).
    Contributions split each score evenly over the features.
    """

    name = "random"

    def __init__(
        self, seed: int = 0, threshold: str = "quantile", q: float = 0.99, risk: float = 1e-3
    ) -> None:
        super().__init__(threshold, q, risk)
        self.seed = seed

    def fit(self, X: FloatArray) -> Self:
        X = self._check_fit(X)
        self._calibrate(self.score(X))
        return self

    def score(self, X: FloatArray) -> FloatArray:
        X = self._check(X)
        return np.asarray(np.random.default_rng(self.seed).random(X.shape[0]), dtype=np.float64)

    def contributions(self, X: FloatArray) -> FloatArray:
        X = self._check(X)
        share = self.score(X) / max(X.shape[1], 1)
        return np.repeat(share[:, None], X.shape[1], axis=1)


class PCADetector(_Calibrated):
    """Squared reconstruction error in standardised units; contributions are the squared residuals.

    Features are centred and scaled on the training data (a constant feature
    keeps scale 1, so any change in it shows). The kept components are the
    fewest explaining ``variance`` of the training variance, and at most half
    the features: on data without low-rank structure the variance rule would
    keep nearly every component and leave no residual space to see a fault in;
    the cap keeps, on average, at least half of a single-metric fault in the
    residual. With one feature no component is kept and the score is ``z²``.
    Missing values read as the training mean (no evidence).

    Args:
        variance: fraction of training variance the kept components explain.
        threshold, q, risk: threshold rule, see :func:`models.thresholds.calibrate`.
    """

    name = "pca"

    def __init__(
        self,
        variance: float = 0.95,
        threshold: str = "quantile",
        q: float = 0.99,
        risk: float = 1e-3,
    ) -> None:
        super().__init__(threshold, q, risk)
        if not 0.0 < variance <= 1.0:
            raise ValueError(f"variance must be in (0, 1], got {variance}")
        self.variance = variance

    def fit(self, X: FloatArray) -> Self:
        X = self._check_fit(X)
        with np.errstate(all="ignore"):
            mean = np.nan_to_num(np.nanmean(X, axis=0), nan=0.0)
            std = np.nan_to_num(np.nanstd(X, axis=0), nan=0.0)
        tiny = std <= 1e-12 * np.maximum(1.0, np.abs(mean))
        self.mean_: FloatArray = mean
        self.scale_: FloatArray = np.where(tiny, 1.0, std)
        Z = self._standardise(X)
        _, s, vt = np.linalg.svd(Z, full_matrices=False)
        var = s**2
        total = float(var.sum())
        if total > 0:
            ratio = np.cumsum(var) / total
            k = int(np.searchsorted(ratio, self.variance - 1e-12) + 1)
        else:
            k = 0
        k = min(k, X.shape[1] // 2)
        self.components_: FloatArray = np.ascontiguousarray(vt[:k])
        self._calibrate(self.score(X))
        return self

    def _standardise(self, X: FloatArray) -> FloatArray:
        return np.nan_to_num((X - self.mean_) / self.scale_, nan=0.0)

    def contributions(self, X: FloatArray) -> FloatArray:
        Z = self._standardise(self._check(X))
        residual = Z - (Z @ self.components_.T) @ self.components_
        return np.asarray(residual**2, dtype=np.float64)

    def score(self, X: FloatArray) -> FloatArray:
        return np.asarray(self.contributions(X).sum(axis=1), dtype=np.float64)


class IsolationForestDetector(_Calibrated):
    """scikit-learn's Isolation Forest; score = ``-score_samples`` (in (0, 1], higher = odder).

    A known blind spot of Isolation Forest: trees are grown on training data, so
    a value past the training range follows the same path as the most extreme
    training value; a metric at 10σ scores no higher than one at 3σ, and a
    single-metric step in a few-metric frame stays under a training quantile.
    With ``range_penalty`` (the default) the score adds how far the row lies
    outside the training range, in robust units:
    ``max_j max(0, x_j - max_j, min_j - x_j) / spread_j``. Training rows lie
    inside the range, so their scores (and hence ``threshold_``) are the
    forest's alone. ``range_penalty=False`` gives the plain scikit-learn score.

    Contributions are a cheap proxy, not an attribution of the forest: each
    feature's robust distance from its training median, ``|x - median| /
    (1.4826·MAD)`` (scale falls back to the standard deviation, then 1, for
    flat features). It names the metric that moved most, which is what an
    operator reads first; it does not explain the trees' decision.

    The forest itself is not stored: :mod:`models.persist` stores the training
    data (``X_fit_``) and refits with the same seed, which rebuilds the same
    trees and so the same scores.

    Args:
        n_estimators, max_samples: as in :class:`sklearn.ensemble.IsolationForest`.
        seed: the forest's ``random_state``.
        range_penalty: add the out-of-training-range distance to the score.
    """

    name = "iforest"

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: int = 256,
        seed: int = 0,
        range_penalty: bool = True,
        threshold: str = "quantile",
        q: float = 0.99,
        risk: float = 1e-3,
    ) -> None:
        super().__init__(threshold, q, risk)
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.seed = seed
        self.range_penalty = range_penalty

    def fit(self, X: FloatArray) -> Self:
        X = self._check_fit(X)
        self.X_fit_: FloatArray = np.array(X, dtype=np.float64, copy=True)
        self._build()
        self._calibrate(self.score(X))
        return self

    def _build(self) -> None:
        """Fit the forest and the proxy's statistics from ``X_fit_`` (deterministic)."""
        from sklearn.ensemble import IsolationForest

        X = self.X_fit_
        with np.errstate(all="ignore"):
            median = np.nan_to_num(np.nanmedian(X, axis=0), nan=0.0)
            mad = np.nan_to_num(np.nanmedian(np.abs(X - median), axis=0), nan=0.0)
            std = np.nan_to_num(np.nanstd(X, axis=0), nan=0.0)
        scale = np.where(mad > 0, _MAD_TO_SIGMA * mad, std)
        self.median_: FloatArray = median
        self.spread_: FloatArray = np.where(scale > 0, scale, 1.0)
        imputed = self._impute(X)
        self.low_: FloatArray = imputed.min(axis=0)
        self.high_: FloatArray = imputed.max(axis=0)
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, X.shape[0]),
            random_state=self.seed,
            n_jobs=1,
        ).fit(imputed)

    def _impute(self, X: FloatArray) -> FloatArray:
        return np.where(np.isnan(X), self.median_, X)

    def restore(self) -> None:
        """Rebuild the forest after :func:`models.persist.load` set ``X_fit_``."""
        self._build()

    def score(self, X: FloatArray) -> FloatArray:
        X = self._impute(self._check(X))
        scores = np.asarray(-self.forest_.score_samples(X), dtype=np.float64)
        if self.range_penalty and X.shape[1] > 0:
            outside = np.maximum(X - self.high_, self.low_ - X).clip(min=0.0) / self.spread_
            scores = scores + outside.max(axis=1)
        return scores

    def contributions(self, X: FloatArray) -> FloatArray:
        X = self._check(X)
        z = np.abs(X - self.median_) / self.spread_
        return np.nan_to_num(z, nan=0.0, posinf=0.0)
