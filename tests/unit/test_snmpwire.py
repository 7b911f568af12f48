"""The lean v1/v2c client: its codec against pysnmp's, its walks against a scripted agent.

No sockets: :class:`FakeWire` attaches a transport that hands each request to
an in-memory agent and delivers its replies on the event loop, as a socket would.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import rfc1905
from pysnmp.proto.api import v1, v2c

from autonoc.core import ber
from autonoc.core.ber import BerError
from autonoc.core.errors import DeviceError, DeviceRejected, DeviceUnreachable
from collectors.snmp import _map_snmp_errors, _to_python
from collectors.snmpwire import (
    SnmpWire,
    WireMalformed,
    WireRequestError,
    WireStatus,
    WireTarget,
    WireTimeout,
    udp_rcvbuf_errors,
)

Oid = tuple[int, ...]
Value = tuple[int, object]
Address = tuple[str, int]

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
IF_DESCR = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_IN_OCTETS = (1, 3, 6, 1, 2, 1, 2, 2, 1, 10)
IF_HC_IN = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6)
BIG_OID = (1, 3, 6, 1, 4, 1, 2**32 - 1, 0, 127, 128, 16383, 16384, 2**21, 2**28 + 5)
AGENT: Address = ("192.0.2.1", 161)
AGENT_TEXT = "192.0.2.1:161"
COMMUNITY = b"s3cret-ro"


def dotted(oid: Oid) -> str:
    return ".".join(map(str, oid))


# ---------------------------------------------------------------------------
# pysnmp as the reference codec


def pysnmp_response(varbinds: list[tuple[Oid, Any]], *, version: int = 1) -> bytes:
    """A GetResponse message as pysnmp encodes it."""
    api = v1 if version == 0 else v2c
    pdu = api.GetResponsePDU()
    api.apiPDU.set_defaults(pdu)
    api.apiPDU.set_request_id(pdu, 77)
    api.apiPDU.set_varbinds(pdu, varbinds)
    msg = api.Message()
    api.apiMessage.set_defaults(msg)
    api.apiMessage.set_community(msg, COMMUNITY)
    api.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def pysnmp_plain(data: bytes) -> list[tuple[str, object]]:
    """Decode a response with pysnmp's codec; values as the pysnmp-based client returned them."""
    msg, rest = decoder.decode(data, asn1Spec=v2c.Message())
    assert rest == b""
    pdu = v2c.apiMessage.get_pdu(msg)
    return [(str(name), _to_python(value)) for name, value in v2c.apiPDU.get_varbinds(pdu)]


def ours_plain(data: bytes) -> list[tuple[str, object]]:
    """Decode a response with the fast decoder, to the same shape."""
    header = ber.decode_response_header(data)
    varbinds = ber.decode_varbinds_plain(data, header[6], header[7])
    return [(ber.oid_dotted(name), value) for name, _, value in varbinds]


VALUES: list[Any] = [
    v2c.Integer(0),
    v2c.Integer(-1),
    v2c.Integer(-128),
    v2c.Integer(2**31 - 1),
    v2c.Integer(-(2**31)),
    v2c.OctetString(b""),
    v2c.OctetString(b"eth1"),
    v2c.OctetString("Zürich PoP".encode()),
    v2c.OctetString(b"\x00\x1b\x21\xff\xfe\x01"),  # a MAC address: not text
    v2c.OctetString(b"x" * 300),  # long-form length
    v2c.Null(),
    v2c.ObjectIdentifier((1, 3, 6, 1, 4, 1, 8072, 3, 2, 10)),
    v2c.ObjectIdentifier(BIG_OID),
    v2c.IpAddress("10.0.0.255"),
    v2c.Counter32(0),
    v2c.Counter32(2**31),
    v2c.Counter32(2**32 - 1),
    v2c.Gauge32(1_000_000_000),
    v2c.TimeTicks(2**32 - 1),
    v2c.Counter64(0),
    v2c.Counter64(2**63),
    v2c.Counter64(2**64 - 1),
    v2c.Opaque(b"\x9f\x78\x04\x3f\x80\x00\x00"),
    rfc1905.noSuchObject,
    rfc1905.noSuchInstance,
    rfc1905.endOfMibView,
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: f"{type(v).__name__}:{v!r}"[:48])
def test_every_value_type_decodes_like_pysnmp(value: Any) -> None:
    data = pysnmp_response([(SYS_UPTIME, value), (BIG_OID, value)])
    assert ours_plain(data) == pysnmp_plain(data)


