"""Correlation: every lab fault kind's alarm flood becomes one incident, rooted where it is."""

from __future__ import annotations

import pytest

from agents.correlate import (
    CorrelatedIncident,
    Correlator,
    CorrelatorConfig,
    MaintenanceWindow,
    correlate,
)
from agents.topology import Topology
from tests.unit import rca_world as w
from tests.unit.fakes import FakeClock

T0 = w.T0


@pytest.fixture(scope="module")
def topo() -> Topology:
    return Topology.from_inventory(w.inventory())


def _one(topo: Topology, stream: w.Stream) -> tuple[CorrelatedIncident, float]:
    incidents, stats = correlate(topo, stream.anomalies, stream.events)
    assert len(incidents) == 1, [i.as_dict(topo) for i in incidents]
    return incidents[0], stats.compression_ratio(len(incidents))


CASES = [
    ("fiber_cut", w.fibre_cut_a_b, "span:roadm-a:roadm-b"),
    ("amplifier_failure", w.amplifier_failure_b_c, "amp-b-c"),
    ("link_down", lambda: w.link_down("pe1", "eth3", "p1", "eth3", ("10.0.0.13", "10.0.0.14")),
     "pe1:eth3"),
    ("link_down", lambda: w.link_down("pe1", "eth1", "p1", "eth1", ("10.0.0.1", "10.0.0.2")),
     "pe1:eth1"),
    ("interface_flap", w.interface_flap, "pe1:eth3"),
    ("crc_errors", w.crc_errors_p1_eth3, "p1:eth3"),
    ("congestion", w.congestion_pe1_eth3, "pe1:eth3"),
    ("bgp_session_down", w.bgp_shut_pe1, "bgp:pe1:10.0.0.14"),
    ("config_drift", w.config_drift_pe1_eth2, "pe1:eth2"),
    ("cpu_runaway", w.cpu_runaway_p1, "p1"),
    ("laser_degradation", w.laser_degradation_xp_a1, "xp-a1:line1"),
    ("osnr_degradation", w.osnr_degradation_amp_b_c, "amp-b-c"),
    ("span_loss", w.span_loss_b_c, "span:roadm-b:roadm-c"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "build", "root"), CASES, ids=[f"{k}-{r}" for k, _, r in CASES])
def test_each_fault_becomes_one_incident_with_its_root(
    topo: Topology, kind: str, build: object, root: str
) -> None:
    stream = build()  # type: ignore[operator]
    incident, _ = _one(topo, stream)
    assert incident.root is not None
    assert (incident.root.component, incident.root.fault_kind) == (root, kind)
    assert incident.root.rules, "a hypothesis says which rules fired"


def test_a_fibre_cut_is_one_incident_rooted_at_the_span_with_the_rest_as_impact(
    topo: Topology,
) -> None:
    stream = w.fibre_cut_a_b()
    incident, ratio = _one(topo, stream)
    root = incident.root
    assert root is not None and root.component == "span:roadm-a:roadm-b"
    assert set(root.aliases) == {"fibre:roadm-a:roadm-b", "span:roadm-b:roadm-a"}
    # Every raw alarm (22: 14 anomalies and 8 traps) landed in the one incident.
    assert incident.raw_alarms == len(stream.anomalies) + len(stream.events) == 22
    assert ratio == 22.0 and ratio > 1
    impact = set(incident.impact(topo))
    assert {"amp-a-b", "amp-b-a", "xp-b1:line1", "pe1:eth1", "p1:eth1"} <= impact
    assert {"bgp:pe1:10.0.0.2", "bgp:pe2:10.0.0.9"} <= impact
    # Traffic that moved onto the patch cord and och-2 joined it rather than opening another.
    assert "p1:eth3" in incident.components and "pe2:eth1" in incident.components
    assert set(topo.services_over(root.component)) == {
        "svc:pe1->p1",
        "svc:pe1->pe2",
        "svc:pe2->pe1",
    }


def test_a_flapping_link_is_damped_into_one_incident(topo: Topology) -> None:
    stream = w.interface_flap(times=8)
    incident, ratio = _one(topo, stream)
    assert incident.flapping == ("p1:eth3", "pe1:eth3")
    assert incident.flaps["pe1:eth3"] == 8  # one down per transition, both ends and polls merged
    assert incident.root is not None and incident.root.fault_kind == "interface_flap"
    assert ratio >= 60  # 64 traps and 2 anomalies


def test_two_bounces_are_not_yet_a_flap(topo: Topology) -> None:
    incident, _ = _one(topo, w.interface_flap(times=2))
    assert incident.flapping == ()
    assert incident.root is not None and incident.root.fault_kind == "link_down"


