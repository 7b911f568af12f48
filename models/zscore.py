"""Per-metric robust z-score: the baseline every other detector must beat.

Each feature is centred on its training median and scaled by its MAD
(× 1.4826, the normal-consistent factor). Flat training series would give a
zero scale and alarm on any change, so the scale has two floors: a fraction
of the median's magnitude and an absolute one.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import NDArray

from models.base import FloatArray, check_array

__all__ = ["RobustZScore"]

_MAD_TO_SIGMA = 1.4826


class RobustZScore:
    """Score = max over features of ``|x - median| / scale``.

    Args:
        quantile: training-score quantile the threshold starts from.
        margin: factor applied to that quantile.
        min_threshold: the threshold never goes below this many scales.
        relative_floor: scale is at least this fraction of ``|median|``.
        absolute_floor: scale is at least this much.
    """

    name = "robust_z"

    def __init__(
        self,
        quantile: float = 0.99,
        margin: float = 1.5,
        min_threshold: float = 6.0,
        relative_floor: float = 0.05,
        absolute_floor: float = 1.0,
    ) -> None:
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {quantile}")
        self.quantile = quantile
        self.margin = margin
        self.min_threshold = min_threshold
        self.relative_floor = relative_floor
        self.absolute_floor = absolute_floor
        self.threshold_ = float("inf")

    def fit(self, X: FloatArray) -> Self:
        X = check_array(X)
        self.n_features_in_ = X.shape[1]
        if X.shape[0] < 2:
            raise ValueError(f"need at least 2 training rows, got {X.shape[0]}")
        with np.errstate(all="ignore"):
            median = np.nanmedian(X, axis=0)
            mad = np.nanmedian(np.abs(X - median), axis=0)
        median = np.nan_to_num(median, nan=0.0)
        mad = np.nan_to_num(mad, nan=0.0)
        floor = np.maximum(self.relative_floor * np.abs(median), self.absolute_floor)
        self.median_: FloatArray = median
        self.scale_: FloatArray = np.maximum(_MAD_TO_SIGMA * mad, floor)
        train = self.score(X)
        self.threshold_ = float(
            max(np.quantile(train, self.quantile) * self.margin, self.min_threshold)
        )
        return self

    def contributions(self, X: FloatArray) -> FloatArray:
        X = check_array(X, getattr(self, "n_features_in_", None))
        z = np.abs(X - self.median_) / self.scale_
        return np.nan_to_num(z, nan=0.0, posinf=0.0)

    def score(self, X: FloatArray) -> FloatArray:
        contributions = self.contributions(X)
        if contributions.shape[1] == 0:
            return np.zeros(contributions.shape[0])
        return np.asarray(contributions.max(axis=1), dtype=np.float64)

    def predict(self, X: FloatArray) -> NDArray[np.bool_]:
        return self.score(X) > self.threshold_
