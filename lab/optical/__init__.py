"""A pure-Python DWDM line system: ROADMs, spans, EDFAs and 400ZR transponders.

No sockets: the model computes link budgets (power, OSNR, BER, Q, CD) from its
configuration, and faults change that configuration. Start with
:meth:`OpticalNetwork.metro_ring`; read it with :meth:`OpticalNetwork.snapshot`.

- :mod:`lab.optical.physics`: one pure function per physical step.
- :mod:`lab.optical.model`: elements, propagation, faults and remediation knobs.
- :mod:`lab.optical.state`: the frozen snapshot types and the :data:`METRICS` table.
- :mod:`lab.optical.presets`: named topologies.
"""

from __future__ import annotations

from lab.optical.model import FULL_LOAD, Fault, FaultKind, OpticalNetwork
from lab.optical.state import (
    METRICS,
    AmplifierState,
    ChannelState,
    ClientPortState,
    DegreeState,
    Element,
    LinePortState,
    MetricSpec,
    OpticalSnapshot,
    RoadmState,
    SpanState,
    metric_values,
)

__all__ = [
    "FULL_LOAD",
    "METRICS",
    "AmplifierState",
    "ChannelState",
    "ClientPortState",
    "DegreeState",
    "Element",
    "Fault",
    "FaultKind",
    "LinePortState",
    "MetricSpec",
    "OpticalNetwork",
    "OpticalSnapshot",
    "RoadmState",
    "SpanState",
    "metric_values",
]
