"""Loaders on small slices of the real files, the runner's JSON shape, and the CLI sub-app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from autonoc.cli_models import models_app
from models.datasets import DatasetError, load_nab, load_optical, load_smd_layout
from models.evaluate import evaluate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_smd_layout_reads_one_row_per_kpi() -> None:
    series = load_smd_layout(FIXTURES / "smd_tiny", train_points=25)
    assert series.X_train.shape == (25, 3) and series.X_test.shape == (15, 3)
    assert series.X_train[0, 0] == pytest.approx(0.032258)
    assert series.events == [(5, 7)] and series.y_test.sum() == 3
    # 20190903000200 → 2019-09-03 00:02:00 UTC, 1-minute cadence.
    assert series.timestamps[0] == 1567468920.0 + 25 * 60
    assert np.all(np.diff(series.timestamps) == 60.0)
    assert load_smd_layout(FIXTURES / "smd_tiny").X_train.shape == (20, 3)


def test_smd_layout_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no kpiN\.csv"):
        load_smd_layout(tmp_path)
    for name in ("kpi1.csv", "timestamp.csv"):
        (tmp_path / name).write_text((FIXTURES / "smd_tiny" / name).read_text())
    (tmp_path / "label.csv").write_text("0,1,0")
    with pytest.raises(DatasetError, match=r"label\.csv: 3 points"):
        load_smd_layout(tmp_path)
    (tmp_path / "kpi2.csv").write_text("1,2,x")
    with pytest.raises(DatasetError, match=r"kpi2\.csv"):
        load_smd_layout(tmp_path)


def test_nab_windows_become_point_labels_and_events() -> None:
    (series,) = load_nab(FIXTURES / "nab_tiny" / "data", FIXTURES / "nab_tiny" / "labels.json")
    assert series.name == "realKnownCause/nyc_taxi.csv"
    assert series.X_train.shape == (6, 1) and series.X_test.shape == (34, 1)
    # Window 15:00–16:00 at 30-minute steps: points 30, 31, 32 of the file.
    assert series.events == [(24, 26)]
    assert series.y_test.sum() == 3


def test_nab_bad_labels_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "labels.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"labels\.json"):
        load_nab(tmp_path, tmp_path / "labels.json")


def test_optical_trains_on_the_start_of_a_and_labels_b() -> None:
    series = load_optical(FIXTURES / "optical_tiny")
    assert series.X_train.shape == (7, 12)  # 70 % of A's 10 rows
    assert series.X_test.shape == (13, 12)
    assert series.y_test.tolist() == [0] * 3 + [1] * 10
    assert np.all(np.diff(series.timestamps) > 0)
    assert series.X_train[0, -1] == pytest.approx(20.527)  # OSNR


def test_optical_bad_row_names_file_and_line(tmp_path: Path) -> None:
    for name in ("A_lpth_2_1.dat", "B_lpth_2_1.dat"):
        (tmp_path / name).write_text((FIXTURES / "optical_tiny" / name).read_text())
    with (tmp_path / "B_lpth_2_1.dat").open("a") as handle:
        handle.write("2019/10/10 15:00:00 1,1,2\n")
    with pytest.raises(DatasetError, match=r"B_lpth_2_1\.dat line 27"):
        load_optical(tmp_path)


def test_evaluate_returns_the_documented_shape() -> None:
    series = [load_smd_layout(FIXTURES / "smd_tiny", train_points=25)]
    report = evaluate(series, ["random", "pca"], seed=0, dataset="smd", max_buffer=4)
    assert report["dataset"] == "smd"
    assert {r["detector"] for r in report["results"]} == {"random", "pca"}
    keys = {"detector", "series", "vus_pr", "auc_pr", "f1", "event_recall", "false_alarms_per_day"}
    assert all(set(r) == keys for r in report["results"])
    assert [s["kind"] for s in report["summary"]] == ["baseline", "baseline"]
    json.dumps(report, allow_nan=False)


def test_cli_sub_app_prints_json() -> None:
    app = typer.Typer()
    app.add_typer(models_app, name="models")
    args = ["models", "eval", "--dataset", "optical", "--path", str(FIXTURES / "optical_tiny")]
    result = CliRunner().invoke(app, [*args, "--detector", "pca", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"][0]["detector"] == "pca"
    bad = CliRunner().invoke(app, [*args, "--detector", "nope"])
    assert bad.exit_code == 2
