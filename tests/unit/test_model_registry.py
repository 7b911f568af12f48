"""The model registry: versions, metadata, atomic promotion, loading, training from history."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.base import DetectorRegistry
from models.features import grid_frames
from models.registry import (
    ModelRegistry,
    RegistryError,
    fit_device,
    train_from_history,
)
from models.zscore import RobustZScore

T0 = 1_700_000_000.0


def _registry(tmp_path: Path) -> ModelRegistry:
    detectors = DetectorRegistry()
    detectors.register(RobustZScore.name, RobustZScore)
    return ModelRegistry(tmp_path / "models", detectors)


def _model(device: str, level: float = 10.0) -> Any:
    rng = np.random.default_rng(0)
    ts = [T0 + i for i in range(30)]
    frames = grid_frames(
        {
            "cpu_util_pct": (ts, list(level + rng.normal(0, 1, 30))),
            "if_in_errors_ps@eth1": (ts, [0.0] * 30),
        },
        device=device,
        step=1.0,
    )
    detectors = DetectorRegistry()
    detectors.register(RobustZScore.name, RobustZScore)
    return fit_device(frames, "robust_z", detectors)


def test_versions_are_numbered_listed_and_carry_metadata(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    assert registry.list() == [] and registry.promoted() is None
    first = registry.write([_model("r1"), _model("r2")], {"detector": "robust_z"})
    second = registry.write([_model("r1")], {"detector": "robust_z"})
    assert (first.version, second.version) == ("v0001", "v0002")
    assert [v.version for v in registry.list()] == ["v0001", "v0002"]
    meta = registry.meta("v0001")
    assert meta["detector"] == "robust_z" and meta["created_at"]
    r1 = meta["devices"]["r1"]
    assert r1["columns"] == ["cpu_util_pct", "if_in_errors_ps@eth1"]
    assert r1["threshold"] >= 6.0
    assert r1["train_rows"] == 30 and r1["train_start"] == T0 and r1["train_end"] == T0 + 29
    assert set(r1["score_quantiles"]) >= {"q50", "q99", "max"}
    assert r1["flat_columns"] == ["if_in_errors_ps@eth1"]
    # No temporary directory is left behind.
    assert sorted(p.name for p in registry.root.iterdir()) == ["v0001", "v0002"]


def test_promote_is_atomic_and_load_promoted_round_trips_scores(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    model = _model("r1")
    registry.write([model], {"detector": "robust_z"})
    assert registry.load_promoted() is None
    registry.promote("v0001")
    assert (registry.root / "PROMOTED").read_text().strip() == "v0001"
    assert [v.promoted for v in registry.list()] == [True]
    loaded = registry.load_promoted()
    assert loaded is not None and loaded.version == "v0001"
    device = loaded.devices["r1"]
    X = np.array([[10.0, 0.0], [50.0, 3.0]])
    np.testing.assert_array_equal(device.detector.score(X), model.detector.score(X))
    assert device.columns == model.columns


def test_a_failed_promote_leaves_the_old_pointer_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(tmp_path)
    registry.write([_model("r1")], {})
    registry.write([_model("r1")], {})
    registry.promote("v0001")

    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        registry.promote("v0002")
    monkeypatch.undo()
    assert registry.promoted() == "v0001"
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".")]


def test_promote_and_load_refuse_unknown_versions(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    with pytest.raises(RegistryError, match="no model version 'v0009'"):
        registry.promote("v0009")
    with pytest.raises(RegistryError, match="no model version"):
        registry.load("../etc")


def test_a_version_that_fails_to_write_leaves_nothing(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    unfitted = dataclasses.replace(_model("r1"), detector=RobustZScore())
    with pytest.raises(ValueError, match="not fitted"):
        registry.write([_model("r0"), unfitted], {})
    assert registry.list() == []
    assert list(registry.root.iterdir()) == []


class FakeHistory:
    """An in-memory history reader (the SampleStore's read API)."""

    def __init__(self, data: dict[str, dict[tuple[str, str], list[tuple[float, float]]]]) -> None:
        self.data = data

    def devices(self) -> list[str]:
        return sorted(self.data)

    def latest(self, device: str) -> dict[tuple[str, str], tuple[float, float]]:
        return {k: v[-1] for k, v in self.data[device].items() if v}

    def series(
        self,
        device: str,
        metric: str,
        instance: str = "",
        start: float | None = None,
        end: float | None = None,
    ) -> list[tuple[float, float]]:
        points = self.data[device][(metric, instance)]
        return [
            p for p in points if (start is None or p[0] >= start) and (end is None or p[0] <= end)
        ]


def _history() -> FakeHistory:
    rng = np.random.default_rng(1)
    polls = [T0 + 10.0 * i for i in range(60)]
    router = {
        ("cpu_util_pct", ""): [(t, 20 + float(rng.normal())) for t in polls],
        ("if_in_bps", "eth1"): [(t, 1e9 * (1 + 0.01 * float(rng.normal()))) for t in polls],
        ("sys_uptime_s", ""): [(t, t - T0) for t in polls],
    }
    optical = {("opt_osnr_db", "line1"): [(t, 30 + 0.1 * float(rng.normal())) for t in polls]}
    short = {("cpu_util_pct", ""): [(t, 5.0) for t in polls[:3]]}
    return FakeHistory({"r1": router, "xp1": optical, "new": short})


def test_train_from_history_falls_back_to_robust_z_and_skips_short_histories(
    tmp_path: Path,
) -> None:
    registry = _registry(tmp_path)
    seen: list[tuple[int, int, str]] = []
    version = train_from_history(
        _history(),
        registry,
        days=1.0,
        end=T0 + 600,
        progress=lambda done, total, device: seen.append((done, total, device)),
    )
    assert seen == [(1, 3, "new"), (2, 3, "r1"), (3, 3, "xp1")]
    meta = registry.meta(version.version)
    assert meta["detector"] == "robust_z" and meta["detector_requested"] == "forecast"
    assert set(meta["devices"]) == {"r1", "xp1"}
    assert "new" in meta["skipped"]
    assert meta["devices"]["r1"]["columns"] == ["cpu_util_pct", "if_in_bps@eth1"]
    assert meta["devices"]["xp1"]["kind"] == "optical"
    assert meta["train_start"] >= T0 and meta["train_end"] <= T0 + 600
    assert registry.promoted() is None  # training never promotes by itself


def test_train_from_history_refuses_an_unknown_detector_and_empty_history(
    tmp_path: Path,
) -> None:
    registry = _registry(tmp_path)
    with pytest.raises(RegistryError, match="no detector 'lstm'"):
        train_from_history(_history(), registry, detector="lstm", end=T0 + 600)
    with pytest.raises(RegistryError, match="no device has 8 polls"):
        train_from_history(FakeHistory({}), registry, end=T0 + 600)
    assert registry.list() == []