def test_two_simultaneous_faults_are_two_incidents(topo: Topology) -> None:
    stream = w.crc_errors_p1_eth3().extend(w.span_loss_b_c(T0 + 30.0))
    stream = stream.extend(w.cpu_runaway_p1(T0 + 45.0).extend(w.Stream()))
    incidents, stats = correlate(topo, stream.anomalies, stream.events)
    roots = sorted((i.root.fault_kind, i.root.component) for i in incidents if i.root)
    assert roots == [
        ("cpu_runaway", "p1"),
        ("crc_errors", "p1:eth3"),
        ("span_loss", "span:roadm-b:roadm-c"),
    ]
    assert stats.raw_alarms == len(stream.anomalies)


def test_healthy_noise_raises_no_incident(topo: Topology) -> None:
    stream = w.healthy_noise()
    incidents, stats = correlate(topo, stream.anomalies, stream.events, now=T0 + 3600.0)
    assert incidents == []
    assert stats.raw_alarms == 4 and stats.noise_closed == 4
    assert stats.compression_ratio(0) == 4.0


def test_a_maintenance_window_on_the_span_suppresses_the_cut_it_explains(topo: Topology) -> None:
    stream = w.fibre_cut_a_b()
    window = MaintenanceWindow(
        start=T0 - 60.0, end=T0 + 3600.0, components=("fibre:roadm-a:roadm-b",), reason="splice"
    )
    incidents, stats = correlate(topo, stream.anomalies, stream.events, windows=[window])
    assert incidents == []  # the traffic that moved confirms nothing on its own
    assert stats.suppressed_maintenance == 20 and stats.raw_alarms == 22
    # Outside the window the same flood is an incident again.
    later = w.fibre_cut_a_b(T0 + 7200.0)
    incidents, _ = correlate(topo, later.anomalies, later.events, windows=[window])
    assert len(incidents) == 1


def test_a_maintenance_window_on_a_device_leaves_other_devices_alone(topo: Topology) -> None:
    stream = w.crc_errors_p1_eth3().extend(w.cpu_runaway_p1(T0 + 10.0))
    window = MaintenanceWindow(start=T0, end=T0 + 600.0, devices=("p1",))
    assert correlate(topo, stream.anomalies, windows=[window])[0] == []
    window = MaintenanceWindow(start=T0, end=T0 + 600.0, devices=("pe2",))
    assert len(correlate(topo, stream.anomalies, windows=[window])[0]) == 2


def test_repeats_are_deduplicated_but_counted(topo: Topology) -> None:
    one = w.crc_errors_p1_eth3(polls=1).anomalies[0]
    repeats = [one, one, one]
    incidents, stats = correlate(topo, repeats, config=CorrelatorConfig(strong_ratio=2.0))
    (incident,) = incidents
    assert incident.raw_alarms == 3 and len(incident.evidence) == 1
    assert stats.raw_alarms == 3


def test_an_incident_closes_after_its_window_and_a_new_flood_opens_another(
    topo: Topology,
) -> None:
    clock = FakeClock(T0)
    correlator = Correlator(topo, clock=clock)
    for a in w.cpu_runaway_p1().anomalies:
        correlator.observe_anomaly(a)
    assert correlator.expire() == []
    clock.advance(60.0 + 301.0)
    (closed,) = correlator.expire()
    assert closed.closed and closed.confirmed
    for a in w.cpu_runaway_p1(T0 + 2000.0).anomalies:
        correlator.observe_anomaly(a)
    assert [i.id for i in correlator.incidents()] == ["inc-1", "inc-2"]
    assert [i.id for i in correlator.incidents(include_closed=False)] == ["inc-2"]
    assert correlator.compression_ratio() == 2.0


def test_a_recovery_alone_opens_nothing(topo: Topology) -> None:
    events = [w.trap("pe1", "link_up", "eth3", T0), w.trap("p1", "link_up", "eth3", T0)]
    incidents, stats = correlate(topo, events=events)
    assert incidents == [] and stats.raw_alarms == 2


def test_unknown_devices_are_counted_not_placed(topo: Topology) -> None:
    stray = w.anomaly("ghost", T0, [("cpu_util_pct", "", 9.0, 99.0, 5.0)])
    incidents, stats = correlate(topo, [stray])
    assert incidents == [] and stats.unplaced == 1


def test_correlation_is_deterministic(topo: Topology) -> None:
    stream = w.fibre_cut_a_b().extend(w.crc_errors_p1_eth3(T0 + 5.0))
    first = [i.as_dict(topo) for i in correlate(topo, stream.anomalies, stream.events)[0]]
    again = [i.as_dict(topo) for i in correlate(topo, stream.anomalies, stream.events)[0]]
    assert first == again and len(first) == 2
