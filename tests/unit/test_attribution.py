"""Attribution ranks components by evidence of a cause, not by how loud they are."""

from __future__ import annotations

import numpy as np
import pytest

from autonoc.core.types import Sample
from models.attribution import Layer, cause_order, evidence_layer, rank_components
from models.base import DetectorRegistry
from models.detect_service import DetectionService, ListSink, MemoryFeed
from models.features import grid_frames, spec_for
from models.registry import LoadedModels, fit_device
from models.zscore import RobustZScore

T0 = 1_700_000_000.0
SPEC = spec_for("router")


def _row(values: dict[str, float]) -> tuple[list[str], np.ndarray]:
    columns = sorted(values)
    return columns, np.array(
        [SPEC.transform(c.partition("@")[0], values[c]) for c in columns], dtype=np.float64
    )


NORMAL = {
    "if_in_bps@eth1": 2.4e10,
    "if_out_bps@eth1": 2.2e10,
    "if_oper_up@eth1": 1.0,
    "if_in_bps@eth2": 6.4e4,  # the idle backup port
    "if_out_bps@eth2": 6.4e4,
    "if_oper_up@eth2": 1.0,
    "bgp_peer_up@10.0.0.10": 1.0,
    "bgp_prefixes_accepted@10.0.0.10": 656.0,
}


def _contributions(columns: list[str], now: np.ndarray, normal: np.ndarray) -> np.ndarray:
    # What a robust z-score with the features' unit floors would give.
    scale = np.array([0.1 if "oper_up" in c or "peer_up" in c else 0.05 for c in columns])
    return np.asarray(np.abs(now - normal) / scale, dtype=np.float64)


def test_the_port_that_went_down_outranks_the_backup_port_its_traffic_moved_to() -> None:
    columns, normal = _row(NORMAL)
    # Mid-interval: eth1's rates fell only by half, the backup port's jumped 5 decades,
    # the BGP session over eth1 lost every prefix.
    _, now = _row(
        NORMAL
        | {
            "if_in_bps@eth1": 1.2e10,
            "if_out_bps@eth1": 1.1e10,
            "if_oper_up@eth1": 0.0,
            "if_in_bps@eth2": 1.2e10,
            "if_out_bps@eth2": 1.1e10,
            "bgp_peer_up@10.0.0.10": 0.0,
            "bgp_prefixes_accepted@10.0.0.10": 0.0,
        }
    )
    c = _contributions(columns, now, normal)
    totals = {k: sum(c[i] for i, col in enumerate(columns) if col.endswith(k)) for k in ("eth1",)}
    assert c[columns.index("if_in_bps@eth2")] > totals["eth1"]  # by size, the backup port wins
    ranked = rank_components(columns, c, now, normal, significance=6.0)
    assert [r.component for r in ranked] == ["eth1", "10.0.0.10", "eth2"]
    assert [r.layer for r in ranked] == [Layer.PORT, Layer.CONTROL, Layer.TRAFFIC_GAINED]


def test_traffic_that_drains_away_outranks_traffic_that_arrives() -> None:
    # An MTU mismatch: eth1 stays up but its traffic leaves for eth2; nothing else moves.
    columns, normal = _row(NORMAL)
    _, now = _row(NORMAL | {"if_in_bps@eth1": 4e9, "if_in_bps@eth2": 2e10})
    c = _contributions(columns, now, normal)
    ranked = rank_components(columns, c, now, normal, significance=6.0)
    assert ranked[0].component == "eth1" and ranked[0].layer is Layer.TRAFFIC_LOST


def test_a_surge_alone_still_names_its_port_and_insignificant_evidence_ranks_last() -> None:
    columns, normal = _row(NORMAL)
    _, now = _row(NORMAL | {"if_in_bps@eth2": 2e10, "if_in_bps@eth1": 2.6e10})
    c = _contributions(columns, now, normal)
    ranked = rank_components(columns, c, now, normal, significance=6.0)
    assert ranked[0].component == "eth2" and ranked[0].layer is Layer.TRAFFIC_GAINED
    assert ranked[1].component == "eth1" and ranked[1].layer is Layer.NONE  # 0.03 decades


def test_layers_put_the_lower_layer_first() -> None:
    assert evidence_layer("amp_pump_current_ma", 0.0, 300.0) is Layer.OPTICAL_SOURCE
    assert evidence_layer("roadm_input_power_dbm", -40.0, -5.0) is Layer.OPTICAL_RECEIVED
    assert evidence_layer("if_in_errors_ps", 50.0, 0.0) is Layer.PORT
    assert evidence_layer("cpu_util_pct", 95.0, 30.0) is Layer.PORT
    assert evidence_layer("bgp_prefixes_accepted", 0.0, 2.8) is Layer.CONTROL
    assert evidence_layer("if_out_bps", 6.0, 10.0) is Layer.TRAFFIC_LOST
    assert evidence_layer("if_out_bps", 10.0, 6.0) is Layer.TRAFFIC_GAINED
    # A failed amplifier's own report comes before the dark input it causes downstream,
    # however much louder that one is.
    layers = [Layer.OPTICAL_RECEIVED, Layer.OPTICAL_SOURCE, Layer.CONTROL]
    assert cause_order(layers, [115.0, 20.0, 300.0]) == [1, 0, 2]
    assert cause_order([Layer.PORT, Layer.PORT], [2.0, 3.0]) == [1, 0]


def _poll(t: float, values: dict[str, float]) -> list[Sample]:
    out = []
    for key, value in values.items():
        metric, _, instance = key.partition("@")
        out.append(Sample("pe1", metric, instance, T0 + t, value))
    return out


def test_the_service_names_the_dead_primary_not_the_busy_backup() -> None:
    rng = np.random.default_rng(5)

    def healthy() -> dict[str, float]:
        return {k: v * (1 + 0.005 * rng.normal()) if "bps" in k else v for k, v in NORMAL.items()}

    rows = [healthy() for _ in range(40)]
    series = {k: ([T0 + i for i in range(40)], [r[k] for r in rows]) for k in NORMAL}
    detectors = DetectorRegistry()
    detectors.register(RobustZScore.name, RobustZScore)
    model = fit_device(grid_frames(series, device="pe1", step=1.0), "robust_z", detectors)
    feed, sink = MemoryFeed(), ListSink()
    service = DetectionService(feed, sink, LoadedModels("v1", {}, {"pe1": model}))
    for t in range(40, 43):
        feed.push(_poll(t, healthy()))
        service.run_once()
    assert sink.published == []
    feed.push(
        _poll(
            43,
            NORMAL
            | {
                "if_in_bps@eth1": 1.2e10,
                "if_out_bps@eth1": 1.1e10,
                "if_oper_up@eth1": 0.0,
                "if_in_bps@eth2": 1.2e10,
                "if_out_bps@eth2": 1.1e10,
            },
        )
    )
    [anomaly] = service.run_once().anomalies
    assert anomaly.component == "eth1"
    assert {a.instance for a in anomaly.attributions[:2]} == {"eth1"}
    # The loudest metric is still reported, after the component's own.
    assert any(a.instance == "eth2" for a in anomaly.attributions)
    assert anomaly.score == pytest.approx(max(a.score for a in anomaly.attributions))
