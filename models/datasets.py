"""Loaders for the public evaluation sets in ``shared/data`` (see its README).

Each loader returns :class:`Series` objects with the train / test split the
data README prescribes. Timestamps are Unix seconds (UTC) for the test part.
Bad input raises :class:`DatasetError` naming the file and what was wrong.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.base import FloatArray
from models.metrics import events_from_labels

__all__ = [
    "KNOWN_TRAIN_POINTS",
    "DatasetError",
    "Series",
    "load_nab",
    "load_optical",
    "load_smd_layout",
]

#: Series whose train part is not the first half (data README).
KNOWN_TRAIN_POINTS = {"vod1": 10_656}
#: NAB's probationary period: detectors learn on the first 15 % of each file.
NAB_PROBATION = 0.15
#: Optical: train on the first 70 % of the normal file A.
OPTICAL_TRAIN_FRACTION = 0.7


class DatasetError(ValueError):
    """A data file is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class Series:
    """One evaluation series: anomaly-free training rows, labelled test rows.

    ``events`` are inclusive index ranges into the test part (labelled runs,
    or NAB's windows) for event metrics.
    """

    name: str
    X_train: FloatArray
    X_test: FloatArray
    y_test: NDArray[np.int64]
    timestamps: FloatArray
    events: list[tuple[int, int]] = field(default_factory=list)


def _read_row(path: Path) -> FloatArray:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    text = path.read_text().strip()
    try:
        return np.array([float(v) for v in text.split(",")], dtype=np.float64)
    except ValueError as exc:
        raise DatasetError(f"{path}: expected one row of comma-separated numbers ({exc})") from exc


