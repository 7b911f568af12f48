"""Evidence: one observation about one component, typed, from an anomaly or a device event.

Correlation (:mod:`agents.correlate`) groups evidence into incidents and root-cause
analysis (:mod:`agents.rca`) reasons over it. Both need to know not just *which*
component an observation is about but *what kind* of observation it is, because
that says where the cause can be:

- ``state``: a port or session went down (a trap, or ``if_oper_up``/``bgp_peer_up``
  dropping); ``admin``: a port was shut in configuration;
- ``source``: what an optical element reports about *itself* (laser bias, transmit
  power, an EDFA's gain and pump): the cause is here;
- ``power_in``: light arriving (receive power, an EDFA's or ROADM port's input): the
  cause is here or upstream; ``los`` marks loss of signal;
- ``quality``: signal quality at a receiver (OSNR, Q, BER): noise added upstream;
- ``errors``, ``congestion``, ``resource``, ``control``: a port's corrupted frames, its
  discards and utilisation, a device's CPU and memory, BGP's updates and prefixes;
- ``traffic_lost`` / ``traffic_gained``: volumes that moved: consequences, as a rule.

Device text (trap text, interface descriptions) is carried as :attr:`Evidence.text`,
data only: no rule reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agents.topology import Component, Topology
from autonoc.core.types import Alarm, Anomaly
from models.attribution import OPTICAL_SOURCE_METRICS, TRAFFIC_METRICS

__all__ = [
    "LOS_DBM",
    "PRIMARY",
    "Evidence",
    "EvidenceClass",
    "Fact",
    "classify",
    "evidence_from_alarm",
    "evidence_from_anomaly",
]

#: Received power at or below this is loss of signal (the lab floors rx at −40 dBm and an
#: EDFA's input at −50 dBm; real receivers lose lock around −25 to −30 dBm).
LOS_DBM = -30.0
#: Attributions weaker than this fraction of an anomaly's strongest are not evidence.
_WEAK = 0.2


class EvidenceClass(StrEnum):
    STATE = "state"
    ADMIN = "admin"
    SOURCE = "source"
    POWER_IN = "power_in"
    QUALITY = "quality"
    ERRORS = "errors"
    CONGESTION = "congestion"
    RESOURCE = "resource"
    CONTROL = "control"
    TRAFFIC_LOST = "traffic_lost"
    TRAFFIC_GAINED = "traffic_gained"
    #: An "up" event or recovery: it clears rather than accuses.
    CLEAR = "clear"
    OTHER = "other"


#: Classes that can open an incident on their own; the rest only join one.
PRIMARY = frozenset(
    {
        EvidenceClass.STATE,
        EvidenceClass.ADMIN,
        EvidenceClass.SOURCE,
        EvidenceClass.POWER_IN,
        EvidenceClass.QUALITY,
        EvidenceClass.ERRORS,
        EvidenceClass.CONGESTION,
        EvidenceClass.RESOURCE,
        EvidenceClass.TRAFFIC_LOST,
    }
)

_SOURCE = OPTICAL_SOURCE_METRICS  # what an optical part reports about itself
_POWER_IN = frozenset({"opt_rx_power_dbm", "amp_input_power_dbm", "roadm_input_power_dbm"})
_QUALITY = frozenset(
    {"opt_osnr_db", "opt_q_db", "opt_pre_fec_ber", "opt_post_fec_uncorrectable", "opt_cd_ps_nm"}
)
_TRAFFIC = TRAFFIC_METRICS
_CONGESTION = frozenset({"if_out_discards_ps", "if_in_discards_ps", "if_out_util", "if_in_util"})
_RESOURCE = frozenset({"cpu_util_pct", "mem_used_pct", "mem_used_bytes"})


def classify(metric: str, value: float, expected: float) -> EvidenceClass:
    """The class of a metric's departure from ``expected`` to ``value``."""
    if metric in ("if_oper_up", "bgp_peer_up"):
        return EvidenceClass.STATE if value < expected else EvidenceClass.CLEAR
    if metric == "bgp_peer_state":
        return EvidenceClass.STATE if value < 6 else EvidenceClass.CLEAR
    if metric == "if_admin_up":
        return EvidenceClass.ADMIN if value < expected else EvidenceClass.CLEAR
    if metric in ("if_in_errors_ps", "if_out_errors_ps"):
        return EvidenceClass.ERRORS if value > expected else EvidenceClass.OTHER
    if metric in _CONGESTION:
        return EvidenceClass.CONGESTION if value > expected else EvidenceClass.OTHER
    if metric in _TRAFFIC:
        return EvidenceClass.TRAFFIC_GAINED if value > expected else EvidenceClass.TRAFFIC_LOST
    if metric in _RESOURCE:
        return EvidenceClass.RESOURCE if value > expected else EvidenceClass.OTHER
    if metric in _SOURCE:
        return EvidenceClass.SOURCE
    if metric in _POWER_IN:
        return EvidenceClass.POWER_IN
    if metric in _QUALITY:
        return EvidenceClass.QUALITY
    if metric.startswith("bgp_"):
        return EvidenceClass.CONTROL
    return EvidenceClass.OTHER


