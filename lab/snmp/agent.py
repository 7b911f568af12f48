"""A lean SNMP agent that serves many simulated devices from one event loop.

Each device has its own bound UDP socket (its port identifies it) and one
:class:`asyncio.DatagramProtocol`. SNMP v1 and v2c are answered by the
hand-written codec in :mod:`autonoc.core.ber`: decode, check the community,
read a :class:`~lab.snmp.mib.DeviceMib` through its pre-encoded
:class:`~lab.snmp.mib.MibLayout`, encode. That costs a few microseconds per
varbind, where a pysnmp agent spends over a hundred.

SNMPv3 (USM authPriv, HMAC-SHA-96 + AES-128) stays with pysnmp: a v3
datagram is handed to a per-device pysnmp engine whose transport answers
through the same socket. Engines are built on a device's first v3 datagram,
so thousands of devices that only see v2c cost nothing extra.

Notifications (:meth:`SnmpAgentServer.send_trap`) leave from the device's
own socket, so a receiver tells devices apart by source port.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pyasn1.codec.ber import encoder as ber_encoder
from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.smi import error as smi_error
from pysnmp.smi.instrum import AbstractMibInstrumController

from autonoc.core import ber
from autonoc.core.ber import (
    COUNTER32,
    COUNTER64,
    END_OF_MIB_VIEW,
    GAUGE32,
    GET,
    GETBULK,
    GETNEXT,
    INTEGER,
    IP_ADDRESS,
    NULL,
    OBJECT_IDENTIFIER,
    OCTET_STRING,
    OPAQUE,
    RESPONSE,
    SET,
    TIMETICKS,
    VERSION_1,
    VERSION_3,
    BerError,
    Message,
    decode_message,
    decode_value,
    encode_message,
    encode_notification,
    encode_oid,
    encode_value,
    encode_varbind,
    peek_version,
)
from autonoc.core.errors import LabError
from lab.snmp.mib import (
    BAD_VALUE,
    GEN_ERR,
    NO_ACCESS,
    NO_CREATION,
    NO_SUCH_NAME,
    NOT_WRITABLE,
    TOO_BIG,
    WRONG_TYPE,
    WRONG_VALUE,
    DeviceMib,
    Oid,
    Value,
)

__all__ = [
    "BGP_BACKWARD_TRANSITION",
    "BGP_ESTABLISHED",
    "LINK_DOWN",
    "LINK_UP",
    "AgentStats",
    "DeviceMibController",
    "SnmpAgentServer",
    "V3Credentials",
]

LINK_DOWN: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3)
LINK_UP: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 5, 4)
BGP_ESTABLISHED: Oid = (1, 3, 6, 1, 2, 1, 15, 0, 1)
"""BGP4-MIB bgpEstablishedNotification (the SNMPv2 form, RFC 4273)."""
BGP_BACKWARD_TRANSITION: Oid = (1, 3, 6, 1, 2, 1, 15, 0, 2)
"""BGP4-MIB bgpBackwardTransNotification (the SNMPv2 form, RFC 4273)."""

DEFAULT_MAX_RESPONSE_SIZE = 65000
DEFAULT_MAX_VARBINDS = 1000
_HEADER_ALLOWANCE = 64  # message, PDU and varbind-list headers around the varbinds

# SNMPv2 error-status -> SNMPv1's (RFC 2576 section 4.3).
_V1_ERROR = {
    TOO_BIG: TOO_BIG,
    NO_SUCH_NAME: NO_SUCH_NAME,
    BAD_VALUE: BAD_VALUE,
    GEN_ERR: GEN_ERR,
    # wrongType, wrongLength, wrongEncoding, wrongValue, inconsistentValue
    WRONG_TYPE: BAD_VALUE,
    8: BAD_VALUE,
    9: BAD_VALUE,
    WRONG_VALUE: BAD_VALUE,
    12: BAD_VALUE,
    # noAccess, noCreation, authorizationError, notWritable, inconsistentName
    NO_ACCESS: NO_SUCH_NAME,
    NO_CREATION: NO_SUCH_NAME,
    16: NO_SUCH_NAME,
    NOT_WRITABLE: NO_SUCH_NAME,
    18: NO_SUCH_NAME,
}


@dataclass(frozen=True, slots=True)
class V3Credentials:
    """An SNMPv3 authPriv user: HMAC-SHA-96 authentication, AES-128 privacy.

    Raises:
        LabError: a key shorter than 8 characters (RFC 3414 section 11.2).
    """

    user: str
    auth_key: str
    priv_key: str

    def __post_init__(self) -> None:
        if len(self.auth_key) < 8 or len(self.priv_key) < 8:
            raise LabError("SNMPv3 auth and priv keys need at least 8 characters (RFC 3414)")


@dataclass(frozen=True, slots=True)
class AgentStats:
    """Counters of one :class:`SnmpAgentServer`, summed over its devices.

    Attributes:
        requests: v1/v2c requests answered.
        varbinds: varbinds in those answers.
        malformed: datagrams dropped because they could not be decoded.
        bad_community: v1/v2c requests dropped for an unknown community.
        v3_messages: datagrams handed to a pysnmp SNMPv3 engine.
        ignored: well-formed datagrams with nothing to answer (a v3 message
            for a device without v3, a trap, GETBULK over SNMPv1, a stray response).
    """

    requests: int
    varbinds: int
    malformed: int
    bad_community: int
    v3_messages: int
    ignored: int


class _Counters:
    __slots__ = ("bad_community", "ignored", "malformed", "requests", "v3_messages", "varbinds")

    def __init__(self) -> None:
        self.requests = self.varbinds = self.malformed = 0
        self.bad_community = self.v3_messages = self.ignored = 0


class SnmpAgentServer:
    """Serves SNMP for many simulated devices, each on its own UDP socket, on one event loop.

    Add devices with :meth:`add`, then :meth:`start` on the loop that will
    serve them and :meth:`close` on the same loop.

    Args:
        max_response_size: the largest response message, in bytes; GETBULK
            stops adding varbinds before it.
        max_varbinds: the most varbinds in one GETBULK response.
    """

    def __init__(
        self,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        max_varbinds: int = DEFAULT_MAX_VARBINDS,
    ) -> None:
        if not 484 <= max_response_size <= ber.MAX_MESSAGE_SIZE:  # 484: RFC 3417's minimum
            raise LabError(f"max_response_size must be 484..{ber.MAX_MESSAGE_SIZE} bytes")
        self.max_response_size = max_response_size
        self.max_varbinds = max(1, max_varbinds)
        self._devices: dict[str, _DeviceEndpoint] = {}
        self._counters = _Counters()
        self._request_ids = itertools.count(random.randrange(1, 2**30))

    def add(
        self,
        device: str,
        sock: socket.socket,
        mib: DeviceMib,
        community: str,
        write_community: str,
        v3: V3Credentials | None = None,
    ) -> None:
        """Register one device on ``sock``, an already bound UDP socket.

        ``community`` may read; ``write_community`` may read and SET.
        Served from the next :meth:`start`.

        Raises:
            LabError: the device is already served, or the communities are equal.
        """
        if device in self._devices:
            raise LabError(f"device {device!r} is already served by this agent")
        if community == write_community:
            raise LabError(f"device {device!r}: the read and write communities must differ")
        self._devices[device] = _DeviceEndpoint(
            self, device, sock, mib, community.encode(), write_community.encode(), v3
        )

    async def start(self) -> None:
        """Start serving every added device not served yet (call again after more adds)."""
        loop = asyncio.get_running_loop()
        for endpoint in self._devices.values():
            if endpoint.transport is None:

                def factory(ep: _DeviceEndpoint = endpoint) -> _DeviceEndpoint:
                    return ep

                await loop.create_datagram_endpoint(factory, sock=endpoint.sock)

    def close(self) -> None:
        """Stop serving: close every socket and v3 engine, cancel pending informs."""
        for endpoint in self._devices.values():
            endpoint.close()
        self._devices.clear()

    @property
    def devices(self) -> list[str]:
        """The names of the devices served, in the order they were added."""
        return list(self._devices)

    def port(self, device: str) -> int:
        """The UDP port ``device`` listens on."""
        return int(self._endpoint(device).sock.getsockname()[1])

    @property
    def stats(self) -> AgentStats:
        """A snapshot of the counters."""
        c = self._counters
        return AgentStats(
            requests=c.requests,
            varbinds=c.varbinds,
            malformed=c.malformed,
            bad_community=c.bad_community,
            v3_messages=c.v3_messages,
            ignored=c.ignored,
        )

    async def send_trap(
        self,
        device: str,
        target: tuple[str, int],
        community: str,
        trap_oid: Oid,
        varbinds: Sequence[tuple[Oid, Value]],
        uptime_ticks: int,
        inform: bool = False,
        timeout: float = 1.0,
        retries: int = 2,
    ) -> None:
        """Send an SNMPv2c TRAP, or an INFORM, from ``device``'s own socket.

        The PDU carries sysUpTime.0 and snmpTrapOID.0 first, then ``varbinds``.
        An INFORM is sent again every ``timeout`` seconds, ``retries`` times at
        most, until the receiver answers with a RESPONSE of the same request-id.

        Raises:
            LabError: the device is not started, a value cannot be encoded, or
                the INFORM was never acknowledged.
        """
        endpoint = self._endpoint(device)
        transport = endpoint.transport
        if transport is None:
            raise LabError(f"device {device!r} is not started (call start())")
        request_id = next(self._request_ids) % 2**31
        try:
            message = encode_notification(
                community.encode(), request_id, trap_oid, uptime_ticks, varbinds, inform=inform
            )
        except BerError as exc:
            raise LabError(f"device {device!r}: cannot encode the notification: {exc}") from exc
        if not inform:
            transport.sendto(message, target)
            return
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        endpoint.pending[request_id] = ack
        try:
            for _ in range(retries + 1):
                transport.sendto(message, target)
                try:
                    await asyncio.wait_for(asyncio.shield(ack), timeout)
                    return
                except TimeoutError:
                    continue
        finally:
            endpoint.pending.pop(request_id, None)
            ack.cancel()
        raise LabError(
            f"device {device!r}: INFORM to {target[0]}:{target[1]} not acknowledged after "
            f"{retries + 1} tries of {timeout:g} s"
        )

    def _endpoint(self, device: str) -> _DeviceEndpoint:
        try:
            return self._devices[device]
        except KeyError:
            raise LabError(f"device {device!r} is not served by this agent") from None


class _DeviceEndpoint(asyncio.DatagramProtocol):
    """One device's socket: answers v1/v2c itself, hands v3 to a lazy pysnmp engine."""

    def __init__(
        self,
        server: SnmpAgentServer,
        device: str,
        sock: socket.socket,
        mib: DeviceMib,
        community: bytes,
        write_community: bytes,
        v3: V3Credentials | None,
    ) -> None:
        self.server = server
        self.device = device
        self.sock = sock
        self.mib = mib
        self.community = community
        self.write_community = write_community
        self.v3 = v3
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, asyncio.Future[None]] = {}
        self._v3_engine: _V3Engine | None = None
        self._counters = server._counters

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        pass  # e.g. ICMP port unreachable after a trap: nothing to do for UDP

    def close(self) -> None:
        engine, self._v3_engine = self._v3_engine, None
        if engine is not None:
            engine.close()
        for future in self.pending.values():
            future.cancel()
        self.pending.clear()
        if self.transport is not None:
            self.transport.close()
        else:
            self.sock.close()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        counters = self._counters
        try:
            msg = decode_message(data)
        except BerError:
            try:
                version = peek_version(data)
            except BerError:
                version = -1
            if version == VERSION_3:
                self._v3_received(data, addr)
            else:
                counters.malformed += 1
            return
        if msg.pdu_type == RESPONSE:
            future = self.pending.get(msg.request_id)
            if future is not None and not future.done():
                future.set_result(None)
            else:
                counters.ignored += 1
            return
        if msg.community == self.community:
            may_write = False
        elif msg.community == self.write_community:
            may_write = True
        else:
            counters.bad_community += 1
            return
        try:
            response = self._answer(msg, may_write)
        except BerError:
            # A value from the MIB that cannot be encoded: the device's fault, not the client's.
            response = self._error(msg, GEN_ERR, 0)
        if response is None:
            counters.ignored += 1
            return
        counters.requests += 1
        assert self.transport is not None
        self.transport.sendto(response, addr)

    # v1/v2c

    def _answer(self, msg: Message, may_write: bool) -> bytes | None:
        pdu = msg.pdu_type
        if pdu == GET:
            return self._get(msg)
        if pdu == GETNEXT:
            return self._getnext(msg)
        if pdu == GETBULK and msg.version != VERSION_1:
            return self._getbulk(msg)
        if pdu == SET:
            if not may_write:
                return self._error(msg, NO_ACCESS, 1)
            status, index = self.mib.write([(oid, value) for oid, value in msg.varbinds])
            return self._error(msg, status, index)
        return None

    def _respond(self, msg: Message, parts: list[bytes]) -> bytes:
        self._counters.varbinds += len(parts)
        return encode_message(
            msg.version, msg.community, RESPONSE, msg.request_id, 0, 0, b"".join(parts)
        )

    def _error(self, msg: Message, status: int, index: int) -> bytes:
        """A response echoing the request's varbinds, with an error (or none: status 0)."""
        if msg.version == VERSION_1:
            status = _V1_ERROR.get(status, GEN_ERR) if status else 0
        return encode_message(
            msg.version, msg.community, RESPONSE, msg.request_id, status, index, msg.raw_varbinds
        )

    def _get(self, msg: Message) -> bytes:
        layout = self.mib.layout()
        read = self.mib.reader()
        v1 = msg.version == VERSION_1
        parts: list[bytes] = []
        size = 0
        for n, (oid, _) in enumerate(msg.varbinds, start=1):
            i = layout.index(oid)
            if i is None:
                if v1:
                    return self._error(msg, NO_SUCH_NAME, n)
                part = encode_varbind(encode_oid(oid), bytes((layout.missing(oid), 0)))
            else:
                tag, value = read(i)
                if v1 and tag == COUNTER64:  # not in SNMPv1 (RFC 2576 section 4.2.1)
                    return self._error(msg, NO_SUCH_NAME, n)
                part = encode_varbind(layout.encoded[i], encode_value(tag, value))
            size += len(part)
            parts.append(part)
        if size > self._budget(msg):
            return self._too_big(msg)
        return self._respond(msg, parts)

    def _getnext(self, msg: Message) -> bytes:
        layout = self.mib.layout()
        read = self.mib.reader()
        v1 = msg.version == VERSION_1
        end = len(layout)
        parts: list[bytes] = []
        size = 0
        for n, (oid, _) in enumerate(msg.varbinds, start=1):
            i = layout.next_index(oid)
            while i < end:
                tag, value = read(i)
                if not (v1 and tag == COUNTER64):
                    part = encode_varbind(layout.encoded[i], encode_value(tag, value))
                    break
                i += 1
            else:
                if v1:
                    return self._error(msg, NO_SUCH_NAME, n)
                part = encode_varbind(encode_oid(oid), bytes((END_OF_MIB_VIEW, 0)))
            size += len(part)
            parts.append(part)
        if size > self._budget(msg):
            return self._too_big(msg)
        return self._respond(msg, parts)

    def _getbulk(self, msg: Message) -> bytes:
        layout = self.mib.layout()
        read = self.mib.reader()
        encoded = layout.encoded
        end = len(layout)
        varbinds = msg.varbinds
        non_repeaters = min(max(msg.non_repeaters, 0), len(varbinds))
        budget = self._budget(msg)
        limit = self.server.max_varbinds
        parts: list[bytes] = []
        size = 0
        for oid, _ in varbinds[:non_repeaters]:
            i = layout.next_index(oid)
            if i < end:
                part = encode_varbind(encoded[i], encode_value(*read(i)))
            else:
                part = encode_varbind(encode_oid(oid), bytes((END_OF_MIB_VIEW, 0)))
            size += len(part)
            if size > budget or len(parts) >= limit:
                return self._respond(msg, parts)
            parts.append(part)
        repeaters = varbinds[non_repeaters:]
        if not repeaters:
            return self._respond(msg, parts)
        positions = [layout.next_index(oid) for oid, _ in repeaters]
        names = [encode_oid(oid) for oid, _ in repeaters]  # for endOfMibView rows
        end_of_mib = bytes((END_OF_MIB_VIEW, 0))
        for _ in range(max(msg.max_repetitions, 0)):
            ended = 0
            for j, i in enumerate(positions):
                if i < end:
                    names[j] = encoded[i]
                    part = encode_varbind(encoded[i], encode_value(*read(i)))
                    positions[j] = i + 1
                else:
                    part = encode_varbind(names[j], end_of_mib)
                    ended += 1
                size += len(part)
                if size > budget or len(parts) >= limit:
                    return self._respond(msg, parts)
                parts.append(part)
            if ended == len(positions):
                break
        return self._respond(msg, parts)

    def _budget(self, msg: Message) -> int:
        return self.server.max_response_size - _HEADER_ALLOWANCE - len(msg.community)

    def _too_big(self, msg: Message) -> bytes:
        if msg.version == VERSION_1:
            return self._error(msg, TOO_BIG, 0)
        return encode_message(msg.version, msg.community, RESPONSE, msg.request_id, TOO_BIG, 0, b"")

    # v3

    def _v3_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.v3 is None or self.transport is None:
            self._counters.ignored += 1
            return
        self._counters.v3_messages += 1
        if self._v3_engine is None:
            self._v3_engine = _V3Engine(self.mib, self.v3, self.transport)
        self._v3_engine.receive(data, addr)


