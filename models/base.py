"""The detector extension point: a Protocol and a registry.

Batch detectors follow pyod: ``fit(X) -> self``, ``score(X)`` (higher = more
anomalous), ``predict(X)`` against ``threshold_`` set by ``fit``; fitted
attributes end in ``_``. ``contributions(X)`` gives each feature's share of
the score, so every alarm can name the metrics that drove it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Detector", "DetectorRegistry", "FloatArray", "check_array", "default_registry"]

FloatArray = NDArray[np.float64]


@runtime_checkable
class Detector(Protocol):
    name: str
    threshold_: float

    def fit(self, X: FloatArray) -> Self:
        """Learn normal behaviour from ``X`` (n_samples × n_features) and set ``threshold_``."""
        ...

    def score(self, X: FloatArray) -> FloatArray:
        """One anomaly score per row; higher is more anomalous."""
        ...

    def predict(self, X: FloatArray) -> NDArray[np.bool_]:
        """``score(X) > threshold_``."""
        ...

    def contributions(self, X: FloatArray) -> FloatArray:
        """Per-feature contributions (same shape as ``X``) for attribution."""
        ...


def check_array(X: Any, n_features: int | None = None) -> FloatArray:
    """``X`` as a float 2-D array; a flat array is one feature, unless fitted on more.

    Raises:
        ValueError: not 2-D, a flat row for a multi-feature detector, or the
            wrong number of features.
    """
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        if n_features not in (None, 1):
            raise ValueError(
                f"got a flat array for a detector fitted on {n_features} features; "
                "pass one row as X.reshape(1, -1)"
            )
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_samples, n_features), got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"fitted on {n_features} features, got {arr.shape[1]}")
    return arr


class DetectorRegistry:
    """Detector factories by name; each instance has its own dict."""

    def __init__(self) -> None:
        self._factories: dict[str, Callable[..., Detector]] = {}

    def register(self, name: str, factory: Callable[..., Detector]) -> None:
        if name in self._factories:
            raise ValueError(f"detector {name!r} is already registered")
        self._factories[name] = factory

    def create(self, name: str, **params: Any) -> Detector:
        try:
            factory = self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise KeyError(f"no detector {name!r} (registered: {known})") from None
        return factory(**params)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._factories))


def default_registry() -> DetectorRegistry:
    """A registry holding every detector that ships with autonoc."""
    from models.baselines import IsolationForestDetector, PCADetector
    from models.forecast import ForecastDetector
    from models.zscore import RobustZScore

    registry = DetectorRegistry()
    registry.register(RobustZScore.name, RobustZScore)
    registry.register(PCADetector.name, PCADetector)
    registry.register(IsolationForestDetector.name, IsolationForestDetector)
    registry.register(ForecastDetector.name, ForecastDetector)
    return registry
