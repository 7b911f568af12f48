"""Conformance suite over every registered detector, plus the online scorer.

Like river's ``yield_checks``: each check runs against every name in
:func:`models.base.default_registry`, so a new detector is held to the same
contract (shapes, threshold, scores rise on faults, determinism) the moment
it is registered.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable

import numpy as np
import pytest

from autonoc.core.types import Sample
from models.base import Detector, DetectorRegistry, FloatArray, default_registry
from models.online import OnlineDetector
from models.zscore import RobustZScore

DETECTORS = list(default_registry())
N_FEATURES = 5
N_TRAIN = 600
N_TEST = 200
FAULT_START = 150  # test rows from here on carry the injected fault
FAULT_FEATURE = 2
SIGMAS = np.array([8.0, 12.0, 20.0, 5.0, 10.0])
MEANS = np.array([60.0, 100.0, 150.0, 40.0, 80.0])


def _make(name: str) -> Detector:
    return default_registry().create(name)


def _gaussian(n: int, seed: int) -> FloatArray:
    """Correlated multivariate Gaussian telemetry, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    corr = np.full((N_FEATURES, N_FEATURES), 0.3) + 0.7 * np.eye(N_FEATURES)
    cov = corr * np.outer(SIGMAS, SIGMAS)
    return rng.multivariate_normal(MEANS, cov, size=n)


def _faulty_test_set() -> FloatArray:
    X = _gaussian(N_TEST, seed=2)
    X[FAULT_START:, FAULT_FEATURE] += 10.0 * SIGMAS[FAULT_FEATURE]
    return X


@pytest.fixture(scope="module")
def train() -> FloatArray:
    return _gaussian(N_TRAIN, seed=1)


def test_registry_is_not_empty_and_names_match() -> None:
    assert DETECTORS, "default_registry() registers no detector"
    for name in DETECTORS:
        assert _make(name).name == name


def test_the_pytorch_forecaster_is_registered() -> None:
    assert "forecast" in DETECTORS


def test_registries_are_independent_and_refuse_duplicates() -> None:
    one, two = default_registry(), default_registry()
    one.register("extra", RobustZScore)
    assert "extra" in list(one)
    assert "extra" not in list(two)
    with pytest.raises(ValueError, match="already registered"):
        one.register("extra", RobustZScore)


def test_unknown_detector_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="robust_z"):
        default_registry().create("no-such-detector")
    with pytest.raises(KeyError, match="none"):
        DetectorRegistry().create("anything")


# ---- conformance, per registered detector ---------------------------------------


@pytest.mark.parametrize("name", DETECTORS)
def test_is_a_detector(name: str) -> None:
    assert isinstance(_make(name), Detector)


@pytest.mark.parametrize("name", DETECTORS)
def test_fit_returns_self_and_sets_a_finite_threshold(name: str, train: FloatArray) -> None:
    detector = _make(name)
    assert detector.fit(train) is detector
    assert np.isfinite(detector.threshold_)
    assert detector.threshold_ > 0


@pytest.mark.parametrize("name", DETECTORS)
def test_scores_and_predictions_have_one_value_per_row(name: str, train: FloatArray) -> None:
    detector = _make(name).fit(train)
    X = _faulty_test_set()
    scores = detector.score(X)
    assert scores.shape == (N_TEST,)
    assert np.all(np.isfinite(scores))
    assert detector.predict(X).shape == (N_TEST,)
    assert detector.contributions(X).shape == X.shape


@pytest.mark.parametrize("name", DETECTORS)
def test_scores_rise_on_an_injected_fault(name: str, train: FloatArray) -> None:
    detector = _make(name).fit(train)
    scores = detector.score(_faulty_test_set())
    normal, faulty = scores[:FAULT_START], scores[FAULT_START:]
    assert np.all(faulty > detector.threshold_), "a +10σ step went unnoticed"
    # A floor on quality: at most 2 % false alarms on clean rows.
    assert np.mean(normal > detector.threshold_) <= 0.02
    assert faulty.min() > np.median(normal)


@pytest.mark.parametrize("name", DETECTORS)
def test_contributions_name_the_faulty_feature(name: str, train: FloatArray) -> None:
    detector = _make(name).fit(train)
    contributions = detector.contributions(_faulty_test_set()[FAULT_START:])
    assert np.all(contributions.argmax(axis=1) == FAULT_FEATURE)


