"""ForecastDetector specifics: causality, gaps, flat series, fleet scoring, persistence.

The conformance suite in ``test_detectors.py`` already holds it to the common
contract; these tests pin what the forecaster adds. Small windows and epochs
keep them fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.base import FloatArray
from models.forecast import ForecastDetector, SeriesState, top_k_mean
from models.persist import load, save

PERIOD = 24


def _seasonal(n: int, seed: int, n_series: int = 4, offset: int = 0) -> FloatArray:
    """Diurnal-looking series with different levels, amplitudes and phases, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(offset, offset + n)[:, None]
    phase = np.linspace(0.0, np.pi, n_series)[None, :]
    level = np.array([1e6, 5e5, 0.3, 40.0][:n_series])
    amplitude = 0.2 * level
    wave = level + amplitude * np.sin(2 * np.pi * t / PERIOD + phase)
    return wave + 0.02 * amplitude * rng.standard_normal((n, n_series))


def _small(**params: float) -> ForecastDetector:
    kwargs: dict[str, float] = {"window": 16, "hidden": 32, "epochs": 3, "max_samples": 20_000}
    kwargs.update(params)
    return ForecastDetector(**kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fitted() -> ForecastDetector:
    return _small().fit(_seasonal(800, seed=1))


def test_scores_are_causal(fitted: ForecastDetector) -> None:
    X = _seasonal(200, seed=2, offset=800)
    X[150:, 1] *= 3.0
    full = fitted.score(X)
    for t in (1, 40, 149, 151, 199):
        np.testing.assert_allclose(fitted.score(X[:t]), full[:t], rtol=1e-12, atol=1e-12)


def test_a_break_in_the_pattern_inside_the_normal_range_alarms(fitted: ForecastDetector) -> None:
    # The wave jumps half a period ahead: every value stays within the training
    # range, so only a forecaster can see it.
    X = _seasonal(200, seed=3, offset=800)
    X[120:] = _seasonal(80, seed=3, offset=800 + 120 + PERIOD // 2)
    scores = fitted.score(X)
    assert scores[120:124].max() > fitted.threshold_
    assert np.mean(scores[40:120] > fitted.threshold_) <= 0.05


def test_a_sustained_shift_keeps_alarming_after_its_onset(fitted: ForecastDetector) -> None:
    X = _seasonal(200, seed=4, offset=800)
    X[100:, 2] += 1.0  # +5 amplitudes on the third series, held to the end
    scores = fitted.score(X)
    assert np.all(scores[100:] > fitted.threshold_)
    assert np.all(fitted.contributions(X)[100:].argmax(axis=1) == 2)


def test_missing_values_read_as_no_evidence(fitted: ForecastDetector) -> None:
    X = _seasonal(120, seed=5, offset=800)
    holed = X.copy()
    holed[60:70, 0] = np.nan
    holed[0:5, 3] = np.nan
    contributions = fitted.contributions(holed)
    assert np.all(np.isfinite(contributions))
    assert np.all(np.isfinite(fitted.score(holed)))
    # Gaps raise no alarm the complete data would not raise.
    assert not (fitted.predict(holed) & ~fitted.predict(X)).any()


def test_missing_values_in_training_do_not_break_fit() -> None:
    X = _seasonal(600, seed=6)
    X[::7, 1] = np.nan
    X[:50, 2] = np.nan
    detector = _small().fit(X)
    assert np.isfinite(detector.threshold_)
    assert np.all(np.isfinite(detector.score(_seasonal(100, seed=7, offset=600))))


@pytest.mark.parametrize("level", [0.0, 1.0, 1e9])
def test_a_flat_training_series_does_not_flood_on_small_wiggles(level: float) -> None:
    X = _seasonal(600, seed=8)
    X[:, 3] = level
    detector = _small().fit(X)
    test = _seasonal(200, seed=9, offset=600)
    test[:, 3] = level + 1e-3 * np.sin(np.arange(200)) + 1e-9 * level
    scores = detector.score(test)
    assert np.all(np.isfinite(scores))
    assert np.mean(scores > detector.threshold_) <= 0.05
    test[150:, 3] = level + 10.0 + 0.5 * abs(level)  # and a real change still shows
    assert np.all(detector.score(test)[150:] > detector.threshold_)


def test_fit_rejects_too_few_rows_and_bad_params() -> None:
    with pytest.raises(ValueError, match="more training rows"):
        _small().fit(np.ones((20, 2)))
    with pytest.raises(ValueError, match="window"):
        ForecastDetector(window=1)
    with pytest.raises(ValueError, match="holdout"):
        ForecastDetector(holdout=1.0)
    with pytest.raises(ValueError, match="not fitted"):
        ForecastDetector().score(np.ones((3, 2)))


def test_fit_restores_torch_global_settings() -> None:
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    _small(num_threads=1).fit(_seasonal(300, seed=10))
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_other_seeds_train_other_networks() -> None:
    X = _seasonal(400, seed=11)
    one, two = _small(seed=1).fit(X), _small(seed=2).fit(X)
    assert not np.array_equal(one.weights_, two.weights_)


def test_score_windows_matches_the_batch_contributions(fitted: ForecastDetector) -> None:
    X = _seasonal(120, seed=12, offset=800)
    X[90:, 0] *= 0.5
    X[100, 1] = np.nan
    batch = fitted.contributions(X)
    width = fitted.window + 1
    previous = None
    for t in range(width - 1, X.shape[0]):
        previous = fitted.score_windows(X[t - width + 1 : t + 1].T, previous=previous)
    assert previous is not None
    # The moving averages start at different rows; 100 rows later both have forgotten it.
    np.testing.assert_allclose(previous, batch[-1], rtol=1e-5, atol=1e-6)
    assert previous[1] >= 0


def test_score_windows_serves_other_devices_through_one_network(fitted: ForecastDetector) -> None:
    # A device of the same role with other magnitudes: new normalisation, same weights.
    other = _seasonal(400, seed=13)[:, [1, 0, 3, 2]] * 7.0
    state = SeriesState.concat([fitted.series_state(), fitted.series_state(other)])
    assert len(state) == 8
    mine = _seasonal(fitted.window + 1, seed=14, offset=800)
    theirs = _seasonal(fitted.window + 1, seed=15, offset=400)[:, [1, 0, 3, 2]] * 7.0
    theirs[-1, 2] *= 10.0  # a fault on the other device's third series
    values = fitted.score_windows(np.hstack([mine, theirs]).T, state)
    assert values.shape == (8,)
    assert int(values.argmax()) == 6
    device_scores = top_k_mean(values.reshape(2, 4), fitted.k_)
    assert device_scores[1] > fitted.threshold_ > device_scores[0]


def test_score_windows_rejects_bad_shapes(fitted: ForecastDetector) -> None:
    with pytest.raises(ValueError, match="windows must be"):
        fitted.score_windows(np.ones((4, fitted.window)))
    with pytest.raises(ValueError, match="series states"):
        fitted.score_windows(np.ones((3, fitted.window + 1)))


def test_save_load_round_trip_is_bit_exact(fitted: ForecastDetector, tmp_path: Path) -> None:
    save(fitted, tmp_path)
    loaded = load(tmp_path)
    assert isinstance(loaded, ForecastDetector)
    X = _seasonal(100, seed=16, offset=800)
    np.testing.assert_array_equal(loaded.score(X), fitted.score(X))
    np.testing.assert_array_equal(loaded.contributions(X), fitted.contributions(X))
    np.testing.assert_array_equal(loaded.score_windows(X[-20:].T), fitted.score_windows(X[-20:].T))
    assert (loaded.window, loaded.hidden, loaded.k_) == (fitted.window, fitted.hidden, fitted.k_)


def test_top_k_mean() -> None:
    C = np.array([[1.0, 5.0, 3.0], [0.0, 0.0, 9.0]])
    np.testing.assert_array_equal(top_k_mean(C, 1), [5.0, 9.0])
    np.testing.assert_array_equal(top_k_mean(C, 2), [4.0, 4.5])
    np.testing.assert_array_equal(top_k_mean(C, 10), [3.0, 3.0])
    assert top_k_mean(np.zeros((2, 0)), 3).shape == (2,)


# ---- the cross-channel evidence ---------------------------------------------------


def test_a_series_that_stops_following_its_partners_alarms_only_with_the_cross_term() -> None:
    # Series 1 freezes at its training median: each value stays normal, the forecaster
    # soon expects the flat line, but the other series say where it should be.
    X = _seasonal(800, seed=1)
    test = _seasonal(200, seed=20, offset=800)
    test[100:, 1] = np.median(X[:, 1])
    with_cross = _small().fit(X)
    alone = _small(cross=False).fit(X)
    later = slice(120, 200)
    assert np.mean(with_cross.score(test)[later] > with_cross.threshold_) >= 0.4
    assert np.mean(alone.score(test)[later] > alone.threshold_) <= 0.05
    assert np.mean(with_cross.score(test)[40:100] > with_cross.threshold_) <= 0.05


def test_cross_evidence_lands_on_the_one_shifted_series() -> None:
    from models.forecast import _cross_evidence, _fit_cross

    rng = np.random.default_rng(30)
    mixing = rng.standard_normal((5, 5))
    Z = rng.standard_normal((2000, 5)) @ mixing  # correlated, full rank
    mean, weights = _fit_cross(Z, np.ones(5, dtype=bool))
    scale = np.quantile(np.abs((Z - mean) @ weights), 0.99, axis=0)
    for j in range(5):
        shifted = Z[:50].copy()
        shifted[:, j] += 8.0 * Z[:, j].std()
        c = _cross_evidence(shifted, np.zeros_like(shifted, dtype=bool), mean, weights, scale)
        assert np.mean(c.argmax(axis=1) == j) >= 0.9  # noise can favour a close partner
        assert np.all((c > 0).sum(axis=1) == 1)


def test_cross_evidence_is_a_single_series_per_row(fitted: ForecastDetector) -> None:
    from models.forecast import _cross_evidence, _ffill

    X = _seasonal(120, seed=21, offset=800)
    X[60:, 0] *= 1.3
    Z, missing = _ffill(fitted._normalise(X))
    c = _cross_evidence(fitted._clip(Z), missing, *fitted._fitted_cross())
    assert c.shape == X.shape
    assert np.all((c > 0).sum(axis=1) <= 1)


def test_score_windows_serves_devices_with_other_series_counts(fitted: ForecastDetector) -> None:
    # One network, three devices of 4, 6 and 3 series; each device's cross model is its own.
    six = np.hstack([_seasonal(400, seed=22), _seasonal(400, seed=23)[:, :2] * 3.0])
    three = _seasonal(400, seed=24)[:, [0, 2, 3]]
    states = [fitted.series_state(), fitted.series_state(six), fitted.series_state(three)]
    width = fitted.window + 1
    windows = [
        _seasonal(width, seed=25, offset=800),
        np.hstack([_seasonal(width, seed=26, offset=400), _seasonal(width, seed=27)[:, :2] * 3]),
        _seasonal(width, seed=28, offset=400)[:, [0, 2, 3]],
    ]
    windows[1][-1, 4] = windows[1][-1, 4] * 0.5 + 0.5 * np.median(six[:, 4])
    together = fitted.score_windows(np.hstack(windows).T, SeriesState.concat(states))
    apart = np.concatenate(
        [fitted.score_windows(w.T, s) for w, s in zip(windows, states, strict=True)]
    )
    assert together.shape == (13,)
    np.testing.assert_array_equal(together, apart)
    assert np.all(np.isfinite(together))


def test_flat_lined_devices_score_finite_and_quiet() -> None:
    X = np.ones((300, 3)) * np.array([0.0, 5.0, 1e9])
    detector = _small().fit(X)
    test = X[:100].copy()
    test[50:, 1] = 5.0 + 1e-4
    scores = detector.score(test)
    assert np.all(np.isfinite(scores))
    assert not detector.predict(test[:50]).any()
    assert np.all(np.isfinite(detector.score_windows(test[-20:].T)))
    np.testing.assert_array_equal(detector.cross_weights_, np.zeros((3, 3)))


def test_a_detector_saved_without_the_cross_state_still_loads(
    fitted: ForecastDetector, tmp_path: Path
) -> None:
    save(fitted, tmp_path)
    with np.load(tmp_path / "weights.npz") as weights:
        kept = {k: weights[k] for k in weights.files if not k.startswith("cross_")}
    assert len(kept) < len(weights.files)
    np.savez(tmp_path / "weights.npz", **kept)
    loaded = load(tmp_path)
    assert isinstance(loaded, ForecastDetector)
    X = _seasonal(100, seed=29, offset=800)
    assert np.all(np.isfinite(loaded.score(X)))
    assert np.all(np.isfinite(loaded.score_windows(X[-20:].T)))


def test_fleet_scorer_steps_equal_the_batch_contributions_with_gaps(
    fitted: ForecastDetector,
) -> None:
    X = _seasonal(120, seed=12, offset=800)
    X[90:, 0] *= 0.5
    X[0, 2] = np.nan  # a gap in the very first row: imputed from the median
    X[100, 1] = np.nan
    X[50:53, 3] = np.nan
    batch = fitted.contributions(X)
    scorer = fitted.fleet_scorer()
    steps = np.array([scorer.step(X[t]) for t in range(X.shape[0])])
    # Row by row, from the first: the same context, imputation, gap rule and moving average.
    np.testing.assert_allclose(steps, batch, rtol=1e-5, atol=1e-5)
    assert steps[100, 1] == pytest.approx(batch[100, 1]) and steps[90, 0] > steps[80, 0]


def test_a_fleet_that_grows_keeps_its_devices_state(fitted: ForecastDetector) -> None:
    mine = _seasonal(80, seed=14, offset=800)
    other = _seasonal(400, seed=13)[:, [1, 0, 3, 2]] * 7.0
    theirs = _seasonal(80, seed=15, offset=400)[:, [1, 0, 3, 2]] * 7.0
    own, adapted = fitted.series_state(), fitted.series_state(other)
    alone = fitted.fleet_scorer(own)
    for t in range(40):
        alone.step(mine[t])
    # The other device joins at row 40: the first device goes on where it was.
    both = fitted.fleet_scorer(SeriesState.concat([own, adapted]))
    both.carry(alone, np.array([0, 1, 2, 3, -1, -1, -1, -1]))
    steps = np.array([both.step(np.concatenate([mine[t], theirs[t]])) for t in range(40, 80)])
    np.testing.assert_allclose(steps[:, :4], fitted.contributions(mine)[40:], rtol=1e-5, atol=1e-5)
    newcomer = fitted.fleet_scorer(adapted)
    expected = np.array([newcomer.step(theirs[t]) for t in range(40, 80)])
    np.testing.assert_allclose(steps[:, 4:], expected, rtol=1e-5, atol=1e-5)


def test_a_device_with_too_short_a_history_gets_the_baseline_and_says_why() -> None:
    from models.base import default_registry
    from models.features import DeviceFrames
    from models.registry import fit_device

    detector = ForecastDetector()
    assert detector.min_train_rows == 500  # 100 held-out rows for a 99th percentile
    columns = ("cpu_util_pct", "if_in_bps@eth1", "if_oper_up@eth1", "mem_used_pct")
    for rows, name in ((120, "robust_z"), (520, "forecast")):
        X = _seasonal(rows, seed=3)
        frames = DeviceFrames("pe1", "router", np.arange(rows, dtype=float), columns, X)
        model = fit_device(
            frames, "forecast", default_registry(), {"window": 8, "hidden": 8, "epochs": 1}
        )
        assert model.detector.name == name and model.meta["detector"] == name
        assert ("fallback" in model.meta) is (name == "robust_z")
    assert "needs 500 training rows, had 120" in str(
        fit_device(
            DeviceFrames("pe1", "router", np.arange(120.0), columns, _seasonal(120, seed=3)),
            "forecast",
            default_registry(),
        ).meta["fallback"]
    )
