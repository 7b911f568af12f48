"""A minimal, strict BER codec for SNMP v1 and v2c messages.

Decoding is strict and bounded: every length is checked against what is left
of the datagram; indefinite and over-long lengths, integers longer than their
type allows or out of its range, and sub-identifiers over 32 bits are refused
with :class:`BerError`. Nothing loops more often than there are bytes to read.
Integers padded with a redundant leading byte are accepted: pyasn1 encodes
negative powers of two that way (-128 as ``ff 80``), and pysnmp is a client too.

Encoding is built for the agent's hot path: OID TLVs are pre-encoded by the
caller (see :class:`lab.snmp.mib.MibLayout`) and each value is one call to
:func:`encode_value`. The client's hot path (:mod:`collectors.snmpwire`) has
its own pair: :func:`encode_request`, and :func:`decode_response_header` with
:func:`decode_varbinds_plain`, which reads varbinds straight to plain Python
values and leaves names encoded, for byte comparison. A message is::

    SEQUENCE { version INTEGER, community OCTET STRING,
               PDU [tag] { request-id, error-status | non-repeaters,
                           error-index | max-repetitions,
                           SEQUENCE OF SEQUENCE { name OID, value } } }
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "COUNTER32",
    "COUNTER64",
    "END_OF_MIB_VIEW",
    "GAUGE32",
    "GET",
    "GETBULK",
    "GETNEXT",
    "INFORM",
    "INTEGER",
    "IP_ADDRESS",
    "MAX_MESSAGE_SIZE",
    "NO_SUCH_INSTANCE",
    "NO_SUCH_OBJECT",
    "NULL",
    "OBJECT_IDENTIFIER",
    "OCTET_STRING",
    "OPAQUE",
    "REPORT",
    "RESPONSE",
    "SEQUENCE",
    "SET",
    "TIMETICKS",
    "TRAP_V1",
    "TRAP_V2",
    "VERSION_1",
    "VERSION_2C",
    "VERSION_3",
    "BerError",
    "Message",
    "VarBind",
    "decode_message",
    "decode_oid",
    "decode_response_header",
    "decode_value",
    "decode_varbinds_plain",
    "encode_length",
    "encode_message",
    "encode_notification",
    "encode_oid",
    "encode_request",
    "encode_value",
    "encode_varbind",
    "oid_dotted",
    "peek_version",
]

# Universal and application tags (RFC 2578, RFC 3416).
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
SEQUENCE = 0x30
IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIMETICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46
# SNMPv2 exceptions: a value that says why there is no value.
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82

# PDU tags.
GET = 0xA0
GETNEXT = 0xA1
RESPONSE = 0xA2
SET = 0xA3
TRAP_V1 = 0xA4
GETBULK = 0xA5
INFORM = 0xA6
TRAP_V2 = 0xA7
REPORT = 0xA8

VERSION_1, VERSION_2C, VERSION_3 = 0, 1, 3

MAX_MESSAGE_SIZE = 65507
"""The largest UDP payload over IPv4: no valid datagram is longer."""

_MAX_OID_ARCS = 128  # RFC 2578 section 3.5
_MAX_SUBID = 2**32 - 1
_PDU_TAGS = frozenset({GET, GETNEXT, RESPONSE, SET, GETBULK, INFORM, TRAP_V2, REPORT})
_UNSIGNED_MAX = {
    COUNTER32: 2**32 - 1,
    GAUGE32: 2**32 - 1,
    TIMETICKS: 2**32 - 1,
    COUNTER64: 2**64 - 1,
}
_INT32 = (-(2**31), 2**31 - 1)

Oid = tuple[int, ...]
VarBind = tuple[Oid, tuple[int, object]]
"""``(name, (tag, value))``; values are ``int``, ``bytes``, an OID tuple or ``None``."""


class BerError(ValueError):
    """The bytes are not a well-formed SNMP message (truncated, malformed or too big)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded SNMP v1/v2c message.

    Attributes:
        version: 0 for SNMPv1, 1 for SNMPv2c.
        community: the community string, raw.
        pdu_type: the PDU tag (:data:`GET`, :data:`GETBULK`, ...).
        request_id: echoed in the response.
        error_status: for GETBULK, non-repeaters.
        error_index: for GETBULK, max-repetitions.
        varbinds: ``(oid, (tag, value))`` in request order.
        raw_varbinds: the encoded varbind list, contents only, to echo back verbatim.
    """

    version: int
    community: bytes
    pdu_type: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: tuple[VarBind, ...]
    raw_varbinds: bytes

    @property
    def non_repeaters(self) -> int:
        return self.error_status

    @property
    def max_repetitions(self) -> int:
        return self.error_index


# Decoding


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read one tag and length at ``pos``; returns ``(tag, start, stop)`` of the contents."""
    if pos + 2 > end:
        raise BerError(f"truncated TLV header at offset {pos}")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise BerError(f"multi-byte tag at offset {pos} is not used by SNMP")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise BerError(f"indefinite length at offset {pos - 1}")
    else:
        count = first & 0x7F
        if count > 3:  # 3 bytes already exceed any UDP datagram
            raise BerError(f"length of {count} bytes at offset {pos - 1} is too long")
        if pos + count > end:
            raise BerError(f"truncated length at offset {pos - 1}")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    stop = pos + length
    if stop > end:
        raise BerError(f"length {length} at offset {pos} runs past the end ({end})")
    return tag, pos, stop


