"""The lab's network model: counters, routing, BGP, optics and service health on a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from autonoc.core.errors import LabError
from autonoc.core.inventory import LinkKind, Role
from lab.network import COUNTER32_MODULUS, IGP_MAX_METRIC, Event, LabNetwork, counter32
from lab.topology import generate, load_topology, resolve_topology
from tests.unit.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def net(clock: FakeClock) -> LabNetwork:
    return LabNetwork.preset("ring4", seed=7, clock=clock)


@pytest.fixture
def metro(clock: FakeClock) -> LabNetwork:
    network = LabNetwork.preset("metro-ring", seed=7, clock=clock)
    clock.advance(60.0)
    return network


def test_ring4_has_the_routers_and_interfaces_it_promises(net: LabNetwork) -> None:
    assert set(net.device_names) == {"pe1", "pe2", "p1", "p2"}
    names = {d: {s.name for s in net.interfaces(d)} for d in net.device_names}
    assert names["pe1"] == names["pe2"] == {"lo0", "eth1", "eth2", "eth3"}
    assert names["p1"] == names["p2"] == {"lo0", "eth1", "eth2"}
    assert net.peer("pe1", "eth1") == ("p1", "eth1")
    assert net.peer("p1", "eth1") == ("pe1", "eth1")
    assert net.peer("pe1", "eth3") is None
    for device in net.device_names:
        indexes = [s.if_index for s in net.interfaces(device)]
        assert indexes == sorted(set(indexes))
        for s in net.interfaces(device):
            assert len(s.mac) == 6
            assert s.admin_up and s.oper_up
            if s.name != "lo0":
                assert s.speed_bps >= 100_000_000_000


def test_metro_ring_has_optics_under_six_routers(metro: LabNetwork) -> None:
    roles = [metro.device(n).role for n in metro.device_names]
    assert roles.count(Role.ROUTER) == 6
    assert roles.count(Role.ROADM) == 4
    assert roles.count(Role.AMPLIFIER) == 8  # one EDFA per fibre direction
    assert roles.count(Role.TRANSPONDER) == 16
    assert metro.link_wavelength("p1", "eth1") == "och-1"
    assert metro.link_wavelength("pe1", "eth1") is None  # a patch cord within site a
    snap = metro.optical_snapshot()
    for port in snap.line_ports.values():
        assert -12.0 < port.rx_power_dbm < -4.0
        assert port.osnr_db > 26.0  # OPTICS.md: minimum OSNR for 400ZR
        assert port.pre_fec_ber < 1.25e-2
    for amp in snap.amplifiers.values():
        assert 15.0 <= amp.gain_db <= 27.0
    assert metro.health().ok
    inventory = metro.to_inventory("127.0.0.1", dict.fromkeys(metro.device_names, 161), "c")
    assert len(inventory.devices) == 34
    assert sum(1 for link in inventory.links if link.kind is LinkKind.FIBER) == 4


def test_counters_grow_with_the_demands(net: LabNetwork, clock: FakeClock) -> None:
    before = net.interface("pe1", "eth3")
    clock.advance(10.0)
    after = net.interface("pe1", "eth3")
    for field in ("in_octets", "out_octets"):
        bps = (getattr(after, field) - getattr(before, field)) * 8 / 10.0
        # pe1's access port carries its demands: 6-8 Gb/s at peak, 35 % at the trough.
        assert 1.5e9 < bps < 9e9, (field, bps)
    assert after.in_ucast_pkts > before.in_ucast_pkts
    assert after.in_errors - before.in_errors <= (after.in_ucast_pkts - before.in_ucast_pkts) / 1e6
    assert net.sys_uptime("pe1") == 1000


def test_ecmp_splits_traffic_over_equal_cost_paths(net: LabNetwork, clock: FakeClock) -> None:
    clock.advance(30.0)
    direct = net.interface("pe1", "eth2").out_bps
    around = net.interface("pe1", "eth1").out_bps
    assert direct == pytest.approx(around, rel=0.01)
    assert direct > 1e9


def test_the_same_seed_gives_the_same_network(clock: FakeClock) -> None:
    a = LabNetwork.preset("ring4", seed=3, clock=clock)
    b = LabNetwork.preset("ring4", seed=3, clock=clock)
    clock.advance(60.0)
    assert a.interface("p1", "eth2") == b.interface("p1", "eth2")


def test_link_ends_carry_mirrored_traffic(net: LabNetwork, clock: FakeClock) -> None:
    clock.advance(30.0)
    a = net.interface("pe1", "eth1")
    b = net.interface("p1", "eth1")
    assert a.out_octets == pytest.approx(b.in_octets, rel=0.001)
    assert a.in_octets == pytest.approx(b.out_octets, rel=0.001)


def test_hc_counters_are_monotonic(net: LabNetwork, clock: FakeClock) -> None:
    last = net.interface("p2", "eth1")
    for _ in range(300):
        clock.advance(0.37)
        now = net.interface("p2", "eth1")
        assert now.in_octets >= last.in_octets
        assert now.out_octets >= last.out_octets
        assert now.in_ucast_pkts >= last.in_ucast_pkts
        last = now


def test_a_clock_stepping_back_does_not_rewind_counters(net: LabNetwork, clock: FakeClock) -> None:
    clock.advance(100.0)
    high = net.interface("pe1", "eth1").in_octets
    clock.advance(-50.0)
    assert net.interface("pe1", "eth1").in_octets >= high


def test_counter32_view_wraps(net: LabNetwork, clock: FakeClock) -> None:
    clock.advance(600.0)
    state = net.interface("pe1", "eth3")
    assert state.in_octets > COUNTER32_MODULUS
    wrapped = counter32(state.in_octets)
    assert 0 <= wrapped < COUNTER32_MODULUS < state.in_octets
    assert (state.in_octets - wrapped) % COUNTER32_MODULUS == 0
    assert counter32(COUNTER32_MODULUS + 5) == 5


def test_admin_down_takes_the_peer_oper_down_and_moves_traffic(
    net: LabNetwork, clock: FakeClock
) -> None:
    events: list[Event] = []
    net.subscribe(events.append)
    clock.advance(5.0)
    net.set_admin_status("pe1", "eth1", up=False)
    near, far = net.interface("pe1", "eth1"), net.interface("p1", "eth1")
    assert (near.admin_up, near.oper_up) == (False, False)
    assert (far.admin_up, far.oper_up) == (True, False)
    assert near.last_change == far.last_change == 500
    assert {(e.device, e.kind) for e in events} >= {
        ("pe1", "link_down"),
        ("p1", "link_down"),
        ("pe1", "bgp_down"),
        ("p1", "bgp_down"),
    }

    clock.advance(60.0)
    near2 = net.interface("pe1", "eth1")
    assert near2.in_octets == near.in_octets and near2.out_octets == near.out_octets
    # All of pe1's traffic now takes the direct link, and nothing is lost.
    assert net.interface("pe1", "eth2").out_bps > 3e9
    assert not net.health().lossy_demands

    net.set_admin_status("pe1", "eth1", up=True)
    clock.advance(10.0)
    back = net.interface("p1", "eth1")
    assert back.oper_up and back.last_change == 6500
    assert net.health().ok


def test_igp_metric_change_moves_traffic(net: LabNetwork, clock: FakeClock) -> None:
    clock.advance(10.0)
    assert net.interface("pe1", "eth1").out_bps > 1e9
    net.set_igp_metric("pe1", "eth1", IGP_MAX_METRIC)
    clock.advance(10.0)
    assert net.interface("pe1", "eth1").out_bps < 1e6  # only routing chatter is left
    with pytest.raises(LabError, match="not an IP link"):
        net.set_igp_metric("pe1", "eth3", 10)


def test_mtu_mismatch_drops_the_adjacency_but_not_the_link(
    net: LabNetwork, clock: FakeClock
) -> None:
    net.set_mtu("p1", "eth2", 1500)
    clock.advance(10.0)
    state = net.interface("p1", "eth2")
    assert state.oper_up and not state.igp_up
    assert net.interface("p1", "eth2").out_bps < 1e6
    net.set_mtu("p1", "eth2", 9000)
    clock.advance(10.0)
    assert net.interface("p1", "eth2").igp_up


def test_bgp_neighbour_shutdown_and_reenable(net: LabNetwork, clock: FakeClock) -> None:
    (session,) = [s for s in net.bgp_sessions("pe1") if s.ifname == "eth1"]
    assert session.state == "established" and session.prefixes_received > 0
    net.set_bgp_neighbor("pe1", session.peer_address, False)
    (down,) = [s for s in net.bgp_sessions("pe1") if s.ifname == "eth1"]
    assert down.state == "idle" and down.prefixes_received == 0
    assert f"bgp:pe1:{session.peer_address}" in net.health().bgp_down
    net.set_bgp_neighbor("pe1", session.peer_address, True)
    (up,) = [s for s in net.bgp_sessions("pe1") if s.ifname == "eth1"]
    assert up.state == "established" and up.transitions == session.transitions + 2
    with pytest.raises(LabError, match="no BGP neighbour"):
        net.set_bgp_neighbor("pe1", "192.0.2.1", True)


def test_congestion_drops_and_is_unhealthy(net: LabNetwork, clock: FakeClock) -> None:
    net.set_extra_traffic("pe1", "eth2", 150.0)
    before = net.interface("pe1", "eth2").out_discards
    clock.advance(30.0)
    state = net.interface("pe1", "eth2")
    assert state.out_discards > before
    health = net.health()
    assert not health.ok and "pe1:eth2" in [name for name, _ in health.hot_links]
    assert "pe1->pe2" in health.lossy_demands


def test_access_port_down_loses_its_demands(net: LabNetwork, clock: FakeClock) -> None:
    net.set_admin_status("pe2", "eth3", up=False)
    clock.advance(10.0)
    state = net.interface("pe2", "eth3")
    assert not state.oper_up and state.in_bps == 0.0
    assert set(net.health().lossy_demands) == {"pe1->pe2", "pe2->pe1"}
    assert all(s.oper_up for s in net.interfaces("pe1"))


def test_span_loss_lowers_downstream_osnr_and_raises_ber(metro: LabNetwork) -> None:
    optical = metro.optical
    assert optical is not None
    before = metro.optical_snapshot(noise=False)
    crossing = optical.channels_on_span("span:roadm-a:roadm-b")
    optical.span_loss("span:roadm-a:roadm-b", 9.0)
    metro.optical_changed()
    after = metro.optical_snapshot(noise=False)
    # och-1 runs a->b->c: its receiver at c (xp-c1) sees the loss.
    rx = after.channels["och-1"].b_port
    assert after.line_ports[rx].osnr_db < before.line_ports[rx].osnr_db - 2.0
    assert after.line_ports[rx].pre_fec_ber > 3 * before.line_ports[rx].pre_fec_ber
    # The EDFA after the span is constant-gain: its input drops by the 9 dB.
    amp = after.spans["span:roadm-a:roadm-b"].amplifier
    drop = before.amplifiers[amp].input_power_dbm - after.amplifiers[amp].input_power_dbm
    assert drop == pytest.approx(9.0, abs=0.5)
    untouched = set(optical.channel_names) - set(crossing)
    for name in untouched:
        port = after.channels[name].a_port
        assert after.line_ports[port].osnr_db == pytest.approx(
            before.line_ports[port].osnr_db, abs=0.01
        )
    # Raising the amplifier's gain gives back the power (not all of the OSNR).
    metro.set_amplifier_gain(amp, min(27.0, before.amplifiers[amp].target_gain_db + 9.0))
    fixed = metro.optical_snapshot(noise=False)
    assert fixed.amplifiers[amp].output_power_dbm > after.amplifiers[amp].output_power_dbm + 5


def test_fibre_cut_takes_down_exactly_the_riding_links(metro: LabNetwork) -> None:
    optical = metro.optical
    assert optical is not None
    riding = set(optical.channels_on_span("span:roadm-a:roadm-b"))
    riding |= set(optical.channels_on_span("span:roadm-b:roadm-a"))
    optical.fiber_cut("span:roadm-a:roadm-b")
    optical.fiber_cut("span:roadm-b:roadm-a")
    metro.optical_changed()
    for (ad, an), (bd, bn) in metro.links:
        wavelength = metro.link_wavelength(ad, an)
        expect_up = wavelength not in riding
        assert metro.interface(ad, an).oper_up is expect_up, (ad, an, wavelength)
        assert metro.interface(bd, bn).oper_up is expect_up
        for device, ifname in ((ad, an), (bd, bn)):
            (session,) = [s for s in metro.bgp_sessions(device) if s.ifname == ifname]
            assert (session.state == "established") is expect_up
    snap = metro.optical_snapshot()
    for name in riding:
        ch = snap.channels[name]
        assert not ch.oper_up
        assert snap.line_ports[ch.a_port].los or snap.line_ports[ch.b_port].los
    # The ring is dual-homed: traffic reroutes and every demand is still delivered.
    assert not metro.health().lossy_demands


def test_generated_fabric_scales(clock: FakeClock) -> None:
    topo = generate(2000)
    assert topo.device_count == 2000
    network = LabNetwork(topo, clock=clock)
    clock.advance(60.0)
    assert network.health().ok
    leaf = network.interfaces("leaf100")
    assert any(s.in_bps > 0 for s in leaf)


def test_unknown_names_are_clear_errors(net: LabNetwork) -> None:
    with pytest.raises(LabError, match="no lab device named 'zz'"):
        net.interface("zz", "eth1")
    with pytest.raises(LabError, match="has no interface 'eth9'"):
        net.interface("pe1", "eth9")
    with pytest.raises(LabError, match="unknown lab preset"):
        LabNetwork.preset("nope")
    with pytest.raises(LabError, match="no optical layer"):
        net.optical_snapshot()


def test_topology_files_load_and_bad_ones_name_line_and_field(tmp_path: Path) -> None:
    good = tmp_path / "lab.yaml"
    good.write_text(
        "name: tiny\n"
        "routers:\n"
        "  - {name: pe1, role: pe}\n"
        "  - {name: pe2, role: pe}\n"
        "links:\n"
        "  - {a: pe1:eth1, b: pe2:eth1, metric: 5}\n"
    )
    network = LabNetwork(resolve_topology(str(good)))
    assert network.peer("pe1", "eth1") == ("pe2", "eth1")
    assert [d.src for d in network.health().demands] == ["pe1", "pe2"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("routers:\n  - {name: pe1}\nlinks:\n  - {a: pe1:eth1, b: zz:eth1}\n")
    with pytest.raises(LabError, match=r"bad.yaml line 1: .*names no router"):
        load_topology(bad)
    bad.write_text("routers:\n  - {name: pe1, role: core}\n")
    with pytest.raises(LabError, match=r"bad.yaml line 2: routers.0.role"):
        load_topology(bad)
    with pytest.raises(LabError, match="unknown topology"):
        resolve_topology("nope")