@dataclass(frozen=True, slots=True)
class Evidence:
    """One observation about one component.

    ``what`` is the metric (``if_in_errors_ps``) or event kind (``link_down``);
    ``value``/``expected`` are the metric's reading and what was normal (None for
    events); ``strength`` is the detector's contribution (events: 1.0 per event,
    as sure as telemetry gets); ``source`` says where it came from (``anomaly:<detector>``
    or ``event``); ``text`` is device text, quoted data only.
    """

    component: Component
    cls: EvidenceClass
    what: str
    ts: float
    source: str
    value: float | None = None
    expected: float | None = None
    strength: float = 1.0
    text: str = ""

    @property
    def los(self) -> bool:
        """Loss of signal: received power at the floor."""
        return (
            self.cls is EvidenceClass.POWER_IN and self.value is not None and self.value <= LOS_DBM
        )

    @property
    def drop(self) -> float:
        """How far the value fell below normal (0 when it rose or is unknown)."""
        if self.value is None or self.expected is None:
            return 0.0
        return max(0.0, self.expected - self.value)

    @property
    def rise(self) -> float:
        if self.value is None or self.expected is None:
            return 0.0
        return max(0.0, self.value - self.expected)

    def describe(self) -> str:
        """One line for people: where, what, and the numbers (never device text)."""
        where = self.component.id
        if self.value is None:
            return f"{where}: {self.what} ({self.source}) at {self.ts:.0f}"
        expected = f" (normal ≈ {self.expected:.3g})" if self.expected is not None else ""
        return f"{where}: {self.what} = {self.value:.3g}{expected} ({self.source}) at {self.ts:.0f}"


def evidence_from_anomaly(anomaly: Anomaly, topology: Topology) -> list[Evidence]:
    """One piece of evidence per meaningful attribution of ``anomaly``.

    Attributions much weaker than the anomaly's strongest are left out; a device the
    topology does not know gives no evidence (it cannot be placed).
    """
    if topology.role(anomaly.device) is None:
        return []
    top = max((a.score for a in anomaly.attributions), default=0.0)
    out: list[Evidence] = []
    for attribution in anomaly.attributions:
        if top > 0 and attribution.score < _WEAK * top:
            continue
        component = topology.component_for(anomaly.device, attribution.instance)
        cls = classify(attribution.metric, attribution.value, attribution.expected)
        out.append(
            Evidence(
                component=component,
                cls=cls,
                what=attribution.metric,
                ts=anomaly.ts,
                source=f"anomaly:{anomaly.detector}",
                value=attribution.value,
                expected=attribution.expected,
                strength=attribution.score,
            )
        )
    if not out:
        # No attributions: the device as a whole, at the anomaly's own strength.
        component = topology.component_for(anomaly.device, anomaly.component)
        out.append(
            Evidence(
                component=component,
                cls=EvidenceClass.OTHER,
                what="anomaly",
                ts=anomaly.ts,
                source=f"anomaly:{anomaly.detector}",
                strength=anomaly.score / anomaly.threshold if anomaly.threshold > 0 else 1.0,
            )
        )
    return out


_EVENT_CLASS = {
    "link_down": EvidenceClass.STATE,
    "bgp_down": EvidenceClass.STATE,
    "link_up": EvidenceClass.CLEAR,
    "bgp_up": EvidenceClass.CLEAR,
}


def evidence_from_alarm(alarm: Alarm, topology: Topology) -> list[Evidence]:
    """The evidence of one device event (a trap's alarm); none from unknown devices."""
    if topology.role(alarm.device) is None:
        return []
    component = topology.component_for(alarm.device, alarm.instance)
    return [
        Evidence(
            component=component,
            cls=_EVENT_CLASS.get(alarm.kind, EvidenceClass.OTHER),
            what=alarm.kind,
            ts=alarm.ts,
            source="event",
            text=alarm.text,
        )
    ]


@dataclass(frozen=True, slots=True)
class Fact:
    """A reading a diagnostic tool made (:mod:`agents.tools`), with its provenance.

    ``name`` is what was read (``mtu``, ``admin_up``, ``bgp_enabled``,
    ``recent_config_change``), ``value`` what it said, ``source`` how (``netconf``,
    ``snmp``, ``audit``) and ``ts`` when. Text values are device text: data only.
    """

    component: str
    name: str
    value: float | str | bool
    source: str
    ts: float
