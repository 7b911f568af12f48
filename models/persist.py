"""Save and load fitted detectors as numpy arrays plus JSON; never pickle.

A saved detector is a directory with two files:

- ``meta.json``: ``format``, ``version``, the registry ``name``, the
  constructor ``params``, ``n_features_in_``, ``threshold_``, every other
  fitted scalar (``fitted``), and the numpy / scikit-learn versions.
- ``weights.npz``: every fitted array (public attributes ending in ``_``),
  read back with ``allow_pickle=False``.

:func:`load` builds the detector through the registry from ``params`` and sets
the fitted attributes, so the loaded scores equal the saved ones bit for bit.
A detector whose fitted state includes objects that are not arrays (the
Isolation Forest's trees) stores what rebuilds them and defines
``restore()``, which :func:`load` calls after setting the arrays.
"""

from __future__ import annotations

import inspect
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from models.base import Detector, DetectorRegistry

__all__ = ["FORMAT", "VERSION", "load", "save"]

FORMAT = "autonoc-detector"
VERSION = 1
_SCALARS = (bool, int, float, str)


def _params(detector: Detector) -> dict[str, Any]:
    params: dict[str, Any] = {}
    signature = inspect.signature(type(detector).__init__)
    for pname, parameter in signature.parameters.items():
        if pname == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        value = getattr(detector, pname)
        if value is not None and not isinstance(value, _SCALARS):
            raise TypeError(f"parameter {pname!r} of {detector.name!r} is not a JSON scalar")
        params[pname] = value
    return params


def _versions() -> dict[str, str]:
    import sklearn

    return {"numpy": np.__version__, "sklearn": str(sklearn.__version__)}


def save(detector: Detector, directory: str | Path) -> Path:
    """Write ``meta.json`` and ``weights.npz`` for a fitted ``detector`` into ``directory``.

    Raises:
        ValueError: the detector is not fitted.
        TypeError: it holds fitted state that is neither an array nor a scalar
            and it defines no ``restore()`` to rebuild it.
    """
    if getattr(detector, "n_features_in_", None) is None:
        raise ValueError(f"detector {detector.name!r} is not fitted; call fit(X) before save")
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    fitted: dict[str, Any] = {}
    for attr, value in vars(detector).items():
        if not attr.endswith("_") or attr.startswith("_"):
            continue
        if isinstance(value, np.ndarray):
            arrays[attr] = value
        elif isinstance(value, (*_SCALARS, np.integer, np.floating)):
            fitted[attr] = value.item() if isinstance(value, np.generic) else value
        elif not callable(getattr(detector, "restore", None)):
            raise TypeError(
                f"{detector.name!r} holds {attr} of type {type(value).__name__}, which cannot "
                "be saved without pickle; store arrays that rebuild it and define restore()"
            )
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "name": detector.name,
        "params": _params(detector),
        "n_features_in_": int(fitted.pop("n_features_in_")),
        "threshold_": float(fitted.pop("threshold_")),
        "fitted": fitted,
        "versions": _versions(),
    }
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "weights.npz", **arrays)  # type: ignore[arg-type]
    (path / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def load(directory: str | Path, registry: DetectorRegistry | None = None) -> Detector:
    """Read a detector saved by :func:`save`, built through ``registry`` (default: the default one).

    Raises:
        FileNotFoundError: ``meta.json`` or ``weights.npz`` is missing.
        ValueError: the metadata is not an autonoc detector of a known version.
    """
    path = Path(directory)
    meta_path, weights_path = path / "meta.json", path / "weights.npz"
    for required in (meta_path, weights_path):
        if not required.is_file():
            raise FileNotFoundError(f"{required}: missing; is {path} a saved detector?")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta_path}: not valid JSON ({exc})") from exc
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(
            f"{meta_path}: expected format {FORMAT!r} version {VERSION}, "
            f"got {meta.get('format')!r} version {meta.get('version')!r}"
        )
    registry = registry or _registry_with_extras()
    detector = registry.create(meta["name"], **meta["params"])
    for attr, value in meta["fitted"].items():
        setattr(detector, attr, value)
    detector.n_features_in_ = int(meta["n_features_in_"])  # type: ignore[attr-defined]
    detector.threshold_ = float(meta["threshold_"])
    with np.load(weights_path, allow_pickle=False) as weights:
        for attr in weights.files:
            setattr(detector, attr, weights[attr])
    restore = getattr(detector, "restore", None)
    if callable(restore):
        saved = meta.get("versions", {})
        if saved and saved != _versions():
            warnings.warn(
                f"{meta_path}: saved with {saved}, loading with {_versions()}; a detector "
                "rebuilt on load may score differently",
                stacklevel=2,
            )
        restore()
    return detector


def _registry_with_extras() -> DetectorRegistry:
    from models.evaluate import evaluation_registry

    return evaluation_registry()