def test_a_long_mixed_response_decodes_like_pysnmp() -> None:
    rng = random.Random(4)
    varbinds = [((*IF_IN_OCTETS, n), rng.choice(VALUES)) for n in range(1, 301)]
    data = pysnmp_response(varbinds)
    assert len(data) > 0x10000 // 16  # three-byte lengths on the way
    assert ours_plain(data) == pysnmp_plain(data)


def test_header_fields_and_v1() -> None:
    data = pysnmp_response([(SYS_DESCR, v1.OctetString(b"r1"))], version=0)
    version, community, pdu, rid, status, index, start, stop = ber.decode_response_header(data)
    assert (version, community, pdu, rid, status, index) == (0, COMMUNITY, ber.RESPONSE, 77, 0, 0)
    assert data[start:stop] == ber.encode_varbind(
        ber.encode_oid(SYS_DESCR), ber.encode_value(ber.OCTET_STRING, b"r1")
    )


@pytest.mark.parametrize(
    ("pdu_type", "version", "non_repeaters", "max_repetitions"),
    [(ber.GET, 1, 0, 0), (ber.GET, 0, 0, 0), (ber.GETNEXT, 0, 0, 0), (ber.GETBULK, 1, 2, 25)],
)
def test_requests_decode_with_pysnmp_as_meant(
    pdu_type: int, version: int, non_repeaters: int, max_repetitions: int
) -> None:
    oids = [SYS_UPTIME, IF_DESCR, BIG_OID]
    data = ber.encode_request(
        version,
        b"c" * 200,
        pdu_type,
        2**31 - 1,
        [ber.encode_oid(o) for o in oids],
        non_repeaters=non_repeaters,
        max_repetitions=max_repetitions,
    )
    api = v1 if version == 0 else v2c
    msg, rest = decoder.decode(data, asn1Spec=api.Message())
    assert rest == b""
    assert int(msg["version"]) == version
    assert bytes(api.apiMessage.get_community(msg)) == b"c" * 200
    pdu = api.apiMessage.get_pdu(msg)
    assert pdu.tagSet[0][2] == pdu_type & 0x1F  # the PDU's context tag number
    assert int(api.apiPDU.get_request_id(pdu)) == 2**31 - 1
    names = [(tuple(name), value) for name, value in api.apiPDU.get_varbinds(pdu)]
    assert [n for n, _ in names] == oids
    assert all(isinstance(value, v2c.Null) for _, value in names)
    if pdu_type == ber.GETBULK:
        assert int(v2c.apiBulkPDU.get_non_repeaters(pdu)) == non_repeaters
        assert int(v2c.apiBulkPDU.get_max_repetitions(pdu)) == max_repetitions


def test_truncated_or_corrupted_responses_raise_only_ber_errors() -> None:
    data = pysnmp_response([((*IF_IN_OCTETS, n), v) for n, v in enumerate(VALUES, 1)])
    for cut in range(len(data)):
        with pytest.raises(BerError):
            ours_plain(data[:cut])
    rng = random.Random(7)
    for _ in range(3000):
        broken = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            broken[rng.randrange(len(broken))] = rng.randrange(256)
        with contextlib.suppress(BerError):
            ours_plain(bytes(broken))


