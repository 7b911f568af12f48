"""The Cisco IOS-XR dataset-11 loader on a small slice of the real files."""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.datasets import CISCO_SOURCES, DatasetError, counter_rates, load_cisco

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cisco_tiny"
COUNTERS = CISCO_SOURCES[0].stem + ".csv.gz"
SHUTDOWN = 1558250581.677304  # events.csv.gz: shutdown_interface leaf7 HundredGigE0/0/0/10
BREAK_BFD = 1558249387.826119  # the first labelled event, 6 s into the capture


def test_counter_rates_handle_first_sample_resets_and_wraps() -> None:
    t = np.array([0.0, 10.0, 20.0, 30.0])
    assert counter_rates([0, 100, 300, 600], t).tolist()[1:] == [10.0, 20.0, 30.0]
    assert np.isnan(counter_rates([0, 100, 300, 600], t)[0])
    # A 64-bit counter going back is a reset: no rate there, the next one is fine.
    reset = counter_rates([500, 600, 50, 150], t)
    assert np.isnan(reset[2]) and reset[3] == 10.0
    # A 32-bit counter stepping back wrapped when the implied increase is under
    # half its range; otherwise it was reset.
    wrap = counter_rates([2**32 - 100, 50, 150, 10], t, bits=32)
    assert wrap[1] == pytest.approx(15.0) and wrap[2] == 10.0
    assert np.isnan(counter_rates([0, 2**31 - 10, 5, 6], t, bits=32)[2])
    assert np.isnan(counter_rates([0, 100, 50, 60], t)[2])  # 64-bit: always a reset
    # An announced discontinuity drops the rate even when the value rose.
    flagged = counter_rates([0, 100, 300, 600], t, resets=[False, False, True, False])
    assert np.isnan(flagged[2]) and flagged[3] == 30.0
    # Time that does not advance gives no rate.
    assert np.isnan(counter_rates([0, 10], [5.0, 5.0])[1])


def test_leaf7_series_split_columns_and_event_windows() -> None:
    series = load_cisco(FIXTURE)
    assert series.name == "cisco_tiny/leaf7"
    # Training: from 60 s after the BFD break to the shutdown, 10 s rows.
    assert series.X_train.shape[0] == int((SHUTDOWN - (BREAK_BFD + 60)) // 10) + 1
    assert series.X_train.shape[1] == series.X_test.shape[1] == len(series.columns)
    assert series.timestamps[0] >= SHUTDOWN > series.timestamps[0] - 10
    assert np.all(np.diff(series.timestamps) == 10.0)
    # One event in the slice: the shutdown, labelled for its first 60 s.
    assert series.event_times == (SHUTDOWN,)
    assert series.event_names == ("shutdown_interface leaf7 HundredGigE0/0/0/10",)
    assert series.events == [(0, 5)] and series.y_test.sum() == 6
    assert "if_in_bps@HundredGigE0/0/0/10" in series.columns
    assert {"bfd_sessions_up", "cpu_util_pct@0/RP0/CPU0", "if_up_count"} <= set(series.columns)
    # HundredGigE0/0/0/2 carries no packet in training: dropped.
    assert not any(c.endswith("@HundredGigE0/0/0/2") for c in series.columns)
    assert np.isfinite(series.X_train).all() and np.isfinite(series.X_test).all()


def test_rates_come_from_counters_and_show_the_shutdown() -> None:
    series = load_cisco(FIXTURE)
    col = series.columns.index("if_in_bps@HundredGigE0/0/0/10")
    # ~30 Mbit/s of test traffic before, nothing once the interface is down.
    assert 1e7 < np.median(series.X_train[:, col]) < 1e8
    assert np.all(series.X_test[10:, col] == 0.0)
    # By hand: the rate at the last training row is 8 × Δbytes / Δt of the
    # two latest counter samples at or before it.
    rows = _counter_rows(FIXTURE / COUNTERS, "HundredGigE0/0/0/0")
    train_end = series.timestamps[0] - 10.0
    (t0, b0), (t1, b1) = [r for r in rows if r[0] <= train_end][-2:]
    expected = 8 * (b1 - b0) / (t1 - t0)
    got = series.X_train[-1, series.columns.index("if_in_bps@HundredGigE0/0/0/0")]
    assert got == pytest.approx(expected)


def _counter_rows(path: Path, interface: str) -> list[tuple[float, float]]:
    from datetime import datetime

    with gzip.open(path, "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        return sorted(
            (datetime.fromisoformat(r[""]).timestamp(), float(r["bytes-received"]))
            for r in reader
            if r["interface-name"] == interface
        )


def _rewrite(path: Path, edit: object) -> None:
    with gzip.open(path, "rt", newline="") as handle:
        rows = list(csv.reader(handle))
    assert callable(edit)
    edit(rows)
    with gzip.open(path, "wt", newline="") as handle:
        csv.writer(handle).writerows(rows)


def test_a_counter_reset_gives_no_negative_rate(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "d")
    column = None

    def reset(rows: list[list[str]]) -> None:
        nonlocal column
        column = rows[0].index("bytes-received")
        name = rows[0].index("interface-name")
        hu0 = [r for r in rows[1:] if r[name] == "HundredGigE0/0/0/0"]
        for r in hu0[60:]:  # counters restart from zero mid-training
            r[column] = str(int(r[column]) - int(hu0[60][column]) + 1000)

    _rewrite(tmp_path / "d" / COUNTERS, reset)
    series = load_cisco(tmp_path / "d")
    values = series.X_train[:, series.columns.index("if_in_bps@HundredGigE0/0/0/0")]
    assert np.isfinite(values).all() and (values >= 0).all()
    assert np.median(values) > 1e7  # the rate carries on across the reset


def test_malformed_cells_name_file_line_and_column(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "d")

    def corrupt(rows: list[list[str]]) -> None:
        rows[5][rows[0].index("crc-errors")] = "lots"

    _rewrite(tmp_path / "d" / COUNTERS, corrupt)
    with pytest.raises(DatasetError, match=r"generic-counters\.csv\.gz line 6 column 'crc-errors'"):
        load_cisco(tmp_path / "d")
    (tmp_path / "d" / "events.csv.gz").unlink()
    shutil.copy(FIXTURE / COUNTERS, tmp_path / "d" / COUNTERS)
    with pytest.raises(DatasetError, match=r"events\.csv\.gz: file not found"):
        load_cisco(tmp_path / "d")
    with pytest.raises(DatasetError, match="no rows for router 'spine9'"):
        load_cisco(FIXTURE, router="spine9")


def test_missing_column_and_train_points(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "d")

    def drop(rows: list[list[str]]) -> None:
        at = rows[0].index("carrier-transitions")
        for r in rows:
            del r[at]

    _rewrite(tmp_path / "d" / COUNTERS, drop)
    with pytest.raises(DatasetError, match=r"no column.*'carrier-transitions'"):
        load_cisco(tmp_path / "d")
    short = load_cisco(FIXTURE, train_points=50)
    assert short.X_train.shape[0] == 50
    # The shutdown still lies in the test part and is scored.
    assert short.event_times == (SHUTDOWN,)
    with pytest.raises(DatasetError, match="leave no train or test part"):
        load_cisco(FIXTURE, train_points=10_000)
