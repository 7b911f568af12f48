"""The fast lab SNMP agent over real UDP on loopback, driven by net-snmp's command-line tools."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pyasn1.codec.ber import decoder
from pysnmp.proto.api import v2c

from autonoc.core import ber
from autonoc.core.errors import LabError
from lab.loop import LoopThread
from lab.snmp import LINK_DOWN, SnmpAgentServer, StaticMib, V3Credentials
from lab.snmp.mib import Oid, Value
from tests.integration.conftest import require_programs

_TOOLS = ("snmpwalk", "snmpbulkwalk", "snmpget", "snmpset")

SYSTEM = (1, 3, 6, 1, 2, 1, 1)
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IF_ADMIN_STATUS = (*IF_ENTRY, 7)
IF_HC_IN_OCTETS = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6)
PRIVATE = (1, 3, 6, 1, 4, 1, 99999)
INTERFACES = 30  # more rows than one GETBULK of 25 repetitions carries

RO, RW = "lab-ro", "lab-rw"
V3 = V3Credentials("labuser", "lab-auth-key", "lab-priv-key")


def _values() -> dict[Oid, Value]:
    values: dict[Oid, Value] = {
        (*SYSTEM, 1, 0): (ber.OCTET_STRING, b"autonoc lab router"),
        (*SYSTEM, 2, 0): (ber.OBJECT_IDENTIFIER, (*PRIVATE, 1, 1)),
        (*SYSTEM, 3, 0): (ber.TIMETICKS, 123_456),
        (*SYSTEM, 5, 0): (ber.OCTET_STRING, b"r1"),
        (*PRIVATE, 2, 0): (ber.INTEGER, -42),
        (*PRIVATE, 3, 0): (ber.IP_ADDRESS, b"\x0a\x00\x00\x01"),
        (*PRIVATE, 4, 0): (ber.OCTET_STRING, b""),
    }
    for n in range(1, INTERFACES + 1):
        values[(*IF_ENTRY, 1, n)] = (ber.INTEGER, n)
        values[(*IF_ENTRY, 2, n)] = (ber.OCTET_STRING, f"eth{n}".encode())
        values[(*IF_ENTRY, 5, n)] = (ber.GAUGE32, 1_000_000_000)
        values[(*IF_ADMIN_STATUS, n)] = (ber.INTEGER, 1)
        values[(*IF_ENTRY, 10, n)] = (ber.COUNTER32, 2**32 - n)
        values[(*IF_HC_IN_OCTETS, n)] = (ber.COUNTER64, 2**64 - n)
    return values


def _text(value: Value) -> str:
    """How net-snmp prints a value with -Oq -Ot (numeric OIDs and timeticks)."""
    tag, raw = value
    if tag == ber.OCTET_STRING:
        assert isinstance(raw, bytes)
        return f'"{raw.decode()}"'
    if tag == ber.OBJECT_IDENTIFIER:
        assert isinstance(raw, tuple)
        return "." + ".".join(map(str, raw))
    if tag == ber.IP_ADDRESS:
        assert isinstance(raw, bytes)
        return ".".join(map(str, raw))
    return str(raw)


def _dotted(oid: Oid) -> str:
    return "." + ".".join(map(str, oid))


@dataclass
class Agent:
    """One served device and the handles a test needs."""

    loop: LoopThread
    server: SnmpAgentServer
    mib: StaticMib
    values: dict[Oid, Value]
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def walk_expected(self, *, v1: bool = False) -> list[tuple[str, str]]:
        return [
            (_dotted(oid), _text(value))
            for oid, value in sorted(self.values.items())
            if not (v1 and value[0] == ber.COUNTER64)
        ]


@pytest.fixture(scope="module")
def netsnmp() -> None:
    require_programs([t for t in _TOOLS if shutil.which(t) is None], "apt-get install snmp")


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _close(server: SnmpAgentServer) -> None:
    server.close()


@pytest.fixture
def agent(netsnmp: None) -> Iterator[Agent]:
    values = _values()
    mib = StaticMib(values, writable=IF_ADMIN_STATUS, allowed={1, 2})
    loop = LoopThread("fast-snmp-agent")
    loop.start()
    server = SnmpAgentServer()
    try:
        server.add("r1", _udp_socket(), mib, RO, RW, V3)
        loop.call(server.start(), timeout=10)
        yield Agent(loop, server, mib, values, server.port("r1"))
    finally:
        loop.stop(_close(server), timeout=10)


def _run(tool: str, *args: str, retries: int = 1) -> subprocess.CompletedProcess[str]:
    cmd = [tool, "-On", "-Oq", "-Ot", "-t", "2", "-r", str(retries), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _lines(result: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    assert result.returncode == 0, result.stderr
    pairs = []
    for line in result.stdout.splitlines():
        oid, _, text = line.partition(" ")
        pairs.append((oid, text.strip()))
    return pairs


def _v3_args(auth_key: str = V3.auth_key) -> list[str]:
    return [
        "-v3",
        "-l",
        "authPriv",
        "-a",
        "SHA",
        "-x",
        "AES",
        "-u",
        V3.user,
        "-A",
        auth_key,
        "-X",
        V3.priv_key,
    ]


def _end_of_view(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # Walking from the root, net-snmp prints the agent's endOfMibView as a last line.
    assert "No more variables left in this MIB View" in pairs[-1][1]
    return pairs[:-1]


def test_v2c_walk_returns_every_object_in_order(agent: Agent) -> None:
    pairs = _lines(_run("snmpwalk", "-v2c", "-c", RO, agent.target, ".1"))
    assert _end_of_view(pairs) == agent.walk_expected()


def test_bulkwalk_matches_walk_in_fewer_requests(agent: Agent) -> None:
    before = agent.server.stats.requests
    pairs = _lines(_run("snmpbulkwalk", "-v2c", "-Cr25", "-c", RO, agent.target, ".1"))
    assert _end_of_view(pairs) == agent.walk_expected()
    requests = agent.server.stats.requests - before
    assert requests <= len(pairs) // 25 + 1


def test_bulkwalk_of_one_table_column(agent: Agent) -> None:
    pairs = _lines(
        _run("snmpbulkwalk", "-v2c", "-Cr25", "-c", RO, agent.target, _dotted(IF_HC_IN_OCTETS))
    )
    assert pairs == [
        (_dotted((*IF_HC_IN_OCTETS, n)), str(2**64 - n)) for n in range(1, INTERFACES + 1)
    ]


def test_get_of_missing_objects_says_which_is_missing(agent: Agent) -> None:
    result = _run(
        "snmpget",
        "-v2c",
        "-c",
        RO,
        agent.target,
        _dotted((*IF_ENTRY, 2, 999)),
        _dotted((1, 3, 6, 1, 2, 1, 99, 1, 0)),
        _dotted((*SYSTEM, 5, 0)),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "No Such Instance" in lines[0]
    assert "No Such Object" in lines[1]
    assert lines[2] == f'{_dotted((*SYSTEM, 5, 0))} "r1"'


def test_set_needs_the_write_community(agent: Agent) -> None:
    cell = _dotted((*IF_ADMIN_STATUS, 3))
    refused = _run("snmpset", "-v2c", "-c", RO, agent.target, cell, "i", "2")
    assert refused.returncode != 0
    assert "noAccess" in refused.stderr + refused.stdout
    assert agent.mib.value((*IF_ADMIN_STATUS, 3)) == (ber.INTEGER, 1)

    done = _run("snmpset", "-v2c", "-c", RW, agent.target, cell, "i", "2")
    assert done.returncode == 0, done.stderr
    assert agent.mib.value((*IF_ADMIN_STATUS, 3)) == (ber.INTEGER, 2)
    assert _lines(_run("snmpget", "-v2c", "-c", RO, agent.target, cell)) == [(cell, "2")]


def test_set_errors_change_nothing(agent: Agent) -> None:
    cell = _dotted((*IF_ADMIN_STATUS, 4))
    wrong_value = _run(
        "snmpset",
        "-v2c",
        "-c",
        RW,
        agent.target,
        cell,
        "i",
        "2",
        _dotted((*IF_ADMIN_STATUS, 5)),
        "i",
        "9",
    )
    assert wrong_value.returncode != 0
    assert "wrongValue" in wrong_value.stderr + wrong_value.stdout
    not_writable = _run(
        "snmpset", "-v2c", "-c", RW, agent.target, _dotted((*SYSTEM, 5, 0)), "s", "r9"
    )
    assert "notWritable" in not_writable.stderr + not_writable.stdout
    assert agent.mib.value((*IF_ADMIN_STATUS, 4)) == (ber.INTEGER, 1)
    assert agent.mib.value((*SYSTEM, 5, 0)) == (ber.OCTET_STRING, b"r1")


def test_v1_walk_skips_counter64_and_v1_errors_are_nosuchname(agent: Agent) -> None:
    pairs = _lines(_run("snmpwalk", "-v1", "-c", RO, agent.target, ".1"))
    assert pairs[-1] == ("End", "of MIB")  # how net-snmp reports v1's final noSuchName
    assert pairs[:-1] == agent.walk_expected(v1=True)
    missing = _run("snmpget", "-v1", "-c", RO, agent.target, _dotted((*IF_ENTRY, 2, 999)))
    assert missing.returncode != 0
    assert "noSuchName" in missing.stderr + missing.stdout
    counter64 = _run("snmpget", "-v1", "-c", RO, agent.target, _dotted((*IF_HC_IN_OCTETS, 1)))
    assert "noSuchName" in counter64.stderr + counter64.stdout


def test_v3_authpriv_walk_and_set(agent: Agent) -> None:
    pairs = _lines(_run("snmpwalk", *_v3_args(), agent.target, ".1"))
    assert _end_of_view(pairs) == agent.walk_expected()
    done = _run("snmpset", *_v3_args(), agent.target, _dotted((*IF_ADMIN_STATUS, 7)), "i", "2")
    assert done.returncode == 0, done.stderr
    assert agent.mib.value((*IF_ADMIN_STATUS, 7)) == (ber.INTEGER, 2)
    assert agent.server.stats.v3_messages > 0


def test_v3_wrong_auth_key_is_an_authentication_error(agent: Agent) -> None:
    result = _run(
        "snmpget", *_v3_args("not-the-auth-key"), agent.target, _dotted((*SYSTEM, 5, 0)), retries=0
    )
    assert result.returncode != 0
    assert "Authentication failure" in result.stderr


def test_malformed_datagram_is_dropped_and_service_goes_on(agent: Agent) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x30\x82\xff\xff garbage", ("127.0.0.1", agent.port))
        sock.sendto(b"", ("127.0.0.1", agent.port))
    pairs = _lines(_run("snmpget", "-v2c", "-c", RO, agent.target, _dotted((*SYSTEM, 5, 0))))
    assert pairs == [(_dotted((*SYSTEM, 5, 0)), '"r1"')]
    assert agent.server.stats.malformed == 2


def test_unknown_community_is_dropped_silently(agent: Agent) -> None:
    result = _run(
        "snmpget", "-v2c", "-c", "guess", agent.target, _dotted((*SYSTEM, 5, 0)), retries=0
    )
    assert result.returncode != 0
    assert "Timeout" in result.stderr
    assert agent.server.stats.bad_community == 1


def _receiver() -> socket.socket:
    sock = _udp_socket()
    sock.settimeout(10)
    return sock


def _check_notification(data: bytes, pdu_type: int) -> ber.Message:
    msg = ber.decode_message(data)
    assert (msg.version, msg.community, msg.pdu_type) == (ber.VERSION_2C, b"traps", pdu_type)
    assert msg.varbinds == (
        (ber.SYS_UPTIME_0, (ber.TIMETICKS, 4200)),
        (ber.SNMP_TRAP_OID_0, (ber.OBJECT_IDENTIFIER, LINK_DOWN)),
        ((*IF_ENTRY, 1, 3), (ber.INTEGER, 3)),
        ((*IF_ADMIN_STATUS, 3), (ber.INTEGER, 2)),
    )
    theirs, rest = decoder.decode(data, asn1Spec=v2c.Message())
    assert rest == b""
    pdu = v2c.apiMessage.get_pdu(theirs)
    assert int(v2c.apiPDU.get_request_id(pdu)) == msg.request_id
    names = [tuple(name) for name, _ in v2c.apiPDU.get_varbinds(pdu)]
    assert names == [oid for oid, _ in msg.varbinds]
    return msg


_TRAP_VARBINDS: list[tuple[Oid, Value]] = [
    ((*IF_ENTRY, 1, 3), (ber.INTEGER, 3)),
    ((*IF_ADMIN_STATUS, 3), (ber.INTEGER, 2)),
]


def test_trap_leaves_from_the_device_port(agent: Agent) -> None:
    with _receiver() as receiver:
        target = receiver.getsockname()
        agent.loop.call(
            agent.server.send_trap("r1", target, "traps", LINK_DOWN, _TRAP_VARBINDS, 4200),
            timeout=10,
        )
        data, source = receiver.recvfrom(65535)
    assert source == ("127.0.0.1", agent.port)
    _check_notification(data, ber.TRAP_V2)


def test_inform_is_retried_until_acknowledged(agent: Agent) -> None:
    with _receiver() as receiver:
        target = receiver.getsockname()
        sent = asyncio.run_coroutine_threadsafe(
            agent.server.send_trap(
                "r1",
                target,
                "traps",
                LINK_DOWN,
                _TRAP_VARBINDS,
                4200,
                inform=True,
                timeout=0.5,
                retries=5,
            ),
            agent.loop.loop,
        )
        first, source = receiver.recvfrom(65535)  # not acknowledged: it comes again
        again, _ = receiver.recvfrom(65535)
        assert first == again
        msg = _check_notification(again, ber.INFORM)
        ack = ber.encode_message(
            ber.VERSION_2C, b"traps", ber.RESPONSE, msg.request_id, 0, 0, msg.raw_varbinds
        )
        receiver.sendto(ack, source)
        assert sent.result(timeout=10) is None


def test_unacknowledged_inform_is_an_error(agent: Agent) -> None:
    with _receiver() as receiver:
        target = receiver.getsockname()
        with pytest.raises(LabError, match="not acknowledged after 2 tries"):
            agent.loop.call(
                agent.server.send_trap(
                    "r1", target, "traps", LINK_DOWN, [], 4200, inform=True, timeout=0.2, retries=1
                ),
                timeout=10,
            )
        assert len({receiver.recvfrom(65535)[0] for _ in range(2)}) == 1
