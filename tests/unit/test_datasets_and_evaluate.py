"""Loaders on small slices of the real files, the runner's JSON shape, and the CLI sub-app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from autonoc.cli_models import models_app
from models.datasets import DatasetError, load_csv, load_nab, load_optical, load_smd_layout
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


#: The issue's JSON contract: these keys, at least, in every row.
RESULT_KEYS = {
    "detector",
    "series",
    "vus_pr",
    "auc_pr",
    "f1",
    "event_recall",
    "detection_delay_s",
    "false_alarms_per_day",
}
SUMMARY_KEYS = {"detector", "kind", "vus_pr_mean", "vus_pr_std", "auc_pr_mean", "f1_mean"}


def test_evaluate_returns_the_documented_shape() -> None:
    series = [load_smd_layout(FIXTURES / "smd_tiny", train_points=25)]
    report = evaluate(series, ["random", "pca"], seed=0, dataset="smd", max_buffer=4)
    assert report["dataset"] == "smd" and report["seeds"] == [0]
    assert {r["detector"] for r in report["results"]} == {"random", "pca"}
    assert all(set(r) >= RESULT_KEYS for r in report["results"])
    assert all(set(s) >= SUMMARY_KEYS for s in report["summary"])
    assert [s["kind"] for s in report["summary"]] == ["baseline", "baseline"]
    assert all(r["nab_score"] is None for r in report["results"])
    pca = next(r for r in report["results"] if r["detector"] == "pca")
    assert pca["events"] == 1 and 0 <= pca["alarm_rate"] <= 1
    assert pca["false_alarms_per_hour"] == pytest.approx(pca["false_alarms_per_day"] / 24)
    json.dumps(report, allow_nan=False)


def test_seeds_are_averaged_in_the_summary() -> None:
    series = [load_smd_layout(FIXTURES / "smd_tiny", train_points=25)]
    report = evaluate(series, ["random", "pca"], seeds=[0, 1, 2], dataset="smd", max_buffer=4)
    assert report["seeds"] == [0, 1, 2] and len(report["results"]) == 6
    random_rows = [r for r in report["results"] if r["detector"] == "random"]
    summary = {s["detector"]: s for s in report["summary"]}
    assert summary["random"]["vus_pr_mean"] == pytest.approx(
        np.mean([r["vus_pr"] for r in random_rows])
    )
    # The random floor moves with its seed; PCA is deterministic.
    assert summary["random"]["vus_pr_seed_std"] > 0
    assert summary["pca"]["vus_pr_seed_std"] == 0.0


def test_nab_runs_report_the_nab_score() -> None:
    series = load_nab(FIXTURES / "nab_tiny" / "data", FIXTURES / "nab_tiny" / "labels.json")
    report = evaluate(series, ["robust_z"], dataset="nab", max_buffer=4)
    (row,) = report["results"]
    assert row["nab_score"] is not None and -1000 < row["nab_score"] <= 100
    assert report["summary"][0]["nab_score"] == pytest.approx(row["nab_score"])


def _write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("timestamp,cpu,label,rx_bps\n" + "\n".join(rows) + "\n")
    return path


def test_csv_loader_reads_columns_labels_and_split(tmp_path: Path) -> None:
    rows = [f"2024-01-01T00:{m:02d}:00,{m % 7},{int(m in (15, 16))},{10 * m}" for m in range(20)]
    series = load_csv(_write_csv(tmp_path / "router1.csv", rows), train_points=12)
    assert series.name == "router1" and series.columns == ("cpu", "rx_bps")
    assert series.X_train.shape == (12, 2) and series.X_test.shape == (8, 2)
    assert series.X_test[0].tolist() == [12 % 7, 120.0]
    assert series.events == [(3, 4)]
    assert np.all(np.diff(series.timestamps) == 60.0)
    # Unix seconds work too; the default split is the first half.
    unix = [f"{1_700_000_000 + 60 * i},{i},0,1" for i in range(10)]
    assert load_csv(_write_csv(tmp_path / "u.csv", unix)).X_train.shape == (5, 2)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2024-01-01T00:09:00,x,0,1", r"bad\.csv line 11 column 'cpu': not a number"),
        ("2024-01-01T00:09:00,1,2,1", r"line 11 column 'label': label must be 0 or 1"),
        ("2023-12-31T00:00:00,1,0,1", r"line 11 column 'timestamp': time goes backwards"),
        ("yesterday,1,0,1", r"line 11 column 'timestamp': bad timestamp"),
        ("2024-01-01T00:09:00,1,0", r"line 11: 3 cells, the header has 4"),
    ],
)
def test_csv_loader_errors_name_line_and_column(tmp_path: Path, row: str, message: str) -> None:
    good = [f"2024-01-01T00:0{m}:00,{m},0,1" for m in range(9)]
    with pytest.raises(DatasetError, match=message):
        load_csv(_write_csv(tmp_path / "bad.csv", [*good, row]))


def test_csv_loader_missing_label_column(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("timestamp,cpu\n1,2\n")
    with pytest.raises(DatasetError, match=r"x\.csv line 1: no column 'label'"):
        load_csv(tmp_path / "x.csv")


def test_plots_are_written_as_png(tmp_path: Path) -> None:
    from models.plots import plot_detectors, plot_writer

    series = load_smd_layout(FIXTURES / "smd_tiny", train_points=25)
    evaluate([series], ["pca"], on_scores=plot_writer(tmp_path / "p"), max_buffer=4)
    (png,) = (tmp_path / "p").iterdir()
    assert png.name == "pca-smd_tiny.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    scores = np.linspace(0, 1, series.X_test.shape[0])
    out = plot_detectors(tmp_path / "all.png", series, {"a": (scores, 0.5), "b": (scores, 2.0)})
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_plot_writer_without_matplotlib_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import builtins

    from models.plots import PlotError, plot_writer

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    monkeypatch.setattr("importlib.import_module", lambda name: no_matplotlib(name))
    with pytest.raises(PlotError, match="pip install matplotlib"):
        plot_writer(tmp_path)


def test_cli_sub_app_prints_json() -> None:
    app = typer.Typer()
    app.add_typer(models_app, name="models")
    args = ["models", "eval", "--dataset", "optical", "--path", str(FIXTURES / "optical_tiny")]
    result = CliRunner().invoke(app, [*args, "--detector", "pca", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"][0]["detector"] == "pca"
    bad = CliRunner().invoke(app, [*args, "--detector", "nope"])
    assert bad.exit_code == 2


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(models_app, name="models")
    return app


def test_cli_cisco_with_seeds() -> None:
    args = ["models", "eval", "--dataset", "cisco", "--path", str(FIXTURES / "cisco_tiny")]
    result = CliRunner().invoke(
        _app(), [*args, "--detector", "robust_z", "--seeds", "0,1", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dataset"] == "cisco" and report["seeds"] == [0, 1]
    assert len(report["results"]) == 2 and report["results"][0]["events"] == 1
    bad = CliRunner().invoke(_app(), [*args, "--seeds", "0,x"])
    assert bad.exit_code == 2


def test_cli_csv_table_and_errors(tmp_path: Path) -> None:
    rows = [f"2024-01-01T00:{m:02d}:00,{m % 5},{int(m == 30)},{m % 3}" for m in range(40)]
    _write_csv(tmp_path / "r1.csv", rows)
    args = ["models", "eval", "--dataset", "csv", "--path", str(tmp_path / "r1.csv")]
    result = CliRunner().invoke(_app(), [*args, "--detector", "pca", "--train-points", "20"])
    assert result.exit_code == 0, result.output
    assert "pca" in result.stdout and "VUS-PR" in result.stdout
    _write_csv(tmp_path / "r1.csv", [*rows, "2024-01-01T01:00:00,oops,0,1"])
    bad = CliRunner().invoke(_app(), args)
    assert bad.exit_code == 2 and "column 'cpu': not a number" in " ".join(bad.output.split())


class _AlwaysAlarm:
    """A detector whose alarm never stops: it finds every event, but starts no alarm in one."""

    name = "always"
    threshold_ = 0.0

    def fit(self, X: np.ndarray) -> _AlwaysAlarm:
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return np.ones(np.asarray(X).shape[0])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.score(X) > self.threshold_

    def contributions(self, X: np.ndarray) -> np.ndarray:
        return np.ones_like(np.asarray(X, dtype=np.float64))


def test_onset_recall_counts_only_alarms_that_start_in_an_event() -> None:
    from models.base import DetectorRegistry
    from models.datasets import Series

    y = np.zeros(40, dtype=np.int64)
    y[10:13] = 1
    y[30:33] = 1
    series = Series(
        "s", np.zeros((20, 1)), np.zeros((40, 1)), y, np.arange(40.0) * 10, [(10, 12), (30, 32)]
    )
    registry = DetectorRegistry()
    registry.register("always", _AlwaysAlarm)
    (row,) = evaluate([series], ["always"], registry=registry, max_buffer=2)["results"]
    assert row["event_recall"] == 1.0 and row["alarm_rate"] == 1.0
    assert row["event_recall_onset"] == 0.0 and row["events_found_onset"] == 0