def _compact_time(value: float, path: Path) -> float:
    """``20190903000200`` (YYYYmmddHHMMSS, maybe as a float) as Unix seconds."""
    try:
        stamp = datetime.strptime(f"{int(value):014d}", "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise DatasetError(f"{path}: timestamp {value!r} is not YYYYmmddHHMMSS") from exc
    return stamp.timestamp()


def load_smd_layout(directory: str | Path, train_points: int | None = None) -> Series:
    """SMD / CDN layout: ``kpiN.csv`` (one row per KPI), ``timestamp.csv``, ``label.csv``.

    Args:
        directory: one machine or site, e.g. ``shared/data/smd/machine-1-1``.
        train_points: leading points used for training; default: the data
            README's split (VoD1: 10,656), else the first half.

    Raises:
        DatasetError: missing files, KPIs of different lengths, bad labels.
    """
    path = Path(directory)
    kpis = sorted(path.glob("kpi*.csv"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not kpis:
        raise DatasetError(f"{path}: no kpiN.csv files (is this an SMD/CDN series folder?)")
    columns = [_read_row(p) for p in kpis]
    n = columns[0].size
    for p, col in zip(kpis, columns, strict=True):
        if col.size != n:
            raise DatasetError(f"{p}: {col.size} points, but {kpis[0].name} has {n}")
    X = np.column_stack(columns)
    labels = _read_row(path / "label.csv")
    stamps = _read_row(path / "timestamp.csv")
    for name, arr in (("label.csv", labels), ("timestamp.csv", stamps)):
        if arr.size != n:
            raise DatasetError(f"{path / name}: {arr.size} points, but the KPIs have {n}")
    odd = np.flatnonzero(~np.isin(labels, (0.0, 1.0)))
    if odd.size:
        # SMD machine-1-1 holds one such value (0.075269 at point 28,478), a
        # glitch of the source's concatenation; read labels as ≥ 0.5.
        if odd.size > max(3, n // 1000) or not np.all((labels >= 0) & (labels <= 1)):
            raise DatasetError(f"{path / 'label.csv'}: labels must be 0 or 1")
        warnings.warn(
            f"{path / 'label.csv'}: {odd.size} label(s) neither 0 nor 1 at points "
            f"{odd[:3].tolist()}; read as label ≥ 0.5",
            stacklevel=2,
        )
        labels = (labels >= 0.5).astype(np.float64)
    split = train_points if train_points is not None else KNOWN_TRAIN_POINTS.get(path.name, n // 2)
    if not 0 < split < n:
        raise DatasetError(f"{path}: train_points={split} leaves no train or test part (n={n})")
    y = labels[split:].astype(np.int64)
    times = np.array([_compact_time(v, path / "timestamp.csv") for v in stamps[split:]])
    return Series(
        name=path.name,
        X_train=X[:split],
        X_test=X[split:],
        y_test=y,
        timestamps=times,
        events=events_from_labels(y),
    )


def _nab_time(text: str, where: str) -> float:
    try:
        stamp = datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
    except ValueError as exc:
        raise DatasetError(f"{where}: bad timestamp {text!r}") from exc
    return stamp.timestamp()


def load_nab(directory: str | Path, labels_json: str | Path) -> list[Series]:
    """NAB: every ``category/file.csv`` under ``directory`` listed in ``labels_json``.

    Training is NAB's probationary period (first 15 %); the rest is the test
    part. Windows become point labels (1 inside a window) and are kept as
    ``events``. Files missing from ``labels_json`` are skipped.

    Raises:
        DatasetError: unreadable labels, a CSV without ``timestamp,value``.
    """
    root, labels_path = Path(directory), Path(labels_json)
    try:
        windows = json.loads(labels_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{labels_path}: cannot read NAB labels ({exc})") from exc
    series: list[Series] = []
    for key in sorted(windows):
        csv_path = root / key
        if not csv_path.is_file():
            continue
        with csv_path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
                raise DatasetError(f"{csv_path}: expected a 'timestamp,value' header")
            times, values = [], []
            for lineno, row in enumerate(reader, start=2):
                try:
                    values.append(float(row[1]))
                except (IndexError, ValueError) as exc:
                    raise DatasetError(f"{csv_path} line {lineno}: bad value ({exc})") from exc
                times.append(_nab_time(row[0], f"{csv_path} line {lineno}"))
        t = np.array(times)
        x = np.array(values).reshape(-1, 1)
        split = max(int(NAB_PROBATION * t.size), 2)
        y = np.zeros(t.size, dtype=np.int64)
        for start, end in windows[key]:
            first, last = _nab_time(start, str(labels_path)), _nab_time(end, str(labels_path))
            y[(t >= first) & (t <= last)] = 1
        y_test = y[split:]
        series.append(
            Series(key, x[:split], x[split:], y_test, t[split:], events_from_labels(y_test))
        )
    if not series:
        raise DatasetError(f"{root}: no CSV file named in {labels_path}")
    return series


def _read_osa(path: Path) -> tuple[FloatArray, FloatArray]:
    """An OSA ``.dat``: SCPI header lines, a ``DATE,...`` header, then ``date time n,values``."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    rows: list[list[float]] = []
    times: list[float] = []
    seen_header = False
    width = 0
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not seen_header:
            if line.strip().startswith("DATE"):
                seen_header = True
                width = len(line.split(",")) - 1
            continue
        if not line.strip():
            continue
        first, *rest = line.split(",")
        try:
            stamp = datetime.strptime(" ".join(first.split()[:2]), "%Y/%m/%d %H:%M:%S")
            values = [float(v) for v in rest]
        except ValueError as exc:
            raise DatasetError(f"{path} line {lineno}: bad row ({exc})") from exc
        if len(values) != width:
            raise DatasetError(f"{path} line {lineno}: {len(values)} values, expected {width}")
        times.append(stamp.replace(tzinfo=UTC).timestamp())
        rows.append(values)
    if not seen_header:
        raise DatasetError(f"{path}: no 'DATE,...' header line (is this an OSA .dat file?)")
    if not rows:
        raise DatasetError(f"{path}: no data rows")
    return np.array(rows), np.array(times)


def load_optical(directory: str | Path) -> Series:
    """OSA lightpath monitoring: ``A_*.dat`` normal, ``B_*.dat`` fault.

    Train on the first 70 % of A; test on the rest of A (label 0) then all of B
    (label 1). B was recorded on another day, so its timestamps are shifted to
    follow A's end by one step, keeping test time monotonic for per-day rates.
    """
    path = Path(directory)
    a_files, b_files = sorted(path.glob("A_*.dat")), sorted(path.glob("B_*.dat"))
    if len(a_files) != 1 or len(b_files) != 1:
        raise DatasetError(f"{path}: expected one A_*.dat and one B_*.dat file")
    xa, ta = _read_osa(a_files[0])
    xb, tb = _read_osa(b_files[0])
    if xa.shape[1] != xb.shape[1]:
        raise DatasetError(
            f"{b_files[0]}: {xb.shape[1]} columns, but {a_files[0].name} has {xa.shape[1]}"
        )
    split = int(OPTICAL_TRAIN_FRACTION * len(xa))
    step = float(np.median(np.diff(ta))) if len(ta) > 1 else 1.0
    tb_shifted = tb - tb[0] + ta[-1] + step
    y = np.concatenate([np.zeros(len(xa) - split), np.ones(len(xb))]).astype(np.int64)
    return Series(
        name=a_files[0].stem.removeprefix("A_"),
        X_train=xa[:split],
        X_test=np.vstack([xa[split:], xb]),
        y_test=y,
        timestamps=np.concatenate([ta[split:], tb_shifted]),
        events=events_from_labels(y),
    )
