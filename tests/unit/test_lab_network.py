"""The lab's network model: counters, faults and inventory, on a fake clock."""

from __future__ import annotations

import pytest
import yaml

from autonoc.core.errors import LabError
from autonoc.core.inventory import Inventory, LinkKind
from lab.network import COUNTER32_MODULUS, LabNetwork, counter32
from tests.unit.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def net(clock: FakeClock) -> LabNetwork:
    return LabNetwork.preset("ring4", seed=7, clock=clock)


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
        assert len(set(indexes)) == len(indexes)
        for s in net.interfaces(device):
            assert s.speed_bps == 10_000_000_000
            assert len(s.mac) == 6
            assert s.admin_up and s.oper_up


def test_counters_grow_at_a_plausible_rate(net: LabNetwork, clock: FakeClock) -> None:
    before = net.interface("pe1", "eth3")
    clock.advance(10.0)
    after = net.interface("pe1", "eth3")
    for field in ("in_octets", "out_octets"):
        bps = (getattr(after, field) - getattr(before, field)) * 8 / 10.0
        # base 200-800 Mb/s, ±10 % slow swing, a few % of noise
        assert 150e6 < bps < 900e6, (field, bps)
    assert after.in_ucast_pkts > before.in_ucast_pkts
    # errors stay rare: far fewer than one per thousand packets
    assert after.in_errors - before.in_errors <= (after.in_ucast_pkts - before.in_ucast_pkts) / 1000
    assert net.sys_uptime("pe1") == 1000


def test_the_same_seed_gives_the_same_network(clock: FakeClock) -> None:
    a = LabNetwork.preset("ring4", seed=3, clock=clock)
    b = LabNetwork.preset("ring4", seed=3, clock=clock)
    clock.advance(60.0)
    assert a.interface("p1", "eth2") == b.interface("p1", "eth2")


def test_link_ends_carry_mirrored_traffic(net: LabNetwork, clock: FakeClock) -> None:
    clock.advance(30.0)
    a = net.interface("pe1", "eth1")
    b = net.interface("p1", "eth1")
    assert a.out_octets == pytest.approx(b.in_octets, rel=0.01)
    assert a.in_octets == pytest.approx(b.out_octets, rel=0.01)


def test_hc_counters_are_monotonic(net: LabNetwork, clock: FakeClock) -> None:
    last = net.interface("p2", "eth1")
    for _ in range(500):
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
    # At 200+ Mb/s, 2**32 octets pass in under three minutes.
    clock.advance(600.0)
    state = net.interface("pe1", "eth3")
    assert state.in_octets > COUNTER32_MODULUS
    wrapped = counter32(state.in_octets)
    assert 0 <= wrapped < COUNTER32_MODULUS < state.in_octets
    assert (state.in_octets - wrapped) % COUNTER32_MODULUS == 0
    assert counter32(COUNTER32_MODULUS + 5) == 5


def test_admin_down_takes_the_peer_oper_down_and_stops_traffic(
    net: LabNetwork, clock: FakeClock
) -> None:
    clock.advance(5.0)
    net.set_admin_status("pe1", "eth1", up=False)
    near, far = net.interface("pe1", "eth1"), net.interface("p1", "eth1")
    assert (near.admin_up, near.oper_up) == (False, False)
    assert (far.admin_up, far.oper_up) == (True, False)
    assert near.last_change == far.last_change == 500
    assert near.in_bps == near.out_bps == far.in_bps == far.out_bps == 0.0

    clock.advance(60.0)
    near2, far2 = net.interface("pe1", "eth1"), net.interface("p1", "eth1")
    assert near2.in_octets == near.in_octets and near2.out_octets == near.out_octets
    assert far2.in_octets == far.in_octets and far2.out_octets == far.out_octets
    # other interfaces keep moving
    assert net.interface("pe1", "eth2").in_bps > 0

    net.set_admin_status("pe1", "eth1", up=True)
    clock.advance(10.0)
    back = net.interface("p1", "eth1")
    assert back.oper_up and net.interface("pe1", "eth1").oper_up
    assert back.last_change == 6500
    assert back.in_octets > far2.in_octets


def test_oper_up_needs_both_ends_admin_up(net: LabNetwork) -> None:
    net.set_admin_status("p1", "eth2", up=False)
    net.set_admin_status("p2", "eth1", up=False)
    net.set_admin_status("p1", "eth2", up=True)
    assert not net.interface("p1", "eth2").oper_up
    net.set_admin_status("p2", "eth1", up=True)
    assert net.interface("p1", "eth2").oper_up and net.interface("p2", "eth1").oper_up


def test_access_port_goes_down_alone(net: LabNetwork, clock: FakeClock) -> None:
    net.set_admin_status("pe2", "eth3", up=False)
    state = net.interface("pe2", "eth3")
    assert not state.oper_up and state.in_bps == 0.0
    assert all(s.oper_up for s in net.interfaces("pe1"))


def test_unknown_names_raise_lab_error(net: LabNetwork) -> None:
    with pytest.raises(LabError, match="eth9"):
        net.set_admin_status("pe1", "eth9", up=False)
    with pytest.raises(LabError, match="nope"):
        net.interface("nope", "eth1")


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(LabError, match=r"ring9.*ring4"):
        LabNetwork.preset("ring9")


def test_inventory_is_valid_and_round_trips(net: LabNetwork) -> None:
    ports = {"pe1": 16101, "pe2": 16102, "p1": 16103, "p2": 16104}
    inv = net.to_inventory("127.0.0.1", ports, "s3cret")
    assert {d.name for d in inv.devices} == set(ports)
    pe1 = inv.device("pe1")
    assert pe1.mgmt.host == "127.0.0.1" and pe1.mgmt.snmp_port == 16101
    assert pe1.tags == ("pe",) and inv.device("p2").tags == ("p",)
    assert pe1.vendor == "autonoc-lab" and pe1.platform == "lab-router" and pe1.site == "lab"
    assert pe1.snmp is not None and pe1.snmp.version == "v2c"
    assert pe1.snmp.community.get_secret_value() == "s3cret"
    assert len(inv.links) == 4 and all(link.kind == LinkKind.IP for link in inv.links)
    peer = inv.peer("pe2", "eth2")
    assert peer is not None and (peer.device, peer.port) == ("pe1", "eth2")
    # every link endpoint names a real interface of the model
    for link in inv.links:
        for end in (link.a, link.b):
            net.interface(end.device, end.port)
    dumped = yaml.safe_dump(inv.model_dump(mode="json"))
    assert Inventory.model_validate(yaml.safe_load(dumped)).device("p1").mgmt.snmp_port == 16103


def test_inventory_needs_a_port_per_device(net: LabNetwork) -> None:
    with pytest.raises(LabError, match="p2"):
        net.to_inventory("127.0.0.1", {"pe1": 1, "pe2": 2, "p1": 3}, "c")
