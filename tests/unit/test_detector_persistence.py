"""Save/load round trip (arrays + JSON, never pickle) for every registered detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.base import FloatArray
from models.evaluate import evaluation_registry
from models.persist import load, save

NAMES = list(evaluation_registry())


def _data(seed: int, n: int) -> FloatArray:
    return np.random.default_rng(seed).normal(size=(n, 4)) * [1.0, 5.0, 0.1, 20.0]


@pytest.mark.parametrize("name", NAMES)
def test_save_load_keeps_scores_bit_for_bit(name: str, tmp_path: Path) -> None:
    detector = evaluation_registry().create(name).fit(_data(1, 300))
    save(detector, tmp_path / name)
    loaded = load(tmp_path / name)
    X = _data(2, 50)
    X[10, 1] = 500.0
    assert type(loaded) is type(detector)
    assert loaded.threshold_ == detector.threshold_
    np.testing.assert_array_equal(loaded.score(X), detector.score(X))
    np.testing.assert_array_equal(loaded.contributions(X), detector.contributions(X))
    with pytest.raises(ValueError):
        loaded.score(np.ones((3, 5)))


@pytest.mark.parametrize("name", NAMES)
def test_saved_files_are_json_and_npz_without_pickles(name: str, tmp_path: Path) -> None:
    save(evaluation_registry().create(name).fit(_data(3, 100)), tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["name"] == name and meta["n_features_in_"] == 4 and meta["version"] == 1
    with np.load(tmp_path / "weights.npz", allow_pickle=False) as weights:
        assert all(weights[k].dtype != object for k in weights.files)


def test_params_survive_the_round_trip(tmp_path: Path) -> None:
    detector = evaluation_registry().create("pca", variance=0.5, q=0.9).fit(_data(4, 200))
    save(detector, tmp_path)
    loaded = load(tmp_path)
    assert (loaded.variance, loaded.q) == (0.5, 0.9)  # type: ignore[attr-defined]


def test_load_names_the_missing_file_and_refuses_unfitted_saves(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        load(tmp_path)
    with pytest.raises(ValueError, match="not fitted"):
        save(evaluation_registry().create("pca"), tmp_path)
    (tmp_path / "meta.json").write_text('{"format": "other", "version": 1}')
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="format"):
        load(tmp_path)
