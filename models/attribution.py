"""Which component an anomaly points at: rank by evidence of a cause, not by loudness.

A detector says how far each metric of a device left normal (its per-metric
contributions). The loudest component is often a consequence, not the cause: when
``pe1:eth1`` dies, its traffic moves onto the idle backup port ``pe1:eth2``,
whose rates jump by decades while ``eth1``'s fall only by as much as the poll
interval had left, and the BGP session over ``eth1`` drops all its prefixes. By
size, the backup port or the BGP peer wins; the cause is ``eth1``.

So each metric's evidence gets a *layer*, lowest first (:class:`Layer`), the way
multi-layer root-cause analysis orders alarms: a failure at a lower layer
explains the symptoms above it, never the reverse.

- **Optical source**: what an optical component reports about itself: laser
  bias, transmit power and temperature of a transponder, an amplifier's pump
  current, gain and output power, a ROADM port's output power.
- **Optical received**: the light and signal quality that reach a component
  from upstream (input or receive power, OSNR, Q, BER, dispersion,
  uncorrectable blocks): evidence that the cause is there or upstream.
- **Port**: an interface's own state and health (oper status, errors,
  discards) and the device's own resources (CPU, memory).
- **Control**: what rides on a port: a BGP session's state and its prefixes.
- **Traffic lost**: a traffic volume that fell: the path through this port
  broke, or what fed it did.
- **Traffic gained**: a traffic volume that rose: load that moved here because
  another path went away, or a surge. It names its component first only when
  nothing else in the row is evidence.

Only *significant* evidence counts for the layer: a state flag (oper status,
BGP state) that flipped (moved by half its range or more), or another metric
whose contribution alone reaches ``significance`` (the detector's threshold,
on its score's scale). Components are ranked by their lowest significant
layer, then by the sum of their contributions; a component with no
significant evidence comes after every one that has some. Anomalies of
several devices in one cycle are ordered the same way (:func:`cause_order`),
so the first names the likeliest cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from models.base import FloatArray
from models.features import split_key

__all__ = [
    "OPTICAL_SOURCE_METRICS",
    "TRAFFIC_METRICS",
    "ComponentEvidence",
    "Layer",
    "cause_order",
    "evidence_layer",
    "rank_components",
]


class Layer(IntEnum):
    """Evidence layers, likeliest cause first (see the module docstring)."""

    OPTICAL_SOURCE = 0
    OPTICAL_RECEIVED = 1
    PORT = 2
    CONTROL = 3
    TRAFFIC_LOST = 4
    TRAFFIC_GAINED = 5
    #: No significant evidence at all.
    NONE = 6


OPTICAL_SOURCE_METRICS = frozenset(
    {
        "opt_tx_power_dbm",
        "opt_laser_bias_ma",
        "opt_module_temp_c",
        "amp_pump_current_ma",
        "amp_gain_db",
        "amp_gain_tilt_db",
        "amp_output_power_dbm",
        "roadm_output_power_dbm",
    }
)
_OPTICAL_PREFIXES = ("opt_", "amp_", "roadm_")
_FLAGS = frozenset({"if_oper_up", "bgp_peer_up"})
_CONTROL = frozenset({"bgp_peer_up", "bgp_prefixes_accepted"})
TRAFFIC_METRICS = frozenset({"if_in_bps", "if_out_bps", "if_in_pps", "if_out_pps"})


def evidence_layer(metric: str, value: float, expected: float) -> Layer:
    """The layer of one metric's evidence; ``value`` and ``expected`` on the same scale
    (the direction only matters for traffic volumes)."""
    if metric in TRAFFIC_METRICS:
        return Layer.TRAFFIC_GAINED if value > expected else Layer.TRAFFIC_LOST
    if metric in _CONTROL:
        return Layer.CONTROL
    if metric in OPTICAL_SOURCE_METRICS:
        return Layer.OPTICAL_SOURCE
    if metric.startswith(_OPTICAL_PREFIXES):
        return Layer.OPTICAL_RECEIVED
    return Layer.PORT


@dataclass(frozen=True, slots=True)
class ComponentEvidence:
    """One component's standing: its lowest significant layer and summed contributions."""

    component: str
    layer: Layer
    total: float


def _significant(metric: str, value: float, expected: float, c: float, level: float) -> bool:
    if metric in _FLAGS and np.isfinite(value) and np.isfinite(expected):
        return abs(value - expected) >= 0.5
    return c >= level


def rank_components(
    columns: Sequence[str],
    contributions: FloatArray,
    values: FloatArray,
    expected: FloatArray,
    significance: float,
) -> list[ComponentEvidence]:
    """Components of one row (columns ``metric@instance``), likeliest cause first.

    Args:
        columns: the row's column keys.
        contributions: per column, how far it left normal (≥ 0; the detector's).
        values: per column, the value on the detector's scale.
        expected: per column, what the detector took as normal, same scale (NaN: unknown).
        significance: a contribution this large is evidence on its own (the threshold).

    Components with no positive contribution are left out.
    """
    layers: dict[str, Layer] = {}
    totals: dict[str, float] = {}
    for key, c, v, e in zip(
        columns, contributions.tolist(), values.tolist(), expected.tolist(), strict=True
    ):
        if not c > 0:
            continue
        metric, instance = split_key(key)
        totals[instance] = totals.get(instance, 0.0) + c
        layer = layers.get(instance, Layer.NONE)
        if _significant(metric, v, e, c, significance):
            layer = min(layer, evidence_layer(metric, v, e))
        layers[instance] = layer
    ranked = [ComponentEvidence(k, layers[k], totals[k]) for k in totals]
    ranked.sort(key=lambda x: (x.layer, -x.total, x.component))
    return ranked


def cause_order(layers: Sequence[Layer], ratios: Sequence[float]) -> list[int]:
    """Indices of anomalies, likeliest cause first: by the layer of their top component,
    then by ``score / threshold`` (largest first)."""
    return sorted(range(len(layers)), key=lambda i: (layers[i], -ratios[i], i))