def _expect(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    got, start, stop = _header(data, pos, end)
    if got != tag:
        raise BerError(f"expected tag 0x{tag:02x} at offset {pos}, found 0x{got:02x}")
    return start, stop


def _signed(data: bytes, start: int, stop: int, max_len: int) -> int:
    n = stop - start
    if n == 0:
        raise BerError(f"empty INTEGER at offset {start}")
    if n > max_len:
        raise BerError(f"INTEGER of {n} bytes at offset {start} is too long")
    return int.from_bytes(data[start:stop], "big", signed=True)


def _int32(data: bytes, pos: int, end: int) -> tuple[int, int]:
    start, stop = _expect(data, pos, end, INTEGER)
    value = _signed(data, start, stop, 5)
    if not _INT32[0] <= value <= _INT32[1]:
        raise BerError(f"INTEGER {value} at offset {start} is out of the 32-bit range")
    return value, stop


def decode_oid(data: bytes, start: int = 0, stop: int | None = None) -> Oid:
    """Decode the contents (no tag, no length) of an OBJECT IDENTIFIER.

    Raises:
        BerError: empty, unterminated, non-minimal sub-identifier, a sub-identifier
            over 32 bits, or more than 128 arcs.
    """
    if stop is None:
        stop = len(data)
    if start >= stop:
        raise BerError(f"empty OBJECT IDENTIFIER at offset {start}")
    if stop - start > _MAX_OID_ARCS * 5:
        raise BerError(f"OBJECT IDENTIFIER at offset {start} is too long")
    arcs: list[int] = []
    value = 0
    fresh = True
    for pos in range(start, stop):
        byte = data[pos]
        if fresh and byte == 0x80:
            raise BerError(f"non-minimal sub-identifier at offset {pos}")
        value = (value << 7) | (byte & 0x7F)
        if byte & 0x80:
            fresh = False
            continue
        if arcs:
            if value > _MAX_SUBID:
                raise BerError(f"sub-identifier {value} at offset {pos} exceeds 32 bits")
            arcs.append(value)
        elif value < 80:  # the first byte packs two arcs: 40 * X + Y
            arcs += divmod(value, 40)
        else:
            if value - 80 > _MAX_SUBID:
                raise BerError(f"sub-identifier {value - 80} at offset {pos} exceeds 32 bits")
            arcs += (2, value - 80)
        value = 0
        fresh = True
    if not fresh:
        raise BerError(f"OBJECT IDENTIFIER at offset {start} ends inside a sub-identifier")
    if len(arcs) > _MAX_OID_ARCS:
        raise BerError(f"OBJECT IDENTIFIER at offset {start} has more than 128 arcs")
    return tuple(arcs)


def _value(data: bytes, pos: int, end: int) -> tuple[tuple[int, object], int]:
    tag, start, stop = _header(data, pos, end)
    if tag == INTEGER:
        value = _signed(data, start, stop, 5)
        if not _INT32[0] <= value <= _INT32[1]:
            raise BerError(f"INTEGER {value} at offset {start} is out of the 32-bit range")
        return (tag, value), stop
    if tag in (OCTET_STRING, OPAQUE):
        return (tag, data[start:stop]), stop
    if tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        if stop != start:
            raise BerError(f"tag 0x{tag:02x} at offset {pos} must be empty")
        return (tag, None), stop
    if tag == OBJECT_IDENTIFIER:
        return (tag, decode_oid(data, start, stop)), stop
    if tag == IP_ADDRESS:
        if stop - start != 4:
            raise BerError(f"IpAddress at offset {pos} is not 4 bytes")
        return (tag, data[start:stop]), stop
    limit = _UNSIGNED_MAX.get(tag)
    if limit is not None:
        value = _signed(data, start, stop, 9 if tag == COUNTER64 else 5)
        if not 0 <= value <= limit:
            raise BerError(f"value {value} of tag 0x{tag:02x} at offset {pos} is out of range")
        return (tag, value), stop
    raise BerError(f"unknown value tag 0x{tag:02x} at offset {pos}")


def decode_value(data: bytes) -> tuple[int, object]:
    """Decode one complete value TLV (as pyasn1 encodes a pysnmp value) to ``(tag, value)``.

    Raises:
        BerError: malformed, an unknown tag, or trailing bytes.
    """
    value, stop = _value(data, 0, len(data))
    if stop != len(data):
        raise BerError(f"{len(data) - stop} trailing bytes after the value")
    return value


def peek_version(data: bytes) -> int:
    """The version field of a message (0, 1 or 3) without decoding the rest.

    Raises:
        BerError: the datagram does not start like an SNMP message.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise BerError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
    start, stop = _expect(data, 0, len(data), SEQUENCE)
    return _int32(data, start, stop)[0]


def decode_message(data: bytes) -> Message:
    """Decode one SNMP v1/v2c message.

    Raises:
        BerError: anything truncated, malformed, trailing, an unknown PDU or
            a version other than 0 (v1) or 1 (v2c).
    """
    (version, community, pdu_type, request_id, error_status, error_index, l_start, l_stop) = (
        decode_response_header(data)
    )
    varbinds: list[VarBind] = []
    pos = l_start
    while pos < l_stop:  # each turn consumes at least one varbind header
        v_start, v_stop = _expect(data, pos, l_stop, SEQUENCE)
        o_start, o_stop = _expect(data, v_start, v_stop, OBJECT_IDENTIFIER)
        oid = decode_oid(data, o_start, o_stop)
        value, after = _value(data, o_stop, v_stop)
        if after != v_stop:
            raise BerError(f"trailing bytes in the varbind at offset {pos}")
        varbinds.append((oid, value))
        pos = v_stop
    return Message(
        version=version,
        community=community,
        pdu_type=pdu_type,
        request_id=request_id,
        error_status=error_status,
        error_index=error_index,
        varbinds=tuple(varbinds),
        raw_varbinds=data[l_start:l_stop],
    )


# Encoding


def encode_length(n: int) -> bytes:
    """The BER length octets for ``n`` content bytes (short form below 128)."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    return bytes((0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF))


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    return bytes((tag,)) + encode_length(n) + content


def encode_oid(oid: Sequence[int]) -> bytes:
    """The complete TLV (tag 0x06) of an OBJECT IDENTIFIER.

    Raises:
        BerError: fewer than two arcs, a first arc over 2, a second arc of 40
            or more under arcs 0 and 1, or a sub-identifier outside 0..2**32-1.
    """
    if len(oid) < 2 or len(oid) > _MAX_OID_ARCS:
        raise BerError(f"OID {oid!r} needs 2 to 128 arcs")
    first, second = oid[0], oid[1]
    if first not in (0, 1, 2) or second < 0 or (first < 2 and second >= 40):
        raise BerError(f"OID {oid!r} has invalid first arcs")
    if second > _MAX_SUBID or any(not 0 <= arc <= _MAX_SUBID for arc in oid[2:]):
        raise BerError(f"OID {oid!r} has a sub-identifier outside 0..2**32-1")
    out = bytearray()
    for arc in (first * 40 + second, *oid[2:]):
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _tlv(OBJECT_IDENTIFIER, bytes(out))


def _enc_signed(tag: int, value: object) -> bytes:
    if not isinstance(value, int):
        raise BerError(f"tag 0x{tag:02x} needs an int, not {type(value).__name__}")
    v = value
    if 0 <= v < 0x80:
        return bytes((tag, 1, v))
    n = (v if v >= 0 else ~v).bit_length() // 8 + 1
    return bytes((tag, n)) + v.to_bytes(n, "big", signed=True)


def _enc_unsigned(limit: int) -> Callable[[int, object], bytes]:
    def enc(tag: int, value: object) -> bytes:
        if not isinstance(value, int):
            raise BerError(f"tag 0x{tag:02x} needs an int, not {type(value).__name__}")
        v = value
        if 0 <= v < 0x80:
            return bytes((tag, 1, v))
        if not 0 <= v <= limit:
            raise BerError(f"value {v} of tag 0x{tag:02x} is out of range")
        n = v.bit_length() // 8 + 1
        return bytes((tag, n)) + v.to_bytes(n, "big")

    return enc


def _enc_bytes(tag: int, value: object) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes | bytearray):
        raise BerError(f"tag 0x{tag:02x} needs bytes, not {type(value).__name__}")
    return _tlv(tag, bytes(value))


