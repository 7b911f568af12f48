"""The lab's NETCONF server answers unmodified ncclient over SSH on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import asyncssh
import pytest
from lxml import etree
from ncclient import manager
from ncclient.operations import RPCError

from lab.netconf import OC_INTERFACES_NS, NetconfRunner
from lab.netconf.openconfig import (
    OC_AMPLIFIER_NS,
    OC_NETWORK_INSTANCE_NS,
    OC_PLATFORM_NS,
    OC_TERMINAL_DEVICE_NS,
)
from lab.network import LabNetwork

pytestmark = pytest.mark.integration

OC = OC_INTERFACES_NS
BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
ROLLBACK_SLACK = 3.0

Connect = Callable[[], Any]


@pytest.fixture
def network() -> LabNetwork:
    return LabNetwork.preset("ring4")


@pytest.fixture
def lab(network: LabNetwork) -> Iterator[NetconfRunner]:
    with NetconfRunner.for_network(network) as runner:
        yield runner


@pytest.fixture
def connect(lab: NetconfRunner) -> Iterator[Connect]:
    """Open ncclient sessions to pe1; every one is closed at teardown."""
    opened: list[Any] = []

    def _connect() -> Any:
        m = manager.connect(
            host=lab.host,
            port=lab.ports["pe1"],
            username=lab.username,
            password=lab.password,
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


def _interface_config(ifname: str, enabled: bool) -> str:
    return (
        f'<config xmlns="{BASE}"><interfaces xmlns="{OC}"><interface><name>{ifname}</name>'
        f"<config><enabled>{'true' if enabled else 'false'}</enabled></config>"
        "</interface></interfaces></config>"
    )


def _wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_capabilities_and_filtered_reads(connect: Connect) -> None:
    m = connect()
    caps = list(m.server_capabilities)
    assert "urn:ietf:params:netconf:capability:candidate:1.0" in caps
    assert "urn:ietf:params:netconf:capability:confirmed-commit:1.1" in caps

    flt = f'<interfaces xmlns="{OC}"><interface><name>eth1</name></interface></interfaces>'
    config = m.get_config(source="running", filter=("subtree", flt)).data_ele
    names = config.xpath("//oc:interface/oc:name/text()", namespaces={"oc": OC})
    assert names == ["eth1"]
    assert config.xpath("//oc:description/text()", namespaces={"oc": OC}) == ["to p1 eth1"]

    state_flt = (
        f'<interfaces xmlns="{OC}"><interface><name>eth1</name>'
        "<state><oper-status/><counters><in-octets/></counters></state></interface></interfaces>"
    )
    state = m.get(filter=("subtree", state_flt)).data_ele
    ns = {"oc": OC}
    assert state.xpath("//oc:oper-status/text()", namespaces=ns) == ["UP"]
    assert int(state.xpath("//oc:in-octets/text()", namespaces=ns)[0]) > 0


def test_commit_shuts_the_interface_in_the_model(connect: Connect, network: LabNetwork) -> None:
    m = connect()
    m.edit_config(target="candidate", config=_interface_config("eth1", enabled=False))
    assert network.interface("pe1", "eth1").admin_up  # not before the commit
    m.commit()
    assert not network.interface("pe1", "eth1").admin_up
    assert not network.interface("p1", "eth1").oper_up
    octets = network.interface("pe1", "eth1").out_octets
    time.sleep(0.05)
    assert network.interface("pe1", "eth1").out_octets == octets


def test_unconfirmed_commit_rolls_back_after_its_timeout(
    connect: Connect, network: LabNetwork
) -> None:
    m = connect()
    m.edit_config(target="candidate", config=_interface_config("eth1", enabled=False))
    started = time.monotonic()
    m.commit(confirmed=True, timeout="2")
    assert not network.interface("pe1", "eth1").admin_up
    assert _wait_for(lambda: network.interface("pe1", "eth1").admin_up, 2 + ROLLBACK_SLACK)
    assert time.monotonic() - started >= 1.5
    assert network.interface("p1", "eth1").oper_up


def test_confirmed_in_time_stays(connect: Connect, network: LabNetwork) -> None:
    m = connect()
    m.edit_config(target="candidate", config=_interface_config("eth1", enabled=False))
    m.commit(confirmed=True, timeout="2")
    m.commit()
    time.sleep(2.5)
    assert not network.interface("pe1", "eth1").admin_up


def test_dropped_session_rolls_back_unless_persisted(connect: Connect, network: LabNetwork) -> None:
    m = connect()
    m.edit_config(target="candidate", config=_interface_config("eth1", enabled=False))
    m.commit(confirmed=True, timeout="60")
    assert not network.interface("pe1", "eth1").admin_up
    m._session.close()  # drop the transport, as a lost link would; no close-session
    assert _wait_for(lambda: network.interface("pe1", "eth1").admin_up, 5)

    m2 = connect()
    m2.edit_config(target="candidate", config=_interface_config("eth1", enabled=False))
    m2.commit(confirmed=True, timeout="60", persist="fix-42")
    m2._session.close()
    time.sleep(0.5)
    assert not network.interface("pe1", "eth1").admin_up
    m3 = connect()
    m3.commit(persist_id="fix-42")
    assert not network.interface("pe1", "eth1").admin_up


def test_lock_denied_unknown_rpc_and_discard(connect: Connect, network: LabNetwork) -> None:
    m1, m2 = connect(), connect()
    m1.lock("candidate")
    with pytest.raises(RPCError) as err:
        m2.lock("candidate")
    assert err.value.tag == "lock-denied"
    assert str(m1.session_id) in etree.tostring(err.value.xml).decode()
    m2.kill_session(m1.session_id)  # frees m1's lock at once
    m2.lock("candidate")
    m2.unlock("candidate")
    assert m1.session_id != m2.session_id
    m1 = connect()

    with pytest.raises(RPCError) as err:
        m1.dispatch(etree.Element("{urn:example:nope}self-destruct"))
    assert err.value.tag == "operation-not-supported"

    m1.edit_config(target="candidate", config=_interface_config("eth2", enabled=False))
    m1.discard_changes()
    m1.commit()
    assert network.interface("pe1", "eth2").admin_up
    cand = m1.get_config(source="candidate").data_ele
    assert "false" not in cand.xpath("//oc:enabled/text()", namespaces={"oc": OC})


# OpenConfig on metro-ring: optics and routing over real SSH ----------------------------

OC_NS = {
    "plat": OC_PLATFORM_NS,
    "term": OC_TERMINAL_DEVICE_NS,
    "amp": OC_AMPLIFIER_NS,
    "ni": OC_NETWORK_INSTANCE_NS,
}
ConnectTo = Callable[[str], Any]


@pytest.fixture
def metro() -> LabNetwork:
    return LabNetwork.preset("metro-ring")


@pytest.fixture
def connect_to(metro: LabNetwork) -> Iterator[ConnectTo]:
    """Serve every metro-ring device; open ncclient sessions to any, closed at teardown."""
    opened: list[Any] = []
    with NetconfRunner.for_network(metro) as runner:

        def _connect(device: str) -> Any:
            m = manager.connect(
                host=runner.host,
                port=runner.ports[device],
                username=runner.username,
                password=runner.password,
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


def _number(tree: Any, path: str) -> float:
    found = tree.xpath(path, namespaces=OC_NS)
    assert len(found) == 1, (path, found)
    return float(found[0])


def test_reads_optical_channel_and_amplifier_state(
    connect_to: ConnectTo, metro: LabNetwork
) -> None:
    snap = metro.optical_snapshot(noise=False)
    och_filter = (
        f'<components xmlns="{OC_PLATFORM_NS}"><component><name>xp-a1:line1</name>'
        f'<optical-channel xmlns="{OC_TERMINAL_DEVICE_NS}"><state/></optical-channel>'
        "</component></components>"
    )
    state = connect_to("xp-a1").get(filter=("subtree", och_filter)).data_ele
    och = "//plat:component[plat:name='xp-a1:line1']/term:optical-channel/term:state"
    port = snap.line_ports["xp-a1:line1"]
    assert _number(state, f"{och}/term:input-power/term:instant/text()") == pytest.approx(
        port.rx_power_dbm, abs=0.3
    )
    assert _number(state, f"{och}/term:output-power/term:instant/text()") == pytest.approx(
        port.tx_power_dbm, abs=0.3
    )
    assert _number(state, f"{och}/term:osnr/term:instant/text()") > 25.0
    assert not state.xpath("//term:logical-channels", namespaces=OC_NS)  # filtered out

    amp_filter = (
        f'<optical-amplifier xmlns="{OC_AMPLIFIER_NS}"><amplifiers><amplifier>'
        "<name>amp-a-b</name><state/></amplifier></amplifiers></optical-amplifier>"
    )
    state = connect_to("amp-a-b").get(filter=("subtree", amp_filter)).data_ele
    amp = snap.amplifiers["amp-a-b"]
    amp_state = "//amp:amplifier[amp:name='amp-a-b']/amp:state"
    assert _number(state, f"{amp_state}/amp:actual-gain/amp:instant/text()") == pytest.approx(
        amp.gain_db, abs=0.3
    )
    output = f"{amp_state}/amp:output-power-total/amp:instant/text()"
    assert _number(state, output) == pytest.approx(amp.output_power_dbm, abs=0.3)
    assert _number(state, f"{amp_state}/amp:laser-bias-current/amp:instant/text()") > 0.0


def test_isis_metric_commit_moves_traffic(connect_to: ConnectTo, metro: LabNetwork) -> None:
    m = connect_to("pe1")
    assert _wait_for(lambda: metro.interface("pe1", "eth1").out_bps > 1e9, 5)
    edit = (
        f'<config xmlns="{BASE}"><network-instances xmlns="{OC_NETWORK_INSTANCE_NS}">'
        "<network-instance><name>DEFAULT</name><protocols>"
        '<protocol xmlns:oc-pol-types="http://openconfig.net/yang/policy-types">'
        "<identifier>oc-pol-types:ISIS</identifier><name>ISIS</name><isis><interfaces>"
        "<interface><interface-id>eth1</interface-id><levels><level>"
        "<level-number>2</level-number><afi-safi>"
        '<af xmlns:oc-isis-types="http://openconfig.net/yang/isis-types">'
        "<afi-name>oc-isis-types:IPV4</afi-name><safi-name>oc-isis-types:UNICAST</safi-name>"
        "<config><metric>1000</metric></config></af></afi-safi></level></levels></interface>"
        "</interfaces></isis></protocol></protocols></network-instance></network-instances>"
        "</config>"
    )
    m.edit_config(target="candidate", config=edit)
    assert metro.interface("pe1", "eth1").igp_metric == 1  # not before the commit
    m.commit()
    assert metro.interface("pe1", "eth1").igp_metric == 1000
    assert _wait_for(lambda: metro.interface("pe1", "eth1").out_bps < 1e6, 5)
    assert metro.interface("pe1", "eth2").out_bps > 1e9
    running = m.get_config(source="running").data_ele
    metric = "//ni:isis//ni:interface[ni:interface-id='eth1']//ni:af/ni:config/ni:metric/text()"
    assert running.xpath(metric, namespaces=OC_NS) == ["1000"]


# Framing, with a raw SSH client -----------------------------------------------------

_EOM = b"]]>]]>"


def _hello(*caps: str) -> bytes:
    body = "".join(f"<capability>{c}</capability>" for c in caps)
    return f'<hello xmlns="{BASE}"><capabilities>{body}</capabilities></hello>'.encode() + _EOM


async def _raw_exchange(runner: NetconfRunner, *messages: bytes) -> bytes:
    """Send ``messages`` on a netconf channel and return all it answers until it closes."""
    async with asyncssh.connect(
        runner.host,
        runner.ports["pe1"],
        username=runner.username,
        password=runner.password,
        known_hosts=None,
        client_keys=None,
        agent_path=None,
    ) as conn:
        proc = await conn.create_process(subsystem="netconf", encoding=None)
        for message in messages:
            proc.stdin.write(message)
        out = b""
        while chunk := await asyncio.wait_for(proc.stdout.read(65536), timeout=5):
            out += chunk
        return out


def test_base_1_0_framing_and_malformed_xml(lab: NetconfRunner) -> None:
    get = f'<rpc xmlns="{BASE}" message-id="7"><get-config><source><running/></source>'
    out = asyncio.run(
        _raw_exchange(
            lab,
            _hello("urn:ietf:params:netconf:base:1.0"),
            get.encode() + b"</get-config></rpc>" + _EOM,
            b"<rpc><unclosed" + _EOM,
            f'<rpc xmlns="{BASE}" message-id="8"><close-session/></rpc>'.encode() + _EOM,
        )
    )
    replies = [r for r in out.split(_EOM) if r.strip()]
    assert len(replies) == 4  # the server's hello, then three replies
    assert b"<session-id>" in replies[0]
    assert b'message-id="7"' in replies[1] and OC.encode() in replies[1]
    assert b"malformed-message" in replies[2]
    assert b'message-id="8"' in replies[3] and b"<ok/>" in replies[3]


def test_bad_chunk_framing_closes_the_session(lab: NetconfRunner) -> None:
    out = asyncio.run(
        _raw_exchange(
            lab, _hello("urn:ietf:params:netconf:base:1.1"), b"\n#notanumber\n<rpc/>\n##\n"
        )
    )
    assert out.count(_EOM) == 1  # only the server's hello: no reply, then the close


def test_oversized_message_closes_the_session(network: LabNetwork) -> None:
    with NetconfRunner.for_network(network, max_message_bytes=4096) as small:
        big = b"<rpc>" + b"x" * 10_000
        out = asyncio.run(
            _raw_exchange(small, _hello("urn:ietf:params:netconf:base:1.0"), big + _EOM)
        )
        assert out.count(_EOM) == 1
