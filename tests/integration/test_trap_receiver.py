"""The trap receiver on real UDP: lab faults, net-snmp traps and informs, v3, hostile input."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from autonoc.core import ber
from autonoc.core.errors import ConfigError
from autonoc.core.inventory import Device, Inventory, Mgmt, Role, SnmpV2c, SnmpV3
from autonoc.core.types import Alarm, Severity
from collectors.traps import TrapReceiver, TrapStats
from lab.faults import FaultInjector
from lab.network import LabNetwork
from lab.runner import LabRunner
from tests.integration.conftest import require_programs

pytestmark = pytest.mark.timeout(120)

COMMUNITY = "trap-community-7f3a"
AUTH_KEY = "auth-key-for-traps-91c2"
PRIV_KEY = "priv-key-for-traps-4be8"
PINNED_ENGINE_ID = "0x80001f8880a1b2c3d4e5"

IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
IF_ADMIN = "1.3.6.1.2.1.2.2.1.7"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
BGP_PEER_STATE = "1.3.6.1.2.1.15.3.1.2"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
LINK_UP = "1.3.6.1.6.3.1.1.5.4"
BGP_ESTABLISHED_V2 = "1.3.6.1.2.1.15.0.1"
BGP_BACKWARD_V1657 = "1.3.6.1.2.1.15.7.2"


@dataclass
class Collected:
    """An alarm sink that records every batch."""

    alarms: list[Alarm] = field(default_factory=list)
    batches: int = 0

    def __call__(self, batch: Sequence[Alarm]) -> None:
        self.batches += 1
        self.alarms.extend(batch)

    async def wait(self, pred: Callable[[list[Alarm]], bool], timeout: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not pred(self.alarms):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"alarms never matched; got {self.alarms}")
            await asyncio.sleep(0.02)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _device(name: str, port: int, snmp: SnmpV2c | SnmpV3 | None, host: str = "127.0.0.1") -> Device:
    return Device(name=name, role=Role.ROUTER, mgmt=Mgmt(host=host, snmp_port=port), snmp=snmp)


def _v3() -> SnmpV3:
    return SnmpV3(
        version="v3",
        user="trapper",
        auth_protocol="sha",
        auth_key=SecretStr(AUTH_KEY),
        priv_protocol="aes",
        priv_key=SecretStr(PRIV_KEY),
    )


@pytest.fixture
def netsnmp_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """net-snmp's tools with a private config and persistent directory, no MIB loading."""
    require_programs(
        [t for t in ("snmptrap", "snmpinform") if shutil.which(t) is None], "apt-get install snmp"
    )
    (tmp_path / "snmp-conf").mkdir()
    yield {
        **os.environ,
        "HOME": str(tmp_path),
        "MIBS": "",
        "SNMPCONFPATH": str(tmp_path / "snmp-conf"),
        "SNMP_PERSISTENT_DIR": str(tmp_path / "snmp-persist"),
    }