def _enc_ip(tag: int, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != 4:
        raise BerError(f"IpAddress needs 4 bytes, not {value!r}")
    return bytes((tag, 4)) + value


def _enc_oid_value(tag: int, value: object) -> bytes:
    if not isinstance(value, tuple):
        raise BerError(f"OBJECT IDENTIFIER value needs a tuple, not {type(value).__name__}")
    return encode_oid(value)


def _enc_empty(tag: int, value: object) -> bytes:
    return bytes((tag, 0))


_ENCODERS: dict[int, Callable[[int, object], bytes]] = {
    INTEGER: _enc_signed,
    OCTET_STRING: _enc_bytes,
    OPAQUE: _enc_bytes,
    NULL: _enc_empty,
    OBJECT_IDENTIFIER: _enc_oid_value,
    IP_ADDRESS: _enc_ip,
    COUNTER32: _enc_unsigned(2**32 - 1),
    GAUGE32: _enc_unsigned(2**32 - 1),
    TIMETICKS: _enc_unsigned(2**32 - 1),
    COUNTER64: _enc_unsigned(2**64 - 1),
    NO_SUCH_OBJECT: _enc_empty,
    NO_SUCH_INSTANCE: _enc_empty,
    END_OF_MIB_VIEW: _enc_empty,
}


def encode_value(tag: int, value: object) -> bytes:
    """The complete TLV of one varbind value.

    ``value`` is an ``int`` (INTEGER and the unsigned types), ``bytes`` (OCTET
    STRING, Opaque, 4-byte IpAddress), an OID tuple, or ignored (NULL and the
    exceptions).

    Raises:
        BerError: an unknown tag, or a value that does not fit it.
    """
    try:
        encoder = _ENCODERS[tag]
    except KeyError:
        raise BerError(f"cannot encode value tag 0x{tag:02x}") from None
    return encoder(tag, value)


def encode_varbind(oid_tlv: bytes, value_tlv: bytes) -> bytes:
    """One varbind SEQUENCE from an encoded name and an encoded value."""
    n = len(oid_tlv) + len(value_tlv)
    if n < 0x80:
        return bytes((SEQUENCE, n)) + oid_tlv + value_tlv
    return b"\x30" + encode_length(n) + oid_tlv + value_tlv


def encode_message(
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    error_status: int,
    error_index: int,
    varbinds: bytes,
) -> bytes:
    """A whole message around ``varbinds``, the concatenated varbind SEQUENCEs."""
    pdu = b"".join(
        (
            _enc_signed(INTEGER, request_id),
            _enc_signed(INTEGER, error_status),
            _enc_signed(INTEGER, error_index),
            _tlv(SEQUENCE, varbinds),
        )
    )
    body = _enc_signed(INTEGER, version) + _tlv(OCTET_STRING, community) + _tlv(pdu_type, pdu)
    return _tlv(SEQUENCE, body)


SYS_UPTIME_0: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID_0: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
_SYS_UPTIME_TLV = encode_oid(SYS_UPTIME_0)
_SNMP_TRAP_OID_TLV = encode_oid(SNMP_TRAP_OID_0)


def encode_notification(
    community: bytes,
    request_id: int,
    trap_oid: Oid,
    uptime_ticks: int,
    varbinds: Sequence[VarBind],
    *,
    inform: bool = False,
) -> bytes:
    """An SNMPv2c TRAP (or INFORM) message: sysUpTime.0, snmpTrapOID.0, then ``varbinds``.

    Raises:
        BerError: an OID or a value cannot be encoded.
    """
    parts = [
        encode_varbind(_SYS_UPTIME_TLV, encode_value(TIMETICKS, uptime_ticks % 2**32)),
        encode_varbind(_SNMP_TRAP_OID_TLV, encode_oid(trap_oid)),
    ]
    parts += [encode_varbind(encode_oid(oid), encode_value(*value)) for oid, value in varbinds]
    return encode_message(
        VERSION_2C, community, INFORM if inform else TRAP_V2, request_id, 0, 0, b"".join(parts)
    )


# Client side: requests out, responses in, on a poller's hot path.

_NULL_VALUE = b"\x05\x00"


def encode_request(
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    oid_tlvs: Sequence[bytes],
    *,
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """A GET, GETNEXT or GETBULK request for already encoded names (see :func:`encode_oid`).

    Every value is NULL. ``non_repeaters`` and ``max_repetitions`` fill the
    error-status and error-index fields, so they only mean something for GETBULK.
    """
    varbinds = b"".join([encode_varbind(tlv, _NULL_VALUE) for tlv in oid_tlvs])
    return encode_message(
        version, community, pdu_type, request_id, non_repeaters, max_repetitions, varbinds
    )


def decode_response_header(data: bytes) -> tuple[int, bytes, int, int, int, int, int, int]:
    """The envelope of a v1/v2c message (request or response), its varbinds left undecoded.

    Returns:
        ``(version, community, pdu_type, request_id, error_status, error_index,
        start, stop)``: the varbind list's contents lie in ``data[start:stop]``,
        for :func:`decode_varbinds_plain`.

    Raises:
        BerError: as :func:`decode_message` for everything but the varbinds.
    """
    end = len(data)
    if end > MAX_MESSAGE_SIZE:
        raise BerError(f"message of {end} bytes exceeds {MAX_MESSAGE_SIZE}")
    start, stop = _expect(data, 0, end, SEQUENCE)
    if stop != end:
        raise BerError(f"{end - stop} trailing bytes after the message")
    version, pos = _int32(data, start, stop)
    if version not in (VERSION_1, VERSION_2C):
        raise BerError(f"version {version} is not SNMPv1 (0) or SNMPv2c (1)")
    c_start, pos = _expect(data, pos, stop, OCTET_STRING)
    community = data[c_start:pos]
    pdu_type, p_start, p_stop = _header(data, pos, stop)
    if pdu_type not in _PDU_TAGS:
        raise BerError(f"unsupported PDU type 0x{pdu_type:02x}")
    if p_stop != stop:
        raise BerError("trailing bytes after the PDU")
    request_id, pos = _int32(data, p_start, p_stop)
    error_status, pos = _int32(data, pos, p_stop)
    error_index, pos = _int32(data, pos, p_stop)
    l_start, l_stop = _expect(data, pos, p_stop, SEQUENCE)
    if l_stop != p_stop:
        raise BerError("trailing bytes after the varbind list")
    return version, community, pdu_type, request_id, error_status, error_index, l_start, l_stop


_OID_STRINGS: dict[bytes, str] = {}
_OID_CACHE_LIMIT = 1 << 16


def oid_dotted(content: bytes) -> str:
    """The dotted text (``1.3.6.1.2.1.1.3.0``) of an OID's encoded contents.

    Recently seen OIDs come from a bounded cache.

    Raises:
        BerError: as :func:`decode_oid`.
    """
    text = _OID_STRINGS.get(content)
    if text is None:
        text = ".".join(map(str, decode_oid(content)))
        if len(_OID_STRINGS) >= _OID_CACHE_LIMIT:
            _OID_STRINGS.clear()
        _OID_STRINGS[content] = text
    return text


def _text(raw: bytes) -> str | bytes:
    if raw.isascii():
        return raw.decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _long_length(data: bytes, pos: int) -> tuple[int, int]:
    """A long-form length at ``pos`` (its first octet 0x81..0x83): ``(length, contents start)``."""
    first = data[pos]
    if first == 0x81:
        return data[pos + 1], pos + 2
    if first == 0x82:
        return (data[pos + 1] << 8) | data[pos + 2], pos + 3
    if first == 0x83:
        return (data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3], pos + 4
    raise BerError(f"unsupported length octet 0x{first:02x} at offset {pos}")


def decode_varbinds_plain(data: bytes, start: int, stop: int) -> list[tuple[bytes, int, object]]:
    """Decode a varbind list's contents fast, to plain Python values.

    Each varbind becomes ``(name, tag, value)``: ``name`` is the OID's encoded
    contents (compare it as bytes; :func:`oid_dotted` makes it text), ``tag``
    the value's tag, and ``value`` an ``int`` (INTEGER, Counter32/64, Gauge32,
    TimeTicks), ``str`` for an OCTET STRING or Opaque that is UTF-8 and
    ``bytes`` otherwise, dotted ``str`` for an OBJECT IDENTIFIER or IpAddress,
    or ``None`` (NULL, noSuchObject, noSuchInstance, endOfMibView: tell them
    apart by ``tag``).

    Checks every length against its enclosing one, value lengths and ranges
    and the OIDs' last octet; an OID's sub-identifiers are checked when
    :func:`oid_dotted` or :func:`decode_oid` reads it. The unsigned types are
    read as unsigned even without the leading zero octet some agents forget.

    Raises:
        BerError: truncated, malformed, out of range or an unknown value tag.
    """
    out: list[tuple[bytes, int, object]] = []
    append = out.append
    pos = start
    try:
        while pos < stop:
            if data[pos] != SEQUENCE:
                raise BerError(f"expected a varbind SEQUENCE at offset {pos}")
            n = data[pos + 1]
            if n < 0x80:
                pos += 2
            else:
                n, pos = _long_length(data, pos + 1)
            vb_stop = pos + n
            if vb_stop > stop:
                raise BerError(f"varbind at offset {pos} runs past the list")
            if data[pos] != OBJECT_IDENTIFIER:
                raise BerError(f"expected an OBJECT IDENTIFIER at offset {pos}")
            n = data[pos + 1]
            if n < 0x80:
                pos += 2
            else:
                n, pos = _long_length(data, pos + 1)
            o_stop = pos + n
            if n == 0 or o_stop > vb_stop or data[o_stop - 1] & 0x80:
                raise BerError(f"malformed OBJECT IDENTIFIER at offset {pos}")
            name = data[pos:o_stop]
            tag = data[o_stop]
            n = data[o_stop + 1]
            if n < 0x80:
                pos = o_stop + 2
            else:
                n, pos = _long_length(data, o_stop + 1)
            end = pos + n
            if end != vb_stop:
                raise BerError(f"value at offset {o_stop} does not fill its varbind")
            value: object
            if COUNTER32 <= tag <= TIMETICKS:  # Counter32, Gauge32, TimeTicks
                if not 0 < n <= 5:
                    raise BerError(f"value of {n} bytes at offset {o_stop} for tag 0x{tag:02x}")
                value = int.from_bytes(data[pos:end], "big")
                if value > 0xFFFFFFFF:
                    raise BerError(f"value at offset {o_stop} exceeds 32 bits")
            elif tag == OCTET_STRING:
                value = _text(data[pos:end])
            elif tag == INTEGER:
                if not 0 < n <= 5:
                    raise BerError(f"INTEGER of {n} bytes at offset {o_stop}")
                value = int.from_bytes(data[pos:end], "big", signed=True)
                if n == 5 and not _INT32[0] <= value <= _INT32[1]:
                    raise BerError(f"INTEGER at offset {o_stop} is out of the 32-bit range")
            elif tag == COUNTER64:
                if not 0 < n <= 9:
                    raise BerError(f"Counter64 of {n} bytes at offset {o_stop}")
                value = int.from_bytes(data[pos:end], "big")
                if value > 0xFFFFFFFFFFFFFFFF:
                    raise BerError(f"Counter64 at offset {o_stop} exceeds 64 bits")
            elif tag == NULL or NO_SUCH_OBJECT <= tag <= END_OF_MIB_VIEW:
                if n:
                    raise BerError(f"tag 0x{tag:02x} at offset {o_stop} must be empty")
                value = None
            elif tag == OBJECT_IDENTIFIER:
                value = oid_dotted(data[pos:end])
            elif tag == IP_ADDRESS:
                if n != 4:
                    raise BerError(f"IpAddress at offset {o_stop} is not 4 bytes")
                value = "%d.%d.%d.%d" % tuple(data[pos:end])  # noqa: UP031
            elif tag == OPAQUE:
                value = _text(data[pos:end])
            else:
                raise BerError(f"unknown value tag 0x{tag:02x} at offset {o_stop}")
            append((name, tag, value))
            pos = end
    except IndexError:
        raise BerError(f"truncated varbind at offset {pos}") from None
    return out