@pytest.mark.parametrize(
    ("value_tlv", "why"),
    [
        (b"\x41\x05\x01\x00\x00\x00\x00", "Counter32 over 32 bits"),
        (b"\x41\x00", "empty Counter32"),
        (b"\x02\x06\x00\x00\x00\x00\x00\x01", "INTEGER of 6 bytes"),
        (b"\x02\x05\x01\x00\x00\x00\x00", "INTEGER out of range"),
        (b"\x46\x0a\x01" + b"\x00" * 9, "Counter64 of 10 bytes"),
        (b"\x40\x03\x0a\x00\x01", "IpAddress of 3 bytes"),
        (b"\x05\x01\x00", "NULL with contents"),
        (b"\x47\x01\x01", "an unknown tag"),
        (b"\x04\x84\x00\x00\x00\x01\x41", "a four-byte length"),
    ],
)
def test_malformed_values_are_refused(value_tlv: bytes, why: str) -> None:
    varbind = ber.encode_varbind(ber.encode_oid(SYS_UPTIME), value_tlv)
    data = ber.encode_message(1, COMMUNITY, ber.RESPONSE, 1, 0, 0, varbind)
    with pytest.raises(BerError):
        ours_plain(data)


def test_names_are_checked_when_read() -> None:
    with pytest.raises(BerError):
        ber.oid_dotted(b"\x2b\x06\x80\x01")  # non-minimal sub-identifier
    with pytest.raises(BerError):
        ber.oid_dotted(b"\x2b\x90\x80\x80\x80\x00")  # over 32 bits
    unterminated = b"\x30\x06\x06\x02\x2b\x86\x05\x00"
    message = ber.encode_message(1, COMMUNITY, ber.RESPONSE, 1, 0, 0, unterminated)
    with pytest.raises(BerError):
        ours_plain(message)


def test_unsigned_values_without_their_leading_zero_read_as_unsigned() -> None:
    # Some agents send Counter32 4294967295 as ff ff ff ff; it means the counter, not -1.
    varbind = ber.encode_varbind(ber.encode_oid(SYS_UPTIME), b"\x41\x04\xff\xff\xff\xff")
    data = ber.encode_message(1, COMMUNITY, ber.RESPONSE, 1, 0, 0, varbind)
    assert ours_plain(data) == [(dotted(SYS_UPTIME), 2**32 - 1)]


def test_udp_rcvbuf_errors_reads_proc_net_snmp(tmp_path: Path) -> None:
    proc = tmp_path / "snmp"
    proc.write_text(
        "Ip: Forwarding DefaultTTL\nIp: 1 64\n"
        "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n"
        "Udp: 10 0 3 10 3 0\n"
    )
    assert udp_rcvbuf_errors(proc) == 3
    assert udp_rcvbuf_errors(tmp_path / "missing") is None


# ---------------------------------------------------------------------------
# A scripted agent behind a fake transport


def _encode_response(
    msg: ber.Message, varbinds: Iterable[tuple[Oid, Value]], status: int = 0, index: int = 0
) -> bytes:
    parts = b"".join(
        ber.encode_varbind(ber.encode_oid(o), ber.encode_value(*v)) for o, v in varbinds
    )
    return ber.encode_message(
        msg.version, msg.community, ber.RESPONSE, msg.request_id, status, index, parts
    )


