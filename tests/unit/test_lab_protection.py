"""Wavelength protection switching in the lab: the optical model, the topology, the network,
the fault ground truth, and the OpenConfig line-protection knob behind NETCONF (no sockets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pydantic import ValidationError

from autonoc.core.errors import LabError
from lab.faults import FaultInjector
from lab.netconf import Datastore, LabNetworkBackend, RpcError
from lab.netconf.datastore import BASE_NS
from lab.netconf.openconfig import OC_LINE_PROTECTION_NS, OC_PLATFORM_NS
from lab.network import LabNetwork
from lab.optical import OpticalNetwork
from lab.optical import physics as ph
from lab.topology import ChannelSpec, Topology, load_topology, metro_ring
from tests.unit.fakes import FakeClock
from tests.unit.test_netconf_datastore import FakeScheduler

CUT = "span:roadm-a:roadm-b"
HEAD, TAIL = "xp-a1:line1", "xp-c1:line1"  # och-1: p1:eth1 <-> p2:eth1, a->b->c
APS = "//aps:aps-module[aps:name='aps-line1']"
NS = {"aps": OC_LINE_PROTECTION_NS, "plat": OC_PLATFORM_NS}


# The optical model ------------------------------------------------------------------


@pytest.fixture
def optical() -> OpticalNetwork:
    return OpticalNetwork.metro_ring(seed=7, clock=FakeClock())


def test_metro_ring_protects_every_channel_the_other_way_round(optical: OpticalNetwork) -> None:
    snap = optical.snapshot(noise=False)
    och1 = snap.channels["och-1"]
    assert och1.path_ab == ("span-a-b",)
    assert och1.protection_ab == ("span-a-d", "span-d-c", "span-c-b")
    assert och1.protection_ba == ("span-b-c", "span-c-d", "span-d-a")
    for ch in snap.channels.values():
        assert ch.protection_ab, ch.name
        assert not set(ch.path_ab + ch.path_ba) & set(ch.protection_ab + ch.protection_ba)
        assert not ch.on_protection and ch.active_ab == ch.path_ab


def test_switching_moves_the_light_and_back_restores_it_exactly(optical: OpticalNetwork) -> None:
    before = optical.snapshot(noise=False)
    assert optical.channels_on_span("span-a-b") == ("och-1",)
    assert optical.set_protection("xp-a1:line1", secondary=True) == "och-1"
    after = optical.snapshot(noise=False)
    ch = after.channels["och-1"]
    assert ch.on_protection and ch.active_ab == ch.protection_ab and ch.oper_up
    assert optical.channels_on_span("span-a-b") == ()
    assert "och-1" in optical.channels_on_span("span-a-d")
    assert ch.length_km > before.channels["och-1"].length_km
    for port in ("xp-a1:line1", "xp-b1:line1"):
        old, new = before.line_ports[port], after.line_ports[port]
        # Three spans instead of one: more ASE, more dispersion; commissioning set the drop.
        assert new.osnr_db < old.osnr_db - 2.0
        assert new.pre_fec_ber > old.pre_fec_ber
        assert new.cd_ps_nm > 2.5 * old.cd_ps_nm
        assert new.rx_power_dbm == pytest.approx(-8.0, abs=0.5)
        assert new.osnr_db > ph.OSNR_REQUIRED_DB and new.pre_fec_ber < ph.C_FEC_LIMIT
    assert optical.protection("xp-a1:line1") == ("och-1", True)
    optical.set_protection("xp-a1:line1", secondary=False)
    back = optical.snapshot(noise=False)
    assert back.line_ports["xp-b1:line1"] == before.line_ports["xp-b1:line1"]
    assert back.channels["och-1"] == before.channels["och-1"]


def test_a_cut_working_path_is_bypassed_and_stays_cut(optical: OpticalNetwork) -> None:
    optical.fiber_cut("span-a-b")
    optical.fiber_cut("span-b-a")
    assert not optical.snapshot(noise=False).channels["och-1"].oper_up
    optical.set_protection("xp-a1:line1", secondary=True)
    snap = optical.snapshot(noise=False)
    assert snap.channels["och-1"].oper_up
    assert snap.spans["span-a-b"].cut and len(optical.faults()) == 2
    # A cut on the protection path now takes it down: nothing switches by itself.
    optical.fiber_cut("span-d-c")
    assert not optical.snapshot(noise=False).channels["och-1"].oper_up


def test_only_the_head_end_of_a_protected_channel_switches(optical: OpticalNetwork) -> None:
    with pytest.raises(LabError, match=r"far end of 'och-1'.*head end 'xp-a1:line1'"):
        optical.set_protection("xp-b1:line1", secondary=True)
    with pytest.raises(LabError, match="no optical lab line port"):
        optical.set_protection("xp-zz:line1", secondary=True)
    assert optical.protection("xp-b1:line1") is None
    net = OpticalNetwork(clock=FakeClock())
    for roadm in ("r1", "r2"):
        net.add_roadm(roadm)
    net.add_span("span-1-2", "r1", "r2", 50.0)
    net.add_span("span-2-1", "r2", "r1", 50.0)
    net.add_transponder("xp1", "r1")
    net.add_transponder("xp2", "r2")
    net.add_channel("och", 1, "xp1:line1", "xp2:line1", ["span-1-2"])
    with pytest.raises(LabError, match="no protection path"):
        net.set_protection("xp1:line1", secondary=True)


def test_a_protection_path_must_avoid_the_working_spans_and_degrees() -> None:
    net = OpticalNetwork(clock=FakeClock())
    for roadm in ("r1", "r2", "r3"):
        net.add_roadm(roadm)
    for a, b in (("1", "2"), ("2", "3"), ("1", "3")):
        net.add_span(f"span-{a}-{b}", f"r{a}", f"r{b}", 40.0)
        net.add_span(f"span-{b}-{a}", f"r{b}", f"r{a}", 40.0)
    # A second fibre pair between r1 and r2 lands on the same two degrees: not disjoint.
    net.add_span("span-1-2b", "r1", "r2", 45.0)
    net.add_span("span-2-1b", "r2", "r1", 45.0)
    net.add_transponder("xp1", "r1", line_ports=3)
    net.add_transponder("xp2", "r2", line_ports=3)
    net.add_transponder("xp3", "r3", line_ports=3)
    with pytest.raises(LabError, match="shares span 'span-2-3'"):
        net.add_channel(
            "bad",
            1,
            "xp1:line1",
            "xp3:line1",
            ["span-1-2", "span-2-3"],
            protection=["span-1-3", "span-3-2", "span-2-3"],
        )
    with pytest.raises(LabError, match="protection path ends at 'r2'"):
        net.add_channel("bad", 1, "xp1:line1", "xp3:line1", ["span-1-3"], protection=["span-1-2"])
    with pytest.raises(LabError, match="shares span 'span-2-1'"):
        net.add_channel("bad", 1, "xp1:line1", "xp2:line1", ["span-1-2"], protection=["span-1-2b"])
    net.add_channel(
        "och", 1, "xp1:line1", "xp3:line1", ["span-1-3"], protection=["span-1-2", "span-2-3"]
    )
    # Its spectrum is reserved on the protection path too.
    with pytest.raises(LabError, match="overlaps 'och'"):
        net.add_channel("other", 1, "xp1:line2", "xp2:line2", ["span-1-2"])


# Topologies -----------------------------------------------------------------------------


def test_channel_spec_validates_its_protection_path() -> None:
    ends = {"name": "och", "index": 1, "a": "xp1:line1", "b": "xp2:line1"}
    ChannelSpec(**ends, path=("r1", "r2"), protection=("r1", "r3", "r2"))
    with pytest.raises(ValidationError, match="same ROADMs"):
        ChannelSpec(**ends, path=("r1", "r2"), protection=("r1", "r3"))
    with pytest.raises(ValidationError, match="shares the span r2-r1"):
        ChannelSpec(**ends, path=("r1", "r2", "r3"), protection=("r1", "r4", "r2", "r1", "r3"))


def test_metro_ring_topology_protects_every_wavelength_the_other_way() -> None:
    topo = metro_ring(7)
    for ch in topo.channels:
        assert ch.protection is not None
        assert (ch.protection[0], ch.protection[-1]) == (ch.path[0], ch.path[-1])
    och1 = next(c for c in topo.channels if c.name == "och-1")
    assert och1.path == ("roadm-a", "roadm-b", "roadm-c")
    assert och1.protection == ("roadm-a", "roadm-d", "roadm-c")


TRIANGLE = """
name: triangle
routers:
  - {name: r1, role: pe, site: a}
  - {name: r2, role: pe, site: b}
