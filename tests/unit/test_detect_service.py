"""DetectionService with in-memory fakes of the bus: scoring, attribution, fallback, acks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from autonoc.core.errors import RedisUnavailable
from autonoc.core.types import Anomaly, Sample, Severity
from models.base import DetectorRegistry
from models.detect_service import (
    FALLBACK_LABEL,
    DetectionService,
    FeedEntry,
    anomaly_from_json,
    anomaly_to_json,
    decode_anomaly,
    encode_anomaly,
    severity_for,
)
from models.features import grid_frames
from models.registry import LoadedModels, fit_device
from models.zscore import RobustZScore

T0 = 1_700_000_000.0


class FakeFeed:
    """A consumer group in memory: entries stay pending until acknowledged."""

    def __init__(self) -> None:
        self.queue: list[FeedEntry] = []
        self.pending: dict[str, FeedEntry] = {}
        self.acked: list[str] = []
        self.redeliver = False
        self._ids = 0

    def push(self, samples: list[Sample]) -> None:
        self._ids += 1
        self.queue.append(FeedEntry(f"{self._ids}-0", samples))

    def read(self, count: int, block_ms: int | None) -> Sequence[FeedEntry]:
        if self.redeliver:
            self.redeliver = False
            return list(self.pending.values())[:count]
        out, self.queue = self.queue[:count], self.queue[count:]
        self.pending.update((e.id, e) for e in out)
        return out

    def ack(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.pending.pop(i, None)
        self.acked.extend(ids)

    def retry_pending(self) -> None:
        self.redeliver = True


class FakeSink:
    def __init__(self) -> None:
        self.published: list[Anomaly] = []
        self.fail = False

    def publish(self, anomalies: Sequence[Anomaly]) -> None:
        if self.fail:
            raise RedisUnavailable("Redis is away")
        self.published.extend(anomalies)


def traffic(rng: np.random.Generator) -> dict[str, float]:
    return {
        "if_in_bps@eth1": 2.4e10 * (1 + 0.005 * rng.normal()),
        "if_out_bps@eth1": 2.2e10 * (1 + 0.005 * rng.normal()),
        "if_in_bps@eth2": 6.4e4 * (1 + 0.005 * rng.normal()),
        "if_out_bps@eth2": 6.4e4 * (1 + 0.005 * rng.normal()),
        "if_in_errors_ps@eth1": 0.0,
        "if_oper_up@eth1": 1.0,
        "if_oper_up@eth2": 1.0,
        "cpu_util_pct": 30 + rng.normal(),
        "bgp_prefixes_accepted@10.0.0.10": 656.0,
        "sys_uptime_s": 0.0,
    }


def poll(device: str, t: float, values: dict[str, float]) -> list[Sample]:
    out = []
    for key, value in values.items():
        metric, _, instance = key.partition("@")
        out.append(Sample(device, metric, instance, T0 + t, value))
    return out


def trained(device: str, polls: int = 40) -> LoadedModels:
    rng = np.random.default_rng(7)
    rows = [traffic(rng) for _ in range(polls)]
    series = {k: ([T0 + i for i in range(polls)], [r[k] for r in rows]) for k in rows[0]}
    detectors = DetectorRegistry()
    detectors.register(RobustZScore.name, RobustZScore)
    model = fit_device(grid_frames(series, device=device, step=1.0), "robust_z", detectors)
    return LoadedModels("v0001", {}, {device: model})


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(3)


def test_a_dead_link_is_flagged_on_its_interface_not_on_the_one_taking_its_traffic(
    rng: np.random.Generator,
) -> None:
    feed, sink = FakeFeed(), FakeSink()
    service = DetectionService(feed, sink, trained("pe1"))
    for t in range(40, 45):
        feed.push(poll("pe1", t, traffic(rng)))
        service.run_once()
    assert sink.published == []  # healthy polls: no alarm
    down = traffic(rng) | {
        "if_in_bps@eth1": 0.0,
        "if_out_bps@eth1": 0.0,
        "if_oper_up@eth1": 0.0,
        "if_in_bps@eth2": 2.4e10,
        "if_out_bps@eth2": 2.2e10,
    }
    feed.push(poll("pe1", 45, down))
    result = service.run_once()
    [anomaly] = result.anomalies
    assert sink.published == [anomaly]
    assert anomaly.device == "pe1" and anomaly.component == "eth1"
    assert anomaly.detector == "robust_z"
    assert anomaly.attributions[0].instance == "eth1"
    assert anomaly.attributions[0].metric in {"if_in_bps", "if_out_bps"}
    top = anomaly.attributions[0]
    assert top.value == 0.0 and top.expected == pytest.approx(2.3e10, rel=0.1)
    assert anomaly.window_start == anomaly.ts == T0 + 45
    assert anomaly.severity is severity_for(anomaly.score, anomaly.threshold)
    assert not feed.pending  # everything read was acknowledged


def test_repeats_are_held_back_and_a_normal_frame_ends_the_run(rng: np.random.Generator) -> None:
    feed, sink = FakeFeed(), FakeSink()
    service = DetectionService(feed, sink, trained("pe1"), repeat_s=60.0)
    crc = {"if_in_errors_ps@eth1": 5000.0}
    for t in (40, 41, 42):
        feed.push(poll("pe1", t, traffic(rng) | crc))
        service.run_once()
    assert len(sink.published) == 1 and service.stats.suppressed == 2
    feed.push(poll("pe1", 43, traffic(rng)))
    service.run_once()
    feed.push(poll("pe1", 44, traffic(rng) | crc))
    service.run_once()
    assert [a.ts - T0 for a in sink.published] == [40, 44]
    assert [a.window_start for a in sink.published] == [T0 + 40, T0 + 44]
    assert sink.published[0].severity is Severity.CRITICAL


def test_a_device_without_a_model_falls_back_to_robust_z_and_says_so(
    rng: np.random.Generator,
) -> None:
    feed, sink = FakeFeed(), FakeSink()
    service = DetectionService(feed, sink, trained("pe1"), fallback_warmup=6)
    for t in range(6):
        feed.push(poll("pe9", t, traffic(rng)))
        assert service.run_once().warming == 1
    feed.push(poll("pe9", 6, traffic(rng)))
    assert service.run_once().scored == 1 and sink.published == []
    feed.push(poll("pe9", 7, traffic(rng) | {"if_in_errors_ps@eth1": 800.0}))
    service.run_once()
    [anomaly] = sink.published
    assert anomaly.detector == FALLBACK_LABEL
    assert anomaly.component == "eth1"
    assert service.stats.fallback_devices == {"pe9"}


def test_flat_lines_gaps_and_interface_churn_raise_no_alarm(rng: np.random.Generator) -> None:
    feed, sink = FakeFeed(), FakeSink()
    service = DetectionService(feed, sink, trained("pe1"))
    for t in range(40, 60):
        values = traffic(rng)
        # A flat error counter wobbling, an interface removed, a new one added.
        values["if_in_errors_ps@eth1"] = 0.3 if t % 2 else 0.0
        del values["if_in_bps@eth2"]
        values["if_in_bps@eth7"] = 5e9
        if t % 5 == 0:  # a lost rate (counter reset)
            del values["if_out_bps@eth1"]
        feed.push(poll("pe1", t, values))
        service.run_once()
    assert sink.published == []
    assert service.stats.new_columns == {"pe1": {"if_in_bps@eth7"}}


def test_nothing_is_acknowledged_when_publishing_fails_and_a_redelivery_is_harmless(
    rng: np.random.Generator,
) -> None:
    feed, sink = FakeFeed(), FakeSink()
    service = DetectionService(feed, sink, trained("pe1"))
    feed.push(poll("pe1", 40, traffic(rng) | {"if_in_errors_ps@eth1": 5000.0}))
    sink.fail = True
    with pytest.raises(RedisUnavailable):
        service.run_once()
    assert list(feed.pending) == ["1-0"] and feed.acked == []
    sink.fail = False
    service.run_once()  # the same entry again
    assert len(sink.published) == 1 and not feed.pending


def test_devices_of_a_cycle_are_scored_in_one_batch(rng: np.random.Generator) -> None:
    models = trained("pe1")
    fleet = LoadedModels("v0001", {}, {f"pe{i}": models.devices["pe1"] for i in range(1, 51)})
    feed, sink = FakeFeed(), FakeSink()
    service = DetectionService(feed, sink, fleet)
    crc = {"if_in_errors_ps@eth1": 900.0}
    samples = [
        s for i in range(1, 51) for s in poll(f"pe{i}", 40, traffic(rng) | (crc if i == 17 else {}))
    ]
    feed.push(samples)
    result = service.run_once()
    assert result.scored == 50
    assert [a.device for a in result.anomalies] == ["pe17"]


def test_anomaly_codec_is_json_and_round_trips() -> None:
    from autonoc.core.types import Attribution

    anomaly = Anomaly(
        device="pe1",
        ts=T0,
        score=12.0,
        threshold=6.0,
        detector=FALLBACK_LABEL,
        attributions=(Attribution("if_in_errors_ps", "eth1", 12.0, 900.0, float("nan")),),
        severity=Severity.MAJOR,
        component="eth1",
        window_start=T0 - 1,
    )
    fields = encode_anomaly(anomaly)
    assert fields["v"] == "1" and fields["kind"] == "anomaly"
    assert anomaly_to_json(anomaly)["attributions"][0]["expected"] is None
    back = decode_anomaly({k.encode(): v.encode() for k, v in fields.items()})
    assert back.device == "pe1" and back.component == "eth1" and back.severity is Severity.MAJOR
    assert back.attributions[0].value == 900.0
    assert anomaly_from_json(anomaly_to_json(back)) == back or np.isnan(
        back.attributions[0].expected
    )
    with pytest.raises(ValueError, match="not a version-1 anomaly"):
        decode_anomaly({"v": "1", "kind": "samples", "d": "[]"})