class MibAgent:
    """A well-behaved v1/v2c agent over fixed values (RFC 3416 GET, GETNEXT, GETBULK)."""

    def __init__(self, values: dict[Oid, Value], community: bytes = COMMUNITY) -> None:
        self.values = values
        self.oids = sorted(values)
        self.community = community
        self.requests: list[ber.Message] = []

    def _next(self, oid: Oid) -> Oid | None:
        return next((o for o in self.oids if o > oid), None)

    def __call__(self, data: bytes) -> bytes | None:
        msg = ber.decode_message(data)
        self.requests.append(msg)
        if msg.community != self.community:
            return None
        names = [oid for oid, _ in msg.varbinds]
        out: list[tuple[Oid, Value]] = []
        if msg.pdu_type == ber.GET:
            for i, oid in enumerate(names):
                if oid not in self.values and msg.version == ber.VERSION_1:
                    return _encode_response(msg, msg.varbinds, 2, i + 1)
                out.append((oid, self.values.get(oid, (ber.NO_SUCH_INSTANCE, None))))
        elif msg.pdu_type == ber.GETNEXT:
            for i, oid in enumerate(names):
                nxt = self._next(oid)
                if nxt is None:
                    if msg.version == ber.VERSION_1:
                        return _encode_response(msg, msg.varbinds, 2, i + 1)
                    out.append((oid, (ber.END_OF_MIB_VIEW, None)))
                else:
                    out.append((nxt, self.values[nxt]))
        else:
            n = min(msg.non_repeaters, len(names))
            for oid in names[:n]:
                nxt = self._next(oid)
                out.append(
                    (oid, (ber.END_OF_MIB_VIEW, None)) if nxt is None else (nxt, self.values[nxt])
                )
            last = names[n:]
            for _ in range(msg.max_repetitions if last else 0):
                row = []
                for oid in last:
                    nxt = self._next(oid)
                    row.append(
                        (oid, (ber.END_OF_MIB_VIEW, None))
                        if nxt is None
                        else (nxt, self.values[nxt])
                    )
                out += row
                last = [o for o, _ in row]
        return _encode_response(msg, out)


Handler = Callable[[bytes, Address], list[tuple[bytes, Address]]]


class FakeTransport(asyncio.DatagramTransport):
    """Hands each datagram to the handler for its address; delivers replies on the loop."""

    def __init__(self, wire: SnmpWire, handlers: dict[Address, Handler]) -> None:
        super().__init__()
        self.wire = wire
        self.handlers = handlers
        self.sent: list[tuple[bytes, Address]] = []
        self.closed = False

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sent.append((data, addr))
        handler = self.handlers.get(addr)
        if handler is None:
            return
        loop = asyncio.get_running_loop()
        for reply, source in handler(data, addr):
            loop.call_soon(self.wire.datagram_received, reply, source)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


class FakeWire(SnmpWire):
    """An :class:`SnmpWire` whose socket is a :class:`FakeTransport`."""

    def __init__(self, handlers: dict[Address, Handler], **kw: Any) -> None:
        kw.setdefault("timeout", 0.05)
        kw.setdefault("retries", 1)
        super().__init__(**kw)
        self.handlers = handlers
        self.fake: FakeTransport | None = None

    async def _open(self) -> None:
        self.fake = FakeTransport(self, self.handlers)
        self._attach(self.fake)


def serve(agent: Callable[[bytes], bytes | None]) -> Handler:
    """A handler that answers from the address asked."""

    def handle(data: bytes, addr: Address) -> list[tuple[bytes, Address]]:
        reply = agent(data)
        return [] if reply is None else [(reply, addr)]

    return handle


def target(version: int = ber.VERSION_2C, community: bytes = COMMUNITY) -> WireTarget:
    return WireTarget(AGENT[0], AGENT[1], community, version)


def _mib(rows: int = 30) -> dict[Oid, Value]:
    values: dict[Oid, Value] = {
        SYS_DESCR: (ber.OCTET_STRING, b"lab router"),
        SYS_UPTIME: (ber.TIMETICKS, 4242),
    }
    for n in range(1, rows + 1):
        values[(*IF_DESCR, n)] = (ber.OCTET_STRING, f"eth{n}".encode())
        values[(*IF_IN_OCTETS, n)] = (ber.COUNTER32, 1000 * n)
        values[(*IF_HC_IN, n)] = (ber.COUNTER64, 2**40 + n)
    values[(1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18, 1)] = (ber.OCTET_STRING, b"after ifHCInOctets")
    return values


