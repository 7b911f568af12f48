"""The model registry on disk: versioned, trained per device, one version promoted.

Layout under ``AUTONOC_HOME/models/``::

    v0001/
      meta.json          created_at, training span, detector and params, per device:
                         kind, columns, threshold, training-score quantiles, ...
      devices/d0001/     one detector saved by models.persist (meta.json + weights.npz)
      devices/d0002/
    v0002/
    PROMOTED             the promoted version's name, one line

A version is written in a temporary directory and renamed into place, and
``PROMOTED`` is replaced through a temporary file and ``os.replace``, so a
reader never sees half a version or half a pointer. Device directories are
numbered (device names are data, not paths); ``meta.json`` maps them.
:func:`train_from_history` builds a version from the SQL history.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models import persist
from models.base import Detector, DetectorRegistry, default_registry
from models.features import (
    DeviceFrames,
    flat_columns,
    grid_frames,
    infer_kind,
    min_scales,
    spec_for,
    split_key,
)
from models.zscore import RobustZScore

__all__ = [
    "DEFAULT_DETECTOR",
    "FALLBACK_DETECTOR",
    "DeviceModel",
    "HistoryReader",
    "LoadedModels",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
    "train_from_history",
]

#: The detector trained by default, and the one used where it is not registered.
DEFAULT_DETECTOR = "forecast"
FALLBACK_DETECTOR = "robust_z"
FORMAT = "autonoc-model-registry"
FORMAT_VERSION = 1
_POINTER = "PROMOTED"
_VERSION_RE = re.compile(r"^v(\d{4,})$")


class RegistryError(ValueError):
    """A registry operation that cannot be done; the message says why and what to do."""


class HistoryReader(Protocol):
    """What training reads from the history (:class:`collectors.store.SampleStore` is one)."""

    def devices(self) -> list[str]: ...

    def latest(self, device: str) -> dict[tuple[str, str], tuple[float, float]]: ...

    def series(
        self,
        device: str,
        metric: str,
        instance: str = "",
        start: float | None = None,
        end: float | None = None,
    ) -> list[tuple[float, float]]: ...


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """One device's trained detector and the columns it was trained on, in order."""

    device: str
    kind: str
    columns: tuple[str, ...]
    detector: Detector
    meta: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version in the registry, as :meth:`ModelRegistry.list` shows it."""

    version: str
    path: Path
    meta: Mapping[str, Any]
    promoted: bool

    def summary(self) -> dict[str, Any]:
        """JSON-ready: version, promoted, created, detector, devices, span, thresholds."""
        devices = self.meta.get("devices", {})
        return {
            "version": self.version,
            "promoted": self.promoted,
            "created_at": self.meta.get("created_at"),
            "detector": self.meta.get("detector"),
            "devices": len(devices),
            "skipped": len(self.meta.get("skipped", {})),
            "train_start": self.meta.get("train_start"),
            "train_end": self.meta.get("train_end"),
            "path": str(self.path),
        }


@dataclass(frozen=True, slots=True)
class LoadedModels:
    """A version's detectors, by device."""

    version: str
    meta: Mapping[str, Any]
    devices: Mapping[str, DeviceModel]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


