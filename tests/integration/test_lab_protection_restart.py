"""Two remediations a playbook performs on the lab, over real NETCONF, seen in real telemetry.

One metro-ring lab serves SNMP and NETCONF on loopback (its clock at 10x). A playbook's
moves are made with unmodified ncclient, as the engine makes them; the effect is read
back as the collectors read it: OpenConfig state over NETCONF, and net-snmp's
``snmpget`` for IF-MIB and HOST-RESOURCES-MIB.

- Protection switching: a fibre cut on och-1's working path takes p1:eth1 - p2:eth1
  down; ``force-to-port SECONDARY`` on the head-end transponder's
  ``aps-module[aps-line1]`` (openconfig-transport-line-protection), committed with a
  confirmed commit, brings the link back on the protection path while the fault (the
  cut fibre) stays in the ground truth.
- Restarting a runaway process: ``cpu_runaway`` pins p2's CPU through telemetryd; the
  lab's ``restart-process`` RPC gives it a new pid, the CPU falls back to normal on
  both protocols, and the fault is no longer present.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from lxml import etree
from ncclient import manager
from ncclient.operations import RPCError

from lab.faults import FaultInjector
from lab.netconf import LAB_SYSTEM_NS
from lab.netconf.openconfig import (
    OC_INTERFACES_NS,
    OC_LINE_PROTECTION_NS,
    OC_PLATFORM_NS,
    OC_SYSTEM_NS,
    OC_TERMINAL_DEVICE_NS,
)
from lab.network import LabNetwork, SimClock
from lab.optical import physics as ph
from lab.runner import LabRunner
from tests.integration.conftest import require_programs

pytestmark = pytest.mark.integration

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = {
    "if": OC_INTERFACES_NS,
    "aps": OC_LINE_PROTECTION_NS,
    "plat": OC_PLATFORM_NS,
    "term": OC_TERMINAL_DEVICE_NS,
    "sys": OC_SYSTEM_NS,
}
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2.1"
CUT = "span:roadm-a:roadm-b"
HEAD, TAIL = "xp-a1", "xp-c1"  # och-1, carrying p1:eth1 <-> p2:eth1 over a->b->c
SETTLE = 10.0  # seconds of wall time for a change to show; polled, never slept out

Manager = Any  # an ncclient.manager.Manager
T = TypeVar("T")


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRunner]:
    require_programs([t for t in ("snmpget",) if shutil.which(t) is None], "apt-get install snmp")
    network = LabNetwork.preset("metro-ring", clock=SimClock(speed=10.0))
    with LabRunner(network, netconf=True) as runner:
        yield runner


@pytest.fixture
def connect(lab: LabRunner) -> Iterator[Callable[[str], Manager]]:
    opened: list[Manager] = []

    def _connect(device: str) -> Manager:
        assert lab.netconf is not None
        m = manager.connect(
            host=lab.host,
            port=lab.netconf.ports[device],
            username=lab.netconf.username,
            password=lab.netconf.password,
            hostkey_verify=False,
            allow_agent=False,
            look_for_keys=False,
            timeout=10,
        )
        opened.append(m)
        return m

    yield _connect
    for m in opened:
        if m.connected:
            m.close_session()


def snmpget(lab: LabRunner, device: str, oid: str) -> int:
    run = subprocess.run(
        ["snmpget", "-v2c", "-c", lab.community, "-Oqv", "-Oe", "-t", "3", "-r", "1",
         f"{lab.host}:{lab.ports[device]}", oid],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return int(run.stdout.strip())


def eventually(read: Callable[[], T], want: Callable[[T], bool]) -> T:
    """Poll ``read`` until ``want`` holds of its value or :data:`SETTLE` passes; the last value."""
    deadline = time.monotonic() + SETTLE
    value = read()
    while not want(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    return value


def one(tree: Any, path: str) -> str:
    found = tree.xpath(path, namespaces=NS)
    assert len(found) == 1, (path, found)
    return str(found[0])


# Protection switching ------------------------------------------------------------------------


def oper_status(m: Manager, ifname: str) -> str:
    flt = (
        f'<interfaces xmlns="{OC_INTERFACES_NS}"><interface><name>{ifname}</name>'
        "<state><oper-status/></state></interface></interfaces>"
    )
    return one(m.get(filter=("subtree", flt)).data_ele, "//if:oper-status/text()")


def line_port(m: Manager, port: str) -> dict[str, float]:
    """What the collectors read of a line port: optical-channel and OTN state."""
    och_filter = (
        f'<components xmlns="{OC_PLATFORM_NS}"><component><name>{port}</name>'
        f'<optical-channel xmlns="{OC_TERMINAL_DEVICE_NS}"><state/></optical-channel>'
        "</component></components>"
    )
    otn_filter = (
        f'<terminal-device xmlns="{OC_TERMINAL_DEVICE_NS}"><logical-channels><channel>'
        "<index>1</index><otn><state/></otn></channel></logical-channels></terminal-device>"
    )
    och = m.get(filter=("subtree", och_filter)).data_ele
    otn = m.get(filter=("subtree", otn_filter)).data_ele
    och_path = f"//plat:component[plat:name='{port}']/term:optical-channel/term:state"
    otn_path = "//term:channel[term:index='1']/term:otn/term:state"
    return {
        "rx": float(one(och, f"{och_path}/term:input-power/term:instant/text()")),
        "osnr": float(one(och, f"{och_path}/term:osnr/term:instant/text()")),
        "ber": float(one(otn, f"{otn_path}/term:pre-fec-ber/term:instant/text()")),
    }


def aps_edit(force: str) -> str:
    return (
        f'<config xmlns="{BASE}"><aps xmlns="{OC_LINE_PROTECTION_NS}"><aps-modules><aps-module>'
        f"<name>aps-line1</name><config><name>aps-line1</name>"
        f"<force-to-port>{force}</force-to-port></config></aps-module></aps-modules></aps></config>"
    )


def active_path(m: Manager) -> str:
    flt = f'<aps xmlns="{OC_LINE_PROTECTION_NS}"/>'
    state = m.get(filter=("subtree", flt)).data_ele
    path = one(state, "//aps:aps-module[aps:name='aps-line1']/aps:state/aps:active-path/text()")
    return path.rpartition(":")[2]


def test_protection_switch_over_netconf_brings_the_link_back_on_a_cut_fibre(
    lab: LabRunner, connect: Callable[[str], Manager]
) -> None:
    faults = FaultInjector(lab.network)
    if_index = str(lab.network.interface("p1", "eth1").if_index)
    p1, xp = connect("p1"), connect(HEAD)
    assert any("openconfig-transport-line-protection" in c for c in xp.server_capabilities)
    cut = faults.inject("fiber_cut", CUT)
    try:
        assert eventually(lambda: oper_status(p1, "eth1"), lambda s: s == "DOWN") == "DOWN"
        assert snmpget(lab, "p1", f"{IF_OPER_STATUS}.{if_index}") == 2
        assert active_path(xp) == "PRIMARY"

        # The playbook: candidate, confirmed commit, verify, confirm.
        xp.lock("candidate")
        xp.discard_changes()
        xp.edit_config(target="candidate", config=aps_edit("SECONDARY"))
        xp.commit(confirmed=True, timeout="120")
        assert eventually(lambda: oper_status(p1, "eth1"), lambda s: s == "UP") == "UP"
        assert snmpget(lab, "p1", f"{IF_OPER_STATUS}.{if_index}") == 1
        assert oper_status(connect("p2"), "eth1") == "UP"
        assert active_path(xp) == "SECONDARY"
        for device in (HEAD, TAIL):
            optics = line_port(xp if device == HEAD else connect(TAIL), f"{device}:line1")
            assert optics["rx"] > -12.0, (device, optics)
            assert optics["osnr"] > ph.OSNR_REQUIRED_DB, (device, optics)
            assert 0.0 < optics["ber"] < ph.C_FEC_LIMIT, (device, optics)
        xp.commit()
        xp.unlock("candidate")
        # The fibre is still cut: the fault stays injected and present.
        assert [f.id for f in faults.faults()] == [cut.id] and cut.present

        # Back to the working path (PRIMARY): on a cut fibre, the link drops again.
        xp.edit_config(target="candidate", config=aps_edit("PRIMARY"))
        xp.commit()
        assert eventually(lambda: oper_status(p1, "eth1"), lambda s: s == "DOWN") == "DOWN"
        assert active_path(xp) == "PRIMARY"
    finally:
        faults.clear()
        lab.network.set_protection(f"{HEAD}:line1", secondary=False)


# Restarting a runaway process -------------------------------------------------------------------


def process_state(m: Manager) -> tuple[dict[str, tuple[int, int]], int]:
    """``{name: (pid, cpu-utilization)}`` and the CPU total, over openconfig-system."""
    flt = (
        f'<system xmlns="{OC_SYSTEM_NS}"><processes/><cpus><cpu><index/><state><total/>'
        "</state></cpu></cpus></system>"
    )
    data = m.get(filter=("subtree", flt)).data_ele
    table = {}
    for proc in data.xpath("//sys:processes/sys:process/sys:state", namespaces=NS):
        name = proc.findtext(f"{{{OC_SYSTEM_NS}}}name")
        pid = int(proc.findtext(f"{{{OC_SYSTEM_NS}}}pid"))
        table[name] = (pid, int(proc.findtext(f"{{{OC_SYSTEM_NS}}}cpu-utilization")))
    total = int(one(data, "//sys:cpu[sys:index='ALL']/sys:state/sys:total/sys:instant/text()"))
    return table, total


def restart(name: str) -> Any:
    return etree.fromstring(
        f'<restart-process xmlns="{LAB_SYSTEM_NS}"><name>{name}</name></restart-process>'
    )


def test_restart_process_over_netconf_calms_the_router(
    lab: LabRunner, connect: Callable[[str], Manager]
) -> None:
    faults = FaultInjector(lab.network)
    m = connect("p2")
    assert any(
        c.startswith(f"{LAB_SYSTEM_NS}?module=autonoc-lab-system") for c in m.server_capabilities
    )
    calm, _ = process_state(m)
    fault = faults.inject("cpu_runaway", "p2")
    try:
        hot, total = process_state(m)
        assert total >= 90 and hot["telemetryd"][1] > 50
        assert hot["telemetryd"][0] == calm["telemetryd"][0]
        assert snmpget(lab, "p2", HR_PROCESSOR_LOAD) >= 90

        with pytest.raises(RPCError) as err:
            m.dispatch(restart("sshd"))
        assert err.value.tag == "invalid-value" and "'sshd'" in err.value.message

        assert m.dispatch(restart("telemetryd")).ok
        after, _ = process_state(m)
        assert after["telemetryd"][0] != calm["telemetryd"][0]
        assert {n: p for n, (p, _) in after.items() if n != "telemetryd"} == {
            n: p for n, (p, _) in calm.items() if n != "telemetryd"
        }
        assert eventually(lambda: process_state(m)[1], lambda cpu: cpu < 50) < 50
        assert eventually(lambda: snmpget(lab, "p2", HR_PROCESSOR_LOAD), lambda cpu: cpu < 50) < 50
        assert not fault.present  # the platform fixed it: the ground truth says so
    finally:
        faults.clear()
