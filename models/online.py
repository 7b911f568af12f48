"""Online scoring: per-device frames of canonical samples in, anomalies out.

Each poll of a device gives a *frame*: one value per ``metric@instance``.
The first ``warmup`` frames train a batch detector for that device; later
frames are scored causally (a frame's score uses nothing after it). Columns
are fixed at fit time: a new interface is ignored until the device is
re-trained, a vanished one reads as missing (NaN), never as zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from autonoc.core.types import Anomaly, Attribution, Sample
from models.base import Detector
from models.zscore import RobustZScore

__all__ = ["DEFAULT_METRICS", "OnlineDetector"]

#: Rates that carry traffic health; status flags are categorical and go to diagnosis.
DEFAULT_METRICS = frozenset({"if_in_bps", "if_out_bps", "if_in_errors_ps", "if_out_errors_ps"})


@dataclass
class _DeviceModel:
    frames: list[dict[str, float]] = field(default_factory=list)
    columns: tuple[str, ...] = ()
    detector: Detector | None = None


class OnlineDetector:
    """Trains one detector per device on its first frames, then scores each new frame.

    Args:
        warmup: frames used for training before scoring starts.
        metrics: canonical metrics fed to the detector.
        factory: builds a fresh batch detector per device.
        max_attributions: how many metrics an anomaly names, at most.
    """

    def __init__(
        self,
        warmup: int = 8,
        metrics: Iterable[str] = DEFAULT_METRICS,
        factory: Callable[[], Detector] = RobustZScore,
        max_attributions: int = 5,
    ) -> None:
        if warmup < 2:
            raise ValueError("warmup must be at least 2 frames")
        self.warmup = warmup
        self.metrics = frozenset(metrics)
        self.factory = factory
        self.max_attributions = max_attributions
        self._devices: dict[str, _DeviceModel] = {}

    def ready(self, device: str) -> bool:
        model = self._devices.get(device)
        return model is not None and model.detector is not None

    def observe(self, device: str, samples: Iterable[Sample]) -> Anomaly | None:
        """Feed one poll's samples for ``device``; return an anomaly or None.

        Returns None during warm-up, for an empty frame, and for normal frames.
        """
        kept = [s for s in samples if s.metric in self.metrics]
        if not kept:
            return None
        frame = {s.key: s.value for s in kept}
        ts = max(s.ts for s in kept)
        model = self._devices.setdefault(device, _DeviceModel())
        if model.detector is None:
            model.frames.append(frame)
            if len(model.frames) >= self.warmup:
                self._fit(model)
            return None
        return self._score(device, model, frame, ts)

    def _fit(self, model: _DeviceModel) -> None:
        columns = sorted({key for frame in model.frames for key in frame})
        X = np.array(
            [[frame.get(c, np.nan) for c in columns] for frame in model.frames], dtype=np.float64
        )
        model.columns = tuple(columns)
        model.detector = self.factory().fit(X)
        model.frames.clear()

    def _score(
        self, device: str, model: _DeviceModel, frame: dict[str, float], ts: float
    ) -> Anomaly | None:
        assert model.detector is not None
        x = np.array([[frame.get(c, np.nan) for c in model.columns]], dtype=np.float64)
        score = float(model.detector.score(x)[0])
        threshold = model.detector.threshold_
        if not score > threshold:
            return None
        contributions = model.detector.contributions(x)[0]
        order = np.argsort(-contributions)[: self.max_attributions]
        median = getattr(model.detector, "median_", None)
        attributions = []
        for i in order:
            if contributions[i] <= 0:
                break
            metric, _, instance = model.columns[i].partition("@")
            expected = float(median[i]) if median is not None else float("nan")
            attributions.append(
                Attribution(
                    metric=metric,
                    instance=instance,
                    score=float(contributions[i]),
                    value=float(x[0, i]),
                    expected=expected,
                )
            )
        return Anomaly(
            device=device,
            ts=ts,
            score=score,
            threshold=threshold,
            detector=getattr(model.detector, "name", type(model.detector).__name__),
            attributions=tuple(attributions),
        )