class ModelRegistry:
    """Versioned detectors under ``root`` (normally ``AUTONOC_HOME/models``).

    Args:
        root: the registry's directory (created on first write).
        detectors: builds detectors when loading; default: :func:`default_registry`.
    """

    def __init__(self, root: str | Path, detectors: DetectorRegistry | None = None) -> None:
        self.root = Path(root)
        self._detectors = detectors

    @classmethod
    def for_home(cls, home: str | Path, detectors: DetectorRegistry | None = None) -> ModelRegistry:
        return cls(Path(home) / "models", detectors)

    @property
    def detectors(self) -> DetectorRegistry:
        if self._detectors is None:
            self._detectors = default_registry()
        return self._detectors

    # -- versions ------------------------------------------------------------------

    def _names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        names = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
        return sorted(names, key=lambda n: int(n[1:]))

    def promoted(self) -> str | None:
        """The promoted version's name, or None."""
        try:
            name = (self.root / _POINTER).read_text().strip()
        except FileNotFoundError:
            return None
        return name if _VERSION_RE.match(name) else None

    def meta(self, version: str) -> dict[str, Any]:
        """A version's ``meta.json``.

        Raises:
            RegistryError: no such version, or its metadata is unreadable.
        """
        path = self.root / version / "meta.json"
        if not _VERSION_RE.match(version) or not path.is_file():
            known = ", ".join(self._names()) or "none yet"
            raise RegistryError(f"no model version {version!r} in {self.root} (versions: {known})")
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{path}: not valid JSON ({exc})") from exc
        data["version"] = version
        return data

    def list(self) -> list[ModelVersion]:
        """Every version, oldest first."""
        promoted = self.promoted()
        return [
            ModelVersion(name, self.root / name, self.meta(name), name == promoted)
            for name in self._names()
        ]

    def write(self, models: Iterable[DeviceModel], meta: Mapping[str, Any]) -> ModelVersion:
        """Save ``models`` as the next version; returns it (not promoted).

        The version appears whole or not at all: it is built in a temporary
        directory and renamed to the first free ``vNNNN``.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            devices: dict[str, Any] = {}
            for i, model in enumerate(sorted(models, key=lambda m: m.device), start=1):
                sub = f"d{i:04d}"
                persist.save(model.detector, tmp / "devices" / sub)
                devices[model.device] = {
                    **model.meta,
                    "dir": sub,
                    "kind": model.kind,
                    "columns": list(model.columns),
                    "threshold": _finite(model.detector.threshold_),
                }
            full = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "created_at": _now_iso(),
                **meta,
                "devices": devices,
            }
            _write_json(tmp / "meta.json", full)
            while True:
                names = self._names()
                number = int(names[-1][1:]) + 1 if names else 1
                final = self.root / f"v{number:04d}"
                try:
                    # rename onto an existing non-empty directory fails: another
                    # writer took this number, try the next.
                    os.rename(tmp, final)
                    break
                except OSError:
                    if not final.exists():
                        raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        full["version"] = final.name
        return ModelVersion(final.name, final, full, False)

    def promote(self, version: str) -> None:
        """Make ``version`` the one the detection service loads (atomic).

        Raises:
            RegistryError: no such version.
        """
        self.meta(version)  # exists and is readable
        fd, tmp = tempfile.mkstemp(prefix=".promote-", dir=self.root)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(version + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.root / _POINTER)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, version: str) -> LoadedModels:
        """Every device's detector of ``version``.

        Raises:
            RegistryError: no such version, or a detector in it cannot be loaded
                (e.g. trained with a detector this installation does not register).
        """
        meta = self.meta(version)
        devices: dict[str, DeviceModel] = {}
        for device, entry in meta.get("devices", {}).items():
            path = self.root / version / "devices" / entry["dir"]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    detector = persist.load(path, self.detectors)
            except (KeyError, ValueError, FileNotFoundError) as exc:
                raise RegistryError(
                    f"{path}: cannot load the model of {device!r}: {exc}. "
                    "Train a new version with `autonoc models train --from-history`"
                ) from exc
            devices[device] = DeviceModel(
                device, entry["kind"], tuple(entry["columns"]), detector, entry
            )
        return LoadedModels(version, meta, devices)

    def load_promoted(self) -> LoadedModels | None:
        """The promoted version's detectors, or None when nothing is promoted."""
        version = self.promoted()
        return None if version is None else self.load(version)


# -- training ----------------------------------------------------------------------

Progress = Callable[[int, int, str], None]


def _choose_detector(registry: DetectorRegistry, name: str) -> str:
    names = set(registry)
    if name in names:
        return name
    if name == DEFAULT_DETECTOR and FALLBACK_DETECTOR in names:
        return FALLBACK_DETECTOR
    known = ", ".join(sorted(names)) or "none"
    raise RegistryError(f"no detector {name!r} is registered (registered: {known})")