# SNMPv3 through pysnmp


class _SharedSocketTransport(udp.UdpAsyncioTransport):  # type: ignore[misc]
    """A pysnmp UDP transport that sends through a socket someone else owns.

    Datagrams are fed in with :meth:`datagram_received`; closing it leaves the
    socket open for the fast path.
    """

    def close_transport(self) -> None:
        self.transport = None
        self.unregister_callback()


_V3_VIEW = "lab-all"
_V3_NONE = "lab-none"
_V3_GROUP = "lab-v3-group"


class _V3Engine:
    """A pysnmp engine serving one device's SNMPv3 requests over a shared socket."""

    def __init__(
        self, mib: DeviceMib, creds: V3Credentials, sock_transport: asyncio.DatagramTransport
    ) -> None:
        loop = asyncio.get_running_loop()
        engine = SnmpEngine()
        engine.register_transport_dispatcher(AsyncioDispatcher(loop=loop))
        config.add_context(engine, "")
        # Views spelled out: pysnmp lets any write through for a view with no entries.
        config.add_vacm_view(engine, _V3_VIEW, "included", (1, 3, 6), "")
        config.add_vacm_view(engine, _V3_NONE, "excluded", (1, 3, 6), "")
        config.add_v3_user(
            engine,
            creds.user,
            config.USM_AUTH_HMAC96_SHA,
            creds.auth_key,
            config.USM_PRIV_CFB128_AES,
            creds.priv_key,
        )
        config.add_vacm_group(engine, _V3_GROUP, 3, creds.user)
        # authPriv only: a request without privacy is refused by the view.
        config.add_vacm_access(
            engine, _V3_GROUP, "", 3, "authPriv", "exact", _V3_VIEW, _V3_VIEW, _V3_NONE
        )
        snmp_context = context.SnmpContext(engine)
        # The default context would serve the engine's own MIB tree; ours replaces it.
        snmp_context.unregister_context_name(b"")
        snmp_context.register_context_name(b"", DeviceMibController(mib))
        cmdrsp.GetCommandResponder(engine, snmp_context)
        cmdrsp.NextCommandResponder(engine, snmp_context)
        cmdrsp.BulkCommandResponder(engine, snmp_context)
        cmdrsp.SetCommandResponder(engine, snmp_context)
        transport = _SharedSocketTransport(loop=loop)
        transport.connection_made(sock_transport)
        config.add_transport(engine, udp.DOMAIN_NAME, transport)
        self._engine: SnmpEngine | None = engine
        self._transport = transport

    def receive(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._transport.datagram_received(data, udp.UdpTransportAddress(addr))

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close_dispatcher()


_TO_PYSNMP: dict[int, Callable[[Any], Any]] = {
    INTEGER: rfc1902.Integer32,
    OCTET_STRING: rfc1902.OctetString,
    OBJECT_IDENTIFIER: rfc1902.ObjectIdentifier,
    IP_ADDRESS: rfc1902.IpAddress,
    COUNTER32: rfc1902.Counter32,
    GAUGE32: rfc1902.Gauge32,
    TIMETICKS: rfc1902.TimeTicks,
    OPAQUE: rfc1902.Opaque,
    COUNTER64: rfc1902.Counter64,
    NULL: lambda _: rfc1902.Null(""),
}

_SET_ERRORS: dict[int, type[smi_error.MibOperationError]] = {
    NO_ACCESS: smi_error.NoAccessError,
    WRONG_TYPE: smi_error.WrongTypeError,
    8: smi_error.WrongLengthError,
    9: smi_error.WrongEncodingError,
    WRONG_VALUE: smi_error.WrongValueError,
    NO_CREATION: smi_error.NoCreationError,
    12: smi_error.InconsistentValueError,
    13: smi_error.ResourceUnavailableError,
    14: smi_error.CommitFailedError,
    15: smi_error.UndoFailedError,
    16: smi_error.AuthorizationError,
    NOT_WRITABLE: smi_error.NotWritableError,
    18: smi_error.InconsistentNameError,
}


class DeviceMibController(AbstractMibInstrumController):  # type: ignore[misc]
    """Serves a :class:`~lab.snmp.mib.DeviceMib` to pysnmp's command responders (SNMPv3).

    Each method takes ``(name, value)`` varbinds and returns a list of
    ``(name, value)``; access control is asked through ``context["acFun"]``.
    """

    def __init__(self, mib: DeviceMib) -> None:
        self.mib = mib

    def read_variables(self, *varBinds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """GET: each name's value, or noSuchObject / noSuchInstance."""
        layout, read = self.mib.layout(), self.mib.reader()
        result: list[tuple[Any, Any]] = []
        for idx, (name, _) in enumerate(varBinds):
            oid = tuple(name)
            i = layout.index(oid)
            if i is None:
                result.append((name, _exception(layout.missing(oid))))
                continue
            value = _to_pysnmp(read(i))
            if _denied("read", name, value, idx, context):
                value = rfc1905.noSuchObject
            result.append((name, value))
        return result

    def read_next_variables(self, *varBinds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """GETNEXT (and each GETBULK step): the next name in OID order, or endOfMibView."""
        layout, read = self.mib.layout(), self.mib.reader()
        result: list[tuple[Any, Any]] = []
        for idx, (name, _) in enumerate(varBinds):
            i = layout.next_index(tuple(name))
            found: tuple[Any, Any] | None = None
            while i < len(layout):
                next_name = rfc1902.ObjectName(layout.oids[i])
                value = _to_pysnmp(read(i))
                try:
                    denied = _denied("read", next_name, value, idx, context)
                except smi_error.NoAccessError:
                    denied = True  # e.g. Counter64 asked for over SNMPv1: skip it
                if not denied:
                    found = (next_name, value)
                    break
                i += 1
            result.append(found if found is not None else (name, rfc1905.endOfMibView))
        return result

    def write_variables(self, *varBinds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """SET through :meth:`DeviceMib.write`: all or nothing.

        Raises:
            pysnmp.smi.error.MibOperationError: the SET is refused.
        """
        changes: list[tuple[Oid, Value]] = []
        for idx, (name, value) in enumerate(varBinds):
            if _denied("write", name, value, idx, context):
                raise smi_error.NoAccessError(name=name, idx=idx)
            try:
                changes.append((tuple(name), decode_value(ber_encoder.encode(value))))
            except BerError:
                raise smi_error.WrongEncodingError(name=name, idx=idx) from None
        status, index = self.mib.write(changes)
        if status:
            idx = max(index - 1, 0)
            error = _SET_ERRORS.get(status, smi_error.GenError)
            raise error(name=varBinds[idx][0], idx=idx)
        return self.read_variables(*varBinds, **context)


def _to_pysnmp(value: Value) -> Any:
    tag, raw = value
    if tag in (ber.NO_SUCH_OBJECT, ber.NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        return _exception(tag)
    return _TO_PYSNMP[tag](raw)


def _exception(tag: int) -> Any:
    if tag == ber.NO_SUCH_INSTANCE:
        return rfc1905.noSuchInstance
    if tag == END_OF_MIB_VIEW:
        return rfc1905.endOfMibView
    return rfc1905.noSuchObject


def _denied(view: str, name: Any, value: Any, idx: int, context: dict[str, Any]) -> bool:
    """Ask the engine's access control; True when the name is outside the view."""
    ac_fun = context.get("acFun")
    if ac_fun is None:
        return False
    return bool(ac_fun(view, (name, value), idx=idx, **context))
