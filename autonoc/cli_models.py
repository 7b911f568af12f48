"""``autonoc models ...``: evaluate detectors on the public data sets.

Mount it on the main app with ``app.add_typer(models_app, name="models")``.
"""

from __future__ import annotations

import importlib
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
    optical = "optical"


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
    return [datasets.load_optical(path)]


def _plot(directory: Path) -> Any:
    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return None
    directory.mkdir(parents=True, exist_ok=True)

    def hook(name: str, series: Any, scores: Any, threshold: float) -> None:
        fig, ax = plt.subplots(figsize=(12, 3))
        ax.plot(scores, lw=0.6, label="score")
        ax.axhline(threshold, color="red", lw=0.8, label="threshold")
        for start, end in series.events:
            ax.axvspan(start, end, color="orange", alpha=0.3)
        ax.set_title(f"{name} on {series.name}")
        ax.legend(loc="upper right")
        safe = series.name.replace("/", "_")
        fig.savefig(directory / f"{name}-{safe}.png", dpi=100, bbox_inches="tight")
        plt.close(fig)

    return hook


@models_app.command("eval")
def eval_command(
    dataset: Annotated[DatasetKind, typer.Option(help="Data set layout.")],
    path: Annotated[Path, typer.Option(help="Folder of the data set (or one series).")],
    detector: Annotated[str, typer.Option(help="Registry name, or 'all'.")] = "all",
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    train_points: Annotated[
        int | None, typer.Option(help="Leading training points (SMD/CDN layout).")
    ] = None,
    plots: Annotated[Path | None, typer.Option(help="Write PNG score plots here.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for seeded detectors.")] = 0,
) -> None:
    """Fit on each series' train part, score its test part causally, print the metrics."""
    from models.datasets import DatasetError
    from models.evaluate import evaluate, evaluation_registry

    console = Console(stderr=True)
    try:
        series = _load(dataset, path, train_points)
    except DatasetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    names = list(evaluation_registry()) if detector == "all" else [detector]
    hook = None
    if plots is not None:
        hook = _plot(plots)
        if hook is None:
            console.print("matplotlib is not installed: skipping plots (pip install matplotlib)")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(names) * len(series))

        def step(name: str, series_name: str) -> None:
            progress.update(task, advance=1, description=f"{name} on {series_name}")

        try:
            report = evaluate(
                series, names, seed, dataset=dataset.value, on_step=step, on_scores=hook
            )
        except KeyError as exc:
            console.print(f"[red]error:[/red] {exc.args[0]}")
            raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"{dataset.value}: {len(series)} series (means over series)")
    for column in ("detector", "kind", "VUS-PR", "AUC-PR", "F1"):
        table.add_column(column)
    for row in report["summary"]:

        def fmt(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        vus = fmt(row["vus_pr_mean"]) + " ± " + fmt(row["vus_pr_std"])
        table.add_row(
            row["detector"], row["kind"], vus, fmt(row["auc_pr_mean"]), fmt(row["f1_mean"])
        )
    Console().print(table)