def _expected(values: dict[Oid, Value], *roots: Oid) -> dict[str, object]:
    out: dict[str, object] = {}
    for oid, (_tag, raw) in sorted(values.items()):
        if any(oid[: len(r)] == r for r in roots):
            out[dotted(oid)] = raw.decode() if isinstance(raw, bytes) else raw
    return out


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.parametrize("version", [ber.VERSION_1, ber.VERSION_2C])
@pytest.mark.parametrize("reps", [1, 7, 25, 100])
def test_walk_of_several_roots_reads_each_subtree_once(version: int, reps: int) -> None:
    values = _mib()
    agent = MibAgent(values)

    async def walk() -> dict[str, object]:
        wire = FakeWire({AGENT: serve(agent)})
        try:
            return await wire.walk(
                target(version),
                [dotted(IF_DESCR), dotted(IF_IN_OCTETS), dotted(IF_HC_IN)],
                scalars=[dotted(SYS_UPTIME), "1.3.6.1.2.1.1.99.0"],
                max_repetitions=reps,
            )
        finally:
            wire.close()

    out = run(walk())
    expected = {dotted(SYS_UPTIME): 4242, **_expected(values, IF_DESCR, IF_IN_OCTETS, IF_HC_IN)}
    assert out == expected
    assert next(iter(out)) == dotted(SYS_UPTIME)  # scalars first
    first = agent.requests[0]
    if version == ber.VERSION_2C:
        assert first.pdu_type == ber.GETBULK
        assert (first.non_repeaters, first.max_repetitions) == (2, reps)
        assert all(m.non_repeaters == 0 for m in agent.requests[1:])  # scalars asked once
    else:
        assert {m.pdu_type for m in agent.requests} == {ber.GETNEXT}


def test_walk_to_the_end_of_the_mib() -> None:
    values = _mib(rows=3)
    for version in (ber.VERSION_1, ber.VERSION_2C):
        agent = MibAgent(values)

        async def walk(v: int = version, a: MibAgent = agent) -> dict[str, object]:
            wire = FakeWire({AGENT: serve(a)})
            try:
                return await wire.walk(target(v), ["1.3.6.1.2.1.31"], max_repetitions=10)
            finally:
                wire.close()

        assert run(walk()) == _expected(values, (1, 3, 6, 1, 2, 1, 31))


@pytest.mark.parametrize("version", [ber.VERSION_1, ber.VERSION_2C])
def test_walk_stops_at_the_end_of_its_subtree(version: int) -> None:
    # After system.1.0 comes ip.7.0: its arcs after the root (7.0) would sort after 1.0.
    values: dict[Oid, Value] = {
        SYS_DESCR: (ber.OCTET_STRING, b"r1"),
        (1, 3, 6, 1, 2, 1, 4, 7, 0): (ber.INTEGER, 7),
        (1, 3, 6, 1, 2, 1, 4, 8, 0): (ber.INTEGER, 8),
    }

    async def walk() -> dict[str, object]:
        wire = FakeWire({AGENT: serve(MibAgent(values))})
        try:
            return await wire.walk(target(version), ["1.3.6.1.2.1.1"], max_repetitions=5)
        finally:
            wire.close()

    assert run(walk()) == {dotted(SYS_DESCR): "r1"}


@pytest.mark.parametrize("again", [(1, 2, 3), (4, 5, 5), (3, 3, 3)], ids=str)
def test_walk_stops_when_the_agent_does_not_move_forward(again: tuple[int, ...]) -> None:
    values = _mib(rows=5)
    requests: list[ber.Message] = []

    def broken(data: bytes, addr: Address) -> list[tuple[bytes, Address]]:
        msg = ber.decode_message(data)
        requests.append(msg)
        # Rows 1-3, then ``again`` whatever is asked; endOfMibView as a safety net.
        rows = [(1, 2, 3), again][min(len(requests) - 1, 1)] if len(requests) < 10 else ()
        varbinds = [((*IF_DESCR, n), values[(*IF_DESCR, n)]) for n in rows]
        return [
            (_encode_response(msg, varbinds or [(IF_DESCR, (ber.END_OF_MIB_VIEW, None))]), addr)
        ]

    async def walk() -> dict[str, object]:
        wire = FakeWire({AGENT: broken})
        try:
            return await wire.walk(target(), [dotted(IF_DESCR)], max_repetitions=3)
        finally:
            wire.close()

    kept = sorted({1, 2, 3, *(n for n in again if n > 3)})
    assert run(walk()) == {dotted((*IF_DESCR, n)): f"eth{n}" for n in kept}
    assert len(requests) == 2
    assert requests[1].varbinds[0][0] == (*IF_DESCR, 3)  # the next request goes on from the last


