"""Per-metric robust z-score: the baseline every other detector must beat.

Each feature is centred on its training median and scaled by its MAD
(× 1.4826, the normal-consistent factor). Every floor on that scale comes
from the feature's own training spread, never from a unit-ful constant, so
the detector reads [0, 1]-normalised KPIs and bit-per-second rates alike:

- a feature that mostly sits on one value (MAD 0, e.g. an error counter that
  is 0 but for a few bursts) is scaled by its standard deviation;
- the scale is never below ``spread_floor`` × the standard deviation, so a
  heavy-tailed feature cannot get a scale far below its actual spread;
- only a feature that never moved in training (standard deviation 0) has
  nothing to be scaled by: it gets ``relative_floor`` × its magnitude, or
  ``absolute_floor`` when it was exactly 0 throughout.

A caller that knows its features' units may also pass ``fit(X, min_scale=...)``:
the smallest change per feature that matters (say 0.05 decades of traffic,
2 points of CPU). A short training window of a quiet network underestimates
the spread, and then every normal wiggle alarms; the online network detector
passes these (:func:`models.features.min_scales`).
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
        spread_floor: scale is at least this fraction of the standard deviation.
        relative_floor: scale of a constant training feature, as a fraction of ``|median|``.
        absolute_floor: scale of a feature that was exactly 0 throughout training.
    """

    name = "robust_z"

    def __init__(
        self,
        quantile: float = 0.99,
        margin: float = 1.5,
        min_threshold: float = 6.0,
        spread_floor: float = 0.1,
        relative_floor: float = 0.05,
        absolute_floor: float = 1.0,
    ) -> None:
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {quantile}")
        self.quantile = quantile
        self.margin = margin
        self.min_threshold = min_threshold
        self.spread_floor = spread_floor
        self.relative_floor = relative_floor
        self.absolute_floor = absolute_floor
        self.threshold_ = float("inf")

    def fit(self, X: FloatArray, min_scale: FloatArray | None = None) -> Self:
        """Learn medians and scales from ``X``; ``min_scale`` (per feature) floors the scales."""
        X = check_array(X)
        self.n_features_in_ = X.shape[1]
        if X.shape[0] < 2:
            raise ValueError(f"need at least 2 training rows, got {X.shape[0]}")
        with np.errstate(all="ignore"):
            median = np.nanmedian(X, axis=0)
            mad = np.nanmedian(np.abs(X - median), axis=0)
            std = np.nanstd(X, axis=0)
        median = np.nan_to_num(median, nan=0.0)
        mad = np.nan_to_num(mad, nan=0.0)
        std = np.nan_to_num(std, nan=0.0)
        robust = np.where(mad > 0, _MAD_TO_SIGMA * mad, std)
        scale = np.maximum(robust, self.spread_floor * std)
        constant = np.where(median != 0, self.relative_floor * np.abs(median), self.absolute_floor)
        self.median_: FloatArray = median
        scale = np.where(scale > 0, scale, constant)
        if min_scale is not None:
            floors = np.asarray(min_scale, dtype=np.float64)
            if floors.shape != scale.shape:
                raise ValueError(f"min_scale has {floors.size} values for {scale.size} features")
            scale = np.maximum(scale, floors)
        self.scale_: FloatArray = scale
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
