"""Every fault kind changes the right telemetry, read with net-snmp's tools and with ncclient.

One metro-ring lab serves SNMP and NETCONF on loopback; for each fault kind the
test reads a value over both protocols, injects the fault, reads again, and
checks the change an operator would look for. The lab clock runs 10x so
rates and flaps show within a second or two.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from lxml import etree
from ncclient import manager

from lab.faults import FaultInjector, FaultKind
from lab.network import LabNetwork, SimClock
from lab.runner import LabRunner
from tests.integration.conftest import require_programs

IF_ENTRY = "1.3.6.1.2.1.2.2.1"
ENT_NAME = "1.3.6.1.2.1.47.1.1.1.1.7"
SENSOR_VALUE = "1.3.6.1.2.1.99.1.1.1.4"
SENSOR_STATUS = "1.3.6.1.2.1.99.1.1.1.5"
HR_CPU = "1.3.6.1.2.1.25.3.3.1.2"
BGP_PEER_STATE = "1.3.6.1.2.1.15.3.1.2"
BGP_TRANSITIONS = "1.3.6.1.2.1.15.3.1.15"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRunner]:
    require_programs(
        [t for t in ("snmpbulkwalk",) if shutil.which(t) is None], "apt-get install snmp"
    )
    network = LabNetwork.preset("metro-ring", clock=SimClock(speed=10.0))
    with LabRunner(network, netconf=True) as runner:
        yield runner


def walk(lab: LabRunner, device: str, oid: str) -> dict[str, str]:
    """``snmpbulkwalk -v2c`` of ``oid``: instance suffix -> value as net-snmp prints it."""
    run = subprocess.run(
        ["snmpbulkwalk", "-v2c", "-c", lab.community, "-On", "-Oq", "-Oe", "-t", "3", "-r", "1",
         "-Cr50", f"{lab.host}:{lab.ports[device]}", oid],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    out = {}
    for line in run.stdout.splitlines():
        name, _, value = line.partition(" ")
        out[name[len(oid) + 2 :]] = value.strip('"')
    return out


def if_index(lab: LabRunner, device: str, ifname: str) -> str:
    return next(k for k, v in walk(lab, device, f"{IF_ENTRY}.2").items() if v == ifname)


def if_cell(lab: LabRunner, device: str, ifname: str, column: int) -> int:
    return int(walk(lab, device, f"{IF_ENTRY}.{column}")[if_index(lab, device, ifname)])


def sensor(lab: LabRunner, device: str, name: str, table: str = SENSOR_VALUE) -> int:
    index = next(k for k, v in walk(lab, device, ENT_NAME).items() if v == name)
    return int(walk(lab, device, table)[index])


def nc_get(lab: LabRunner, device: str) -> Any:
    assert lab.netconf is not None
    with manager.connect(
        host=lab.host,
        port=lab.netconf.ports[device],
        username=lab.netconf.username,
        password=lab.netconf.password,
        hostkey_verify=False,
        allow_agent=False,
        look_for_keys=False,
        timeout=15,
    ) as session:
        return etree.fromstring(session.get().data_xml.encode())


def nc_text(tree: Any, xpath: str) -> str:
    """The text of the first node at ``xpath``, written with local names (``a/b[c='x']``)."""
    parts = []
    for step in xpath.split("/"):
        name, _, pred = step.partition("[")
        expr = f"*[local-name()='{name}']"
        if pred:
            key, _, value = pred.rstrip("]").partition("=")
            expr += f"[*[local-name()='{key}']={value}]"
        parts.append(expr)
    found = tree.xpath("//" + "/".join(parts))
    assert found, f"nothing at {xpath}"
    return str(found[0].text)


@dataclass(frozen=True)
class Case:
    kind: FaultKind
    target: str
    params: dict[str, float]
    snmp: Callable[[LabRunner], float]
    netconf: Callable[[LabRunner], float]
    changed: Callable[[float, float], bool]
    settle_s: float = 0.0


def _iface_nc(device: str, ifname: str, leaf: str) -> Callable[[LabRunner], float]:
    def read(lab: LabRunner) -> float:
        value = nc_text(nc_get(lab, device), f"interface[name='{ifname}']/{leaf}")
        return {"UP": 1.0, "DOWN": 2.0}.get(value, float(value) if value[0].isdigit() else 0.0)

    return read


def _nc(device: str, xpath: str) -> Callable[[LabRunner], float]:
    def read(lab: LabRunner) -> float:
        value = nc_text(nc_get(lab, device), xpath)
        return {"ESTABLISHED": 6.0, "IDLE": 1.0, "ACTIVE": 3.0}.get(value) or float(value)

    return read


def _rose(before: float, after: float) -> bool:
    return after > before


def _fell_1db(before: float, after: float) -> bool:
    return after < before - 1.0


CASES = [
    Case(FaultKind.LINK_DOWN, "pe2:eth1", {},
         lambda lab: if_cell(lab, "pe2", "eth1", 8), _iface_nc("pe2", "eth1", "state/oper-status"),
         lambda b, a: (b, a) == (1, 2)),
    Case(FaultKind.INTERFACE_FLAP, "pe4:eth1", {"period_s": 4.0},
         lambda lab: sum(int(v) for v in walk(lab, "pe4", BGP_TRANSITIONS).values()),
         _nc("pe4", "interface[name='eth1']/state/last-change"), _rose, settle_s=1.5),
    Case(FaultKind.FIBER_CUT, "span:roadm-a:roadm-b", {},
         lambda lab: sensor(lab, "xp-c1", "line1/rx-power") / 100,
         _nc("xp-c1", "optical-channel/state/input-power/instant"),
         lambda b, a: a < -30.0 < b),
    Case(FaultKind.SPAN_LOSS, "span:roadm-b:roadm-c", {"extra_db": 9.0},
         lambda lab: sensor(lab, "xp-c1", "line1/osnr") / 100,
         _nc("xp-c1", "optical-channel/state/osnr/instant"), _fell_1db),
    Case(FaultKind.AMPLIFIER_FAILURE, "amp-c-d", {},
         lambda lab: sensor(lab, "amp-c-d", "edfa/gain", SENSOR_STATUS),
         _nc("amp-c-d", "amplifier/state/actual-gain/instant"),
         lambda b, a: a != b),
    Case(FaultKind.LASER_DEGRADATION, "xp-a1:line1", {"drift": 0.6},
         lambda lab: sensor(lab, "xp-a1", "line1/laser-bias") / 10,
         _nc("xp-a1", "optical-channel/state/laser-bias-current/instant"),
         lambda b, a: a > 1.4 * b),
    Case(FaultKind.OSNR_DEGRADATION, "amp-b-c", {"extra_nf_db": 8.0},
         lambda lab: sensor(lab, "xp-c1", "line1/osnr") / 100,
         _nc("xp-c1", "optical-channel/state/osnr/instant"), _fell_1db),
    Case(FaultKind.CRC_ERRORS, "p1:eth3", {"rate": 0.01},
         lambda lab: if_cell(lab, "p1", "eth3", 14),
         _iface_nc("p1", "eth3", "state/counters/in-errors"), _rose, settle_s=1.0),
    Case(FaultKind.CONGESTION, "pe3:eth1", {"extra_gbps": 150.0},
         lambda lab: if_cell(lab, "pe3", "eth1", 19),
         _iface_nc("pe3", "eth1", "state/counters/out-discards"), _rose, settle_s=1.0),
    Case(FaultKind.CPU_RUNAWAY, "p2", {},
         lambda lab: int(next(iter(walk(lab, "p2", HR_CPU).values()))),
         _nc("p2", "cpu/state/total/instant"), lambda b, a: a >= 90 > b),
    Case(FaultKind.BGP_SESSION_DOWN, "bgp:pe1:10.0.0.10", {},
         lambda lab: int(walk(lab, "pe1", f"{BGP_PEER_STATE}.10.0.0.10")[""]),
         _nc("pe1", "neighbor[neighbor-address='10.0.0.10']/state/session-state"),
         lambda b, a: (b, a) == (6, 1)),
    Case(FaultKind.CONFIG_DRIFT, "pe2:eth2", {"mtu": 1500.0},
         lambda lab: if_cell(lab, "pe2", "eth2", 4), _iface_nc("pe2", "eth2", "config/mtu"),
         lambda b, a: (b, a) == (9000, 1500)),
]  # fmt: skip


def test_every_fault_kind_has_a_case() -> None:
    assert sorted(c.kind for c in CASES) == sorted(FaultKind)


@pytest.mark.parametrize("case", CASES, ids=[c.kind.value for c in CASES])
def test_fault_shows_over_snmp_and_netconf(lab: LabRunner, case: Case) -> None:
    faults = FaultInjector(lab.network)
    snmp_before, nc_before = case.snmp(lab), case.netconf(lab)
    faults.inject(case.kind.value, case.target, case.params)
    try:
        time.sleep(case.settle_s)
        snmp_after, nc_after = case.snmp(lab), case.netconf(lab)
        assert case.changed(snmp_before, snmp_after), ("snmp", snmp_before, snmp_after)
        assert case.changed(nc_before, nc_after), ("netconf", nc_before, nc_after)
    finally:
        faults.clear()
