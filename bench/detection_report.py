"""Every registered detector on every dev data set in ``shared/data``, over several seeds:
writes ``docs/detection.md`` and its plots under ``docs/img/detection/``.

    .venv/bin/python bench/detection_report.py [--data ../shared/data] [--seeds 0,1,2]
        [--datasets smd,vod1,vod2,nab,optical,cisco] [--detectors NAME,...]

The text between the ``model-justification`` markers of an existing
``docs/detection.md`` is kept across runs. Plots need matplotlib; without it the
page says so and has no figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import datasets  # noqa: E402
from models.base import FloatArray  # noqa: E402
from models.evaluate import BASELINES, evaluate, evaluation_registry  # noqa: E402

JUSTIFY_BEGIN = "<!-- model-justification:begin -->"
JUSTIFY_END = "<!-- model-justification:end -->"
JUSTIFY_PLACEHOLDER = (
    "_To be written: why this PyTorch model for multivariate network telemetry "
    "(architecture, window, training, fleet-scale batching), from the model's author._"
)


CISCO_NOTE = """\
**Why alarms stay on here, and why the event target says little.** Two things, both in the
data rather than in one detector:

1. *The training block is not quiet at its start.* Its first ~10 rows (100 s) are the aftermath
   of the BFD break that opens the capture: traffic on HundredGigE0/0/0/1 drains from 715 k to
   124 k packets/s. With 114 training rows, the 0.99 quantile of training scores is that
   transient (`forecast`'s threshold is 57 against a median training score of 0.7), so only
   very large changes alarm, and the second shutdown of HundredGigE0/0/0/10 (its traffic to 0,
   one more BFD session down) stays under it.
2. *The test visits states training never saw.* After each `enable_bfd` (two spans of 40 min,
   half the test time) the session to spine4 is up and traffic moves onto HundredGigE0/0/0/16
   (from ~500 bit/s to 6.7 Gbit/s). Every detector fitted on the 19 minutes with BFD broken
   alarms through the whole span; those alarm episodes run into the next labelled event, so
   they are never counted false, and the events inside them count as found.

Checked outside the report (seed 0): training from the 13th training row on, past the
transient, lowers `forecast`'s threshold to 5.7 and raises its alarm rate from 0.55 to 0.95
(`robust_z` 0.51 to 0.93; `pca` and `iforest` stay at 1.0), all 8 events "found". No threshold
calibrated on this block separates the events from the new states; meeting the target honestly
needs training data that covers the router's normal states (BFD up and down, all interfaces
up), i.e. a longer capture, or a detector that re-learns normal after an operator acknowledges
a state change. The new-alarm recall column shows what an operator would be told of: alarms
that start within 60 s of an event."""


@dataclass(frozen=True)
class DevSet:
    key: str
    title: str
    kind: str  # the evaluate() dataset name ("nab" adds NAB scores)
    split: str
    load: Callable[[Path], list[datasets.Series]]
    per_hour: bool = False
    plot_series: int = 1
    note: str = ""


DEV_SETS = (
    DevSet(
        "smd",
        "SMD machine-1-1",
        "smd",
        "train = points 0-28,477 (anomaly-free), test = 28,478-end (28,479 points), 1-min",
        lambda d: [datasets.load_smd_layout(d / "smd" / "machine-1-1")],
    ),
    DevSet(
        "vod1",
        "CDN VoD1",
        "cdn",
        "train = points 0-10,655, test = the rest; 5-min samples",
        lambda d: [datasets.load_smd_layout(d / "cdn" / "vod1")],
    ),
    DevSet(
        "vod2",
        "CDN VoD2",
        "cdn",
        "train = points 0-45,752 (the first half), test = the rest; 1-min samples",
        lambda d: [datasets.load_smd_layout(d / "cdn" / "vod2")],
    ),
    DevSet(
        "nab",
        "NAB (31 series)",
        "nab",
        "NAB's rules: train = the probationary period (first 15 %, at most 750 rows) "
        "of each file, test = the rest; one configuration for all files",
        lambda d: datasets.load_nab(d / "nab" / "data", d / "nab" / "labels.json"),
        plot_series=2,
    ),
    DevSet(
        "optical",
        "Optical lightpath (OSA)",
        "optical",
        "train = first 70 % of the normal file A, test = the rest of A (label 0) and "
        "the fault file B (label 1)",
        lambda d: [datasets.load_optical(d / "optical")],
    ),
    DevSet(
        "cisco",
        "Cisco IOS-XR dataset 11 (leaf7)",
        "cisco",
        "train = 07:04:07-07:23:01 UTC (from 60 s after the BFD break that opens the "
        "capture up to the first interface shutdown, 114 rows of 10 s), test = the rest "
        "(959 rows, 8 events: shutdown/enable of HundredGigE0/0/0/10, break/restore of "
        "the BFD session to spine4); an event is found by an alarm within 60 s of it",
        lambda d: [datasets.load_cisco(d / "cisco-ios-xr" / "dataset11")],
        per_hour=True,
        note=CISCO_NOTE,
    ),
)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pm(mean: float | None, std: float | None, digits: int = 3) -> str:
    if mean is None:
        return "–"
    return f"{mean:.{digits}f} ± {_fmt(std, digits)}"


def _table(dev: DevSet, report: dict[str, Any]) -> list[str]:
    multi = report["summary"][0]["series"] > 1
    head = ["detector", "kind", "VUS-PR (± seeds)"]
    if multi:
        head.append("± series")
    head += ["AUC-PR", "F1", "P", "R", "event recall", "delay s"]
    if dev.per_hour:
        head.append("new-alarm recall")
    head.append("false alarms / h" if dev.per_hour else "false alarms / day")
    head.append("alarm rate")
    if dev.kind == "nab":
        head.append("NAB score")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = max(
        (
            r["vus_pr_mean"]
            for r in report["summary"]
            if r["kind"] == "baseline" and r["vus_pr_mean"] is not None
        ),
        default=None,
    )
    for row in report["summary"]:
        vus = _pm(row["vus_pr_mean"], row["vus_pr_seed_std"])
        if row["kind"] == "baseline" and row["vus_pr_mean"] == best:
            vus = f"**{vus}**"
        cells = [f"`{row['detector']}`", row["kind"], vus]
        if multi:
            cells.append(_fmt(row["vus_pr_std"]))
        found = f"{_fmt(row['event_recall'], 2)} of {row['events']}"
        fa = row["false_alarms_per_hour_mean"] if dev.per_hour else row["false_alarms_per_day_mean"]
        cells += [
            _fmt(row["auc_pr_mean"]),
            _fmt(row["f1_mean"]),
            _fmt(row["precision_mean"]),
            _fmt(row["recall_mean"]),
            found,
            _fmt(row["detection_delay_s_mean"], 0),
            *([_fmt(row["event_recall_onset"], 2)] if dev.per_hour else []),
            _fmt(fa, 2),
            _fmt(row["alarm_rate_mean"], 3),
        ]
        if dev.kind == "nab":
            cells.append(_pm(row["nab_score"], row.get("nab_score_seed_std"), 1))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _targets(dev: DevSet, best: dict[str, Any] | None, models: list[dict[str, Any]]) -> list[str]:
    """One line per model: the VUS-PR target (and Cisco's event target), met or missed."""
    lines = []
    for m in models:
        if best is not None and m["vus_pr_mean"] is not None:
            met = m["vus_pr_mean"] > best["vus_pr_mean"]
            ceiling = min(m["vus_pr_mean"], best["vus_pr_mean"]) >= 0.9995
            verdict = "**met**" if met else "**missed**"
            lines.append(
                f"- {dev.title}: `{m['detector']}` VUS-PR {_fmt(m['vus_pr_mean'])} vs best "
                f"baseline `{best['detector']}` {_fmt(best['vus_pr_mean'])}: "
                + ("**tied** at the metric's ceiling (not beaten)" if ceiling else verdict)
            )
        if dev.per_hour:
            recall, fa = m["event_recall"], m["false_alarms_per_hour_mean"]
            met = recall is not None and fa is not None and recall >= 0.9 and fa <= 1.0
            lines.append(
                f"- {dev.title}: `{m['detector']}` finds {_fmt(recall, 2)} of "
                f"{m['events']} events within 60 s at {_fmt(fa, 2)} false alarms per "
                f"router-hour (target ≥ 0.90 at ≤ 1): "
                + ("**met**" if met else "**missed**")
                + f"; but its alarm is on {_fmt(m['alarm_rate_mean'], 2)} of the time and only "
                f"{_fmt(m['event_recall_onset'], 2)} of the events start a new alarm "
                "(see the Cisco section)"
            )
    return lines


LAB_BEGIN = "<!-- lab-faults:begin -->"
LAB_END = "<!-- lab-faults:end -->"


def _kept_lab_faults(path: Path) -> str:
    """The lab fault sweep's section (written by ``bench.detect_faults``), kept as it is."""
    if path.exists():
        text = path.read_text()
        begin, end = text.find(LAB_BEGIN), text.find(LAB_END)
        if begin != -1 and end > begin:
            return text[begin : end + len(LAB_END)] + "\n"
    return ""


def _kept_justification(path: Path) -> str:
    if path.exists():
        text = path.read_text()
        begin, end = text.find(JUSTIFY_BEGIN), text.find(JUSTIFY_END)
        if begin != -1 and end > begin:
            return text[begin + len(JUSTIFY_BEGIN) : end].strip("\n")
    return JUSTIFY_PLACEHOLDER


METHOD = """\
## Method

- **Data and splits** as `../shared/data/README.md` prescribes, per data set (below). Every
  detector sees the same split. Loaders: `models/datasets.py`.
- **Fit on training data only**: `fit(X_train)` learns normal behaviour and sets the alarm
  threshold from the detector's scores of its own training data (a quantile, or
  peaks-over-threshold): never from test data or labels. One configuration per detector for all
  data sets (the registry defaults); nothing is tuned on these files.
- **Causal scoring**: the score at time t uses rows up to t only. Scores are computed over the
  training rows followed by the test rows, and the test part is kept, so window-based models
  have their context at the first test row.
- **Seeds**: every detector runs with seeds {seeds}; tables show the mean, and for VUS-PR the
  standard deviation over seeds (deterministic detectors show ± 0). NAB's "± series" is the
  spread over its 31 files.
- **No point adjustment** anywhere.

### Metrics (`models/metrics.py`)

- **VUS-PR**: volume under the range-based precision-recall surface (Paparrizos et al., VLDB
  2022), buffer lengths 0..100, 250 thresholds, as TSB-AD's `RangeAUC_volume_opt` (checked to
  2e-16 against TSB-AD 1.5's own code). Threshold-free.
- **AUC-PR**: point-wise average precision (scikit-learn). Threshold-free.
- **F1, P, R**: point-wise at the **deployed** threshold (the one fitted on training data).
- **Event recall**: share of labelled events (runs of anomalous points; NAB windows; Cisco event
  windows) holding an alarm, or with one within 60 s of the start. **Delay**: first alarm time
  minus the event's start, mean over found events.
- **New-alarm recall** (Cisco): event recall counting only an alarm that *starts* within 60 s
  of the event (the first point of an alarm episode). An alarm already on before the event
  tells an operator nothing new, so a detector that alarms all the time finds every event by
  the first count and few by this one.
- **False alarms**: alarm episodes (runs of consecutive alarmed points) that touch no labelled
  point, per day of test data (Cisco: per router-hour). An episode that touches an anomaly is
  not false however long it lasts, so read it with the **alarm rate** (share of test points
  alarmed): a detector that alarms all the time has no false alarm and an alarm rate near 1.
- **NAB score** (NAB only): NAB's standard profile (TP 1, FP 0.11, FN 1) with its scaled
  sigmoid over each window, the earliest alarm in a window scoring, every alarm outside
  windows costing; summed over the 31 files and normalised to 0 (never alarm) .. 100 (an alarm
  at each window's start). Scored at the **deployed** threshold: NAB's own leaderboard picks
  each detector's best threshold over the whole corpus, so these numbers are lower than
  leaderboard ones (≈ 70-75 for the best open entries).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "detection.md")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--datasets", default=",".join(d.key for d in DEV_SETS))
    parser.add_argument("--detectors", default="")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    registry = evaluation_registry()
    registered = list(registry)
    names: list[str] = [n for n in ("random", "robust_z", "pca", "iforest") if n in registered]
    names += [n for n in registered if n not in BASELINES]
    if args.detectors:
        names = [n for n in names if n in args.detectors.split(",")]
    img_dir = args.out.parent / "img" / "detection"
    try:
        from models.plots import PlotError, plot_detectors, safe_name

        plot_detectors_fn: Any = plot_detectors
        __import__("matplotlib")
    except (ImportError, PlotError):
        plot_detectors_fn = None
        print("matplotlib is missing: no plots", file=sys.stderr)

    sections: list[str] = []
    overview: list[str] = []
    targets: list[str] = []
    for dev in DEV_SETS:
        if dev.key not in args.datasets.split(","):
            continue
        started = time.perf_counter()
        series = dev.load(args.data)
        captured: dict[str, dict[str, tuple[FloatArray, float]]] = {}

        def keep(
            name: str,
            s: datasets.Series,
            scores: FloatArray,
            threshold: float,
            into: dict[str, dict[str, tuple[FloatArray, float]]] = captured,
        ) -> None:
            into.setdefault(s.name, {})[name] = (scores, threshold)

        def step(name: str, series_name: str, key: str = dev.key) -> None:
            print(f"  {key}: {name} on {series_name}", file=sys.stderr)

        report = evaluate(
            series,
            names,
            seeds=seeds,
            dataset=dev.kind,
            registry=registry,
            on_scores=keep,
            on_step=step,
        )
        elapsed = time.perf_counter() - started
        print(f"{dev.key}: {elapsed:.0f} s", file=sys.stderr)
        lines = [f"## {dev.title}", "", f"Split: {dev.split}.", ""]
        n_test = sum(s.X_test.shape[0] for s in series)
        n_feat = series[0].X_train.shape[1]
        lines += [
            f"{len(series)} series, {n_feat} feature(s), {n_test:,} test points; seeds "
            f"{','.join(map(str, seeds))}; {elapsed:.0f} s for all detectors and seeds.",
            "",
        ]
        lines += _table(dev, report)
        if dev.note:
            lines += ["", dev.note]
        if plot_detectors_fn is not None:
            picked = [s for s in series if s.events][: dev.plot_series] or series[:1]
            for s in picked:
                file = img_dir / f"{dev.key}-{safe_name(s.name)}.png"
                plot_detectors_fn(file, s, captured[s.name])
                rel = file.relative_to(args.out.parent)
                lines += [
                    "",
                    f"![{dev.title}: {s.name}, scores of every detector (seed {seeds[0]})]({rel})",
                ]
        sections.append("\n".join(lines))
        best_base = max(
            (
                r
                for r in report["summary"]
                if r["kind"] == "baseline" and r["vus_pr_mean"] is not None
            ),
            key=lambda r: r["vus_pr_mean"],
            default=None,
        )
        models = [r for r in report["summary"] if r["kind"] == "model"]
        cell_model = ", ".join(f"`{r['detector']}` {_fmt(r['vus_pr_mean'])}" for r in models) or "–"
        targets += _targets(dev, best_base, models)
        overview.append(
            f"| {dev.title} | "
            + (f"`{best_base['detector']}` {_fmt(best_base['vus_pr_mean'])}" if best_base else "–")
            + f" | {cell_model} |"
        )

    justification = _kept_justification(args.out)
    model_names = [n for n in names if n not in BASELINES]
    text = [
        "# Anomaly detection: every detector on every dev data set",
        "",
        "Generated by `bench/detection_report.py` (do not edit the tables by hand; rerun it:",
        f"`.venv/bin/python bench/detection_report.py --seeds {args.seeds}`). Detectors: "
        + ", ".join(f"`{n}`" for n in names)
        + (
            "."
            if model_names
            else " (no model detector was registered when this page was generated)."
        ),
        "",
        "## Overview: VUS-PR, mean over seeds",
        "",
        "| data set | best baseline | model(s) |",
        "|---|---|---|",
        *overview,
        "",
        "## Targets (issue 5)",
        "",
        *targets,
        "",
        "## The PyTorch model",
        "",
        JUSTIFY_BEGIN,
        justification,
        JUSTIFY_END,
        "",
        METHOD.format(seeds=",".join(map(str, seeds))),
        *[s + "\n" for s in sections],
        "## Reproduce",
        "",
        "```",
        f".venv/bin/python bench/detection_report.py --seeds {args.seeds}",
        "autonoc models eval --dataset cisco --path ../shared/data/cisco-ios-xr/dataset11 "
        "--seeds 0,1,2 --plots /tmp/plots",
        "```",
        "",
        _kept_lab_faults(args.out),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(text))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
