"""Metrics against small hand-computed cases, plus VUS-PR against a loop port of TSB-AD."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.metrics import (
    auc_pr,
    event_recall,
    events_from_labels,
    false_alarms_per_day,
    nab_score,
    point_f1,
    vus_pr,
)
from models.thresholds import pot_threshold, quantile_threshold

W = math.sqrt(0.5)  # buffer weight one point from an event when ℓ = 2


def test_events_are_inclusive_runs() -> None:
    assert events_from_labels([1, 1, 0, 0, 1, 0, 1]) == [(0, 1), (4, 4), (6, 6)]
    assert events_from_labels([0, 0]) == []


def test_auc_pr_hand_case_and_no_anomaly() -> None:
    # Ranked: pos (P=1/1), neg, pos (P=2/3): AP = 0.5·1 + 0.5·2/3.
    assert auc_pr([1, 0, 0, 1], [0.9, 0.8, 0.1, 0.2]) == pytest.approx(5 / 6)
    assert math.isnan(auc_pr([0, 0], [0.1, 0.2]))


def test_vus_pr_without_buffer_weighs_recall_by_events_found() -> None:
    # thr .9: TPR = 1/2 recall · 1/2 events = .25, P = 1; thr .2: TPR 1, P = 2/3.
    assert vus_pr([1, 0, 0, 1], [0.9, 0.8, 0.1, 0.2], max_buffer=0) == pytest.approx(0.75)


def test_vus_pr_buffer_credits_an_alarm_just_before_the_event() -> None:
    y, s = [0, 0, 1, 0, 0], [0.0, 1.0, 0.5, 0.2, 0.1]
    # ℓ = 0, 1: the top alarm (index 1) misses: AP = 0·0 + 1·(1/2).
    # ℓ = 2: index 1 weighs W; recall = W / ((2 + W)/2), precision W;
    #        then recall 1 at precision (1 + W)/2.
    r = W / ((2 + W) / 2)
    ap2 = r * W + (1 - r) * (1 + W) / 2
    assert vus_pr(y, s, max_buffer=2) == pytest.approx((0.5 + 0.5 + ap2) / 3)
    assert vus_pr(y, s, max_buffer=0) == pytest.approx(0.5)


def _vus_loop(y: np.ndarray, s: np.ndarray, L: int, thre: int) -> float:
    """Literal loop port of TSB-AD's RangeAUC_volume_opt AP part (slow, reference only)."""
    ev = events_from_labels(y)
    n, P = len(y), y.sum()
    order = -np.sort(-s)
    aps = []
    for w in range(L + 1):
        lab = y.astype(float)
        for a, b in ev:
            for i in range(b + 1, min(b + w // 2 + 1, n)):
                lab[i] += np.sqrt(1 - (i - b) / w)
            for i in range(max(a - w // 2, 0), a):
                lab[i] += np.sqrt(1 - (a - i) / w)
        lab = np.minimum(lab, 1)
        segs, start = [], max(ev[0][0] - w // 2, 0)
        for k in range(len(ev) - 1):
            if ev[k][1] + w // 2 < ev[k + 1][0] - w // 2:
                segs.append((start, ev[k][1] + w // 2))
                start = ev[k + 1][0] - w // 2
        segs.append((start, min(ev[-1][1] + w // 2, n - 1)))
        prev, ap = 0.0, 0.0
        for i in np.linspace(0, n - 1, thre).astype(int):
            pred = (s >= order[i]).astype(float)
            labels = lab * pred
            labels[y == 1] = 1
            tp, n_lab = np.dot(labels, pred), labels.sum()
            exist = sum(pred[a : b + 1].any() for a, b in segs) / len(segs)
            tpr = min(tp / ((P + n_lab) / 2), 1) * exist
            ap += (tpr - prev) * tp / pred.sum()
            prev = tpr
        aps.append(ap)
    return float(np.mean(aps))


@pytest.mark.parametrize("seed", [0, 1])
def test_vus_pr_matches_the_reference_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = np.zeros(120, dtype=int)
    y[30:36] = 1
    y[40:41] = 1
    y[90:100] = 1
    s = rng.random(120) + 0.8 * y
    assert vus_pr(y, s, max_buffer=12, n_thresholds=50) == pytest.approx(
        _vus_loop(y, s, 12, 50), abs=1e-12
    )


def test_vus_pr_perfect_beats_random() -> None:
    rng = np.random.default_rng(2)
    y = np.zeros(500, dtype=int)
    y[100:120] = 1
    y[300:310] = 1
    assert vus_pr(y, y.astype(float) + 0.01 * rng.random(500)) > 0.9
    assert vus_pr(y, rng.random(500)) < 0.3


def test_point_f1_has_no_point_adjustment() -> None:
    # One alarm inside a 4-point event: recall 1/4, not 1.
    result = point_f1([0, 1, 1, 1, 1, 0], [0, 1, 0, 0, 0, 1])
    assert (result.precision, result.recall) == (0.5, 0.25)
    assert result.f1 == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert point_f1([0, 1], [0, 0]).f1 == 0.0
    with pytest.raises(ValueError, match="points"):
        point_f1([0, 1], [0, 1, 1])


def test_event_recall_counts_alarms_in_the_event_or_within_tolerance() -> None:
    t = np.arange(10) * 60.0
    events = [(2, 2), (5, 6)]
    # Event 1 is one point long; its alarm comes one minute after its start.
    alarms = [0, 0, 0, 1, 0, 0, 1, 0, 0, 0]
    strict = event_recall(events, alarms, t, tolerance_s=0.0)
    assert (strict.found, strict.total, strict.delays_s) == (1, 2, (60.0,))
    tolerant = event_recall(events, alarms, t, tolerance_s=60.0)
    assert tolerant.recall == 1.0 and tolerant.delays_s == (60.0, 60.0)


def test_false_alarms_per_day_counts_episodes_outside_anomalies() -> None:
    t = np.arange(1440) * 60.0  # one day at 1-minute cadence
    y = np.zeros(1440, dtype=int)
    y[100:110] = 1
    alarms = np.zeros(1440, dtype=int)
    alarms[105:112] = 1  # touches the anomaly: not false
    alarms[500:503] = 1  # one false episode
    alarms[900] = 1  # another
    assert false_alarms_per_day(y, alarms, t) == pytest.approx(2.0)
    assert false_alarms_per_day(y, alarms, t / 2) == pytest.approx(4.0)


def test_thresholds_come_from_training_scores() -> None:
    scores = np.arange(101, dtype=float)
    assert quantile_threshold(scores, 0.9) == pytest.approx(90.0)
    tail = np.random.default_rng(0).exponential(1.0, 20_000)
    # Exponential tail: the 1e-3 risk quantile is ln(1000) ≈ 6.9.
    assert pot_threshold(tail, risk=1e-3) == pytest.approx(math.log(1000), rel=0.1)
    # Too few excesses for a fit: falls back to the 1 - risk quantile.
    assert pot_threshold(scores, risk=0.05) == pytest.approx(quantile_threshold(scores, 0.95))
    with pytest.raises(ValueError, match="finite"):
        quantile_threshold(np.array([np.nan]), 0.5)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


MAX_TP = 2 * _sigmoid(5) - 1  # NAB's scaledSigmoid(-1) = 0.98661


def test_nab_score_hand_cases_standard_profile() -> None:
    window = [(10, 19)]  # 10 points wide, in 30 scored points
    alarms = np.zeros(30, dtype=int)
    # Never alarm: the null detector, -1 per window; normalised 0.
    null = nab_score(window, alarms)
    assert (null.raw, null.null, null.perfect, null.normalised) == (-1.0, -1.0, 1.0, 0.0)
    # An alarm on the window's first point earns tp = 1: normalised 100.
    first = alarms.copy()
    first[10] = 1
    assert nab_score(window, first).raw == pytest.approx(1.0)
    assert nab_score(window, first).normalised == pytest.approx(100.0)
    # Only the earliest alarm in a window counts; on its last point the
    # position is -(19 - 19 + 1)/10 = -0.1: (2·σ(0.5) - 1) / MAX_TP.
    last = alarms.copy()
    last[[19]] = 1
    assert nab_score(window, last).raw == pytest.approx((2 * _sigmoid(0.5) - 1) / MAX_TP)
    both = alarms.copy()
    both[[10, 19]] = 1
    assert nab_score(window, both).raw == pytest.approx(1.0)
    # A false alarm before any window costs the full fp weight, 0.11.
    early = first.copy()
    early[3] = 1
    assert nab_score(window, early).raw == pytest.approx(1.0 - 0.11)
    # One just after the window costs less: position (20 - 19)/(10 - 1).
    after = first.copy()
    after[20] = 1
    expected = 1.0 + 0.11 * (2 * _sigmoid(-5 / 9) - 1)
    assert nab_score(window, after).raw == pytest.approx(expected)
    # Ten points past the window: position 10/9, nearly the full -0.11.
    far = first.copy()
    far[29] = 1
    assert nab_score(window, far).raw == pytest.approx(1.0 + 0.11 * (2 * _sigmoid(-50 / 9) - 1))
    # Normalisation: 100 · (raw - null) / (perfect - null).
    assert nab_score(window, early).normalised == pytest.approx(100 * (0.89 + 1) / 2)


def test_nab_score_profiles_and_corpus_sum() -> None:
    alarms = np.zeros(20, dtype=int)
    alarms[2] = 1  # false, before the window; the window is missed
    low_fn = nab_score([(10, 14)], alarms, "reward_low_fn_rate")
    assert low_fn.raw == pytest.approx(-2.0 - 0.11) and low_fn.null == -2.0
    low_fp = nab_score([(10, 14)], alarms, "reward_low_fp_rate")
    assert low_fp.raw == pytest.approx(-1.0 - 0.22)
    # Scores add over files before normalising, as NAB's corpus score does.
    hit = np.zeros(20, dtype=int)
    hit[10] = 1
    total = nab_score([(10, 14)], hit) + nab_score([(10, 14)], np.zeros(20))
    assert total.normalised == pytest.approx(100 * (0 + 2) / 4)
    assert math.isnan(nab_score([], alarms).normalised)
    with pytest.raises(ValueError, match="overlap"):
        nab_score([(0, 5), (5, 8)], alarms)


def test_event_recall_counts_from_the_true_start_time() -> None:
    t = np.arange(10) * 10.0
    # The event happened at t = 13 s; the first sample after it is t = 20.
    alarms = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]  # alarm at t = 70
    found = event_recall([(2, 7)], alarms, t, tolerance_s=60.0, start_times=[13.0])
    assert found.delays_s == (57.0,)
    late = event_recall([(2, 3)], alarms, t, tolerance_s=60.0, start_times=[5.0])
    assert late.found == 0  # 70 s is 65 s after the true start
    with pytest.raises(ValueError, match="start times"):
        event_recall([(2, 3)], alarms, t, start_times=[1.0, 2.0])
