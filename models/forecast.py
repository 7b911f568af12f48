"""A shared-weight PyTorch forecaster for fleets of telemetry series.

Design, and why:

- **Channel-independent core.** One small MLP reads the last ``window``
  normalised values of *one* series and forecasts the next one (it predicts
  the step from the last value, so a persistent series costs it nothing).
  The same weights serve every series, so the network learns generic
  telemetry dynamics (diurnal ramps, noise, bursts) rather than one device's
  column order. That is what lets one network score a whole role: 10,000
  devices × 50 metrics is a single batched forward pass over 500,000 windows
  (:meth:`ForecastDetector.score_windows`), and a device with new or removed
  interfaces needs no retraining, only its per-series normalisation.
  Cross-channel mixing layers were left out of the network on purpose: their
  weights are tied to one device's column order, which breaks that sharing.
- **Per-series robust normalisation.** Each series is centred on its
  training median and scaled by its IQR (÷ 1.349, the normal-consistent
  factor). The scale falls back to the standard deviation for series that
  mostly sit on one value (IQR 0); a series that never moved in training
  has no spread to scale by, so it gets 5 % of its magnitude (1.0 for a
  series that was exactly 0 throughout) and its score scales are that whole
  unit, not a fraction of it, so later wiggles stay small. The network reads
  values clipped to ``±clip``, so one wild value cannot derail its forecasts.
- **Two pieces of evidence per series, both standardised on training data.**
  The forecast residual catches broken dynamics inside the normal range
  (a spike, a stalled counter, a changed shape); a forecaster, however,
  follows a sustained shift after a step or two, and operators care about
  the whole fault, not only its onset. So each series also carries its
  level deviation from the training median. Each term is divided by its own
  scale, the 99th percentile of its absolute deviation on training data
  (for residuals: the held-out tail of the training block, which the network
  did not fit), never below ``rel_floor`` of the series' normalised spread.
- **Cross-channel evidence, per device, in closed form.** Faults that move a
  series away from what the device's *other* series say it should be, while
  every value stays in its own normal range, escape both terms above. So each
  series also carries ``z_i - E[z_i | z_others]`` under a Gaussian whose
  covariance is fitted on the training head with Ledoit-Wolf shrinkage
  (:func:`_fit_cross`). That is per-device statistics like the normalisation,
  not network weights: the forecaster stays shared, and a device with any
  number of series gets its own model without training. It is standardised by
  its 99th percentile on the held-out tail, measured from 0 (the model's
  centre) so that drift already seen in training widens it. Each row keeps it
  on one series only, the one furthest off (:func:`_cross_evidence`): one
  broken relationship is one piece of evidence, not one per partner.
  A series' contribution is the largest of the three, smoothed by a causal
  exponential moving average (``smooth`` rows) so that one noisy sample does
  not alarm but a sustained fault does.
- **Row score** = mean of the ``top_k`` largest contributions (default
  ``ceil(sqrt(n_features))``): a fault moves a few related metrics (in and
  out rate, errors) and a single noisy metric should not decide alone.
  ``contributions`` are the per-series smoothed standardised deviations, so
  attribution ranks metrics by how far each left its normal forecast.

Causality: the score of row ``t`` uses rows ``≤ t`` only. A block passed to
:meth:`ForecastDetector.score` starts with its first row repeated as left
context (nothing is kept from ``fit``), and the moving average starts at the
first row's value. Missing values (NaN) are imputed with the series' last
value (its median before any value) and contribute 0; a forecast whose
window holds imputed values is not used as evidence (the level term still is),
and a row missing one of its modelled series has no cross evidence.

Determinism: ``fit`` seeds torch and numpy from ``seed``, runs with
deterministic algorithms and ``num_threads`` threads, and restores torch's
global settings afterwards. Training uses the leading ``1 - holdout`` of the
training rows; the held-out tail fits the residual scales. The threshold is
:func:`models.thresholds.calibrate` over the scores of the whole training
block (training data only, one threshold per fitted instance, i.e. per device).

Persistence: :mod:`models.persist` stores the network's parameters as one
flat float32 array (``weights_``) next to the per-series arrays, and
:meth:`ForecastDetector.restore` rebuilds the network; the cross-channel
model is arrays too (``cross_weights_`` is ``n × n``). Scores after a load
equal the saved detector's bit for bit; a detector saved before the cross
term existed loads and scores without it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.signal import lfilter
from torch import nn

from models.base import FloatArray, check_array
from models.thresholds import calibrate

__all__ = ["FleetScorer", "ForecastDetector", "ForecastNet", "SeriesState", "top_k_mean"]

_IQR_TO_SIGMA = 1.349
_BATCH = 512
_SCORE_CHUNK = 262_144  # windows per forward pass when scoring
# Series per forward pass in FleetScorer: activations of 16k series (4 MB) stay in cache,
# which made a 500k-series pass 4× faster than 262k-series chunks on a 2-core EPYC.
_FLEET_CHUNK = 16_384
_HUGE = 1e6  # normalised values are capped here, so scores stay finite


class ForecastNet(nn.Module):
    """``window`` normalised values of one series → the next value (as a step from the last)."""

    def __init__(self, window: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(window, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step: torch.Tensor = self.body(x).squeeze(-1)
        return x[:, -1] + step


@dataclass(frozen=True)
class SeriesState:
    """Per-series fitted state (arrays of length ``n_series``) for :meth:`score_windows`.

    Concatenate states of several devices with :meth:`concat` to score their
    series in one forward pass through a shared network.
    """

    median: FloatArray
    scale: FloatArray
    resid_loc: FloatArray
    resid_scale: FloatArray
    level_loc: FloatArray
    level_scale: FloatArray
    cross_mean: FloatArray
    cross_scale: FloatArray
    cross_active: NDArray[np.bool_]
    #: One square weight matrix per device, its series in order (see :func:`_fit_cross`).
    cross_blocks: tuple[FloatArray, ...]

    @classmethod
    def concat(cls, states: list[SeriesState]) -> SeriesState:
        arrays = {
            f: np.concatenate([getattr(s, f) for s in states])
            for f in cls.__dataclass_fields__
            if f != "cross_blocks"
        }
        blocks = tuple(b for s in states for b in s.cross_blocks)
        return cls(**arrays, cross_blocks=blocks)

    def cross_plan(self) -> list[tuple[NDArray[np.intp], FloatArray]]:
        """The cross-channel products of :meth:`cross` grouped for batching: per series
        count, the series' indices (devices × count) and either one weight matrix the
        devices share or one per device, stacked. Build once, pass to every call."""
        plan: list[tuple[NDArray[np.intp], FloatArray]] = []
        by_size: dict[int, list[tuple[int, FloatArray]]] = {}
        start = 0
        for block in self.cross_blocks:
            size = block.shape[0]
            if size:
                by_size.setdefault(size, []).append((start, block))
            start += size
        for size, members in by_size.items():
            index = np.array([first for first, _ in members], dtype=np.intp)[:, None]
            index = index + np.arange(size, dtype=np.intp)[None, :]
            first_block = members[0][1]
            if all(block is first_block for _, block in members):
                plan.append((index, first_block))
            else:
                plan.append((index, np.stack([block for _, block in members])))
        return plan

    def cross(
        self,
        Zc: FloatArray,
        missing: NDArray[np.bool_],
        plan: list[tuple[NDArray[np.intp], FloatArray]] | None = None,
    ) -> FloatArray:
        """Cross-channel evidence of the newest values ``Zc`` (one per series), device by
        device, as :func:`_cross_evidence` gives it for a row of each device.

        ``plan`` (:meth:`cross_plan`) batches the per-device products; without it they
        run one device at a time."""
        centred = Zc - self.cross_mean
        sizes = np.fromiter((b.shape[0] for b in self.cross_blocks), np.intp)
        if int(sizes.sum()) != Zc.shape[0]:
            raise ValueError(f"cross blocks cover {int(sizes.sum())} series, got {Zc.shape[0]}")
        resid = np.zeros_like(centred)
        if plan is None:
            start = 0
            for block in self.cross_blocks:  # one small product per device, no copies
                stop = start + block.shape[0]
                resid[start:stop] = centred[start:stop] @ block
                start = stop
        else:
            for index, weights in plan:
                rows = centred[index]
                if weights.ndim == 2:
                    resid[index] = rows @ weights
                else:
                    resid[index] = np.matmul(rows[:, None, :], weights)[:, 0, :]
        c = np.abs(resid) / self.cross_scale
        out = np.zeros_like(c)
        sizes = sizes[sizes > 0]
        if sizes.size == 0:
            return out
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        device = np.repeat(np.arange(sizes.size), sizes)
        top = np.maximum.reduceat(c, starts)
        # The first series reaching its device's maximum, as argmax picks it.
        position = np.where(c == top[device], np.arange(c.size), c.size)
        first = np.minimum.reduceat(position, starts)
        ok = ~np.logical_or.reduceat(missing & self.cross_active, starts)
        out[first[ok]] = top[ok]
        return out

    def __len__(self) -> int:
        return int(self.median.shape[0])


def top_k_mean(contributions: FloatArray, k: int) -> FloatArray:
    """Mean of the ``k`` largest values of each row (the row score)."""
    n = contributions.shape[1]
    if n == 0:
        return np.zeros(contributions.shape[0])
    k = max(1, min(k, n))
    if k == 1:
        return np.asarray(contributions.max(axis=1), dtype=np.float64)
    part = np.partition(contributions, n - k, axis=1)[:, n - k :]
    return np.asarray(part.mean(axis=1), dtype=np.float64)


@contextmanager
def _torch_settings(num_threads: int) -> Iterator[None]:
    """Fixed threads and deterministic algorithms, restoring the global settings after."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _ffill(Z: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Forward-fill NaN along axis 0 (leading NaN → 0, the median); also the NaN mask."""
    missing = np.isnan(Z)
    if not missing.any():
        return Z, missing
    idx = np.where(missing, 0, np.arange(Z.shape[0])[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    filled = Z[idx, np.arange(Z.shape[1])[None, :]]
    return np.nan_to_num(filled, nan=0.0), missing


def _tail_scale(values: FloatArray, floor: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Median and 99th percentile of |deviation| per column, never below ``floor``."""
    loc = np.median(values, axis=0)
    spread = np.quantile(np.abs(values - loc), 0.99, axis=0)
    return loc, np.maximum(spread, floor)


def _fit_cross(Zc: FloatArray, active: NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """Mean and weights ``W`` of the cross-channel model, fitted on clipped normalised rows.

    ``(z - mean) @ W`` is, for each series ``i``, ``z_i - E[z_i | z_others]`` under a
    Gaussian whose precision ``P`` is the inverse of the Ledoit-Wolf shrunk covariance:
    ``W[:, i] = P[:, i] / P[i, i]``. Shrinkage keeps ``P`` finite with more series than
    rows and with series that are exact sums of others. Series not ``active`` (flat in
    training) neither predict nor get predicted: their rows and columns of ``W`` are 0.
    """
    from sklearn.covariance import ledoit_wolf

    n = Zc.shape[1]
    mean, weights = np.zeros(n), np.zeros((n, n))
    idx = np.flatnonzero(active & (np.ptp(Zc, axis=0) > 0))
    if idx.size < 2:
        return mean, weights
    sub = Zc[:, idx]
    mean[idx] = sub.mean(axis=0)
    cov, _ = ledoit_wolf(sub - mean[idx], assume_centered=True)
    precision = np.linalg.inv(cov)
    weights[np.ix_(idx, idx)] = precision / np.diag(precision)[None, :]
    return mean, weights


def _cross_evidence(
    Zc: FloatArray,
    missing: NDArray[np.bool_],
    mean: FloatArray,
    weights: FloatArray,
    scale: FloatArray,
) -> FloatArray:
    """Cross-channel evidence: one value per row, on the likeliest culprit series.

    A broken relationship moves the residual of every series taking part in it, and a
    series that drifts alone makes all its partners look wrong; counting it once per
    series would let one fault fill the top-k. So each row keeps one value, the largest
    residual over its ``scale`` (measured on held-out training rows), on its series. With
    one shifted series and Gaussian residuals that is the shifted series (Cauchy-Schwarz:
    ``|P_ij| / sqrt(P_ii) <= sqrt(P_jj)``); where several series are near-exact functions
    of each other it may be a partner of the culprit, which attribution then names with
    it. A row with a missing (imputed) modelled series has none: the imputed value would
    make the others look wrong.
    """
    c = np.abs((Zc - mean) @ weights) / scale
    out = np.zeros_like(c)
    if c.size:
        rows, top = np.arange(c.shape[0]), c.argmax(axis=1)
        out[rows, top] = c[rows, top]
    out[(missing & weights.any(axis=0)).any(axis=1)] = 0.0
    return out


def _robust_scale(X: FloatArray) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Median, IQR-based scale and "never moved" flag per column; floors from its own spread."""
    with np.errstate(all="ignore"):
        median = np.nan_to_num(np.nanmedian(X, axis=0), nan=0.0)
        q75, q25 = np.nanpercentile(X, [75, 25], axis=0)
        std = np.nan_to_num(np.nanstd(X, axis=0), nan=0.0)
    iqr = np.nan_to_num(q75 - q25, nan=0.0) / _IQR_TO_SIGMA
    scale = np.where(iqr > 0, iqr, std)
    magnitude = np.where(median != 0, 0.05 * np.abs(median), 1.0)
    constant = ~(scale > 0)
    return median, np.where(constant, magnitude, scale), constant


class ForecastDetector:
    """Forecast-residual and level detector over a shared-weight MLP; see the module docstring.

    Args:
        window: past values per forecast.
        hidden: width of the MLP's two hidden layers.
        epochs: passes over (at most) ``max_samples`` training windows each.
        max_samples: windows drawn per epoch (series × time pairs).
        lr: Adam learning rate.
        holdout: fraction of training rows (the tail) kept from the network
            to fit the score scales and the threshold.
        smooth: span of the causal moving average of contributions (1 = none).
        top_k: contributions averaged into the row score; 0 = ``ceil(sqrt(n_features))``.
        clip: normalised values are clipped to ``±clip``.
        rel_floor: score scales never go below this fraction of the series' spread.
        cross: add the cross-channel evidence (each series against the value the
            device's other series predict for it); ``False`` scores series alone.
        seed: seeds torch and numpy; the same data and seed give the same scores.
        num_threads: torch threads while fitting and scoring.
        threshold, q, risk: threshold rule, see :func:`models.thresholds.calibrate`.
    """

    name = "forecast"

    def __init__(
        self,
        window: int = 32,
        hidden: int = 64,
        epochs: int = 5,
        max_samples: int = 200_000,
        lr: float = 1e-3,
        holdout: float = 0.2,
        smooth: int = 5,
        top_k: int = 0,
        clip: float = 50.0,
        rel_floor: float = 0.01,
        cross: bool = True,
        seed: int = 0,
        num_threads: int = 2,
        threshold: str = "quantile",
        q: float = 0.99,
        risk: float = 1e-3,
    ) -> None:
        if window < 2:
            raise ValueError(f"window must be at least 2, got {window}")
        if not 0.0 < holdout < 1.0:
            raise ValueError(f"holdout must be in (0, 1), got {holdout}")
        if smooth < 1 or top_k < 0 or epochs < 0:
            raise ValueError("smooth must be ≥ 1, top_k ≥ 0 and epochs ≥ 0")
        if threshold not in ("quantile", "pot"):
            raise ValueError(f"threshold must be 'quantile' or 'pot', got {threshold!r}")
        self.window = window
        self.hidden = hidden
        self.epochs = epochs
        self.max_samples = max_samples
        self.lr = lr
        self.holdout = holdout
        self.smooth = smooth
        self.top_k = top_k
        self.clip = clip
        self.rel_floor = rel_floor
        self.cross = cross
        self.seed = seed
        self.num_threads = num_threads
        self.threshold = threshold
        self.q = q
        self.risk = risk
        self.threshold_ = float("inf")
        self._net = ForecastNet(window, hidden)

    @property
    def min_train_rows(self) -> int:
        """Training rows below which the calibration is not to be trusted.

        The score scales are 99th percentiles over the held-out tail and the threshold
        a ``q`` quantile over all rows: a tail quantile needs ``1 / (1 - q)`` values
        to have one past it, i.e. ``100`` held-out rows for the 99th
        percentile. Fewer, and the scales are the held-out maximum of a few rows, which
        a normal wiggle exceeds. :func:`models.registry.fit_device` trains the
        baseline instead on shorter histories; :meth:`fit` itself still accepts them
        (labelled benchmarks with short training splits).
        """
        scales = math.ceil(1.0 / ((1.0 - 0.99) * self.holdout) - 1e-9)
        threshold = math.ceil(1.0 / (1.0 - self.q) - 1e-9) if self.q < 1.0 else 0
        return max(scales, threshold)

    # ---- fitting -----------------------------------------------------------------

    def fit(self, X: FloatArray) -> Self:
        """Train the network on the head of ``X``; fit scales and threshold on its tail.

        Raises:
            ValueError: ``X`` is not 2-D or too short for ``window`` and ``holdout``.
        """
        X = check_array(X)
        n_rows = X.shape[0]
        n_fit = round(n_rows * (1.0 - self.holdout))
        if n_fit - self.window < 8 or n_rows - n_fit < 8:
            raise ValueError(
                f"need more training rows: {n_rows} leave {n_fit} to train a window of "
                f"{self.window} and {n_rows - n_fit} held out (pass a smaller window)"
            )
        self.n_features_in_ = X.shape[1]
        median, scale, constant = _robust_scale(X[:n_fit])
        self.median_: FloatArray = median
        self.scale_: FloatArray = scale
        Z, _ = _ffill(self._normalise(X))
        with _torch_settings(self.num_threads):
            self._train(self._clip(Z[:n_fit]))
            self.weights_: NDArray[np.float32] = self._flat_weights()
            # Held-out tail, with the training rows before it as left context.
            resid = self._residuals(Z[n_fit - self.window :])[self.window :]
        floor = self._floor(constant)
        self.resid_loc_, self.resid_scale_ = _tail_scale(resid, floor)
        self.level_loc_, self.level_scale_ = _tail_scale(Z, floor)
        cross = self._cross_state(self._clip(Z), n_fit, constant, floor)
        self.cross_mean_, self.cross_weights_, self.cross_scale_ = cross
        self.k_ = self.top_k or math.ceil(math.sqrt(max(self.n_features_in_, 1)))
        self.threshold_ = calibrate(self.score(X), self.threshold, self.q, self.risk)
        return self

    def _train(self, Z: FloatArray) -> None:
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self._net = ForecastNet(self.window, self.hidden)
        view = np.lib.stride_tricks.sliding_window_view(Z, self.window + 1, axis=0)
        pairs = view.reshape(-1, self.window + 1)  # (time × series, window + 1)
        data = torch.from_numpy(np.ascontiguousarray(pairs, dtype=np.float32))
        optimiser = torch.optim.Adam(self._net.parameters(), lr=self.lr)
        self._net.train()
        for _ in range(self.epochs):
            take = min(self.max_samples, data.shape[0])
            order = torch.from_numpy(rng.choice(data.shape[0], size=take, replace=False))
            for start in range(0, take, _BATCH):
                batch = data[order[start : start + _BATCH]]
                optimiser.zero_grad()
                loss = nn.functional.huber_loss(self._net(batch[:, :-1]), batch[:, -1])
                loss.backward()  # type: ignore[no-untyped-call]
                optimiser.step()
        self._net.eval()

    def _cross_state(
        self, Zc: FloatArray, n_fit: int, constant: NDArray[np.bool_], floor: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Cross-channel model on rows ``:n_fit`` of ``Zc``; its residual scales on the rest.

        The scale is the 99th percentile of the held-out residuals' distance from 0, the
        model's own centre, not from their median: a relationship that drifted between
        the two parts of the training data widens its own scale, so slow drift that
        training already showed does not alarm later.
        """
        n = Zc.shape[1]
        if not self.cross:
            return np.zeros(n), np.zeros((n, n)), np.ones(n)
        mean, weights = _fit_cross(Zc[:n_fit], ~constant)
        held_out = np.abs((Zc[n_fit:] - mean) @ weights)
        return mean, weights, np.maximum(np.quantile(held_out, 0.99, axis=0), floor)

    def _floor(self, constant: NDArray[np.bool_]) -> FloatArray:
        """Score-scale floors in normalised units: ``rel_floor`` of the series' spread, or
        1 (its whole fallback scale) for a series that never moved in training."""
        return np.where(constant, 1.0, self.rel_floor)

    # ---- persistence -------------------------------------------------------------

    def _flat_weights(self) -> NDArray[np.float32]:
        return np.concatenate(
            [p.detach().numpy().astype(np.float32).ravel() for p in self._net.parameters()]
        )

    def restore(self) -> None:
        """Rebuild the network from ``weights_`` (called by :func:`models.persist.load`)."""
        self._net = ForecastNet(self.window, self.hidden)
        flat = torch.from_numpy(np.asarray(self.weights_, dtype=np.float32))
        offset = 0
        with torch.no_grad():
            for p in self._net.parameters():
                p.copy_(flat[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
        if offset != flat.numel():
            raise ValueError(
                f"weights_ holds {flat.numel()} values, the network "
                f"(window={self.window}, hidden={self.hidden}) needs {offset}"
            )
        self._net.eval()

    # ---- scoring -----------------------------------------------------------------

    def _check(self, X: Any) -> FloatArray:
        n_features = getattr(self, "n_features_in_", None)
        if n_features is None:
            raise ValueError("ForecastDetector is not fitted; call fit(X) first")
        return check_array(X, n_features)

    def _normalise(self, X: FloatArray) -> FloatArray:
        """Robust-normalised values (finite, ±1e6 at most); NaN stays NaN."""
        return np.clip((X - self.median_) / self.scale_, -_HUGE, _HUGE)

    def _clip(self, Z: FloatArray) -> FloatArray:
        """What the network reads: normalised values within ``±clip``."""
        return np.clip(Z, -self.clip, self.clip)

    def _forecast(self, windows: NDArray[np.float32]) -> FloatArray:
        """Forecasts for ``windows`` (n × window), in chunks, as float64."""
        out = np.empty(windows.shape[0], dtype=np.float64)
        with torch.no_grad():
            for start in range(0, windows.shape[0], _SCORE_CHUNK):
                chunk = torch.from_numpy(windows[start : start + _SCORE_CHUNK])
                out[start : start + chunk.shape[0]] = self._net(chunk).numpy()
        return out

    def _residuals(self, Z: FloatArray) -> FloatArray:
        """Forecast residual of every row of ``Z`` (imputed), the first row repeated as context."""
        clipped = self._clip(Z)
        padded = np.vstack([np.repeat(clipped[:1], self.window, axis=0), clipped])
        view = np.lib.stride_tricks.sliding_window_view(padded[:-1], self.window, axis=0)
        windows = np.ascontiguousarray(view.reshape(-1, self.window), dtype=np.float32)
        forecast = self._forecast(windows).reshape(Z.shape)
        return Z - forecast

    def _fitted_cross(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The cross-channel state; a detector saved before it existed has none (all 0)."""
        weights = getattr(self, "cross_weights_", None)
        if weights is None:
            n = self.n_features_in_
            return np.zeros(n), np.zeros((n, n)), np.ones(n)
        return self.cross_mean_, weights, self.cross_scale_

    def _raw(self, Z: FloatArray, resid: FloatArray, missing: NDArray[np.bool_]) -> FloatArray:
        r = np.abs(resid - self.resid_loc_) / self.resid_scale_
        z = np.abs(Z - self.level_loc_) / self.level_scale_
        c = _cross_evidence(self._clip(Z), missing, *self._fitted_cross())
        if missing.any():
            # A forecast from a window holding imputed values is not evidence.
            gaps = np.cumsum(np.vstack([np.zeros((1, Z.shape[1])), missing]), axis=0)
            lagged = gaps[np.maximum(np.arange(Z.shape[0]) - self.window, 0)]
            r = np.where(gaps[:-1] - lagged > 0, 0.0, r)
        return np.where(missing, 0.0, np.maximum(np.maximum(r, z), c))

    def contributions(self, X: FloatArray) -> FloatArray:
        """Per-series smoothed standardised deviation (forecast residual or level), ≥ 0."""
        X = self._check(X)
        if X.shape[0] == 0:
            return np.zeros_like(X)
        Z, missing = _ffill(self._normalise(X))
        with _torch_settings(self.num_threads):
            resid = self._residuals(Z)
        raw = self._raw(Z, resid, missing)
        if self.smooth > 1:
            alpha = 2.0 / (self.smooth + 1.0)
            initial = (1.0 - alpha) * raw[:1]
            raw, _ = lfilter([alpha], [1.0, alpha - 1.0], raw, axis=0, zi=initial)
        return np.asarray(raw, dtype=np.float64)

    def score(self, X: FloatArray) -> FloatArray:
        """Mean of each row's ``k_`` largest contributions; causal."""
        return top_k_mean(self.contributions(X), self.k_)

    def predict(self, X: FloatArray) -> NDArray[np.bool_]:
        """``score(X) > threshold_``."""
        return self.score(X) > self.threshold_

    # ---- fleet scoring -----------------------------------------------------------

    def series_state(self, X: FloatArray | None = None) -> SeriesState:
        """Per-series state for :meth:`score_windows`.

        Without ``X``: this detector's own fitted series. With ``X`` (rows ×
        series of another device of the same role): normalisation and score
        scales fitted on ``X`` under this detector's network, so the shared
        network serves that device without training.
        """
        self._check(np.zeros((0, getattr(self, "n_features_in_", 0))))
        if X is None:
            mean, weights, cross_scale = self._fitted_cross()
            return SeriesState(
                self.median_,
                self.scale_,
                self.resid_loc_,
                self.resid_scale_,
                self.level_loc_,
                self.level_scale_,
                mean,
                cross_scale,
                np.asarray(weights.any(axis=0), dtype=np.bool_),
                (weights,),
            )
        X = check_array(X)
        if X.shape[0] < self.window + 8:
            raise ValueError(f"need at least {self.window + 8} rows, got {X.shape[0]}")
        median, scale, constant = _robust_scale(X)
        Z, _ = _ffill(np.clip((X - median) / scale, -_HUGE, _HUGE))
        with _torch_settings(self.num_threads):
            resid = self._residuals(Z)[self.window :]
        floor = self._floor(constant)
        resid_loc, resid_scale = _tail_scale(resid, floor)
        level_loc, level_scale = _tail_scale(Z, floor)
        n_fit = round(X.shape[0] * (1.0 - self.holdout))
        mean, weights, cross_scale = self._cross_state(self._clip(Z), n_fit, constant, floor)
        return SeriesState(
            median,
            scale,
            resid_loc,
            resid_scale,
            level_loc,
            level_scale,
            mean,
            cross_scale,
            np.asarray(weights.any(axis=0), dtype=np.bool_),
            (weights,),
        )

    def fleet_scorer(self, state: SeriesState | None = None) -> FleetScorer:
        """A :class:`FleetScorer` of ``state``'s series (default: this detector's own)
        through this detector's network: :meth:`score_windows`, kept up cycle by cycle."""
        self._check(np.zeros((0, getattr(self, "n_features_in_", 0))))
        return FleetScorer(self, state or self.series_state())

    def score_windows(
        self,
        windows: FloatArray,
        state: SeriesState | None = None,
        previous: FloatArray | None = None,
    ) -> FloatArray:
        """Contribution of the newest point of each series, in one batched forward pass.

        Args:
            windows: ``(n_series, L)`` raw values, oldest first, newest last,
                ``L ≥ window + 1`` (only the last ``window + 1`` are read).
                NaN reads as missing: imputed from the series' last value.
            state: one entry per row of ``windows`` (default: this detector's
                fitted series, so ``n_series == n_features_in_``).
            previous: what the last call returned for the same series, to
                continue the moving average (``None`` on the first call).

        Returns:
            ``(n_series,)`` smoothed standardised deviations, the same values
            :meth:`contributions` gives for the newest row of a block. Keep
            them for the next call; a device's score is
            ``top_k_mean(values_of_its_series[None, :], detector.k_)``.
        """
        state = state or self.series_state()
        arr = np.asarray(windows, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] < self.window + 1:
            raise ValueError(
                f"windows must be (n_series, ≥ {self.window + 1}), got shape {arr.shape}"
            )
        if arr.shape[0] != len(state):
            raise ValueError(f"{arr.shape[0]} windows for {len(state)} series states")
        arr = arr[:, -(self.window + 1) :]
        Z = np.clip((arr - state.median[:, None]) / state.scale[:, None], -_HUGE, _HUGE)
        gaps = np.isnan(Z)
        Z, _ = _ffill(Z.T)
        Z = Z.T
        inputs = np.ascontiguousarray(self._clip(Z[:, :-1]), dtype=np.float32)
        with _torch_settings(self.num_threads):
            forecast = self._forecast(inputs)
        newest = Z[:, -1]
        r = np.abs(newest - forecast - state.resid_loc) / state.resid_scale
        z = np.abs(newest - state.level_loc) / state.level_scale
        c = state.cross(self._clip(newest), gaps[:, -1])
        r = np.where(gaps[:, :-1].any(axis=1), 0.0, r)
        raw = np.where(gaps[:, -1], 0.0, np.maximum(np.maximum(r, z), c))
        if previous is None or self.smooth == 1:
            return np.asarray(raw, dtype=np.float64)
        alpha = 2.0 / (self.smooth + 1.0)
        return np.asarray(alpha * raw + (1.0 - alpha) * np.asarray(previous), dtype=np.float64)


class FleetScorer:
    """Scores the newest point of many series through one network, cycle after cycle.

    What :meth:`ForecastDetector.score_windows` gives for a sliding window, without
    re-reading the window: the scorer keeps each series' last ``window`` normalised,
    clipped values in a ring (``float32``, the network's input), its last imputed
    value, how many rows ago it last had a gap, and its last contribution (the moving
    average). A cycle then costs one normalisation of the new values, one forward
    pass and the cross-channel products, batched (:meth:`SeriesState.cross_plan`).
    The ring is never shifted: the first layer's weights are rotated instead, so the
    network reads the ring in time order wherever its oldest slot is.

    It follows :meth:`ForecastDetector.contributions` over the same rows (the first
    row repeated as left context, NaN imputed from the series' last value, no
    forecast evidence from a window holding one, the moving average starting at the
    first row), so a device scored here gets the scores it would get alone, to
    float32 rounding.

    Args:
        detector: a fitted detector (its network and settings).
        state: the series' per-series state (:meth:`ForecastDetector.series_state`,
            or :meth:`SeriesState.concat` of several devices').
    """

    def __init__(self, detector: ForecastDetector, state: SeriesState) -> None:
        self.detector = detector
        self.state = state
        n, w = len(state), detector.window
        self._ring = np.zeros((n, w), dtype=np.float32)
        self._slot = 0  # the ring's oldest slot
        self._last = np.zeros(n)
        self._since_gap = np.full(n, np.inf)  # rows since the last missing value
        #: The last contributions; NaN for a series not scored yet.
        self.previous: FloatArray = np.full(n, np.nan)
        layers = [m for m in detector._net.body if isinstance(m, nn.Linear)]
        if len(layers) != 3:
            raise ValueError("FleetScorer expects ForecastNet's three linear layers")
        self._w1 = layers[0].weight.detach().clone()
        self._b1 = layers[0].bias.detach().clone()
        self._rest = [
            (lay.weight.detach().clone(), lay.bias.detach().clone()) for lay in layers[1:]
        ]
        # Constants of the per-series arithmetic, hoisted out of the cycle.
        self._inv_scale = 1.0 / state.scale
        self._inv_resid = 1.0 / state.resid_scale
        self._inv_level = 1.0 / state.level_scale
        self._plan = state.cross_plan()

    def __len__(self) -> int:
        return len(self.state)

    def carry(self, old: FleetScorer, mapping: NDArray[np.intp]) -> None:
        """Continue series of ``old`` (the same network): series ``j`` here goes on from
        ``old``'s series ``mapping[j]``; ``-1`` marks a new series, which starts afresh.

        For a fleet whose membership changed: devices already scored keep their
        windows, gaps and moving averages.
        """
        kept = mapping >= 0
        src = mapping[kept]
        # Both rings in time order from slot ``self._slot``.
        self._ring[kept] = np.roll(old._ring[src], self._slot - old._slot, axis=1)
        self._last[kept] = old._last[src]
        self._since_gap[kept] = old._since_gap[src]
        self.previous[kept] = old.previous[src]

    def _forecast(self) -> FloatArray:
        """The network's forecast from the ring, read oldest to newest."""
        w = self.detector.window
        order = (np.arange(w) - self._slot) % w  # ring slot j holds time index order[j]
        w1 = self._w1[:, torch.from_numpy(order)]
        ring = torch.from_numpy(self._ring)
        out = np.empty(self._ring.shape[0], dtype=np.float32)
        (w2, b2), (w3, b3) = self._rest
        with torch.inference_mode():
            for start in range(0, ring.shape[0], _FLEET_CHUNK):
                x = ring[start : start + _FLEET_CHUNK]
                h = nn.functional.gelu(nn.functional.linear(x, w1, self._b1))
                h = nn.functional.gelu(nn.functional.linear(h, w2, b2))
                out[start : start + x.shape[0]] = nn.functional.linear(h, w3, b3)[:, 0].numpy()
        # As ForecastNet.forward: the newest input plus the step, in float32.
        out += self._ring[:, (self._slot - 1) % w]
        return np.asarray(out, dtype=np.float64)

    def step(self, newest: FloatArray) -> FloatArray:
        """The contributions of one new value per series (NaN: missing).

        Returns:
            ``(n_series,)`` smoothed standardised deviations; also kept as
            :attr:`previous` for the next call's moving average.
        """
        det, st = self.detector, self.state
        raw = np.asarray(newest, dtype=np.float64)
        if raw.shape != (len(st),):
            raise ValueError(f"expected {len(st)} values, got shape {raw.shape}")
        Z = np.clip((raw - st.median) * self._inv_scale, -_HUGE, _HUGE)
        missing = np.isnan(Z)
        if missing.any():
            Z = np.where(missing, self._last, Z)
        clipped = np.clip(Z, -det.clip, det.clip)
        fresh = np.isnan(self.previous)
        if fresh.any():  # a series' first row, repeated, is its left context
            self._ring[fresh] = clipped[fresh].astype(np.float32)[:, None]
        w = det.window
        with _torch_settings(det.num_threads):
            forecast = self._forecast()
        r = np.abs(Z - forecast - st.resid_loc) * self._inv_resid
        r[self._since_gap <= w] = 0.0
        z = np.abs(Z - st.level_loc) * self._inv_level
        c = st.cross(clipped, missing, self._plan)
        raw_c = np.maximum(np.maximum(r, z), c)
        raw_c[missing] = 0.0
        self._ring[:, self._slot] = clipped
        self._slot = (self._slot + 1) % w
        self._last = Z
        self._since_gap += 1.0
        self._since_gap[missing] = 1.0
        if det.smooth == 1:
            out = raw_c
        else:
            alpha = 2.0 / (det.smooth + 1.0)
            out = np.where(fresh, raw_c, alpha * raw_c + (1.0 - alpha) * self.previous)
        self.previous = out
        return out
