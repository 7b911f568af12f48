"""The lean v1/v2c client over real UDP on loopback: net-snmp's snmpd, the lab's agent,
and test agents that stay silent, answer late, from elsewhere, or with garbage."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from autonoc.core import ber, procs
from autonoc.core.errors import DeviceError, DeviceUnreachable
from autonoc.core.inventory import Device, Mgmt, Role, SnmpV2c
from autonoc.core.settings import SnmpSettings
from collectors.snmp import SnmpClient
from collectors.snmp_groups import SYS_UPTIME as _SYS_UPTIME
from collectors.snmp_groups import poll_plan
from collectors.snmpwire import SnmpWire, WireTarget
from lab.loop import LoopThread
from lab.snmp import SnmpAgentServer, StaticMib
from lab.snmp.mib import MibLayout, Oid, Value
from tests.integration.conftest import require_programs
from tests.unit.test_snmpwire import MibAgent, ours_plain, pysnmp_plain

pytestmark = pytest.mark.timeout(120)

COMMUNITY = "wire-ro"
IF_TABLE = "1.3.6.1.2.1.2.2"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1"
SYSTEM = "1.3.6.1.2.1.1"
# Columns whose values do not move between two walks (no counters, no timeticks).
STABLE_COLUMNS = ("1.3.6.1.2.1.2.2.1.1.", "1.3.6.1.2.1.2.2.1.2.", "1.3.6.1.2.1.2.2.1.3.")
STABLE_COLUMNS += ("1.3.6.1.2.1.2.2.1.4.", "1.3.6.1.2.1.2.2.1.6.", "1.3.6.1.2.1.2.2.1.7.")
STABLE_COLUMNS += ("1.3.6.1.2.1.31.1.1.1.1.", "1.3.6.1.2.1.31.1.1.1.18.")

SYS_UPTIME = _SYS_UPTIME.oid
#: Every column an interface poll walks.
IF_POLL_COLUMNS = poll_plan(("interfaces",))[0]


def _device(name: str, host: str, port: int, version: str = "v2c") -> Device:
    return Device(
        name=name,
        role=Role.ROUTER,
        mgmt=Mgmt(host=host, snmp_port=port),
        snmp=SnmpV2c(version=version, community=SecretStr(COMMUNITY)),  # type: ignore[arg-type]
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _exchange(port: int, request: bytes, host: str = "127.0.0.1") -> bytes:
    """Send one request from a plain socket; the raw reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        for _ in range(3):
            sock.sendto(request, (host, port))
            try:
                return sock.recv(65535)
            except TimeoutError:
                continue
    raise AssertionError(f"no reply from {host}:{port}")


