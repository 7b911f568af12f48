from __future__ import annotations

import pytest

from collectors.rates import RateTracker


def _track(
    tracker: RateTracker,
    ts: float,
    value: int,
    *,
    bits: int = 64,
    uptime: float | None = None,
    discontinuity: int | None = None,
) -> float | None:
    return tracker.update(
        "r1",
        "eth1",
        "ifHCInOctets",
        ts,
        value,
        bits=bits,
        uptime=uptime,
        discontinuity=discontinuity,
    )


def test_first_sample_has_no_rate_then_rate_per_second() -> None:
    t = RateTracker()
    assert _track(t, 100.0, 1_000) is None
    assert _track(t, 110.0, 6_000) == pytest.approx(500.0)
    assert _track(t, 112.0, 6_000) == 0.0


def test_keys_are_independent() -> None:
    t = RateTracker()
    t.update("r1", "eth1", "m", 0.0, 0)
    t.update("r1", "eth2", "m", 0.0, 100)
    t.update("r2", "eth1", "m", 0.0, 1_000)
    assert t.update("r1", "eth1", "m", 1.0, 10) == 10.0
    assert t.update("r1", "eth2", "m", 1.0, 120) == 20.0
    assert t.update("r2", "eth1", "m", 1.0, 1_030) == 30.0
    assert len(t) == 3


def test_same_or_older_timestamp_is_ignored() -> None:
    t = RateTracker()
    _track(t, 10.0, 100)
    assert _track(t, 10.0, 200) is None
    assert _track(t, 9.0, 300) is None
    # The baseline is still the first reading.
    assert _track(t, 20.0, 1_100) == pytest.approx(100.0)


def test_counter32_wrap_is_unwrapped() -> None:
    t = RateTracker()
    _track(t, 0.0, 2**32 - 1_000, bits=32)
    assert _track(t, 10.0, 4_000, bits=32) == pytest.approx(500.0)


def test_counter32_implausible_wrap_is_a_discontinuity() -> None:
    t = RateTracker()
    _track(t, 0.0, 1_000_000, bits=32)
    # Going from 1e6 down to 10 would mean ~4.29e9 in 10 s: a reset, not a wrap.
    assert _track(t, 10.0, 10, bits=32) is None
    assert _track(t, 20.0, 1_010, bits=32) == pytest.approx(100.0)


def test_counter64_going_backwards_is_a_discontinuity_never_negative() -> None:
    t = RateTracker()
    _track(t, 0.0, 10_000_000)
    assert _track(t, 10.0, 5) is None
    assert _track(t, 20.0, 105) == pytest.approx(10.0)


def test_reboot_resets_baseline_even_when_counter_grew() -> None:
    t = RateTracker()
    _track(t, 0.0, 1_000, uptime=5_000.0)
    # Uptime went backwards: the device rebooted, whatever the counter says.
    assert _track(t, 10.0, 50_000, uptime=8.0) is None
    assert _track(t, 20.0, 51_000, uptime=18.0) == pytest.approx(100.0)


def test_discontinuity_time_change_resets_baseline() -> None:
    t = RateTracker()
    _track(t, 0.0, 1_000, discontinuity=0)
    assert _track(t, 10.0, 2_000, discontinuity=0) == pytest.approx(100.0)
    assert _track(t, 20.0, 3_000, discontinuity=12_345) is None
    assert _track(t, 30.0, 4_000, discontinuity=12_345) == pytest.approx(100.0)


def test_forget_drops_a_device() -> None:
    t = RateTracker()
    t.update("r1", "eth1", "m", 0.0, 0)
    t.update("r2", "eth1", "m", 0.0, 0)
    t.forget("r1")
    assert len(t) == 1
    assert t.update("r1", "eth1", "m", 1.0, 10) is None


# Time base: device uptime when it advanced, wall clock otherwise ------------


def test_uptime_delta_is_the_time_base_when_the_device_clock_runs_fast() -> None:
    # A lab at --speed 10: 1 s of wall clock is 10 s of device time.
    t = RateTracker()
    _track(t, 100.0, 0, uptime=1_000.0)
    assert _track(t, 101.0, 10_000, uptime=1_010.0) == pytest.approx(1_000.0)


def test_uptime_time_base_absorbs_collector_jitter() -> None:
    # The poll ran 3 s late by the wall clock, but the agent's clock says 30 s passed.
    t = RateTracker()
    _track(t, 0.0, 0, uptime=500.0)
    assert _track(t, 33.0, 3_000, uptime=530.0) == pytest.approx(100.0)


def test_wall_clock_is_the_time_base_without_uptime_or_when_it_stands_still() -> None:
    t = RateTracker()
    _track(t, 0.0, 0, uptime=500.0)
    assert _track(t, 10.0, 1_000, uptime=500.0) == pytest.approx(100.0)  # did not advance
    assert _track(t, 20.0, 2_000) == pytest.approx(100.0)  # unknown now


def test_sys_uptime_wrap_is_not_a_reboot() -> None:
    t = RateTracker()
    top = 2**32 / 100.0  # TimeTicks wrap after ~497 days
    _track(t, 0.0, 1_000, uptime=top - 4.0)
    assert _track(t, 10.0, 2_000, uptime=6.0) == pytest.approx(100.0)  # 10 s across the wrap


def test_uptime_back_to_near_zero_after_days_is_a_reboot() -> None:
    t = RateTracker()
    _track(t, 0.0, 1_000, uptime=86_400.0 * 30)
    # Across a wrap that would be ~467 days in 10 s of wall clock: a reboot.
    assert _track(t, 10.0, 2_000, uptime=9.0) is None
    assert _track(t, 20.0, 3_000, uptime=19.0) == pytest.approx(100.0)


def test_wraps_and_resets_still_apply_on_device_time() -> None:
    t = RateTracker()
    _track(t, 0.0, 2**32 - 500, bits=32, uptime=100.0)
    assert _track(t, 1.0, 500, bits=32, uptime=110.0) == pytest.approx(100.0)
    assert _track(t, 2.0, 5, uptime=120.0) is None  # 64-bit went back: a reset
