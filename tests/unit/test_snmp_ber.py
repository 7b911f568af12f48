"""The lab's hand-written SNMP BER codec, checked against pysnmp's own (pyasn1) codec."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import rfc1905
from pysnmp.proto.api import v1, v2c

from autonoc.core import ber
from autonoc.core.ber import BerError, decode_message, encode_message, encode_oid, encode_value
from lab.snmp.mib import MibLayout, StaticMib

BIG_OID = (1, 3, 6, 1, 4, 1, 2**32 - 1, 0, 127, 128, 16383, 16384, 2**21, 2**28 + 5)
LONG_OID = (1, 3, 6, *range(1, 126))  # 128 arcs, the most SNMP allows

# (our (tag, value), the same value as pysnmp builds it)
VALUES: list[tuple[tuple[int, object], Any]] = [
    ((ber.INTEGER, 0), v2c.Integer(0)),
    ((ber.INTEGER, 127), v2c.Integer(127)),
    ((ber.INTEGER, 128), v2c.Integer(128)),
    ((ber.INTEGER, -1), v2c.Integer(-1)),
    ((ber.INTEGER, -128), v2c.Integer(-128)),
    ((ber.INTEGER, -129), v2c.Integer(-129)),
    ((ber.INTEGER, -(2**31)), v2c.Integer(-(2**31))),
    ((ber.INTEGER, 2**31 - 1), v2c.Integer(2**31 - 1)),
    ((ber.OCTET_STRING, b""), v2c.OctetString(b"")),
    ((ber.OCTET_STRING, b"eth1"), v2c.OctetString(b"eth1")),
    ((ber.OCTET_STRING, bytes(range(256)) * 2), v2c.OctetString(bytes(range(256)) * 2)),
    ((ber.NULL, None), v2c.Null()),
    ((ber.OBJECT_IDENTIFIER, (1, 3, 6, 1, 4, 1, 9)), v2c.ObjectIdentifier((1, 3, 6, 1, 4, 1, 9))),
    ((ber.OBJECT_IDENTIFIER, BIG_OID), v2c.ObjectIdentifier(BIG_OID)),
    ((ber.OBJECT_IDENTIFIER, (2, 999, 3)), v2c.ObjectIdentifier((2, 999, 3))),
    ((ber.IP_ADDRESS, b"\x0a\x00\x00\xff"), v2c.IpAddress("10.0.0.255")),
    ((ber.COUNTER32, 0), v2c.Counter32(0)),
    ((ber.COUNTER32, 2**31), v2c.Counter32(2**31)),
    ((ber.COUNTER32, 2**32 - 1), v2c.Counter32(2**32 - 1)),
    ((ber.GAUGE32, 1_000_000_000), v2c.Gauge32(1_000_000_000)),
    ((ber.TIMETICKS, 2**32 - 1), v2c.TimeTicks(2**32 - 1)),
    ((ber.COUNTER64, 2**63), v2c.Counter64(2**63)),
    ((ber.COUNTER64, 2**64 - 1), v2c.Counter64(2**64 - 1)),
    ((ber.NO_SUCH_OBJECT, None), rfc1905.noSuchObject),
    ((ber.NO_SUCH_INSTANCE, None), rfc1905.noSuchInstance),
    ((ber.END_OF_MIB_VIEW, None), rfc1905.endOfMibView),
]

_PDUS = {
    ber.GET: v2c.GetRequestPDU,
    ber.GETNEXT: v2c.GetNextRequestPDU,
    ber.RESPONSE: v2c.ResponsePDU,
    ber.SET: v2c.SetRequestPDU,
    ber.INFORM: v2c.InformRequestPDU,
    ber.TRAP_V2: v2c.SNMPv2TrapPDU,
    ber.REPORT: v2c.ReportPDU,
}


def _pysnmp_message(
    pdu_type: int,
    varbinds: list[tuple[tuple[int, ...], Any]],
    *,
    request_id: int = 1234,
    community: bytes = b"public",
    version: int = 1,
    error_status: int = 0,
    error_index: int = 0,
) -> bytes:
    api = v1 if version == 0 else v2c
    pdu = (v1.GetRequestPDU if version == 0 else _PDUS[pdu_type])()
    api.apiPDU.set_defaults(pdu)
    api.apiPDU.set_request_id(pdu, request_id)
    api.apiPDU.set_error_status(pdu, error_status)
    api.apiPDU.set_error_index(pdu, error_index)
    api.apiPDU.set_varbinds(pdu, varbinds)
    msg = api.Message()
    api.apiMessage.set_defaults(msg)
    api.apiMessage.set_community(msg, community)
    api.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def _pysnmp_bulk(non_repeaters: int, max_repetitions: int, oids: list[tuple[int, ...]]) -> bytes:
    pdu = v2c.GetBulkRequestPDU()
    v2c.apiBulkPDU.set_defaults(pdu)
    v2c.apiBulkPDU.set_request_id(pdu, 2**31 - 1)
    v2c.apiBulkPDU.set_non_repeaters(pdu, non_repeaters)
    v2c.apiBulkPDU.set_max_repetitions(pdu, max_repetitions)
    v2c.apiBulkPDU.set_varbinds(pdu, [(oid, v2c.Null()) for oid in oids])
    msg = v2c.Message()
    v2c.apiMessage.set_defaults(msg)
    v2c.apiMessage.set_community(msg, b"ro")
    v2c.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def _ours(
    pdu_type: int, varbinds: list[tuple[tuple[int, ...], tuple[int, object]]], **kw: Any
) -> bytes:
    parts = b"".join(
        ber.encode_varbind(encode_oid(oid), encode_value(*value)) for oid, value in varbinds
    )
    return encode_message(
        kw.get("version", 1),
        kw.get("community", b"public"),
        pdu_type,
        kw.get("request_id", 1234),
        kw.get("error_status", 0),
        kw.get("error_index", 0),
        parts,
    )


# Decoding what pysnmp encodes


@pytest.mark.parametrize(("ours", "theirs"), VALUES, ids=lambda v: repr(v)[:40])
def test_decodes_every_value_type_like_pysnmp(ours: tuple[int, object], theirs: Any) -> None:
    data = _pysnmp_message(ber.RESPONSE, [((1, 3, 6, 1, 2, 1, 1, 3, 0), theirs)])
    msg = decode_message(data)
    assert msg.varbinds == (((1, 3, 6, 1, 2, 1, 1, 3, 0), ours),)


@pytest.mark.parametrize("pdu_type", sorted(_PDUS))
def test_decodes_header_fields_of_every_pdu(pdu_type: int) -> None:
    oids = [(1, 3, 6, 1, 2, 1, 2, 2, 1, 10, n) for n in range(1, 4)] + [BIG_OID, LONG_OID]
    data = _pysnmp_message(
        pdu_type,
        [(oid, v2c.Null()) for oid in oids],
        request_id=-(2**31),
        community=b"s3cr\xffet",
        error_status=5,
        error_index=3,
    )
    msg = decode_message(data)
    assert (msg.version, msg.community, msg.pdu_type) == (1, b"s3cr\xffet", pdu_type)
    assert (msg.request_id, msg.error_status, msg.error_index) == (-(2**31), 5, 3)
    assert [oid for oid, _ in msg.varbinds] == oids
    assert all(value == (ber.NULL, None) for _, value in msg.varbinds)


def test_decodes_getbulk_and_v1() -> None:
    bulk = decode_message(_pysnmp_bulk(1, 25, [(1, 3, 6, 1, 2, 1, 1, 3), (1, 3, 6, 1, 2, 1, 2)]))
    assert (bulk.pdu_type, bulk.non_repeaters, bulk.max_repetitions) == (ber.GETBULK, 1, 25)
    assert bulk.request_id == 2**31 - 1
    old = decode_message(_pysnmp_message(ber.GET, [((1, 3, 6, 1), v1.Null())], version=0))
    assert (old.version, old.pdu_type) == (ber.VERSION_1, ber.GET)


def test_empty_varbind_list_and_empty_community() -> None:
    msg = decode_message(_pysnmp_message(ber.GET, [], community=b""))
    assert (msg.community, msg.varbinds, msg.raw_varbinds) == (b"", (), b"")


# Encoding byte for byte like pysnmp


def test_encodes_every_value_type_like_pysnmp() -> None:
    oids = [(1, 3, 6, 1, 4, 1, 99, n) for n in range(len(VALUES))]
    ours = _ours(ber.RESPONSE, [(oid, v) for oid, (v, _) in zip(oids, VALUES, strict=True)])
    theirs = _pysnmp_message(
        ber.RESPONSE, [(oid, t) for oid, (_, t) in zip(oids, VALUES, strict=True)]
    )
    assert len(ours) > 256  # long-form lengths on the way
    spec = v2c.Message()
    assert decoder.decode(ours, asn1Spec=spec)[0] == decoder.decode(theirs, asn1Spec=spec)[0]


def test_encodes_byte_for_byte_where_pyasn1_is_minimal() -> None:
    # pyasn1 pads negative powers of two (-128 as ff 80); everything else is identical.
    values = [(v, t) for v, t in VALUES if not (isinstance(v[1], int) and v[1] < 0)]
    oids = [(1, 3, 6, 1, 4, 1, 99, n) for n in range(len(values))]
    ours = _ours(ber.RESPONSE, [(oid, v) for oid, (v, _) in zip(oids, values, strict=True)])
    theirs = _pysnmp_message(
        ber.RESPONSE, [(oid, t) for oid, (_, t) in zip(oids, values, strict=True)]
    )
    assert ours == theirs
    assert encode_value(ber.INTEGER, -128) == b"\x02\x01\x80"
    assert encode_value(ber.INTEGER, -129) == bytes(encoder.encode(v2c.Integer(-129)))


@pytest.mark.parametrize("oid", [(0, 0), (1, 3), (2, 999, 3), (2, 2**32 - 1), BIG_OID, LONG_OID])
def test_encode_oid_matches_pyasn1(oid: tuple[int, ...]) -> None:
    assert encode_oid(oid) == bytes(encoder.encode(v2c.ObjectIdentifier(oid)))
    assert ber.decode_oid(encode_oid(oid)[2:]) == oid


def test_encoded_response_decodes_with_pysnmp() -> None:
    data = _ours(
        ber.RESPONSE,
        [((1, 3, 6, 1, 2, 1, 1, 1, 0), (ber.OCTET_STRING, b"x" * 300))],
        request_id=-7,
        error_status=2,
        error_index=1,
        community=b"c" * 200,
    )
    msg, rest = decoder.decode(data, asn1Spec=v2c.Message())
    assert rest == b""
    pdu = v2c.apiMessage.get_pdu(msg)
    assert int(v2c.apiPDU.get_request_id(pdu)) == -7
    assert int(v2c.apiPDU.get_error_status(pdu)) == 2
    assert bytes(v2c.apiMessage.get_community(msg)) == b"c" * 200
    [(name, value)] = v2c.apiPDU.get_varbinds(pdu)
    assert (tuple(name), bytes(value)) == ((1, 3, 6, 1, 2, 1, 1, 1, 0), b"x" * 300)


@pytest.mark.parametrize("inform", [False, True])
def test_notification_decodes_with_pysnmp(inform: bool) -> None:
    trap_oid = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3)
    data = ber.encode_notification(
        b"traps",
        42,
        trap_oid,
        2**32 + 5,
        [((1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 3), (ber.INTEGER, 3))],
        inform=inform,
    )
    msg, _ = decoder.decode(data, asn1Spec=v2c.Message())
    pdu = v2c.apiMessage.get_pdu(msg)
    expected = v2c.InformRequestPDU if inform else v2c.SNMPv2TrapPDU
    assert pdu.tagSet == expected.tagSet
    got = [(tuple(n), v) for n, v in v2c.apiPDU.get_varbinds(pdu)]
    assert got[0] == (ber.SYS_UPTIME_0, v2c.TimeTicks(5))  # wrapped at 2**32
    assert got[1] == (ber.SNMP_TRAP_OID_0, v2c.ObjectIdentifier(trap_oid))
    assert got[2] == ((1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 3), v2c.Integer(3))
    ours = decode_message(data)
    assert ours.pdu_type == (ber.INFORM if inform else ber.TRAP_V2)
    assert ours.varbinds[1] == (ber.SNMP_TRAP_OID_0, (ber.OBJECT_IDENTIFIER, trap_oid))


def test_decode_value_reads_pyasn1_encodings() -> None:
    for ours, theirs in VALUES:
        assert ber.decode_value(bytes(encoder.encode(theirs))) == ours


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (ber.COUNTER32, 2**32),
        (ber.COUNTER64, -1),
        (ber.IP_ADDRESS, b"\x01\x02\x03"),
        (ber.OCTET_STRING, 5),
        (ber.INTEGER, b"1"),
        (0x99, 1),
    ],
)
def test_encode_value_refuses_what_does_not_fit(tag: int, value: object) -> None:
    with pytest.raises(BerError):
        encode_value(tag, value)


@pytest.mark.parametrize(
    "oid", [(1,), (3, 1), (1, 40), (1, 3, -1), (1, 3, 2**32), tuple(range(129))]
)
def test_encode_oid_refuses_invalid(oid: tuple[int, ...]) -> None:
    with pytest.raises(BerError):
        encode_oid(oid)


# Malformed input


def _valid() -> list[bytes]:
    return [
        _pysnmp_message(ber.GET, [((1, 3, 6, 1, 2, 1, 1, 1, 0), v2c.Null())]),
        _pysnmp_bulk(0, 50, [(1, 3, 6, 1, 2, 1, 2, 2), (1, 3, 6, 1, 2, 1, 31, 1, 1)]),
        _pysnmp_message(ber.SET, [((1, 3, 6, 1, 2, 1, 2, 2, 1, 7, 1), v2c.Integer(2))]),
        _pysnmp_message(
            ber.RESPONSE, [((1, 3, 6, 1, 4, 1, 99, n), t) for n, (_, t) in enumerate(VALUES)]
        ),
    ]


# GET sysDescr.0, community "public", request-id 1234, as net-snmp sends it.
GET_SYSDESCR = bytes.fromhex(
    "302702010104067075626c6963a01a020204d2020100020100300e300c06082b060102010101000500"
)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"\x30", "header cut"),
        (b"\x30\x80" + GET_SYSDESCR[2:] + b"\x00\x00", "indefinite length"),
        (b"\x30\x84\x00\x00\x00\x27" + GET_SYSDESCR[2:], "4-byte length"),
        (b"\x30\x82\xff\xff" + GET_SYSDESCR[2:], "length past the end"),
        (GET_SYSDESCR + b"\x00", "trailing byte"),
        (GET_SYSDESCR.replace(b"\x02\x01\x01\x04", b"\x02\x01\x02\x04", 1), "version 2"),
        (GET_SYSDESCR.replace(b"\xa0", b"\xa4", 1), "v1 trap PDU"),
        (GET_SYSDESCR.replace(b"\x05\x00", b"\x05\x01", 1)[:-1], "NULL with contents"),
        (GET_SYSDESCR.replace(b"\x01\x00\x05\x00", b"\x01\x81\x05\x00"), "unterminated OID"),
        (b"\x30\x04\x02\x00\x04\x00", "empty INTEGER"),
        (GET_SYSDESCR.replace(b"\x02\x02\x04\xd2", b"\x02\x03\x00\x04\xd2", 1), "padded int"),
    ],
)
def test_malformed_raises_bererror(data: bytes, why: str) -> None:
    with pytest.raises(BerError):
        decode_message(data)


def test_the_fixture_message_is_valid() -> None:
    msg = decode_message(GET_SYSDESCR)
    assert msg.varbinds == (((1, 3, 6, 1, 2, 1, 1, 1, 0), (ber.NULL, None)),)
    assert msg == decode_message(
        _pysnmp_message(ber.GET, [((1, 3, 6, 1, 2, 1, 1, 1, 0), v2c.Null())])
    )


def test_oversized_integers_and_sub_identifiers_are_refused() -> None:
    assert ber.decode_value(b"\x02\x02\xff\x80") == (ber.INTEGER, -128)  # as pyasn1 pads it
    with pytest.raises(BerError, match="too long"):
        ber.decode_value(b"\x02\x06\x00\x00\x00\x00\x00\x05")
    with pytest.raises(BerError, match="range"):
        ber.decode_value(b"\x02\x05\x01\x00\x00\x00\x00")  # 2**32 as an INTEGER
    with pytest.raises(BerError, match="too long"):
        ber.decode_value(b"\x46\x0a\x01" + bytes(9))
    with pytest.raises(BerError, match="range"):
        ber.decode_value(b"\x41\x01\xff")  # a negative Counter32
    with pytest.raises(BerError, match="32 bits"):
        ber.decode_oid(b"\x2b\x90\x80\x80\x80\x00")
    with pytest.raises(BerError, match="non-minimal"):
        ber.decode_oid(b"\x2b\x80\x01")


def test_oversized_datagram_is_refused() -> None:
    with pytest.raises(BerError, match="exceeds"):
        decode_message(b"\x30\x83" + bytes(ber.MAX_MESSAGE_SIZE))


def test_peek_version_spots_snmpv3() -> None:
    # SNMPv3 header: SEQUENCE { INTEGER 3, ... }; the rest is not decoded.
    v3 = bytes.fromhex("300b0201033006020101020100")
    assert ber.peek_version(v3) == 3
    with pytest.raises(BerError):
        decode_message(v3)
    with pytest.raises(BerError):
        ber.peek_version(b"\x04\x00")


def test_fuzzed_messages_decode_or_raise_bererror() -> None:
    rng = random.Random(20240531)
    seeds = _valid()
    outcomes = {"decoded": 0, "refused": 0}
    for _ in range(600):
        data = bytearray(rng.choice(seeds))
        kind = rng.randrange(3)
        if kind == 0:
            data = data[: rng.randrange(len(data))]
        elif kind == 1:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        else:
            pos = rng.randrange(len(data))
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 5)))
        try:
            decode_message(bytes(data))
        except BerError:
            outcomes["refused"] += 1
        else:
            outcomes["decoded"] += 1
    assert outcomes["refused"] > 300  # most mutations break something
    assert outcomes["decoded"] > 0  # flips inside values still decode


# The layout the agent walks


def test_layout_sorts_like_oids_and_pre_encodes() -> None:
    oids = [
        (1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 2),
        (1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 10),
        (1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 9),
        (1, 3, 6, 1, 2, 1, 1, 3, 0),
    ]
    layout = MibLayout(oids, [(1, 3, 6, 1, 2, 1, 2, 2, 1, 2), (1, 3, 6, 1, 2, 1, 1, 3)])
    assert layout.oids == tuple(sorted(oids, key=lambda o: v2c.ObjectIdentifier(o)))
    assert layout.encoded == tuple(encode_oid(oid) for oid in layout.oids)
    assert layout.index((1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 9)) == 1
    assert layout.next_index((1, 3, 6, 1, 2, 1, 2)) == 1
    assert layout.next_index((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 2)) == len(layout)
    assert layout.missing((1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 99)) == ber.NO_SUCH_INSTANCE
    assert layout.missing((1, 3, 6, 1, 2, 1, 99, 0)) == ber.NO_SUCH_OBJECT
    with pytest.raises(ValueError, match="duplicate"):
        MibLayout([(1, 3), (1, 3)], [])


def test_static_mib_set_is_all_or_nothing() -> None:
    col = (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
    mib = StaticMib(
        {
            (*col, 1): (ber.INTEGER, 1),
            (*col, 2): (ber.INTEGER, 1),
            (1, 3, 6, 1, 2, 1, 1, 5, 0): (ber.OCTET_STRING, b"r1"),
        },
        writable=col,
        allowed={1, 2},
    )
    before = mib.reader()
    assert mib.write([((*col, 1), (ber.INTEGER, 2)), ((*col, 2), (ber.INTEGER, 7))]) == (10, 2)
    assert mib.value((*col, 1)) == (ber.INTEGER, 1)
    assert mib.write([((*col, 1), (ber.OCTET_STRING, b"2"))]) == (7, 1)
    assert mib.write([((1, 3, 6, 1, 2, 1, 1, 5, 0), (ber.OCTET_STRING, b"x"))]) == (17, 1)
    assert mib.write([((*col, 3), (ber.INTEGER, 2))]) == (11, 1)
    assert mib.write([((*col, 1), (ber.INTEGER, 2)), ((*col, 2), (ber.INTEGER, 2))]) == (0, 0)
    assert mib.value((*col, 2)) == (ber.INTEGER, 2)
    first = mib.layout().index((*col, 2))
    assert first is not None
    assert before(first) == (ber.INTEGER, 1)  # a reader keeps the view it started with