links:
  - {a: r1:eth1, b: r2:eth1, wavelength: och-1}
roadms: [roadm-a, roadm-b, roadm-c]
spans:
  - {a: roadm-a, b: roadm-b, length_km: 60}
  - {a: roadm-b, b: roadm-c, length_km: 50}
  - {a: roadm-a, b: roadm-c, length_km: 55}
transponders:
  - {name: xp-a, roadm: roadm-a}
  - {name: xp-b, roadm: roadm-b}
channels:
  - name: och-1
    index: 1
    a: xp-a:line1
    b: xp-b:line1
    path: [roadm-a, roadm-b]
    protection: [roadm-a, roadm-c, roadm-b]
"""


def test_a_topology_file_uses_the_protection_path_it_gives(tmp_path: Path) -> None:
    path = tmp_path / "triangle.yaml"
    path.write_text(TRIANGLE)
    net = LabNetwork(load_topology(path), clock=FakeClock())
    FaultInjector(net).inject("fiber_cut", "span:roadm-a:roadm-b")
    assert not net.interface("r1", "eth1").oper_up
    net.set_protection("xp-a:line1", secondary=True)
    assert net.interface("r1", "eth1").oper_up and net.interface("r2", "eth1").oper_up
    channel = net.optical_snapshot(noise=False).channels["och-1"]
    assert channel.active_ab == ("span:roadm-a:roadm-c", "span:roadm-c:roadm-b")
    path.write_text(TRIANGLE.replace("[roadm-a, roadm-c, roadm-b]", "[roadm-a, roadm-b]"))
    with pytest.raises(LabError, match=r"line \d+: channels.0: .*shares the span"):
        load_topology(path)


def test_a_topology_file_without_protection_has_no_switch() -> None:
    topo = metro_ring(7)
    bare = topo.model_copy(
        update={"channels": tuple(c.model_copy(update={"protection": None}) for c in topo.channels)}
    )
    net = LabNetwork(Topology.model_validate(bare.model_dump()), clock=FakeClock())
    with pytest.raises(LabError, match="no protection path"):
        net.set_protection(HEAD, secondary=True)
    assert (
        LabNetworkBackend(net).initial_config("xp-a1").find(f"{{{OC_LINE_PROTECTION_NS}}}aps")
        is None
    )


# The network and its ground truth -------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metro(clock: FakeClock) -> LabNetwork:
    network = LabNetwork.preset("metro-ring", seed=7, clock=clock)
    clock.advance(60.0)
    return network


def test_protection_brings_the_ip_link_back_while_the_fibre_stays_cut(
    metro: LabNetwork, clock: FakeClock
) -> None:
    faults = FaultInjector(metro)
    cut = faults.inject("fiber_cut", CUT)
    clock.advance(10.0)
    assert not metro.interface("p1", "eth1").oper_up
    version = metro.config_version("xp-a1")
    metro.set_protection(HEAD, secondary=True)
    clock.advance(10.0)
    assert metro.config_version("xp-a1") > version
    for device in ("p1", "p2"):
        state = metro.interface(device, "eth1")
        assert state.oper_up and state.igp_up
    (session,) = [s for s in metro.bgp_sessions("p1") if s.ifname == "eth1"]
    assert session.state == "established"
    snap = metro.optical_snapshot(noise=False)
    for port in (HEAD, TAIL):
        line = snap.line_ports[port]
        assert line.oper_up and line.rx_power_dbm > -10.0
        assert line.osnr_db > ph.OSNR_REQUIRED_DB and line.pre_fec_ber < ph.C_FEC_LIMIT
    # The ground truth still has the cut: the fibre is broken, the service is not.
    assert [f.id for f in faults.faults()] == [cut.id] and cut.present
    # Switching back puts the link on the cut fibre again.
    metro.set_protection(HEAD, secondary=False)
    assert not metro.interface("p1", "eth1").oper_up
    metro.set_protection(HEAD, secondary=True)
    faults.clear()  # the fibre is spliced: a manual switch does not revert
    assert metro.optical_snapshot(noise=False).channels["och-1"].on_protection
    assert metro.interface("p1", "eth1").oper_up


def test_set_protection_refuses_what_cannot_switch(metro: LabNetwork) -> None:
    with pytest.raises(LabError, match="head end 'xp-a1:line1'"):
        metro.set_protection(TAIL, secondary=True)
    with pytest.raises(LabError, match="no optical layer"):
        LabNetwork.preset("ring4", clock=FakeClock()).set_protection(HEAD, secondary=True)


# NETCONF: openconfig-transport-line-protection ------------------------------------------------


def _aps_edit(body: str, name: str = "aps-line1") -> Any:
    return etree.fromstring(
        f"<config xmlns='{BASE_NS}'><aps xmlns='{OC_LINE_PROTECTION_NS}'><aps-modules>"
        f"<aps-module><name>{name}</name><config>{body}</config></aps-module>"
        "</aps-modules></aps></config>"
    )


def _one(tree: Any, path: str) -> str:
    found = tree.xpath(path, namespaces=NS)
    assert len(found) == 1, (path, found)
    return str(found[0])


@pytest.fixture
def sched() -> FakeScheduler:
    return FakeScheduler()


@pytest.fixture
def head(metro: LabNetwork, sched: FakeScheduler) -> Datastore:
    return Datastore("xp-a1", LabNetworkBackend(metro), sched)


def test_head_end_serves_its_protection_switch(head: Datastore, metro: LabNetwork) -> None:
    config = head.get_config("running")
    assert _one(config, f"{APS}/aps:config/aps:force-to-port/text()") == "NONE"
    assert _one(config, f"{APS}/aps:config/aps:revertive/text()") == "false"
    assert _one(config, "//plat:component[plat:name='aps-line1']/plat:config/plat:name/text()")
    state = head.get()
    assert _one(state, f"{APS}/aps:state/aps:active-path/text()") == "PRIMARY"
    assert _one(state, f"{APS}/aps:state/aps:force-to-port/text()") == "NONE"
    far = Datastore("xp-c1", LabNetworkBackend(metro), FakeScheduler())
    assert not far.get().xpath("//aps:aps", namespaces=NS)  # the far end only follows


def test_force_to_secondary_on_the_candidate_switches_at_commit(
    head: Datastore, metro: LabNetwork, clock: FakeClock
) -> None:
    FaultInjector(metro).inject("fiber_cut", CUT)
    head.edit_config(1, "candidate", _aps_edit("<force-to-port>SECONDARY</force-to-port>"))
    assert not metro.optical_snapshot(noise=False).channels["och-1"].on_protection
    head.commit(1)
    clock.advance(5.0)
    assert metro.optical_snapshot(noise=False).channels["och-1"].on_protection
    assert metro.interface("p1", "eth1").oper_up
    state = head.get()
    assert _one(state, f"{APS}/aps:state/aps:active-path/text()") == "SECONDARY"
    assert _one(state, f"{APS}/aps:state/aps:force-to-port/text()") == "SECONDARY"
    # PRIMARY and NONE both mean the working path: switching is manual.
    for value in ("PRIMARY", "SECONDARY", "NONE"):
        head.edit_config(1, "candidate", _aps_edit(f"<force-to-port>{value}</force-to-port>"))
        head.commit(1)
        assert metro.optical_snapshot(noise=False).channels["och-1"].on_protection is (
            value == "SECONDARY"
        )
        assert _one(head.get_config("running"), f"{APS}//aps:force-to-port/text()") == value


def test_an_unconfirmed_switch_rolls_back_to_the_working_path(
    head: Datastore, metro: LabNetwork, sched: FakeScheduler
) -> None:
    head.edit_config(1, "candidate", _aps_edit("<force-to-port>SECONDARY</force-to-port>"))
    head.commit(1, confirmed=True, timeout=60)
    assert metro.optical_snapshot(noise=False).channels["och-1"].on_protection
    sched.advance(60)
    assert not metro.optical_snapshot(noise=False).channels["och-1"].on_protection
    assert _one(head.get(), f"{APS}/aps:state/aps:active-path/text()") == "PRIMARY"


def test_removing_the_switch_config_means_none(head: Datastore, metro: LabNetwork) -> None:
    head.edit_config(1, "running", _aps_edit("<force-to-port>SECONDARY</force-to-port>"))
    assert metro.optical_snapshot(noise=False).channels["och-1"].on_protection
    head.edit_config(
        1,
        "running",
        etree.fromstring(
            f"<config xmlns='{BASE_NS}' xmlns:nc='{BASE_NS}'><aps xmlns='{OC_LINE_PROTECTION_NS}'"
            " nc:operation='remove'/></config>"
        ),
    )
    assert not metro.optical_snapshot(noise=False).channels["och-1"].on_protection


def test_a_switch_behind_netconfs_back_shows_as_drift(head: Datastore, metro: LabNetwork) -> None:
    metro.set_protection(HEAD, secondary=True)  # a craft terminal, a control-socket call
    assert _one(head.get_config("running"), f"{APS}//aps:force-to-port/text()") == "SECONDARY"
    metro.set_protection(HEAD, secondary=False)
    assert _one(head.get_config("running"), f"{APS}//aps:force-to-port/text()") == "NONE"


@pytest.mark.parametrize(
    ("edit", "leaf"),
    [
        (_aps_edit("<force-to-port>BOTH</force-to-port>"), "force-to-port"),
        (_aps_edit("<revertive>true</revertive>"), "revertive"),
        (_aps_edit("<name>aps-line2</name>"), "name"),
        (_aps_edit("<force-to-port>SECONDARY</force-to-port>", name="aps-line9"), "aps-module"),
    ],
)
def test_invalid_switch_settings_are_refused(
    head: Datastore, metro: LabNetwork, edit: Any, leaf: str
) -> None:
    running = etree.tostring(head.running)
    with pytest.raises(RpcError) as err:
        head.edit_config(1, "running", edit)
    assert err.value.tag == "invalid-value"
    assert ("bad-element", leaf) in err.value.info
    assert etree.tostring(head.running) == running
    assert not metro.optical_snapshot(noise=False).channels["och-1"].on_protection
