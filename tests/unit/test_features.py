"""Features: samples to per-device frames on a grid and online; gaps, interfaces, flat lines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autonoc.core.types import Sample
from models.features import (
    FrameBuilder,
    align,
    flat_columns,
    grid_frames,
    infer_kind,
    spec_for,
)

T0 = 1_700_000_000.0


def series(ts: list[float], values: list[float]) -> tuple[list[float], list[float]]:
    return [T0 + t for t in ts], values


def test_grid_is_aligned_to_multiples_of_the_step_and_holds_the_newest_fresh_value() -> None:
    frames = grid_frames(
        {"cpu_util_pct": series([0.3, 10.2, 20.4, 30.1], [10.0, 11.0, 12.0, 13.0])},
        device="r1",
        step=10.0,
    )
    assert np.all(frames.ts % 10.0 == 0)
    assert frames.ts[0] == math.ceil((T0 + 0.3) / 10) * 10
    # 10.3 → the sample at 0.3 is the newest, 20.0 → the one at 10.2, ...
    assert frames.values[:, 0].tolist() == [10.0, 11.0, 12.0]
    assert frames.columns == ("cpu_util_pct",)


def test_missing_polls_are_nan_not_zero_and_one_late_poll_still_counts() -> None:
    ts = [float(t) for t in range(0, 30)]
    values = [5.0] * 30
    gap = [t for t in ts if not 10 < t < 20]  # polls 11..19 lost
    frames = grid_frames({"if_in_errors_ps@eth1": series(gap, [values[0]] * len(gap))}, step=1.0)
    col = dict(zip((frames.ts - T0).round().astype(int).tolist(), frames.values[:, 0], strict=True))
    assert col[10] == 5.0 and col[11] == 5.0  # one poll late: still fresh (1.5 cadences)
    assert all(math.isnan(col[t]) for t in range(12, 20))
    assert col[20] == 5.0
    assert not any(v == 0.0 for v in frames.values[:, 0])


def test_slow_and_fast_groups_share_frames_without_holes() -> None:
    fast = series([float(t) for t in range(0, 60, 10)], [1.0] * 6)  # optics every 10 s
    slow = series([0.0, 30.0], [2.0, 2.0])  # interfaces every 30 s
    frames = grid_frames(
        {"opt_osnr_db@line1": fast, "opt_rx_power_dbm@line1": slow}, step=10.0, end=T0 + 50
    )
    assert frames.kind == "optical"
    assert not np.isnan(frames.values).any()


def test_a_new_interface_is_nan_before_it_appears_and_dropped_when_too_sparse() -> None:
    old = series([float(t) for t in range(20)], [1.0] * 20)
    new = series([float(t) for t in range(17, 20)], [3.0] * 3)
    frames = grid_frames({"if_in_errors_ps@eth1": old, "if_in_errors_ps@eth9": new}, step=1.0)
    j = frames.columns.index("if_in_errors_ps@eth9")
    assert np.isnan(frames.values[:17, j]).all()
    kept = frames.keep(0.5)
    assert kept.columns == ("if_in_errors_ps@eth1",)


def test_align_reads_removed_columns_as_nan_and_reports_new_ones() -> None:
    row, new = align({"a@eth1": 1.0, "a@eth3": 3.0}, ("a@eth1", "a@eth2"))
    assert row[0] == 1.0 and math.isnan(row[1])
    assert new == ["a@eth3"]


def test_feature_selection_per_kind_and_transforms() -> None:
    router = spec_for("router")
    assert router.selects("if_in_bps") and router.selects("bgp_prefixes_accepted")
    assert not router.selects("sys_uptime_s")  # grows by design
    assert not router.selects("opt_osnr_db")
    optical = spec_for("amplifier")
    assert optical.kind == "optical"
    assert optical.selects("amp_gain_db") and optical.selects("opt_pre_fec_ber")
    assert not optical.selects("amp_target_gain_db")
    assert router.transform("if_in_bps", 1e10) == pytest.approx(10.0)
    # Below the idle level, chatter and its jitter are one constant.
    assert router.transform("if_in_bps", 64e3) == router.transform("if_in_bps", 70e3) == 6.0
    assert router.transform("bgp_prefixes_accepted", 1000) == pytest.approx(3.0)
    assert router.transform("if_in_errors_ps", 12.0) == 12.0  # zero-baseline: linear
    assert optical.transform("opt_pre_fec_ber", 1e-5) == pytest.approx(-5.0)
    assert optical.inverse("opt_pre_fec_ber", -5.0) == pytest.approx(1e-5)
    assert router.inverse("if_in_bps", router.transform("if_in_bps", 5e8)) == pytest.approx(5e8)
    assert infer_kind(["if_in_bps", "opt_osnr_db"]) == "optical"
    assert infer_kind(["if_in_bps"]) == "router"
    with pytest.raises(KeyError, match="no feature spec"):
        spec_for("toaster")


def test_flat_columns_are_listed_and_kept() -> None:
    frames = grid_frames(
        {
            "if_in_errors_ps@eth1": series([0.0, 1.0, 2.0], [0.0, 0.0, 0.0]),
            "cpu_util_pct": series([0.0, 1.0, 2.0], [10.0, 12.0, 11.0]),
        },
        step=1.0,
    )
    assert flat_columns(frames) == ["if_in_errors_ps@eth1"]
    assert "if_in_errors_ps@eth1" in frames.keep(0.5).columns


def _poll(device: str, ts: float, values: dict[str, float]) -> list[Sample]:
    out = []
    for key, value in values.items():
        metric, _, instance = key.partition("@")
        out.append(Sample(device, metric, instance, T0 + ts, value))
    return out


def test_frame_builder_drops_a_rate_missing_for_two_polls_and_ignores_repeats() -> None:
    builder = FrameBuilder()
    for t in range(5):
        builder.add(_poll("r1", t, {"cpu_util_pct": 10.0, "if_in_errors_ps@eth1": 0.0}))
    # A counter reset: the rate is missing on the next polls.
    builder.add(_poll("r1", 5, {"cpu_util_pct": 11.0}))
    frame = builder.frame("r1")
    assert frame is not None and "if_in_errors_ps@eth1" in frame.values  # one poll late
    builder.add(_poll("r1", 6, {"cpu_util_pct": 12.0}))
    frame = builder.frame("r1")
    assert frame is not None and "if_in_errors_ps@eth1" not in frame.values  # a gap now
    assert frame.values["cpu_util_pct"] == 12.0 and frame.ts == T0 + 6
    # An entry delivered twice changes nothing.
    assert builder.add(_poll("r1", 6, {"cpu_util_pct": 99.0})) == set()
    assert builder.frame("r1").values["cpu_util_pct"] == 12.0  # type: ignore[union-attr]


def test_frame_builder_keeps_slower_groups_and_selects_features_by_role() -> None:
    builder = FrameBuilder({"xp1": "transponder"})
    for t in range(0, 40, 10):
        builder.add(_poll("xp1", t, {"opt_osnr_db@line1": 30.0, "opt_pre_fec_ber@line1": 1e-5}))
    builder.add(_poll("xp1", 0, {"if_in_bps@line1": 1.0}))
    builder.add(_poll("xp1", 30, {"if_in_bps@line1": 1.0}))
    builder.add(_poll("xp1", 40, {"opt_osnr_db@line1": 29.0, "opt_pre_fec_ber@line1": 1e-4}))
    frame = builder.frame("xp1")
    assert frame is not None and frame.kind == "optical"
    assert set(frame.values) == {"opt_osnr_db@line1", "opt_pre_fec_ber@line1"}
    assert frame.values["opt_pre_fec_ber@line1"] == pytest.approx(-4.0)
    assert frame.raw["opt_pre_fec_ber@line1"] == pytest.approx(1e-4)
    assert builder.frame("unknown") is None


def test_min_scales_keep_a_quiet_training_window_from_alarming_on_jitter() -> None:
    from models.features import min_scales
    from models.zscore import RobustZScore

    columns = ["if_in_bps@eth1", "cpu_util_pct", "opt_osnr_db@line1", "mystery"]
    assert min_scales(columns).tolist() == [0.05, 2.0, 0.1, 0.0]
    # Ten polls of a busy link that barely moved: without floors, 2 % more traffic
    # (0.009 decades) is a fault; with them it is not, and a link going dark still is.
    rng = np.random.default_rng(3)
    train = np.column_stack([10.3 + rng.normal(0, 0.0005, 10), 20 + rng.normal(0, 0.1, 10)])
    bare = RobustZScore().fit(train)
    floored = RobustZScore().fit(train, min_scale=min_scales(columns[:2]))
    wiggle = np.array([[10.309, 20.2]])
    dark = np.array([[6.0, 20.0]])
    assert bare.predict(wiggle)[0]
    assert not floored.predict(wiggle)[0]
    assert floored.predict(dark)[0]
    with pytest.raises(ValueError, match="min_scale"):
        RobustZScore().fit(train, min_scale=np.zeros(3))