def test_get_maps_missing_instances_to_none_and_errors_to_status() -> None:
    values = _mib(rows=2)

    async def scenario() -> tuple[dict[str, object], WireStatus]:
        wire = FakeWire({AGENT: serve(MibAgent(values))})
        try:
            got = await wire.get(target(), [dotted(SYS_DESCR), "." + dotted((*IF_DESCR, 9))])
            with pytest.raises(WireStatus) as info:
                await wire.get(target(ber.VERSION_1), [dotted(SYS_DESCR), dotted((*IF_DESCR, 9))])
            return got, info.value
        finally:
            wire.close()

    got, status = run(scenario())
    assert got == {dotted(SYS_DESCR): "lab router", dotted((*IF_DESCR, 9)): None}
    assert (status.name, status.oid) == ("noSuchName", dotted((*IF_DESCR, 9)))


def test_an_invalid_oid_is_a_request_error() -> None:
    async def scenario() -> None:
        wire = FakeWire({})
        try:
            await wire.get(target(), ["1.3.six"])
        finally:
            wire.close()

    with pytest.raises(WireRequestError):
        run(scenario())


def test_lost_request_is_retransmitted_with_the_same_request_id() -> None:
    agent = MibAgent(_mib(rows=1))
    seen: list[bytes] = []

    def flaky(data: bytes, addr: Address) -> list[tuple[bytes, Address]]:
        seen.append(data)
        if len(seen) == 1:
            return []  # the first datagram is lost
        reply = agent(data)
        assert reply is not None
        return [(reply, addr)]

    async def scenario() -> tuple[dict[str, object], Any]:
        wire = FakeWire({AGENT: flaky}, retries=2)
        try:
            return await wire.get(target(), [dotted(SYS_UPTIME)]), wire.stats()
        finally:
            wire.close()

    got, stats = run(scenario())
    assert got == {dotted(SYS_UPTIME): 4242}
    assert seen[0] == seen[1]
    assert (stats.requests, stats.retries, stats.replies, stats.timeouts) == (1, 1, 1, 0)


def test_silent_agent_times_out_after_every_attempt() -> None:
    async def scenario() -> tuple[Any, FakeWire]:
        wire = FakeWire({}, retries=2)
        try:
            with pytest.raises(WireTimeout) as info:
                await wire.get(target(), [dotted(SYS_UPTIME)])
            return info.value, wire
        finally:
            wire.close()

    error, wire = run(scenario())
    assert error.attempts == 3
    assert wire.fake is not None and len(wire.fake.sent) == 3
    assert (wire.stats().timeouts, wire.stats().in_flight) == (1, 0)