@pytest.mark.parametrize("name", DETECTORS)
def test_scores_are_causal(name: str, train: FloatArray) -> None:
    # The score of row t must not change when rows after t are added.
    detector = _make(name).fit(train)
    X = _faulty_test_set()
    full = detector.score(X)
    for t in (1, FAULT_START, FAULT_START + 1):
        np.testing.assert_allclose(detector.score(X[:t]), full[:t], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", DETECTORS)
def test_scores_rise_on_an_injected_spike(name: str, train: FloatArray) -> None:
    detector = _make(name).fit(train)
    X = _gaussian(N_TEST, seed=3)
    X[FAULT_START, FAULT_FEATURE] += 12.0 * SIGMAS[FAULT_FEATURE]
    scores = detector.score(X)
    assert scores[FAULT_START] > detector.threshold_
    # Windowed detectors may score a block's first rows on short context; skip them.
    assert scores[FAULT_START] > np.max(scores[FAULT_START - 100 : FAULT_START])


@pytest.mark.parametrize("name", DETECTORS)
def test_two_fits_give_identical_scores(name: str, train: FloatArray) -> None:
    X = _faulty_test_set()
    first = _make(name).fit(train)
    second = _make(name).fit(train.copy())
    assert first.threshold_ == second.threshold_
    np.testing.assert_array_equal(first.score(X), second.score(X))


@pytest.mark.parametrize("name", DETECTORS)
def test_predict_is_score_above_threshold(name: str, train: FloatArray) -> None:
    detector = _make(name).fit(train)
    X = _faulty_test_set()
    predicted = detector.predict(X)
    assert predicted.dtype == np.bool_
    np.testing.assert_array_equal(predicted, detector.score(X) > detector.threshold_)
    assert predicted[FAULT_START:].all()


@pytest.mark.parametrize("name", DETECTORS)
def test_pickle_round_trip_keeps_scores(name: str, train: FloatArray) -> None:
    detector = _make(name).fit(train)
    loaded = pickle.loads(pickle.dumps(detector))
    X = _faulty_test_set()
    assert loaded.threshold_ == detector.threshold_
    np.testing.assert_array_equal(loaded.score(X), detector.score(X))


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize("shape", [(10, 2, 3), (2, 2, 2, 2)])
def test_fit_rejects_arrays_that_are_not_2d(name: str, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        _make(name).fit(np.ones(shape))


@pytest.mark.parametrize("name", DETECTORS)
def test_score_rejects_arrays_that_are_not_2d(name: str, train: FloatArray) -> None:
    detector = _make(name).fit(train)
    with pytest.raises(ValueError):
        detector.score(np.ones((4, N_FEATURES, 2)))


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize("n_features", [1, N_FEATURES - 1, N_FEATURES + 1])
def test_score_rejects_a_different_number_of_features(
    name: str, n_features: int, train: FloatArray
) -> None:
    # Fitted on 5 features; anything else is a caller's mistake, not data.
    detector = _make(name).fit(train)
    with pytest.raises(ValueError):
        detector.score(np.ones((4, n_features)))


@pytest.mark.parametrize("name", DETECTORS)
def test_score_rejects_a_single_row_passed_as_1d(name: str, train: FloatArray) -> None:
    # One frame as a flat vector must not be scored as N_FEATURES one-feature rows.
    detector = _make(name).fit(train)
    with pytest.raises(ValueError):
        detector.score(train[0])


# ---- RobustZScore specifics ----------------------------------------------------------


def test_robust_z_rejects_too_few_rows_and_bad_quantile() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        RobustZScore().fit(np.ones((1, 3)))
    with pytest.raises(ValueError, match="quantile"):
        RobustZScore(quantile=0.0)


@pytest.mark.parametrize("level", [0.0, 1.0, 1e9])
def test_robust_z_on_flat_training_data_ignores_tiny_changes(level: float) -> None:
    rng = np.random.default_rng(3)
    noisy = rng.normal(100.0, 10.0, size=(50, 1))
    flat = np.full((50, 1), level)
    detector = RobustZScore().fit(np.hstack([flat, noisy]))
    tiny = np.array([[level + 1e-3 + 1e-9 * level, 100.0]])
    score = detector.score(tiny)
    assert np.all(np.isfinite(score))
    assert not detector.predict(tiny).any()
    assert np.all(np.isfinite(detector.contributions(tiny)))


def test_robust_z_on_flat_training_data_still_sees_a_large_change() -> None:
    # A counter that never moved in training (errors/s = 0) and then jumps.
    detector = RobustZScore().fit(np.zeros((30, 1)))
    assert detector.predict(np.array([[50.0]])).all()
    assert not detector.predict(np.array([[0.5]])).any()


def test_robust_z_scale_follows_the_feature_spread_not_its_units() -> None:
    # [0, 1]-normalised KPIs and bit-per-second rates: the same relative fault
    # must score the same, whatever the unit.
    rng = np.random.default_rng(13)
    kpi = 0.3 + 0.01 * rng.standard_normal((500, 1))
    train = np.hstack([kpi, kpi * 1e9])
    detector = RobustZScore().fit(train)
    np.testing.assert_allclose(detector.scale_[1] / detector.scale_[0], 1e9, rtol=1e-9)
    fault = np.array([[0.4, 0.3e9]])  # +10 σ on the KPI only
    assert detector.predict(fault).all()
    assert detector.contributions(fault).argmax() == 0


def test_robust_z_mostly_flat_feature_is_scaled_by_its_spread() -> None:
    # An error rate that is 0 but for rare bursts: MAD 0, standard deviation not.
    train = np.zeros((400, 1))
    train[::50, 0] = 0.02
    detector = RobustZScore().fit(train)
    assert 0 < detector.scale_[0] < 0.02
    assert detector.predict(np.array([[1.0]])).all()


def test_robust_z_missing_values_read_as_no_evidence() -> None:
    detector = RobustZScore().fit(_gaussian(100, seed=4))
    row = MEANS.copy().reshape(1, -1)
    row[0, 1] = np.nan
    assert detector.score(row)[0] == pytest.approx(detector.score(MEANS.reshape(1, -1))[0])
    assert not detector.predict(row).any()


# ---- OnlineDetector ------------------------------------------------------------------

INTERFACES = ("eth0", "eth1", "eth2")
BASE_BPS = {"eth0": 2.0e6, "eth1": 1.0e6, "eth2": 5.0e5}


def _frame(
    device: str,
    ts: float,
    rng: np.random.Generator,
    *,
    overrides: dict[tuple[str, str], float] | None = None,
    drop: Iterable[tuple[str, str]] = (),
    extra: Iterable[Sample] = (),
) -> list[Sample]:
    """One poll of ``device``: in/out bps and error rates per interface, with ±1 % noise."""
    overrides = overrides or {}
    skipped = set(drop)
    samples: list[Sample] = []
    for port in INTERFACES:
        base = BASE_BPS[port]
        values = {
            "if_in_bps": base * (1 + 0.01 * rng.standard_normal()),
            "if_out_bps": 0.8 * base * (1 + 0.01 * rng.standard_normal()),
            "if_in_errors_ps": 0.0,
        }
        for metric, value in values.items():
            if (metric, port) in skipped:
                continue
            value = overrides.get((metric, port), value)
            samples.append(Sample(device, metric, port, ts, value))
    samples.extend(extra)
    return samples


def _warmed(detector: OnlineDetector, device: str, rng: np.random.Generator) -> float:
    ts = 0.0
    for _ in range(detector.warmup):
        ts += 10.0
        assert detector.observe(device, _frame(device, ts, rng)) is None
    return ts


def test_online_detector_stays_quiet_during_warmup() -> None:
    rng = np.random.default_rng(5)
    detector = OnlineDetector(warmup=8)
    for i in range(7):
        # Even a frame that looks like an outage is only training data here.
        frame = _frame("pe1", float(i), rng, overrides={("if_in_bps", "eth1"): 0.0} if i else None)
        assert detector.observe("pe1", frame) is None
        assert not detector.ready("pe1")
    assert detector.observe("pe1", _frame("pe1", 7.0, rng)) is None
    assert detector.ready("pe1")


def test_online_detector_rejects_a_too_short_warmup() -> None:
    with pytest.raises(ValueError, match="warmup"):
        OnlineDetector(warmup=1)


def test_online_detector_names_the_interface_whose_traffic_stopped() -> None:
    rng = np.random.default_rng(6)
    detector = OnlineDetector(warmup=8)
    ts = _warmed(detector, "pe1", rng)
    anomaly = detector.observe(
        "pe1", _frame("pe1", ts + 10.0, rng, overrides={("if_in_bps", "eth1"): 0.0})
    )
    assert anomaly is not None
    assert anomaly.device == "pe1"
    assert anomaly.ts == ts + 10.0
    assert anomaly.score > anomaly.threshold
    assert anomaly.detector == "robust_z"
    top = anomaly.top
    assert top is not None
    assert (top.metric, top.instance) == ("if_in_bps", "eth1")
    assert top.value == 0.0
    assert top.expected == pytest.approx(BASE_BPS["eth1"], rel=0.05)
    assert len(anomaly.attributions) <= detector.max_attributions
    scores = [a.score for a in anomaly.attributions]
    assert scores == sorted(scores, reverse=True)


def test_online_detector_returns_none_for_a_normal_frame() -> None:
    rng = np.random.default_rng(7)
    detector = OnlineDetector(warmup=8)
    ts = _warmed(detector, "pe1", rng)
    for i in range(20):
        assert detector.observe("pe1", _frame("pe1", ts + 10.0 * (i + 1), rng)) is None


def test_online_detector_keeps_devices_apart() -> None:
    rng = np.random.default_rng(8)
    detector = OnlineDetector(warmup=4)
    ts = _warmed(detector, "pe1", rng)
    assert not detector.ready("p1")
    outage = {("if_in_bps", "eth1"): 0.0}
    # p1 is still learning, so its outage-looking frame raises nothing.
    assert detector.observe("p1", _frame("p1", ts, rng, overrides=outage)) is None
    assert detector.observe("pe1", _frame("pe1", ts + 10.0, rng, overrides=outage)) is not None


def test_online_detector_ignores_metrics_it_was_not_given() -> None:
    rng = np.random.default_rng(9)
    detector = OnlineDetector(warmup=4)
    ts = 0.0
    # Frames holding only unwatched metrics neither train nor alarm.
    for _ in range(10):
        ts += 10.0
        status = [Sample("pe1", "if_oper_up", "eth1", ts, 1.0)]
        assert detector.observe("pe1", status) is None
    assert not detector.ready("pe1")
    ts = _warmed(detector, "pe1", rng)
    wild = [
        Sample("pe1", "if_oper_up", "eth1", ts + 10.0, 0.0),
        Sample("pe1", "cpu_pct", "", ts + 10.0, 1e6),
        Sample("pe1", "sys_uptime_s", "", ts + 10.0, 1e12),
    ]
    assert detector.observe("pe1", _frame("pe1", ts + 10.0, rng, extra=wild)) is None


def test_online_detector_custom_metrics_select_what_is_scored() -> None:
    rng = np.random.default_rng(10)
    detector = OnlineDetector(warmup=4, metrics={"if_out_bps"})
    ts = _warmed(detector, "pe1", rng)
    in_outage = {("if_in_bps", "eth1"): 0.0}
    assert detector.observe("pe1", _frame("pe1", ts + 10.0, rng, overrides=in_outage)) is None
    out_outage = {("if_out_bps", "eth2"): 0.0}
    anomaly = detector.observe("pe1", _frame("pe1", ts + 20.0, rng, overrides=out_outage))
    assert anomaly is not None and anomaly.top is not None
    assert (anomaly.top.metric, anomaly.top.instance) == ("if_out_bps", "eth2")


def test_online_detector_survives_a_column_that_vanished_after_fit() -> None:
    rng = np.random.default_rng(11)
    detector = OnlineDetector(warmup=8)
    ts = _warmed(detector, "pe1", rng)
    gone = [(m, "eth2") for m in ("if_in_bps", "if_out_bps", "if_in_errors_ps")]
    # Missing reads as "no evidence", never as zero traffic.
    assert detector.observe("pe1", _frame("pe1", ts + 10.0, rng, drop=gone)) is None
    anomaly = detector.observe(
        "pe1",
        _frame("pe1", ts + 20.0, rng, drop=gone, overrides={("if_in_bps", "eth1"): 0.0}),
    )
    assert anomaly is not None and anomaly.top is not None
    assert (anomaly.top.metric, anomaly.top.instance) == ("if_in_bps", "eth1")
    assert all(a.instance != "eth2" for a in anomaly.attributions)


def test_online_detector_ignores_an_interface_that_appeared_after_fit() -> None:
    rng = np.random.default_rng(12)
    detector = OnlineDetector(warmup=8)
    ts = _warmed(detector, "pe1", rng)
    new_port = [Sample("pe1", "if_in_bps", "eth9", ts + 10.0, 9e12)]
    assert detector.observe("pe1", _frame("pe1", ts + 10.0, rng, extra=new_port)) is None
