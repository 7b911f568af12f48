"""The array-based detection path means what the per-sample rules say.

The frame builder keeps columns in flat arrays and folds a cycle in with array
operations; the detection service scores a cycle's robust_z devices in one
vectorised pass and forecast devices that share a network in one batched
forward pass. These tests hold each against a plain, one-at-a-time reading.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from autonoc.core.types import Sample
from models.base import Detector
from models.baselines import PCADetector
from models.detect_service import DetectionService, FeedEntry, ListSink, MemoryFeed
from models.features import FrameBuilder, align, infer_kind, spec_for, split_key
from models.registry import DeviceModel, LoadedModels
from models.zscore import RobustZScore

T0 = 1_700_000_000.0


# -- the rules, one sample at a time -----------------------------------------------


@dataclass
class _RefColumn:
    ts: float
    value: float
    cadence: float = math.nan


@dataclass
class _RefDevice:
    kind: str | None
    columns: dict[str, _RefColumn] = field(default_factory=dict)
    newest: float = -math.inf


class ReferenceFrames:
    """Newest value per column, cadence from the shortest recent gap, stale after
    ``stale_factor`` cadences, features and transforms by kind: sample by sample."""

    def __init__(self, kinds: dict[str, str], stale_factor: float, default_cadence: float) -> None:
        self.kinds = kinds
        self.stale_factor = stale_factor
        self.default_cadence = default_cadence
        self.devices: dict[str, _RefDevice] = {}

    def add(self, samples: Sequence[Sample]) -> set[str]:
        touched = set()
        for s in samples:
            dev = self.devices.setdefault(s.device, _RefDevice(self.kinds.get(s.device)))
            col = dev.columns.get(s.key)
            if col is None:
                dev.columns[s.key] = _RefColumn(s.ts, s.value)
            elif s.ts > col.ts:
                gap = s.ts - col.ts
                col.cadence = gap if math.isnan(col.cadence) else min(gap, (col.cadence + gap) / 2)
                col.ts, col.value = s.ts, s.value
            else:
                continue
            dev.newest = max(dev.newest, s.ts)
            touched.add(s.device)
        return touched

    def frame(self, device: str) -> tuple[str, float, dict[str, float], dict[str, float]]:
        dev = self.devices[device]
        if dev.kind is None:
            dev.kind = infer_kind(split_key(k)[0] for k in dev.columns)
        spec = spec_for(dev.kind)
        values, raw = {}, {}
        for key, col in dev.columns.items():
            metric = split_key(key)[0]
            cadence = self.default_cadence if math.isnan(col.cadence) else col.cadence
            if spec.selects(metric) and dev.newest - col.ts <= self.stale_factor * cadence + 1e-9:
                values[key] = spec.transform(metric, col.value)
                raw[key] = col.value
        return spec.kind, dev.newest, values, raw

    def forget(self, device: str) -> None:
        self.devices.pop(device, None)


METRICS = (
    "if_in_bps",
    "if_out_bps",
    "if_in_errors_ps",
    "if_oper_up",
    "cpu_util_pct",
    "sys_uptime_s",
    "opt_osnr_db",
    "opt_pre_fec_ber",
    "amp_target_gain_db",
)
INSTANCES = ("", "eth1", "eth2", "line1")
KEYS = sorted({f"{m}@{i}" if i else m for m in METRICS for i in INSTANCES})


def _random_batch(rnd: random.Random, devices: list[str], t: float) -> list[Sample]:
    batch = [
        Sample(
            rnd.choice(devices),
            rnd.choice(METRICS),
            rnd.choice(INSTANCES),
            t + rnd.choice([0.0, 0.0, -1.0, -5.0, 1.0, 3.0, 10.0]),  # late and early samples
            rnd.choice([0.0, 1e-5, 5.0, rnd.uniform(-10.0, 1e9)]),
        )
        for _ in range(rnd.randint(0, 40))
    ]
    if batch and rnd.random() < 0.3:
        batch += batch[: rnd.randint(1, len(batch))]  # entries delivered twice
    return batch


@pytest.mark.parametrize("seed", range(40))
def test_frame_builder_agrees_with_the_rules_read_sample_by_sample(seed: int) -> None:
    rnd = random.Random(seed)
    kinds = {"d0": "transponder", "d1": "router"}
    cadence = rnd.choice([5.0, 60.0])
    builder = FrameBuilder(kinds, default_cadence=cadence)
    reference = ReferenceFrames({"d0": "optical", "d1": "router"}, 1.5, cadence)
    devices = [f"d{i}" for i in range(5)]
    t = T0
    for _ in range(40):
        batch = _random_batch(rnd, devices, t)
        assert builder.add(iter(batch)) == reference.add(batch)
        t += rnd.choice([1.0, 2.0, 5.0, 30.0, 100.0])
        if rnd.random() < 0.05:
            gone = rnd.choice(devices)
            builder.forget(gone)
            reference.forget(gone)
        known = sorted(reference.devices)
        asked = [tuple(rnd.sample(KEYS, rnd.randint(0, 12))) for _ in known]
        rows = builder.rows(known, asked)
        for i, device in enumerate(known):
            kind, newest, values, raw = reference.frame(device)
            frame = builder.frame(device)
            assert frame is not None
            assert (frame.kind, frame.ts, frame.raw) == (kind, newest, raw)
            assert list(frame.values) == list(values)
            assert frame.values == pytest.approx(values, rel=1e-12)
            row, new = align(values, asked[i])
            np.testing.assert_allclose(rows.row(i), row, rtol=1e-12)
            np.testing.assert_array_equal(rows.raw_row(i), [raw.get(c, math.nan) for c in asked[i]])
            assert (rows.kinds[i], rows.ts[i], rows.fresh[i]) == (kind, newest, len(values))
            assert rows.extra[i] == len(new)
            assert builder.extra_columns(device, asked[i]) == new
        assert builder.frame("nobody") is None


def test_rows_of_a_device_never_seen_raise() -> None:
    builder = FrameBuilder()
    builder.add([Sample("r1", "cpu_util_pct", "", T0, 1.0)])
    with pytest.raises(KeyError, match="r9"):
        builder.rows(["r1", "r9"], [("cpu_util_pct",), ("cpu_util_pct",)])


# -- the service's batched scoring ---------------------------------------------------


COLUMNS = ("cpu_util_pct", "if_in_bps@eth1", "if_in_errors_ps@eth1", "if_out_bps@eth1")
# Columns taken as they are (no log transform), so a history in their units is
# what the detector sees.
LINEAR = ("cpu_util_pct", "if_in_errors_ps@eth1", "if_out_errors_ps@eth1", "mem_used_pct")


def _always_alarming(detector: Detector, X: np.ndarray) -> Detector:
    detector.fit(X)
    detector.threshold_ = -1.0  # every scored device publishes: its score becomes visible
    return detector


def _poll(device: str, t: float, values: dict[str, float]) -> list[Sample]:
    return [Sample(device, *split_key(k), T0 + t, v) for k, v in values.items()]


def test_batched_robust_z_scores_equal_each_devices_own_detector() -> None:
    rng = np.random.default_rng(5)
    detectors: dict[str, Detector] = {}
    for i in range(12):
        X = rng.normal([40.0, 9.0, 0.0, 9.0], [3.0, 0.2, 0.1, 0.2], size=(50, 4))
        # A few per-device PCA models among them: scored apart, one by one.
        detector: Detector = PCADetector() if i % 4 == 3 else RobustZScore()
        detectors[f"r{i}"] = _always_alarming(detector, X)
    models = LoadedModels(
        "v1", {}, {d: DeviceModel(d, "router", COLUMNS, det, {}) for d, det in detectors.items()}
    )
    feed, sink = MemoryFeed(), ListSink()
    service = DetectionService(feed, sink, models, repeat_s=0.0)
    builder = FrameBuilder()
    for t in range(6):
        entries = []
        for i, device in enumerate(detectors):
            values = {
                "cpu_util_pct": 40.0 + rng.normal(),
                "if_in_bps@eth1": 10 ** (9 + 0.5 * rng.normal()),
                "if_in_errors_ps@eth1": float(rng.integers(0, 3)) * (i == 5) * 100,
                "if_out_bps@eth1": 1e9,
                "if_in_bps@eth9": 5e9,  # an interface the models never saw
            }
            if (i + t) % 3 == 0:
                del values["if_out_bps@eth1"]  # a gap
            entries.append(FeedEntry(f"{t}-{i}", _poll(device, 60.0 * t, values)))
        feed.entries = entries
        sink.published.clear()
        service.run_once()
        builder.add([s for e in entries for s in e.samples])
        assert sorted(a.device for a in sink.published) == sorted(detectors)
        for anomaly in sink.published:
            frame = builder.frame(anomaly.device)
            assert frame is not None
            row, new = align(frame.values, COLUMNS)
            detector = detectors[anomaly.device]
            assert anomaly.score == pytest.approx(float(detector.score(row[None, :])[0]), rel=1e-9)
            assert anomaly.detector == detector.name
            assert new == ["if_in_bps@eth9"]
    assert service.stats.new_columns == {d: {"if_in_bps@eth9"} for d in detectors}


def test_forecast_devices_sharing_a_network_are_one_pass_and_score_as_their_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("torch")
    forecast = pytest.importorskip("models.forecast")
    rng = np.random.default_rng(1)
    networks: list[Any] = []
    for seed in (0, 1):
        X = rng.normal(10.0, 1.0, size=(120, len(LINEAR)))
        detector = forecast.ForecastDetector(
            window=4, hidden=8, epochs=1, max_samples=2000, seed=seed
        )
        networks.append(_always_alarming(detector, X))
    devices: dict[str, Any] = {f"x{i}": networks[i % 2] for i in range(5)}
    models = LoadedModels(
        "v1", {}, {d: DeviceModel(d, "router", LINEAR, det, {}) for d, det in devices.items()}
    )
    passes = []
    step = forecast.FleetScorer.step

    def counting(self: Any, newest: Any) -> Any:
        passes.append(len(newest))
        return step(self, newest)

    monkeypatch.setattr(forecast.FleetScorer, "step", counting)
    for detector in networks:

        def one_by_one(X: object) -> object:
            raise AssertionError("forecast devices must be scored in a batch")

        detector.score = detector.contributions = one_by_one
    feed, sink = MemoryFeed(), ListSink()
    service = DetectionService(feed, sink, models, repeat_s=0.0)
    history: dict[str, list[list[float]]] = {d: [] for d in devices}
    for t in range(10):
        entries = []
        for i, device in enumerate(devices):
            values = rng.normal(10.0, 1.0, size=len(LINEAR))
            if device == "x3" and t >= 7:
                values[1] += 40.0  # errors burst on one device
            history[device].append(values.tolist())
            entries.append(
                FeedEntry(f"{t}-{i}", _poll(device, t, dict(zip(LINEAR, values, strict=True))))
            )
        feed.entries = entries
        passes.clear()
        sink.published.clear()
        service.run_once()
        # One forward pass per network, whatever the devices: 3 and 2 devices of 3 series.
        assert sorted(passes) == [2 * len(LINEAR), 3 * len(LINEAR)]
        scores = {a.device: a.score for a in sink.published}
        assert set(scores) == set(devices)
        for device, detector in devices.items():
            X = np.array(history[device])
            own = forecast.ForecastDetector.contributions(detector, X)
            expected = forecast.top_k_mean(own, detector.k_)[-1]
            assert scores[device] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    burst = next(a for a in sink.published if a.device == "x3")
    assert burst.attributions[0].metric == "if_in_errors_ps"
    assert burst.score > max(a.score for a in sink.published if a.device != "x3")