async def _netsnmp(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run a net-snmp tool without blocking the loop the receiver runs on."""
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")


def _from(port: int, host: str = "127.0.0.1") -> list[str]:
    return [f"--clientaddr={host}:{port}", "--clientaddrUsesPort=yes"]


def _accounted(s: TrapStats) -> int:
    return (
        s.accepted
        + s.unknown_source
        + s.bad_community
        + s.bad_auth
        + s.undecodable
        + s.unsupported
        + s.v3_discovery
    )


# ---------------------------------------------------------------------------
# The lab's own notifications


def test_lab_link_failure_raises_and_clears_link_and_bgp_alarms() -> None:
    network = LabNetwork.preset("ring4")
    far, far_if = network.peer("pe1", "eth1") or ("", "")
    pe1_peer = next(s.peer_address for s in network.bgp_sessions("pe1") if s.ifname == "eth1")
    far_peer = next(s.peer_address for s in network.bgp_sessions(far) if s.ifname == far_if)
    if_names = {
        (d, i.if_index): i.name for d in network.router_names for i in network.interfaces(d)
    }

    async def run() -> tuple[list[Alarm], TrapStats]:
        sink = Collected()
        with LabRunner(network) as lab:
            receiver = TrapReceiver(
                lab.inventory,
                sink,
                "127.0.0.1",
                0,
                if_names=lambda device, index: if_names.get((device, index)),
            )
            async with receiver:
                lab.trap_target = ("127.0.0.1", receiver.port)
                faults = FaultInjector(network)
                fault = faults.inject("link_down", "pe1:eth1")
                await sink.wait(
                    lambda a: (
                        {(x.device, x.kind) for x in a}
                        >= {
                            ("pe1", "link_down"),
                            (far, "link_down"),
                            ("pe1", "bgp_down"),
                            (far, "bgp_down"),
                        }
                    )
                )
                faults.clear(fault.id)
                await sink.wait(
                    lambda a: (
                        {(x.device, x.kind) for x in a}
                        >= {
                            ("pe1", "link_up"),
                            (far, "link_up"),
                            ("pe1", "bgp_up"),
                            (far, "bgp_up"),
                        }
                    )
                )
                return sink.alarms, receiver.stats

    alarms, stats = asyncio.run(run())
    seen = {(a.device, a.kind, a.instance) for a in alarms}
    assert {
        ("pe1", "link_down", "eth1"),
        (far, "link_down", far_if),
        ("pe1", "bgp_down", pe1_peer),
        (far, "bgp_down", far_peer),
        ("pe1", "link_up", "eth1"),
        (far, "link_up", far_if),
        ("pe1", "bgp_up", pe1_peer),
        (far, "bgp_up", far_peer),
    } <= seen
    # Nothing about devices the fault did not touch.
    assert {a.device for a in alarms} == {"pe1", far}
    for a in alarms:
        assert a.severity is (Severity.MAJOR if a.kind.endswith("_down") else Severity.INFO)
        assert a.text and len(a.text) <= 240
    down = next(a for a in alarms if a.device == "pe1" and a.kind == "link_down")
    assert "oper down" in down.text and "admin up" in down.text  # a failure, not a shutdown
    assert stats.unknown_source == stats.bad_community == stats.undecodable == 0
    assert stats.accepted == len(alarms) == stats.received
    assert stats.by_kind["link_down"] >= 2 and stats.by_kind["bgp_up"] >= 2


# ---------------------------------------------------------------------------
# net-snmp as the sender: v2c trap and inform, v3 authPriv inform and trap


def test_netsnmp_v2c_trap_and_acknowledged_inform(netsnmp_env: dict[str, str]) -> None:
    r1, r2 = _free_port(), _free_port()
    inventory = Inventory(
        devices=(
            _device("r1", r1, SnmpV2c(community=SecretStr(COMMUNITY))),
            _device("r2", r2, SnmpV2c(community=SecretStr("another-community"))),
        )
    )

    async def run() -> tuple[list[Alarm], TrapStats, list[tuple[int, str]]]:
        sink = Collected()
        async with TrapReceiver(inventory, sink, "127.0.0.1", 0) as receiver:
            target = f"127.0.0.1:{receiver.port}"
            results = [
                await _netsnmp(
                    netsnmp_env, "snmptrap", "-v2c", "-c", COMMUNITY, *_from(r1), target, "",
                    LINK_DOWN, f"{IF_INDEX}.3", "i", "3", f"{IF_ADMIN}.3", "i", "1",
                    f"{IF_OPER}.3", "i", "2", f"{IF_NAME}.3", "s", "xe-0/0/3",
                ),
                await _netsnmp(
                    netsnmp_env, "snmpinform", "-v2c", "-c", "another-community", "-r", "0",
                    "-t", "3", *_from(r2), target, "", BGP_ESTABLISHED_V2,
                    f"{BGP_PEER_STATE}.10.0.0.9", "i", "6",
                ),
                # SNMPv1 trap, enterprise-specific: bgpBackwardTransition (RFC 1657 form).
                await _netsnmp(
                    netsnmp_env, "snmptrap", "-v1", "-c", COMMUNITY, *_from(r1), target,
                    "1.3.6.1.2.1.15", "127.0.0.1", "6", "2", "",
                    f"{BGP_PEER_STATE}.10.0.0.8", "i", "1",
                ),
            ]  # fmt: skip
            await sink.wait(lambda a: len(a) >= 3)
            return sink.alarms, receiver.stats, results

    alarms, stats, results = asyncio.run(run())
    assert [rc for rc, _ in results] == [0, 0, 0], results  # the inform was acknowledged
    by_kind = {a.kind: a for a in alarms}
    assert (by_kind["link_down"].device, by_kind["link_down"].instance) == ("r1", "xe-0/0/3")
    assert (by_kind["bgp_up"].device, by_kind["bgp_up"].instance) == ("r2", "10.0.0.9")
    assert (by_kind["bgp_down"].device, by_kind["bgp_down"].instance) == ("r1", "10.0.0.8")
    assert COMMUNITY not in " ".join(a.text for a in alarms)  # v1's snmpTrapCommunity varbind
    assert stats.accepted == 3 and stats.received == 3


def test_netsnmp_v3_authpriv_inform_and_traps(netsnmp_env: dict[str, str]) -> None:
    pinned_port, learned_port = _free_port(), _free_port()
    inventory = Inventory(
        devices=(
            _device("r3", pinned_port, _v3(), host="127.0.0.1"),
            _device("r4", learned_port, _v3(), host="127.0.0.2"),
        )
    )

    def v3(auth: str = AUTH_KEY, priv: str = PRIV_KEY) -> list[str]:
        return [
            "-v3",
            "-l",
            "authPriv",
            "-u",
            "trapper",
            "-a",
            "SHA",
            "-A",
            auth,
            "-x",
            "AES",
            "-X",
            priv,
        ]

    async def run() -> tuple[list[Alarm], TrapStats, dict[str, tuple[int, str]]]:
        sink = Collected()
        pins = {"r3": [PINNED_ENGINE_ID]}
        async with TrapReceiver(inventory, sink, "0.0.0.0", 0, engine_ids=pins) as receiver:
            target = f"127.0.0.1:{receiver.port}"
            link = [LINK_UP, f"{IF_INDEX}.7", "i", "7", f"{IF_NAME}.7", "s", "eth7"]
            rc = {
                "inform": await _netsnmp(
                    netsnmp_env, "snmpinform", *v3(), "-r", "1", "-t", "3",
                    *_from(pinned_port), target, "", *link,
                ),
                "trap_pinned": await _netsnmp(
                    netsnmp_env, "snmptrap", *v3(), "-e", PINNED_ENGINE_ID,
                    *_from(pinned_port), target, "", BGP_BACKWARD_V1657,
                    f"{BGP_PEER_STATE}.192.0.2.1", "i", "3",
                ),
                # No -e: net-snmp's own engine ID, learned from a known device (127.0.0.2).
                "trap_learned": await _netsnmp(
                    netsnmp_env, "snmptrap", *v3(), *_from(learned_port, "127.0.0.2"),
                    target, "", LINK_DOWN, f"{IF_INDEX}.5", "i", "5",
                ),
            }  # fmt: skip
            await sink.wait(lambda a: len(a) >= 3)
            bad = {
                "inform_wrong_key": await _netsnmp(
                    netsnmp_env, "snmpinform", *v3(priv="not-the-priv-key"), "-r", "0", "-t", "1",
                    *_from(pinned_port), target, "", *link,
                ),
                "trap_wrong_key": await _netsnmp(
                    netsnmp_env, "snmptrap", *v3(auth="not-the-auth-key"), "-e", PINNED_ENGINE_ID,
                    *_from(pinned_port), target, "", *link,
                ),
                "trap_no_auth": await _netsnmp(
                    netsnmp_env, "snmptrap", "-v3", "-l", "noAuthNoPriv", "-u", "trapper",
                    "-e", PINNED_ENGINE_ID, *_from(pinned_port), target, "", *link,
                ),
                "v2c_from_v3_device": await _netsnmp(
                    netsnmp_env, "snmptrap", "-v2c", "-c", "public", *_from(pinned_port), target,
                    "", *link,
                ),
            }  # fmt: skip
            await asyncio.sleep(0.3)
            return sink.alarms, receiver.stats, {**rc, **bad}

    alarms, stats, rc = asyncio.run(run())
    assert rc["inform"][0] == 0, rc["inform"]
    assert rc["trap_pinned"][0] == 0 and rc["trap_learned"][0] == 0
    assert rc["inform_wrong_key"][0] != 0  # never acknowledged
    seen = {(a.device, a.kind, a.instance) for a in alarms}
    assert seen == {
        ("r3", "link_up", "eth7"),
        ("r3", "bgp_down", "192.0.2.1"),
        ("r4", "link_down", "ifIndex.5"),
    }
    assert len(alarms) == 3  # none of the bad ones got through
    assert stats.bad_auth == 3 and stats.bad_community == 1
    assert stats.v3_discovery == 2  # each inform's engine-ID discovery
    assert _accounted(stats) == stats.received


# ---------------------------------------------------------------------------
# Untrusted input


def test_unknown_sources_wrong_communities_and_garbage_are_counted_and_dropped(
    netsnmp_env: dict[str, str],
) -> None:
    r1, r2, unlisted = _free_port(), _free_port(), _free_port()
    inventory = Inventory(
        devices=(
            _device("r1", r1, SnmpV2c(community=SecretStr(COMMUNITY))),
            _device("r2", r2, SnmpV2c(community=SecretStr("r2-community"))),
        )
    )
    link = ["", LINK_DOWN, f"{IF_INDEX}.2", "i", "2"]
    trap = ber.encode_notification(
        COMMUNITY.encode(), 7, (1, 3, 6, 1, 6, 3, 1, 1, 5, 3), 100, [], inform=False
    )
    get_request = ber.encode_message(1, COMMUNITY.encode(), ber.GET, 9, 0, 0, b"")
    garbage = [
        b"",
        b"\x00" * 7,
        os.urandom(300),
        trap[: len(trap) // 2],  # truncated
        b"\x30\x84\xff\xff\xff\xff\x02\x01\x01",  # absurd length
        b"\x30\x10\x02\x01\x03" + os.urandom(13),  # v3-looking nonsense
        get_request,  # SNMP, but not a notification
    ]

    async def run() -> tuple[list[Alarm], TrapStats, list[int], list[Any]]:
        sink = Collected()
        with structlog.testing.capture_logs() as logs:
            async with TrapReceiver(inventory, sink, "127.0.0.1", 0) as receiver:
                target = f"127.0.0.1:{receiver.port}"
                rcs = [
                    # Unlisted port on an address two devices share: which device? Neither.
                    (await _netsnmp(
                        netsnmp_env, "snmptrap", "-v2c", "-c", COMMUNITY, *_from(unlisted),
                        target, *link,
                    ))[0],
                    # An address no device has.
                    (await _netsnmp(
                        netsnmp_env, "snmptrap", "-v2c", "-c", COMMUNITY,
                        *_from(_free_port("127.0.0.3"), "127.0.0.3"), target, *link,
                    ))[0],
                    # r2's community from r1: known to the receiver, but not r1's.
                    (await _netsnmp(
                        netsnmp_env, "snmptrap", "-v2c", "-c", "r2-community", *_from(r1),
                        target, *link,
                    ))[0],
                    # A community nobody has; as an inform it must not be acknowledged.
                    (await _netsnmp(
                        netsnmp_env, "snmpinform", "-v2c", "-c", "guessed", "-r", "0", "-t", "1",
                        *_from(r1), target, *link,
                    ))[0],
                ]  # fmt: skip
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", r1))
                    for datagram in garbage:
                        s.sendto(datagram, ("127.0.0.1", receiver.port))
                    await asyncio.sleep(0.3)
                    s.sendto(trap, ("127.0.0.1", receiver.port))  # still alive and accepting
                    await sink.wait(lambda a: len(a) == 1)
                return sink.alarms, receiver.stats, rcs, logs

    alarms, stats, rcs, logs = asyncio.run(run())
    assert rcs[:3] == [0, 0, 0] and rcs[3] != 0  # traps are fire-and-forget; the inform failed
    assert [(a.device, a.kind, a.instance) for a in alarms] == [("r1", "link_down", "")]
    assert stats.unknown_source == 2
    assert stats.bad_community == 2
    assert stats.undecodable + stats.unsupported == len(garbage)
    assert stats.unsupported >= 1  # the GET
    assert stats.accepted == 1
    assert _accounted(stats) == stats.received
    warnings = [e for e in logs if e["event"] == "trap_dropped"]
    assert {e["reason"] for e in warnings} >= {"unknown_source", "bad_community", "undecodable"}
    for secret in (COMMUNITY, "r2-community", "guessed"):
        assert all(secret not in str(e) for e in logs)


def test_a_port_already_taken_is_a_clear_error() -> None:
    inventory = Inventory(devices=(_device("r1", 161, SnmpV2c(community=SecretStr("x"))),))

    async def run() -> str:
        async with TrapReceiver(inventory, Collected(), "127.0.0.1", 0) as first:
            second = TrapReceiver(inventory, Collected(), "127.0.0.1", first.port)
            with pytest.raises(ConfigError) as info:
                await second.start()
            assert not second.running
            return str(info.value)

    message = asyncio.run(run())
    assert "cannot listen on udp 127.0.0.1" in message and "free the port" in message