def fit_device(
    frames: DeviceFrames,
    detector_name: str,
    registry: DetectorRegistry,
    params: Mapping[str, Any] | None = None,
) -> DeviceModel:
    """Fit one device's detector on its frames; the model's metadata carries training metrics.

    Raises:
        ValueError: too few rows or columns to train on.
    """
    if frames.values.shape[1] == 0:
        raise ValueError("no feature columns")
    detector = registry.create(detector_name, **dict(params or {}))
    rows = frames.values.shape[0]
    need = int(getattr(detector, "min_train_rows", 0))
    fallback = None
    if rows < need and detector_name != FALLBACK_DETECTOR and FALLBACK_DETECTOR in registry:
        # Too short a history for this detector's calibration (its score scales and
        # threshold are tail quantiles): the baseline, whose unit floors hold on short
        # histories, serves until the next training.
        fallback = (
            f"{detector_name} needs {need} training rows, had {rows}: "
            f"{FALLBACK_DETECTOR} until trained on a longer history"
        )
        detector = registry.create(FALLBACK_DETECTOR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if isinstance(detector, RobustZScore):
            detector.fit(frames.values, min_scale=min_scales(frames.columns))
        else:
            detector.fit(frames.values)
        scores = detector.score(frames.values)
    finite = scores[np.isfinite(scores)]
    quantiles = (
        {f"q{int(q * 100)}": float(np.quantile(finite, q)) for q in (0.5, 0.9, 0.99)}
        if finite.size
        else {}
    )
    meta = {
        "train_rows": int(frames.values.shape[0]),
        "train_start": float(frames.ts[0]),
        "train_end": float(frames.ts[-1]),
        "score_quantiles": {**quantiles, "max": float(finite.max()) if finite.size else None},
        "train_alarm_rate": float(np.mean(finite > detector.threshold_)) if finite.size else None,
        "flat_columns": flat_columns(frames),
        "detector": detector.name,
        **({"fallback": fallback} if fallback else {}),
    }
    return DeviceModel(frames.device, frames.kind, frames.columns, detector, meta)


def history_frames(
    reader: HistoryReader,
    device: str,
    start: float,
    end: float,
    *,
    kind: str | None = None,
    step: float | None = None,
) -> DeviceFrames:
    """One device's training frames from the history, over ``[start, end]``."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    latest = reader.latest(device)
    spec = spec_for(kind or infer_kind(metric for metric, _ in latest))
    for metric, instance in sorted(latest):
        if not spec.selects(metric):
            continue
        points = reader.series(device, metric, instance, start, end)
        key = f"{metric}@{instance}" if instance else metric
        series[key] = ([p[0] for p in points], [p[1] for p in points])
    # The grid spans the device's own samples: a device added yesterday is not
    # judged by how little of a week it covers.
    return grid_frames(series, device=device, kind=spec.kind, step=step)


def train_from_history(
    reader: HistoryReader,
    registry: ModelRegistry,
    *,
    devices: Iterable[str] | None = None,
    days: float = 7.0,
    detector: str = DEFAULT_DETECTOR,
    params: Mapping[str, Any] | None = None,
    kinds: Mapping[str, str] | None = None,
    step: float | None = None,
    min_rows: int = 8,
    min_coverage: float = 0.5,
    end: float | None = None,
    progress: Progress | None = None,
) -> ModelVersion:
    """Train one detector per device on the last ``days`` of history; write a new version.

    Args:
        reader: the history (``SampleStore``).
        registry: where the version goes (not promoted).
        devices: which devices (default: every device in the history).
        detector: a registered detector name; ``forecast`` falls back to
            ``robust_z`` while no ``forecast`` is registered.
        kinds: device to inventory role or feature kind, where known.
        step: grid spacing in seconds (default: each device's fastest cadence).
        min_rows: fewer grid rows than this and the device is skipped.
        min_coverage: columns filled in fewer rows than this fraction are left out
            (an interface that appeared late is learnt at the next training).
        end: training span's end, epoch seconds (default: now).
        progress: called with (done, total, device) after each device.

    Raises:
        RegistryError: the detector is not registered, or no device had enough history.
    """
    name = _choose_detector(registry.detectors, detector)
    end = time.time() if end is None else end
    start = end - days * 86400.0
    chosen = sorted(devices) if devices is not None else reader.devices()
    models: list[DeviceModel] = []
    skipped: dict[str, str] = {}
    for i, device in enumerate(chosen, start=1):
        kind = (kinds or {}).get(device)
        frames = history_frames(reader, device, start, end, kind=kind, step=step)
        frames = frames.keep(min_coverage)
        if frames.values.shape[0] < min_rows or not frames.columns:
            skipped[device] = (
                f"{frames.values.shape[0]} rows × {len(frames.columns)} columns of history; "
                f"needs {min_rows} rows"
            )
        else:
            try:
                models.append(fit_device(frames, name, registry.detectors, params))
            except ValueError as exc:
                skipped[device] = str(exc)
        if progress is not None:
            progress(i, len(chosen), device)
    if not models:
        raise RegistryError(
            f"no device has {min_rows} polls of history in the last {days:g} days "
            f"({len(chosen)} tried); collect longer (`autonoc collect run`) and train again"
        )
    meta = {
        "detector": name,
        "detector_requested": detector,
        "params": dict(params or {}),
        "days": days,
        "train_start": min(float(m.meta["train_start"]) for m in models),
        "train_end": max(float(m.meta["train_end"]) for m in models),
        "skipped": skipped,
        "metric_kinds": sorted({split_key(c)[0] for m in models for c in m.columns}),
    }
    return registry.write(models, meta)
