"""FRR settings for the frr-vtysh rendering, and the namespace-lab topology file (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autonoc.core.errors import LabError, PlaybookValidationError
from lab.netns.topology import DEFAULT_TOPOLOGY, load_netns_topology
from playbooks.frr import FrrSetting
from playbooks.platforms import FrrVtysh, Platforms

RUNNING = """Building configuration...

Current configuration:
!
frr version 8.4.4
hostname r1
!
interface eth1
 description link 0 to r2
 ip ospf area 0
 ip ospf cost 1000
exit
!
interface eth2
 ip ospf area 0
 shutdown
exit
!
router bgp 65001
 bgp router-id 10.10.10.1
 neighbor 10.0.0.2 remote-as 65002
 neighbor 10.0.0.2 shutdown
 neighbor 10.0.3.1 remote-as 65004
exit
!
end
"""


def test_settings_read_the_running_configuration() -> None:
    assert FrrSetting("ospf-cost", "eth1").read(RUNNING) == "1000"
    assert FrrSetting("ospf-cost", "eth2").read(RUNNING) is None  # FRR's default
    assert FrrSetting("interface-enabled", "eth2").read(RUNNING) == "false"
    assert FrrSetting("interface-enabled", "eth1").read(RUNNING) == "true"
    assert FrrSetting("bgp-neighbor-enabled", "10.0.0.2").read(RUNNING) == "false"
    assert FrrSetting("bgp-neighbor-enabled", "10.0.3.1").read(RUNNING) == "true"
    assert FrrSetting("bgp-neighbor-enabled", "10.9.9.9").read(RUNNING) is None


def test_commands_have_fixed_shapes_filled_with_checked_values() -> None:
    assert FrrSetting("ospf-cost", "eth1").commands("10", RUNNING) == [
        "interface eth1",
        "ip ospf cost 10",
        "exit",
    ]
    assert FrrSetting("ospf-cost", "eth1").commands(None, RUNNING)[1] == "no ip ospf cost"
    assert FrrSetting("bgp-neighbor-enabled", "10.0.0.2").commands("true", RUNNING) == [
        "router bgp 65001",
        "no neighbor 10.0.0.2 shutdown",
        "exit",
    ]


@pytest.mark.parametrize(
    ("setting", "target", "value", "match"),
    [
        ("ospf-cost", "eth1", "16777214", "outside 1..65535"),
        ("ospf-cost", "eth1", "10\nrouter bgp 1", "not an integer"),
        ("ospf-cost", "eth1 ip ospf cost 1", "10", "not an interface name"),
        ("interface-enabled", "eth1\nshutdown", "true", "not an interface name"),
        ("bgp-neighbor-enabled", "10.0.0.2 remote-as 1", "true", "not a BGP neighbour"),
    ],
)
def test_values_that_could_change_the_command_are_refused(
    setting: str, target: str, value: str, match: str
) -> None:
    with pytest.raises(PlaybookValidationError, match=match):
        FrrSetting(setting, target).commands(value, RUNNING)  # type: ignore[arg-type]


def test_the_frr_netns_platform_prefers_snmp_for_admin_state() -> None:
    spec = next(p for p in Platforms.load() if p.name == "frr-netns")
    first = spec.renderings("set_interface_enabled")[0]
    assert first.protocol == "snmp"
    metric = spec.renderings("set_igp_metric")[0]
    assert isinstance(metric, FrrVtysh) and metric.setting == "ospf-cost"


def test_default_topology_addresses() -> None:
    topo = DEFAULT_TOPOLOGY
    assert [p.ifname for p in topo.ports("r1")] == ["eth1", "eth2"]
    p = topo.port("r1", "eth1")
    assert (p.address, p.peer, p.peer_address) == ("10.0.0.1", "r2", "10.0.0.2")
    assert topo.peer_port(p) == ("r2", topo.port("r2", "eth1"))
    assert topo.asn("r3") == 65003 and topo.loopback("r4") == "10.10.10.4"


def test_topology_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("routers:\n  - {name: r1}\n  - {name: R2}\nlinks:\n  - {a: r1, b: r2}\n")
    with pytest.raises(LabError, match=r"t.yaml line 3: routers.1.name"):
        load_netns_topology(path)
    path.write_text("routers: [{name: r1}, {name: r2}]\nlinks:\n  - {a: r1, b: r9}\n")
    with pytest.raises(LabError, match="unknown router 'r9'"):
        load_netns_topology(path)
