"""Deterministic diagnosis for the incident graph: from anomalies and fresh state to one cause.

A thin adapter over root-cause analysis (:mod:`agents.rca`): the anomalies become
evidence on the topology built from the inventory (:mod:`agents.topology`), the
devices' latest telemetry becomes facts (``admin_up``, ``oper_up`` of the ports
the anomalies point at and of their far ends), and the best-ranked hypothesis
is the diagnosis. An interface that is administratively down is its own cause
and the far end of its link is impact; a port down with clean optics is a link
fault; a span, an amplifier, a session or a device is named when the evidence
points there. When no rule fires, the diagnosis says so: ``traffic_anomaly``,
on the component the detector scored first, at low confidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agents.evidence import Evidence, Fact, evidence_from_alarm, evidence_from_anomaly
from agents.rca import Hypothesis, rank
from agents.topology import Kind, Topology
from autonoc.core.inventory import Inventory
from autonoc.core.types import Alarm, Anomaly

__all__ = ["Diagnosis", "Latest", "diagnose", "topology_for"]

#: (metric, instance) -> (ts, value), per device, as the sample store's ``latest`` gives.
Latest = Mapping[str, Mapping[tuple[str, str], tuple[float, float]]]

_STATE_METRICS = (("if_admin_up", "admin_up"), ("if_oper_up", "oper_up"))


@dataclass(frozen=True)
class Diagnosis:
    """The cause, where to act on it, and why.

    ``fault_kind`` is an RCA kind (``interface_admin_down``, ``link_down``,
    ``fiber_cut``, ...) or ``traffic_anomaly`` when no rule fired; ``device`` and
    ``instance`` say where a playbook would act; ``component`` is the topology id of
    the cause (``span:roadm-a:roadm-b``, ``pe1:eth1``); ``hypotheses`` are all of RCA's,
    best first.
    """

    fault_kind: str
    device: str
    instance: str
    confidence: float
    summary: str
    evidence: tuple[str, ...] = field(default=())
    impact: tuple[str, ...] = field(default=())
    component: str = ""
    hypotheses: tuple[Hypothesis, ...] = field(default=())


_cache: list[tuple[Inventory, Topology]] = []


def topology_for(inventory: Inventory) -> Topology:
    """The topology of ``inventory``, built once per inventory object (the last few kept)."""
    for known, topology in _cache:
        if known is inventory:
            return topology
    topology = Topology.from_inventory(inventory)
    _cache.append((inventory, topology))
    del _cache[:-4]
    return topology


def _facts(latest: Latest, topology: Topology, components: Sequence[str]) -> list[Fact]:
    out: list[Fact] = []
    for cid in components:
        comp = topology.component(cid)
        if comp.kind is not Kind.INTERFACE:
            continue
        for metric, name in _STATE_METRICS:
            entry = latest.get(comp.device, {}).get((metric, comp.instance))
            if entry is not None:
                ts, value = entry
                out.append(Fact(cid, name, value >= 0.5, "latest", ts))
    return out


def diagnose(
    anomalies: Sequence[Anomaly],
    latest: Latest,
    inventory: Inventory,
    *,
    events: Sequence[Alarm] = (),
) -> Diagnosis:
    """Rank the causes the anomalies (and device events) point at and name the likeliest.

    Raises:
        ValueError: no anomaly was given.
    """
    if not anomalies:
        raise ValueError("diagnose needs at least one anomaly")
    topology = topology_for(inventory)
    evidence: list[Evidence] = []
    for anomaly in anomalies:
        evidence += evidence_from_anomaly(anomaly, topology)
    for alarm in events:
        evidence += evidence_from_alarm(alarm, topology)
    looked_at: list[str] = []
    for e in evidence:
        for cid in (e.component.id, topology.peer(e.component.id)):
            if cid is not None and cid not in looked_at:
                looked_at.append(cid)
    facts = _facts(latest, topology, looked_at)
    lines = [
        f"{a.device} {t.metric}@{t.instance} = {t.value:.3g} (expected ≈ {t.expected:.3g}, "
        f"z = {t.score:.1f})"
        for a in anomalies
        for t in a.attributions[:2]
    ]
    ranked = rank(evidence, topology, facts=facts)
    if not ranked:
        first = anomalies[0]
        instance = first.top.instance if first.top else ""
        return Diagnosis(
            fault_kind="traffic_anomaly",
            device=first.device,
            instance=instance,
            confidence=0.4,
            summary=f"unusual telemetry on {first.device} {instance} with every interface up",
            evidence=tuple(lines),
            component=topology.component_for(first.device, instance).id,
        )
    top = ranked[0]
    for fact in facts:
        if fact.value is False and (
            fact.component == top.component or fact.component in top.explains
        ):
            comp = topology.component(fact.component)
            metric = "if_admin_up" if fact.name == "admin_up" else "if_oper_up"
            lines.append(f"{comp.device} {metric}@{comp.instance} = 0")
    lines += [line for line in top.evidence if line not in lines]
    return Diagnosis(
        fault_kind=top.fault_kind,
        device=top.device,
        instance=top.instance,
        confidence=top.confidence,
        summary=_summary(top),
        evidence=tuple(lines),
        impact=_impact(top, facts, topology),
        component=top.component,
        hypotheses=tuple(ranked),
    )


_WHAT = {
    "interface_admin_down": "is administratively down; traffic on the link stopped",
    "link_down": "is operationally down with admin up: a link fault",
    "interface_flap": "keeps going down and up",
    "crc_errors": "receives corrupted frames",
    "congestion": "is congested: output discards",
    "config_drift": "lost its routing adjacency while up: configuration drift",
    "bgp_session_down": "is down over a working link: the neighbour is shut in configuration",
    "cpu_runaway": "has a process pinning its CPU",
    "fiber_cut": "is cut: loss of light after it",
    "span_loss": "has extra loss: less light after it",
    "amplifier_failure": "has failed: light in, none out",
    "osnr_degradation": "adds noise: OSNR down with power steady downstream",
    "laser_degradation": "has an ageing laser: bias up, power down",
}


def _summary(top: Hypothesis) -> str:
    what = _WHAT.get(top.fault_kind, top.fault_kind)
    return f"{top.component} {what}"


def _impact(top: Hypothesis, facts: Sequence[Fact], topology: Topology) -> tuple[str, ...]:
    down = {f.component for f in facts if f.name == "oper_up" and f.value is False}
    out: list[str] = []
    if top.component in down:
        out.append(f"{top.component} oper down")
    peer = topology.peer(top.component)
    if peer is not None and peer in down:
        out.append(f"{peer} oper down (far end)")
    for cid in top.explains:
        if cid not in (top.component, peer) and not any(line.startswith(cid) for line in out):
            out.append(f"{cid} (rides on {top.component})")
    return tuple(out)