# ---------------------------------------------------------------------------
# Agents


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """net-snmp's snmpd on 127.0.0.1 and [::1], one port; serves this host's interfaces."""
    program = shutil.which("snmpd") or (
        "/usr/sbin/snmpd" if Path("/usr/sbin/snmpd").exists() else None
    )
    require_programs([] if program else ["snmpd"], "apt-get install snmpd")
    assert program is not None
    tmp = tmp_path_factory.mktemp("snmpd")
    port = _free_port()
    conf = tmp / "snmpd.conf"
    conf.write_text(f"rocommunity {COMMUNITY} 127.0.0.1\nrocommunity6 {COMMUNITY} ::1\n")
    process = subprocess.Popen(
        [program, "-f", "-Lo", "-C", "-c", str(conf), f"udp:127.0.0.1:{port},udp6:[::1]:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "SNMP_PERSISTENT_DIR": str(tmp)},
    )
    try:
        probe = ber.encode_request(1, COMMUNITY.encode(), ber.GET, 1, [ber.encode_oid((1, 3))])
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, f"snmpd exited with {process.returncode}"
            try:
                _exchange(port, probe)
                break
            except (AssertionError, OSError):
                if time.monotonic() > deadline:
                    raise
        yield port
    finally:
        procs.stop(process, timeout=10)


def _lab_values(device: int, interfaces: int) -> dict[Oid, Value]:
    entry, x_entry = (1, 3, 6, 1, 2, 1, 2, 2, 1), (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
    values: dict[Oid, Value] = {
        (1, 3, 6, 1, 2, 1, 1, 1, 0): (ber.OCTET_STRING, b"autonoc lab router"),
        (1, 3, 6, 1, 2, 1, 1, 2, 0): (ber.OBJECT_IDENTIFIER, (1, 3, 6, 1, 4, 1, 99999, 1)),
        (1, 3, 6, 1, 2, 1, 1, 3, 0): (ber.TIMETICKS, 100 * device),
        (1, 3, 6, 1, 4, 1, 99999, 2, 0): (ber.INTEGER, -42),
        (1, 3, 6, 1, 4, 1, 99999, 3, 0): (ber.IP_ADDRESS, bytes((10, 0, device % 256, 1))),
    }
    for n in range(1, interfaces + 1):
        values[(*entry, 1, n)] = (ber.INTEGER, n)
        values[(*entry, 2, n)] = (ber.OCTET_STRING, f"eth{n}".encode())
        values[(*entry, 6, n)] = (ber.OCTET_STRING, bytes((2, 0, 0xFF, 0xFE, device % 256, n)))
        values[(*entry, 7, n)] = (ber.INTEGER, 1 + n % 2)
        values[(*entry, 10, n)] = (ber.COUNTER32, (2**32 - n * 7919 - device) % 2**32)
        values[(*x_entry, 1, n)] = (ber.OCTET_STRING, f"eth{n}".encode())
        values[(*x_entry, 6, n)] = (ber.COUNTER64, 2**64 - n - device)
        values[(*x_entry, 15, n)] = (ber.GAUGE32, 100_000)
    return values


class LabAgents:
    """``count`` lab devices on one SnmpAgentServer in its own thread."""

    def __init__(self, count: int, interfaces: int) -> None:
        self.values = [_lab_values(d, interfaces) for d in range(count)]
        layout = MibLayout(list(self.values[0]), {oid[:-1] for oid in self.values[0]})
        self.loop = LoopThread("wire-lab-agents")
        self.server = SnmpAgentServer()
        for d, values in enumerate(self.values):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            self.server.add(f"r{d}", sock, StaticMib(values, layout=layout), COMMUNITY, "rw")
        self.ports = [self.server.port(f"r{d}") for d in range(count)]

    def expected(self, device: int, *roots: str) -> dict[str, object]:
        out: dict[str, object] = {}
        for oid, (tag, raw) in sorted(self.values[device].items()):
            text = ".".join(map(str, oid))
            if not any(text.startswith(r + ".") for r in roots):
                continue
            if tag == ber.OCTET_STRING:
                assert isinstance(raw, bytes)
                try:
                    out[text] = raw.decode()
                except UnicodeDecodeError:
                    out[text] = raw
            elif tag == ber.IP_ADDRESS:
                assert isinstance(raw, bytes)
                out[text] = ".".join(map(str, raw))
            elif tag == ber.OBJECT_IDENTIFIER:
                assert isinstance(raw, tuple)
                out[text] = ".".join(map(str, raw))
            else:
                out[text] = raw
        return out


async def _close(server: SnmpAgentServer) -> None:
    server.close()


@pytest.fixture(scope="module")
def lab() -> Iterator[LabAgents]:
    agents = LabAgents(count=100, interfaces=12)
    agents.loop.start()
    try:
        agents.loop.call(agents.server.start(), timeout=20)
        yield agents
    finally:
        agents.loop.stop(_close(agents.server), timeout=20)


# ---------------------------------------------------------------------------
# Real responses: our decoder and pysnmp's agree


def _requests() -> list[bytes]:
    c = COMMUNITY.encode()
    oid = ber.encode_oid

    def dotted(text: str) -> bytes:
        return oid(tuple(int(a) for a in text.split(".")))

    return [
        ber.encode_request(1, c, ber.GET, 11, [dotted(f"{SYSTEM}.{n}.0") for n in (1, 2, 3, 99)]),
        ber.encode_request(1, c, ber.GET, 12, [dotted("1.3.6.1.4.1.99999.2.0")]),
        ber.encode_request(1, c, ber.GETNEXT, 13, [dotted("1.3.6.1.4.1.99999")]),
        ber.encode_request(
            1, c, ber.GETBULK, 14, [dotted(IF_TABLE), dotted(IF_X_TABLE)], max_repetitions=25
        ),
        ber.encode_request(
            1,
            c,
            ber.GETBULK,
            15,
            [dotted(SYSTEM + ".3"), *(dotted(col) for col in IF_POLL_COLUMNS)],
            non_repeaters=1,
            max_repetitions=25,
        ),
        ber.encode_request(0, c, ber.GETNEXT, 16, [dotted(IF_TABLE), dotted(IF_X_TABLE)]),
        ber.encode_request(1, c, ber.GETBULK, 17, [dotted("2.999")], max_repetitions=5),
    ]


def _check_same_decoding(port: int) -> int:
    varbinds = 0
    for request in _requests():
        reply = _exchange(port, request)
        ours, theirs = ours_plain(reply), pysnmp_plain(reply)
        assert ours == theirs
        varbinds += len(ours)
    return varbinds


def test_snmpd_responses_decode_like_pysnmp(snmpd: int) -> None:
    assert _check_same_decoding(snmpd) > 50


def test_lab_agent_responses_decode_like_pysnmp(lab: LabAgents) -> None:
    assert _check_same_decoding(lab.ports[0]) > 200


# ---------------------------------------------------------------------------
# Walks: the same answers as the pysnmp path


@pytest.mark.parametrize("version", ["v1", "v2c"])
def test_walks_of_snmpd_match_pysnmp(snmpd: int, version: str) -> None:
    wire_dev = _device("r-v4", "127.0.0.1", snmpd, version)
    pysnmp_dev = _device("r-v6", "::1", snmpd, version)  # IPv6 stays on pysnmp

    async def both() -> tuple[dict[str, Any], dict[str, Any], int, int]:
        async with SnmpClient(SnmpSettings(timeout=2.0, retries=1, max_repetitions=10)) as client:
            wired = await client.walk(wire_dev, [IF_TABLE, IF_X_TABLE], scalars=[SYS_UPTIME])
            after_wire = client.stats().requests
            other = await client.walk(pysnmp_dev, [IF_TABLE, IF_X_TABLE], scalars=[SYS_UPTIME])
            return wired, other, after_wire, client.stats().requests

    wired, other, after_wire, after_pysnmp = asyncio.run(both())
    assert after_wire > 1 and after_pysnmp == after_wire  # only IPv4 went through the wire
    assert set(wired) == set(other)
    assert SYS_UPTIME in wired
    assert any(k.startswith("1.3.6.1.2.1.2.2.1.2.") for k in wired)  # ifDescr
    hc = [k for k in wired if k.startswith("1.3.6.1.2.1.31.1.1.1.6.")]  # ifHCInOctets
    assert bool(hc) == (version == "v2c")  # v1 has no Counter64
    for key, value in wired.items():
        if key.startswith(STABLE_COLUMNS):
            assert value == other[key], key


def test_get_of_snmpd_matches_pysnmp(snmpd: int) -> None:
    oids = [
        f"{SYSTEM}.1.0",
        f"{SYSTEM}.2.0",
        f"{SYSTEM}.5.0",
        f"{SYSTEM}.99.0",
        "1.3.6.1.2.1.2.1.0",
    ]

    async def three() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]:
        async with SnmpClient(SnmpSettings(timeout=2.0, retries=1)) as client:
            by_name = await client.get(_device("a", "localhost", snmpd), oids)
            wired = await client.get(_device("b", "127.0.0.1", snmpd), oids)
            other = await client.get(_device("c", "::1", snmpd), oids)
            return by_name, wired, other, client.stats().requests

    by_name, wired, other, requests = asyncio.run(three())
    assert by_name == wired == other
    assert requests == 2  # a name that resolves to IPv4 goes through the wire too
    assert wired[f"{SYSTEM}.99.0"] is None
    assert isinstance(wired[f"{SYSTEM}.1.0"], str) and isinstance(wired[f"{SYSTEM}.2.0"], str)


# ---------------------------------------------------------------------------
# Failures are counted, bounded and attributed


def test_a_dead_device_times_out_while_the_others_answer(snmpd: int, lab: LabAgents) -> None:
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never read: a black hole
    dead.bind(("127.0.0.1", 0))
    devices = [_device(f"r{d}", "127.0.0.1", lab.ports[d]) for d in range(5)]
    devices.append(_device("snmpd", "127.0.0.1", snmpd))
    devices.append(_device("dead", "127.0.0.1", dead.getsockname()[1]))
    finished: list[str] = []

    async def poll() -> tuple[list[Any], Any]:
        async with SnmpClient(SnmpSettings(timeout=0.5, retries=1)) as client:

            async def one(device: Device) -> dict[str, Any]:
                try:
                    return await client.walk(device, IF_POLL_COLUMNS, scalars=[SYS_UPTIME])
                finally:
                    finished.append(device.name)

            results = await asyncio.gather(*map(one, devices), return_exceptions=True)
            return results, client.stats()

    try:
        results, stats = asyncio.run(poll())
    finally:
        dead.close()
    *alive, silent = results
    for d, walked in enumerate(alive[:5]):
        assert walked == {**lab.expected(d, *IF_POLL_COLUMNS), SYS_UPTIME: 100 * d}
    assert isinstance(alive[5], dict) and SYS_UPTIME in alive[5]
    assert isinstance(silent, DeviceUnreachable)
    assert "no SNMP response from 127.0.0.1:" in str(silent) and "after 2 attempts" in str(silent)
    assert COMMUNITY not in str(silent)
    assert finished[-1] == "dead"  # the others did not wait for it
    assert (stats.timeouts, stats.retries, stats.in_flight) == (1, 1, 0)


class _TestAgent(asyncio.DatagramProtocol):
    """A UDP agent on loopback whose answers a test scripts.

    ``script(data, attempt)`` returns ``(reply, delay_s, from_other_socket)`` triples.
    """

    def __init__(self, script: Callable[[bytes, int], list[tuple[bytes, float, bool]]]) -> None:
        self.script = script
        self.attempts: dict[bytes, int] = {}
        self.transport: Any = None
        self.other: Any = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0)
        )
        self.other, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        return int(self.transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        attempt = self.attempts.get(data, 0) + 1
        self.attempts[data] = attempt
        loop = asyncio.get_running_loop()
        for reply, delay, elsewhere in self.script(data, attempt):
            sender = self.other if elsewhere else self.transport
            loop.call_later(delay, sender.sendto, reply, addr)

    def close(self) -> None:
        self.transport.close()
        self.other.close()


_MIB = MibAgent({(1, 3, 6, 1, 2, 1, 1, 3, 0): (ber.TIMETICKS, 4242)}, COMMUNITY.encode())


def _good(data: bytes) -> bytes:
    reply = _MIB(data)
    assert reply is not None
    return reply


def _with_agent(
    script: Callable[[bytes, int], list[tuple[bytes, float, bool]]],
    settings: SnmpSettings,
    *,
    linger: Callable[[Any], bool] | None = None,
) -> tuple[Any, Any]:
    """GET sysUpTime.0 from a scripted agent; the result (or error) and the client's stats."""

    async def scenario() -> tuple[Any, Any]:
        agent = _TestAgent(script)
        port = await agent.start()
        try:
            async with SnmpClient(settings) as client:
                try:
                    result: Any = await client.get(_device("t", "127.0.0.1", port), [SYS_UPTIME])
                except DeviceError as exc:
                    result = exc
                deadline = time.monotonic() + 10
                while linger is not None and not linger(client.stats()):
                    assert time.monotonic() < deadline, client.stats()
                    await asyncio.sleep(0.05)
                return result, client.stats()
        finally:
            agent.close()

    return asyncio.run(scenario())


def test_garbage_and_truncated_replies_are_counted_and_the_retry_succeeds() -> None:
    def script(data: bytes, attempt: int) -> list[tuple[bytes, float, bool]]:
        good = _good(data)
        if attempt == 1:
            return [(b"\xde\xad\xbe\xef garbage", 0, False), (good[: len(good) // 2], 0, False)]
        return [(good, 0, False)]

    result, stats = _with_agent(script, SnmpSettings(timeout=0.5, retries=1))
    assert result == {SYS_UPTIME: 4242}
    assert (stats.malformed, stats.retries, stats.replies, stats.timeouts) == (2, 1, 1, 0)


def test_only_garbage_is_a_timeout_and_broken_varbinds_a_malformed_error() -> None:
    def garbage(data: bytes, attempt: int) -> list[tuple[bytes, float, bool]]:
        return [(b"\x30\x03\x02\x01", 0, False)]

    result, stats = _with_agent(garbage, SnmpSettings(timeout=0.3, retries=1))
    assert isinstance(result, DeviceUnreachable)
    assert (stats.malformed, stats.timeouts) == (2, 1)

    def broken(data: bytes, attempt: int) -> list[tuple[bytes, float, bool]]:
        return [(_good(data).replace(b"\x43\x02\x10\x92", b"\x49\x02\x10\x92"), 0, False)]

    result, stats = _with_agent(broken, SnmpSettings(timeout=0.3, retries=1))
    assert isinstance(result, DeviceError) and not isinstance(result, DeviceUnreachable)
    assert "malformed" in str(result)
    assert COMMUNITY not in str(result)


def test_a_late_reply_is_counted_as_unmatched() -> None:
    def late(data: bytes, attempt: int) -> list[tuple[bytes, float, bool]]:
        return [(_good(data), 0.6, False)]

    result, stats = _with_agent(
        late, SnmpSettings(timeout=0.2, retries=0), linger=lambda s: s.unmatched >= 1
    )
    assert isinstance(result, DeviceUnreachable)
    assert (stats.timeouts, stats.unmatched, stats.replies) == (1, 1, 0)


def test_a_reply_from_another_address_is_ignored() -> None:
    def elsewhere(data: bytes, attempt: int) -> list[tuple[bytes, float, bool]]:
        return [(_good(data), 0, True)]

    result, stats = _with_agent(elsewhere, SnmpSettings(timeout=0.3, retries=0))
    assert isinstance(result, DeviceUnreachable)
    assert (stats.wrong_source, stats.replies) == (1, 0)

    def both(data: bytes, attempt: int) -> list[tuple[bytes, float, bool]]:
        return [(_good(data), 0, True), (_good(data), 0.05, False)]

    result, stats = _with_agent(both, SnmpSettings(timeout=1.0, retries=0))
    assert result == {SYS_UPTIME: 4242}
    assert (stats.wrong_source, stats.replies) == (1, 1)


# ---------------------------------------------------------------------------
# Many devices, few requests in flight


def test_many_devices_through_a_small_in_flight_bound(lab: LabAgents) -> None:
    devices = [_device(f"r{d}", "127.0.0.1", port) for d, port in enumerate(lab.ports)]

    async def poll() -> tuple[list[dict[str, Any]], Any, Any]:
        async with SnmpClient(SnmpSettings(timeout=2.0, retries=2), max_in_flight=4) as client:
            rounds = []
            for _ in range(2):  # the second round asks with the rows hint
                rounds.append(
                    await asyncio.gather(
                        *(
                            client.walk(d, [IF_TABLE, IF_X_TABLE], scalars=[SYS_UPTIME])
                            for d in devices
                        )
                    )
                )
            return rounds[1], client.stats(), rounds[0]

    results, stats, first = asyncio.run(poll())
    assert results == first
    for d, walked in enumerate(results):
        assert walked == {**lab.expected(d, IF_TABLE, IF_X_TABLE), SYS_UPTIME: 100 * d}
    assert stats.requests == stats.replies > len(devices)
    assert (stats.timeouts, stats.malformed, stats.in_flight) == (0, 0, 0)
    assert stats.rcvbuf > 0


def test_wire_client_alone_walks_v1_and_v2c_of_the_lab(lab: LabAgents) -> None:
    async def walk(version: int) -> dict[str, object]:
        wire = SnmpWire(timeout=1.0, retries=1)
        try:
            target = WireTarget("127.0.0.1", lab.ports[3], COMMUNITY.encode(), version)
            return await wire.walk(target, [SYSTEM, "1.3.6.1.4.1.99999"], max_repetitions=3)
        finally:
            wire.close()

    expected = lab.expected(3, SYSTEM, "1.3.6.1.4.1.99999")
    assert asyncio.run(walk(ber.VERSION_2C)) == expected
    assert asyncio.run(walk(ber.VERSION_1)) == expected
