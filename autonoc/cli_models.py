"""``autonoc models ...``: evaluate detectors on the public data sets.

Mount it on the main app with ``app.add_typer(models_app, name="models")``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

__all__ = ["models_app"]

models_app = typer.Typer(help="Evaluate anomaly detectors on public data.", no_args_is_help=True)


class DatasetKind(StrEnum):
    smd = "smd"
    cdn = "cdn"
    nab = "nab"
    cisco = "cisco"
    optical = "optical"
    csv = "csv"


def _load(kind: DatasetKind, path: Path, train_points: int | None) -> list[Any]:
    from models import datasets

    if kind in (DatasetKind.smd, DatasetKind.cdn):
        # One series folder (holding kpi1.csv) or a folder of them.
        folders = (
            [path]
            if (path / "kpi1.csv").exists()
            else sorted(p for p in path.iterdir() if (p / "kpi1.csv").exists())
        )
        if not folders:
            raise datasets.DatasetError(f"{path}: no folder holding kpiN.csv files")
        return [datasets.load_smd_layout(f, train_points) for f in folders]
    if kind is DatasetKind.nab:
        data = path / "data" if (path / "data").is_dir() else path
        return datasets.load_nab(data, path / "labels.json")
    if kind is DatasetKind.cisco:
        return [datasets.load_cisco(path, train_points=train_points)]
    if kind is DatasetKind.csv:
        files = [path] if path.is_file() else sorted(path.glob("*.csv"))
        if not files:
            raise datasets.DatasetError(f"{path}: no .csv file")
        return [datasets.load_csv(f, train_points=train_points) for f in files]
    return [datasets.load_optical(path)]


def _seed_list(seed: int, seeds: str | None) -> list[int]:
    if seeds is None:
        return [seed]
    try:
        values = [int(part) for part in seeds.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"--seeds takes integers like 0,1,2, got {seeds!r}") from None
    if not values:
        raise typer.BadParameter("--seeds is empty")
    return values


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


@models_app.command("eval")
def eval_command(
    dataset: Annotated[DatasetKind, typer.Option(help="Data set layout.")],
    path: Annotated[
        Path, typer.Option(help="Folder of the data set (or one series; a CSV file for csv).")
    ],
    detector: Annotated[str, typer.Option(help="Registry name, or 'all'.")] = "all",
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    train_points: Annotated[
        int | None,
        typer.Option(help="Leading training points (SMD/CDN/csv; Cisco: rows after settling)."),
    ] = None,
    plots: Annotated[
        Path | None, typer.Option(help="Write PNGs of scores, threshold and labels here.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for seeded detectors.")] = 0,
    seeds: Annotated[
        str | None, typer.Option(help="Several seeds, e.g. 0,1,2: the summary averages them.")
    ] = None,
) -> None:
    """Fit on each series' train part, score its test part causally, print the metrics."""
    from models.datasets import DatasetError
    from models.evaluate import evaluate, evaluation_registry
    from models.plots import PlotError, plot_writer

    console = Console(stderr=True)
    run_seeds = _seed_list(seed, seeds)
    try:
        series = _load(dataset, path, train_points)
    except (DatasetError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    names = list(evaluation_registry()) if detector == "all" else [detector]
    hook = None
    if plots is not None:
        try:
            hook = plot_writer(plots)
        except PlotError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(names) * len(series) * len(run_seeds))

        def step(name: str, series_name: str) -> None:
            progress.update(task, advance=1, description=f"{name} on {series_name}")

        try:
            report = evaluate(
                series,
                names,
                seeds=run_seeds,
                dataset=dataset.value,
                on_step=step,
                on_scores=hook,
            )
        except KeyError as exc:
            console.print(f"[red]error:[/red] {exc.args[0]}")
            raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(report, indent=2, allow_nan=False))
        return
    title = (
        f"{dataset.value}: {len(series)} series, seeds {','.join(map(str, run_seeds))} "
        "(means over series and seeds)"
    )
    table = Table(title=title)
    columns = ["detector", "kind", "VUS-PR", "AUC-PR", "F1", "event recall", "delay s", "FA/day"]
    if dataset is DatasetKind.nab:
        columns.append("NAB")
    for column in columns:
        table.add_column(column)
    for row in report["summary"]:
        spread = row["vus_pr_seed_std"] if len(series) == 1 else row["vus_pr_std"]
        cells = [
            row["detector"],
            row["kind"],
            f"{_fmt(row['vus_pr_mean'])} ± {_fmt(spread)}",
            _fmt(row["auc_pr_mean"]),
            _fmt(row["f1_mean"]),
            _fmt(row["event_recall"], 2),
            _fmt(row["detection_delay_s_mean"], 0),
            _fmt(row["false_alarms_per_day_mean"], 1),
        ]
        if dataset is DatasetKind.nab:
            cells.append(_fmt(row["nab_score"], 1))
        table.add_row(*cells)
    Console().print(table)