def test_bad_replies_are_counted_and_the_good_one_still_accepted() -> None:
    agent = MibAgent(_mib(rows=1))
    other: Address = ("192.0.2.99", 161)

    def noisy(data: bytes, addr: Address) -> list[tuple[bytes, Address]]:
        good = agent(data)
        assert good is not None
        msg = ber.decode_message(data)
        wrong_community = _encode_response(
            ber.Message(msg.version, b"other", msg.pdu_type, msg.request_id, 0, 0, (), b""),
            [(SYS_UPTIME, (ber.TIMETICKS, 1))],
        )
        return [
            (b"\x00garbage", addr),
            (good[:-3], addr),  # truncated
            (good, other),  # from another address
            (wrong_community, addr),
            (good, addr),
            (good, addr),  # a duplicate: its request is answered already
        ]

    async def scenario() -> tuple[dict[str, object], Any]:
        wire = FakeWire({AGENT: noisy})
        try:
            got = await wire.get(target(), [dotted(SYS_UPTIME)])
            await asyncio.sleep(0)  # let the duplicate arrive
            await asyncio.sleep(0)
            return got, wire.stats()
        finally:
            wire.close()

    got, stats = run(scenario())
    assert got == {dotted(SYS_UPTIME): 4242}
    assert (stats.malformed, stats.wrong_source, stats.unmatched, stats.replies) == (2, 1, 2, 1)


def test_only_malformed_replies_fail_as_malformed_not_timeout() -> None:
    agent = MibAgent(_mib(rows=1))

    def broken(data: bytes, addr: Address) -> list[tuple[bytes, Address]]:
        reply = agent(data)
        assert reply is not None
        # A value tag nobody knows: the envelope matches, the varbinds do not decode.
        return [(reply.replace(b"\x43\x02\x10\x92", b"\x49\x02\x10\x92"), addr)]

    async def scenario() -> None:
        wire = FakeWire({AGENT: broken})
        try:
            await wire.get(target(), [dotted(SYS_UPTIME)])
        finally:
            wire.close()

    with pytest.raises(WireMalformed, match="unknown value tag"):
        run(scenario())


def test_requests_in_flight_are_bounded() -> None:
    held: list[tuple[bytes, Address]] = []
    agent = MibAgent(_mib(rows=1))

    def slow(data: bytes, addr: Address) -> list[tuple[bytes, Address]]:
        held.append((data, addr))
        return []

    async def scenario() -> tuple[int, int, list[dict[str, object]]]:
        wire = FakeWire({AGENT: slow}, timeout=30, max_in_flight=2)
        try:
            tasks = [
                asyncio.ensure_future(wire.get(target(), [dotted(SYS_UPTIME)])) for _ in range(5)
            ]
            for _ in range(5):
                await asyncio.sleep(0)
            in_flight, sent = wire.stats().in_flight, len(held)
            while not all(t.done() for t in tasks):
                while held:
                    data, addr = held.pop(0)
                    reply = agent(data)
                    assert reply is not None
                    wire.datagram_received(reply, addr)
                await asyncio.sleep(0)
            return in_flight, sent, [t.result() for t in tasks]
        finally:
            wire.close()

    in_flight, sent, results = run(scenario())
    assert (in_flight, sent) == (2, 2)
    assert results == [{dotted(SYS_UPTIME): 4242}] * 5


def test_close_fails_waiting_requests() -> None:
    async def scenario() -> None:
        wire = FakeWire({}, timeout=30)
        task = asyncio.ensure_future(wire.get(target(), [dotted(SYS_UPTIME)]))
        await asyncio.sleep(0.01)
        wire.close()
        await task

    with pytest.raises(Exception, match="closed"):
        run(scenario())


# ---------------------------------------------------------------------------
# Errors map to autonoc's tree in one place


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (WireTimeout(2), DeviceUnreachable, "no SNMP response from 192.0.2.1:161 after 2 attempts"),
        (WireStatus(1, 1, ["1.3.6.1"]), DeviceRejected, "answered tooBig for 1.3.6.1 (lower"),
        (WireStatus(16, 0, []), DeviceRejected, "answered authorizationError for ?"),
        (WireMalformed("malformed SNMP response: x"), DeviceError, "failed: malformed"),
    ],
)
def test_wire_errors_map_like_pysnmp_errors(error: Exception, kind: type, text: str) -> None:
    pattern = re.escape(text)
    with pytest.raises(kind, match=pattern) as info, _map_snmp_errors("r1", AGENT_TEXT, 2):
        raise error
    assert info.value.__cause__ is error
    assert COMMUNITY.decode() not in str(info.value)
