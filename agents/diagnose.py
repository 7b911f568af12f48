"""Deterministic diagnosis: from anomalies and fresh state to one root cause.

Rules read the detectors' attributions, the devices' latest telemetry and
the inventory's links. An interface that is administratively down is the
cause; the far end of its link (operationally down, admin up) is impact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from autonoc.core.inventory import Inventory
from autonoc.core.types import Anomaly

__all__ = ["Diagnosis", "Latest", "diagnose"]

#: (metric, instance) -> (ts, value), per device, as the sample store's ``latest`` gives.
Latest = Mapping[str, Mapping[tuple[str, str], tuple[float, float]]]


@dataclass(frozen=True)
class Diagnosis:
    fault_kind: str  # interface_admin_down, link_down, traffic_anomaly
    device: str
    instance: str
    confidence: float
    summary: str
    evidence: tuple[str, ...] = field(default=())
    impact: tuple[str, ...] = field(default=())


def _value(latest: Latest, device: str, metric: str, instance: str) -> float | None:
    entry = latest.get(device, {}).get((metric, instance))
    return None if entry is None else entry[1]


def diagnose(anomalies: Sequence[Anomaly], latest: Latest, inventory: Inventory) -> Diagnosis:
    """Rank the components the anomalies point at and name the most likely cause."""
    if not anomalies:
        raise ValueError("diagnose needs at least one anomaly")
    candidates: list[tuple[str, str]] = []
    for anomaly in anomalies:
        for attribution in anomaly.attributions:
            if attribution.instance:
                key = (anomaly.device, attribution.instance)
                if key not in candidates:
                    candidates.append(key)
    evidence = [
        f"{a.device} {t.metric}@{t.instance} = {t.value:.3g} (expected ≈ {t.expected:.3g}, "
        f"z = {t.score:.1f})"
        for a in anomalies
        for t in a.attributions[:2]
    ]
    # Add far ends: the cause may sit on the side the detector scored lower.
    for device, port in list(candidates):
        peer = inventory.peer(device, port)
        if peer is not None and (peer.device, peer.port) not in candidates:
            candidates.append((peer.device, peer.port))
    for device, port in candidates:
        admin = _value(latest, device, "if_admin_up", port)
        if admin == 0.0:
            peer = inventory.peer(device, port)
            impact = [f"{device}:{port} oper down"]
            if peer is not None:
                peer_oper = _value(latest, peer.device, "if_oper_up", peer.port)
                if peer_oper == 0.0:
                    impact.append(f"{peer.device}:{peer.port} oper down (far end)")
            return Diagnosis(
                fault_kind="interface_admin_down",
                device=device,
                instance=port,
                confidence=0.95,
                summary=f"{device}:{port} is administratively down; traffic on the link stopped",
                evidence=(*evidence, f"{device} if_admin_up@{port} = 0"),
                impact=tuple(impact),
            )
    for device, port in candidates:
        if _value(latest, device, "if_oper_up", port) == 0.0:
            return Diagnosis(
                fault_kind="link_down",
                device=device,
                instance=port,
                confidence=0.7,
                summary=f"{device}:{port} is operationally down with admin up: a link fault",
                evidence=(*evidence, f"{device} if_oper_up@{port} = 0"),
            )
    first = anomalies[0]
    instance = first.top.instance if first.top else ""
    return Diagnosis(
        fault_kind="traffic_anomaly",
        device=first.device,
        instance=instance,
        confidence=0.4,
        summary=f"unusual telemetry on {first.device} {instance} with every interface up",
        evidence=tuple(evidence),
    )
