"""The lean SNMP v1/v2c client for the polling hot path: GET and GETBULK walks.

pysnmp's BER codec costs about 110 µs per varbind, far more than the network
or the agent; this client encodes requests and decodes responses with
:mod:`autonoc.core.ber` instead (a few µs per varbind) and keeps pysnmp for
what it is good at (v3, SET, traps; see :class:`collectors.snmp.SnmpClient`,
which routes between the two).

One :class:`SnmpWire` serves every device polled from one event loop:

- one IPv4 UDP socket, replies matched to requests by request-id and
  accepted only from the address asked, with the version and community sent;
- a large receive buffer (:data:`DEFAULT_RCVBUF` asked for; what the kernel
  granted is in :attr:`WireStats.rcvbuf`), so a burst of replies is not
  dropped while the loop is busy decoding;
- at most ``max_in_flight`` requests outstanding, each with its own timeout
  and retries (retransmitted with the same request-id);
- counters for everything that went wrong (:class:`WireStats`): garbage,
  late, misdirected and unmatched datagrams are counted, logged at debug
  (never with the community) and dropped; none of them fails or hangs a request.

Failures are raised as :class:`WireError` subclasses, translated into
autonoc's error tree in one place, :func:`collectors.snmp._map_snmp_errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog

from autonoc.core import ber

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_RCVBUF",
    "ERROR_STATUS_NAMES",
    "SnmpWire",
    "WireClosed",
    "WireError",
    "WireMalformed",
    "WireRequestError",
    "WireStats",
    "WireStatus",
    "WireTarget",
    "WireTimeout",
    "udp_rcvbuf_errors",
]

log = structlog.get_logger(__name__)

DEFAULT_MAX_IN_FLIGHT = 256
DEFAULT_RCVBUF = 8 * 1024 * 1024

#: RFC 3416 error-status values by number.
ERROR_STATUS_NAMES = (
    "noError",
    "tooBig",
    "noSuchName",
    "badValue",
    "readOnly",
    "genErr",
    "noAccess",
    "wrongType",
    "wrongLength",
    "wrongEncoding",
    "wrongValue",
    "noCreation",
    "inconsistentValue",
    "resourceUnavailable",
    "commitFailed",
    "undoFailed",
    "authorizationError",
    "notWritable",
    "inconsistentName",
)
_NO_SUCH_NAME = 2
_NOT_A_VALUE = frozenset({ber.NULL, ber.NO_SUCH_OBJECT, ber.NO_SUCH_INSTANCE, ber.END_OF_MIB_VIEW})


# ---------------------------------------------------------------------------
# Errors: raised by the client, mapped to autonoc's tree by collectors.snmp


class WireError(Exception):
    """An SNMP exchange failed; the message never contains the community."""


class WireTimeout(WireError):
    """No acceptable reply after every attempt."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"no response after {attempts} attempt{'s' if attempts != 1 else ''}")
        self.attempts = attempts


class WireMalformed(WireError):
    """The only replies that came could not be decoded."""


class WireRequestError(WireError):
    """The request itself cannot be encoded (e.g. an invalid OID)."""


class WireClosed(WireError):
    """The client was closed while the request waited."""


class WireStatus(WireError):
    """The agent answered with a non-zero error-status.

    Attributes:
        status: the error-status number (:data:`ERROR_STATUS_NAMES`).
        index: the 1-based error-index (0: none).
        oids: the names asked, dotted, to resolve ``index``.
    """

    def __init__(self, status: int, index: int, oids: Sequence[str]) -> None:
        self.status = status
        self.index = index
        self.oids = tuple(oids)
        super().__init__(f"{self.name} for {self.oid}")

    @property
    def name(self) -> str:
        """The error-status by name (``tooBig``, ``noSuchName``, ...)."""
        if 0 <= self.status < len(ERROR_STATUS_NAMES):
            return ERROR_STATUS_NAMES[self.status]
        return f"error-status {self.status}"

    @property
    def oid(self) -> str:
        """The OID ``index`` points at, or ``?``."""
        return self.oids[self.index - 1] if 0 < self.index <= len(self.oids) else "?"


# ---------------------------------------------------------------------------
# Values


@dataclass(frozen=True, slots=True)
class WireTarget:
    """Where and how to ask one device.

    Attributes:
        host: an IPv4 address, dotted (replies are accepted from it alone).
        port: the agent's UDP port.
        community: the community, raw; kept out of ``repr``.
        version: :data:`ber.VERSION_1` or :data:`ber.VERSION_2C`.
    """

    host: str
    port: int
    community: bytes = field(repr=False)
    version: int = ber.VERSION_2C

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


@dataclass(frozen=True, slots=True)
class WireStats:
    """What one :class:`SnmpWire` did since it was created.

    Attributes:
        requests: requests sent (first attempts).
        retries: retransmissions after a timeout.
        replies: replies accepted.
        timeouts: requests that failed for want of an acceptable reply.
        malformed: datagrams that did not decode.
        unmatched: well-formed replies for no outstanding request (late or
            duplicate), or with another version or community than asked.
        wrong_source: replies whose request-id matched, from another address.
        varbinds: varbinds decoded in accepted replies.
        in_flight: requests outstanding now.
        rcvbuf: the socket's receive buffer the kernel granted, bytes (0 before start).
    """

    requests: int = 0
    retries: int = 0
    replies: int = 0
    timeouts: int = 0
    malformed: int = 0
    unmatched: int = 0
    wrong_source: int = 0
    varbinds: int = 0
    in_flight: int = 0
    rcvbuf: int = 0


def udp_rcvbuf_errors(path: Path = Path("/proc/net/snmp")) -> int | None:
    """The kernel's count of UDP datagrams dropped for a full receive buffer (all sockets).

    Returns:
        ``Udp: RcvbufErrors`` from ``/proc/net/snmp``, or None where it cannot be read.
    """
    try:
        lines = [line.split() for line in path.read_text().splitlines() if line.startswith("Udp:")]
    except OSError:
        return None
    if len(lines) < 2 or "RcvbufErrors" not in lines[0]:
        return None
    try:
        return int(lines[1][lines[0].index("RcvbufErrors")])
    except (IndexError, ValueError):
        return None


@lru_cache(maxsize=8192)
def _oid_tlv(oid: str) -> bytes:
    """The encoded name of a dotted OID, cached: pollers ask the same OIDs every cycle."""
    try:
        return ber.encode_oid(tuple(int(arc) for arc in oid.strip(".").split(".")))
    except (ValueError, ber.BerError) as exc:
        raise WireRequestError(f"invalid OID {oid!r}: {exc}") from None


def _name_tlv(content: bytes) -> bytes:
    """An OID TLV around the encoded contents of a name read from a response."""
    n = len(content)
    if n < 0x80:
        return bytes((ber.OBJECT_IDENTIFIER, n)) + content
    return bytes((ber.OBJECT_IDENTIFIER,)) + ber.encode_length(n) + content


# Index suffixes (the arcs after a walked root), shared by every column and
# device: ``.5`` of ifInOctets.5 and ifOutOctets.5 decode once.
_SUFFIXES: dict[bytes, tuple[str, tuple[int, ...]]] = {}
_SUFFIX_CACHE_LIMIT = 1 << 16


def _suffix(raw: bytes) -> tuple[str, tuple[int, ...]]:
    """Dotted text and arcs of encoded sub-identifiers (no first-arc packing).

    Raises:
        ber.BerError: a non-minimal or unterminated sub-identifier, one over
            32 bits, or more than 128 arcs.
    """
    arcs: list[int] = []
    value = 0
    fresh = True
    for byte in raw:
        if fresh and byte == 0x80:
            raise ber.BerError("non-minimal sub-identifier in a response name")
        value = (value << 7) | (byte & 0x7F)
        if byte & 0x80:
            fresh = False
            continue
        if value > 0xFFFFFFFF:
            raise ber.BerError("sub-identifier over 32 bits in a response name")
        arcs.append(value)
        value = 0
        fresh = True
    if not fresh or len(arcs) > 128:
        raise ber.BerError("malformed OID in a response")
    hit = (".".join(map(str, arcs)), tuple(arcs))
    if len(_SUFFIXES) >= _SUFFIX_CACHE_LIMIT:
        _SUFFIXES.clear()
    _SUFFIXES[raw] = hit
    return hit


@dataclass(frozen=True, slots=True)
class _Root:
    dotted: str
    tlv: bytes
    content: bytes
    prefix: str  # dotted + "."


def _root(oid: str) -> _Root:
    dotted = oid.strip(".")
    tlv = _oid_tlv(dotted)
    content = tlv[2:] if tlv[1] < 0x80 else tlv[2 + (tlv[1] & 0x7F) :]
    return _Root(dotted, tlv, content, dotted + ".")


# ---------------------------------------------------------------------------
# The client


class _Pending:
    __slots__ = (
        "address",
        "attempts",
        "community",
        "data",
        "future",
        "malformed",
        "timer",
        "version",
    )

    def __init__(
        self, target: WireTarget, data: bytes, future: asyncio.Future[Any], attempts: int
    ) -> None:
        self.address = target.address
        self.version = target.version
        self.community = target.community
        self.data = data
        self.future = future
        self.attempts = attempts  # left to send, the first one included
        self.malformed: str | None = None
        self.timer: asyncio.TimerHandle | None = None


_Reply = tuple[int, int, list[tuple[bytes, int, object]]]


class SnmpWire(asyncio.DatagramProtocol):
    """An SNMP v1/v2c client over one UDP socket, for every device on one event loop.

    The socket opens on first use on the running loop; the client belongs to
    that loop from then on, and is the socket's datagram protocol. :meth:`close`
    releases it.

    Args:
        timeout: seconds to wait for each attempt's reply.
        retries: attempts after the first.
        max_in_flight: requests outstanding at once; more wait for a slot.
        rcvbuf: receive buffer to ask the kernel for, bytes.
    """

    def __init__(
        self,
        *,
        timeout: float,
        retries: int,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        rcvbuf: int = DEFAULT_RCVBUF,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.max_in_flight = max(1, max_in_flight)
        self.rcvbuf = rcvbuf
        self.loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None
        self._starting: asyncio.Task[None] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._pending: dict[int, _Pending] = {}
        self._next_id = random.randrange(1, 2**31 - 1)
        self._granted = 0
        self._closed = False
        self._c = dict.fromkeys(
            (
                "requests",
                "retries",
                "replies",
                "timeouts",
                "malformed",
                "unmatched",
                "wrong_source",
                "varbinds",
            ),
            0,
        )

    # Lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Open the socket on the running loop (once; concurrent callers share it)."""
        if self._closed:
            raise WireClosed("the SNMP client is closed")
        if self._transport is not None:
            return
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._open())
        starting = self._starting
        try:
            await asyncio.shield(starting)
        except BaseException:
            if starting.done() and self._starting is starting:
                self._starting = None  # a failed start may be tried again
            raise

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            # SO_RCVBUFFORCE passes net.core.rmem_max where we may (CAP_NET_ADMIN).
            for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
                if option is None:
                    continue
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, self.rcvbuf)
                    break
                except OSError:
                    continue
            self._granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            sock.bind(("0.0.0.0", 0))
            transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=sock)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._attach(transport)
        log.debug("snmp_wire_started", rcvbuf_asked=self.rcvbuf, rcvbuf_granted=self._granted)

    def _attach(self, transport: asyncio.DatagramTransport) -> None:
        """Send through ``transport`` from now on (tests attach a fake one)."""
        if self._closed:
            transport.close()
            raise WireClosed("the SNMP client is closed")
        self.loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.max_in_flight)
        self._transport = transport

    def close(self) -> None:
        """Close the socket; requests still waiting fail with :class:`WireClosed`."""
        self._closed = True
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        transport, self._transport = self._transport, None
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if entry.timer is not None:
                entry.timer.cancel()
            if not entry.future.done():
                entry.future.set_exception(WireClosed("the SNMP client was closed"))
        if transport is None:
            return
        if self.loop is not None and self.loop.is_closed():
            if self._sock is not None:  # the loop cannot run the transport's close any more
                self._sock.close()
        else:
            transport.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> WireStats:
        """A snapshot of the counters."""
        return WireStats(**self._c, in_flight=len(self._pending), rcvbuf=self._granted)

    # Requests -------------------------------------------------------------

    async def request(
        self,
        target: WireTarget,
        pdu_type: int,
        oid_tlvs: Sequence[bytes],
        *,
        non_repeaters: int = 0,
        max_repetitions: int = 0,
    ) -> _Reply:
        """Send one request and wait for its reply, retrying on timeout.

        Returns:
            ``(error_status, error_index, varbinds)`` with varbinds as
            :func:`ber.decode_varbinds_plain` gives them.

        Raises:
            WireTimeout: no acceptable reply after ``1 + retries`` attempts.
            WireMalformed: replies came, but none decoded.
            WireClosed: the client was closed meanwhile.
        """
        await self.start()
        assert self._slots is not None and self.loop is not None
        async with self._slots:
            transport = self._transport
            if transport is None:
                raise WireClosed("the SNMP client was closed")
            rid = self._next_id
            while rid in self._pending:
                rid = rid % (2**31 - 1) + 1
            self._next_id = rid % (2**31 - 1) + 1
            data = ber.encode_request(
                target.version,
                target.community,
                pdu_type,
                rid,
                oid_tlvs,
                non_repeaters=non_repeaters,
                max_repetitions=max_repetitions,
            )
            future: asyncio.Future[_Reply] = self.loop.create_future()
            entry = _Pending(target, data, future, self.retries + 1)
            self._pending[rid] = entry
            self._c["requests"] += 1
            try:
                self._send(rid, entry)
                return await future
            finally:
                if self._pending.get(rid) is entry:
                    del self._pending[rid]
                if entry.timer is not None:
                    entry.timer.cancel()

    def _send(self, rid: int, entry: _Pending) -> None:
        assert self.loop is not None
        entry.attempts -= 1
        if self._transport is not None:
            self._transport.sendto(entry.data, entry.address)
        entry.timer = self.loop.call_later(self.timeout, self._expire, rid, entry)

    def _expire(self, rid: int, entry: _Pending) -> None:
        if entry.future.done():
            return
        if entry.attempts > 0:
            self._c["retries"] += 1
            self._send(rid, entry)
            return
        if self._pending.get(rid) is entry:
            del self._pending[rid]
        self._c["timeouts"] += 1
        if entry.malformed is not None:
            entry.future.set_exception(WireMalformed(f"malformed SNMP response: {entry.malformed}"))
        else:
            entry.future.set_exception(WireTimeout(self.retries + 1))

    def error_received(self, exc: Exception) -> None:
        log.debug("snmp_wire_socket_error", error=str(exc))

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Match one datagram to its request; anything else is counted and dropped."""
        try:
            version, community, pdu_type, rid, status, index, start, stop = (
                ber.decode_response_header(data)
            )
        except ber.BerError as exc:
            self._c["malformed"] += 1
            log.debug("snmp_reply_malformed", source=_source(addr), error=str(exc))
            return
        entry = self._pending.get(rid)
        if entry is None or pdu_type != ber.RESPONSE:
            self._c["unmatched"] += 1
            log.debug("snmp_reply_unmatched", source=_source(addr), request_id=rid)
            return
        if (addr[0], addr[1]) != entry.address:
            self._c["wrong_source"] += 1
            log.debug("snmp_reply_wrong_source", source=_source(addr), request_id=rid)
            return
        if version != entry.version or community != entry.community:
            self._c["unmatched"] += 1
            log.debug("snmp_reply_unmatched", source=_source(addr), request_id=rid)
            return
        try:
            varbinds = ber.decode_varbinds_plain(data, start, stop)
        except ber.BerError as exc:
            self._c["malformed"] += 1
            entry.malformed = str(exc)
            log.debug("snmp_reply_malformed", source=_source(addr), error=str(exc))
            return
        del self._pending[rid]
        if entry.timer is not None:
            entry.timer.cancel()
        self._c["replies"] += 1
        self._c["varbinds"] += len(varbinds)
        if not entry.future.done():
            entry.future.set_result((status, index, varbinds))

    # Operations -----------------------------------------------------------

    async def get(self, target: WireTarget, oids: Sequence[str]) -> dict[str, object]:
        """GET ``oids``; a missing instance maps to None.

        Raises:
            WireStatus: the agent answered with an error-status.
            WireRequestError: an OID is not valid.
            WireTimeout, WireMalformed, WireClosed: as :meth:`request`.
        """
        names = [oid.strip(".") for oid in oids]
        status, index, varbinds = await self.request(
            target, ber.GET, [_oid_tlv(name) for name in names]
        )
        if status:
            raise WireStatus(status, index, names)
        try:
            return {ber.oid_dotted(name): value for name, _, value in varbinds}
        except ber.BerError as exc:
            raise WireMalformed(f"malformed SNMP response: {exc}") from None

    async def walk(
        self,
        target: WireTarget,
        root_oids: Sequence[str],
        *,
        scalars: Sequence[str] = (),
        max_repetitions: int = 25,
    ) -> dict[str, object]:
        """Walk the subtrees under ``root_oids`` together: GETBULK, or GETNEXT for v1.

        Each subtree's walk stops where it ends (a name outside it,
        endOfMibView, or a name not after the previous one); the walks share
        requests. ``scalars`` (instances such as ``sysUpTime.0``) go in the
        first request as non-repeaters; those that do not exist are left out.
        SNMPv1 ends a walk with noSuchName: that varbind is dropped and the
        request asked again without it.

        Returns:
            Dotted OID to value for every instance found, scalars first.

        Raises:
            WireStatus, WireRequestError, WireTimeout, WireMalformed, WireClosed:
            as :meth:`get`.
        """
        v1 = target.version == ber.VERSION_1
        roots = {r.dotted: r for r in map(_root, root_oids)}
        # Per root: the last name read (encoded contents) and its arcs below the root.
        position: dict[str, tuple[bytes, tuple[int, ...]] | None] = dict.fromkeys(roots)
        pending_scalars = [s.strip(".") for s in scalars]
        out: dict[str, object] = {}
        reps = 1 if v1 else max(1, max_repetitions)
        try:
            while position or pending_scalars:
                active = list(position)
                asked = [_oid_tlv(s.rpartition(".")[0]) for s in pending_scalars]
                for root in active:
                    last = position[root]
                    asked.append(roots[root].tlv if last is None else _name_tlv(last[0]))
                n_scalars = len(pending_scalars)
                if v1:
                    status, index, varbinds = await self.request(target, ber.GETNEXT, asked)
                    if status == _NO_SUCH_NAME and 0 < index <= len(asked):
                        gone = index - 1  # v1's end of a walk: drop it, ask the rest again
                        if gone < n_scalars:
                            del pending_scalars[gone]
                        else:
                            del position[active[gone - n_scalars]]
                        continue
                else:
                    status, index, varbinds = await self.request(
                        target,
                        ber.GETBULK,
                        asked,
                        non_repeaters=n_scalars,
                        max_repetitions=reps,
                    )
                if status:
                    raise WireStatus(status, index, _asked_names(pending_scalars, active, position))
                for want, (name, tag, value) in zip(
                    pending_scalars, varbinds[:n_scalars], strict=False
                ):
                    if tag not in _NOT_A_VALUE and ber.oid_dotted(name) == want:
                        out[want] = value
                pending_scalars = []
                _advance(varbinds, n_scalars, active, roots, position, out, reps)
        except ber.BerError as exc:
            raise WireMalformed(f"malformed SNMP response: {exc}") from None
        return out


def _advance(
    varbinds: list[tuple[bytes, int, object]],
    first: int,
    active: list[str],
    roots: dict[str, _Root],
    position: dict[str, tuple[bytes, tuple[int, ...]] | None],
    out: dict[str, object],
    reps: int,
) -> None:
    """Fold one response's repeaters into ``out``; drop roots whose subtree ended.

    Repeaters come row by row (one varbind per active root per row); each
    root's column is read in one pass, so its prefix and position are looked
    up once per response, not once per varbind.
    """
    width = len(active)
    stop = min(len(varbinds), first + width * reps)
    suffixes = _SUFFIXES
    progressed = False
    for column, key in enumerate(active):
        root = roots[key]
        content = root.content
        size = len(content)
        prefix = root.prefix
        last = position[key]
        arcs_before = None if last is None else last[1]
        last_name = b""
        arcs: tuple[int, ...] | None = None
        ended = False
        for i in range(first + column, stop, width):
            name, tag, value = varbinds[i]
            if tag == ber.END_OF_MIB_VIEW or len(name) <= size or not name.startswith(content):
                ended = True
                break
            tail = name[size:]
            hit = suffixes.get(tail) or _suffix(tail)
            if arcs_before is not None and hit[1] <= arcs_before:
                ended = True  # not increasing: stop, never loop
                break
            out[prefix + hit[0]] = value
            arcs_before = arcs = hit[1]
            last_name = name
        if arcs is not None:
            position[key] = (last_name, arcs)
            progressed = True
        if ended:
            del position[key]
    if not progressed:
        # Nothing new for any root: stop rather than ask the same question forever.
        for key in active:
            position.pop(key, None)


def _asked_names(
    scalars: Sequence[str],
    active: Sequence[str],
    position: dict[str, tuple[bytes, tuple[int, ...]] | None],
) -> list[str]:
    names = [s.rpartition(".")[0] for s in scalars]
    for key in active:
        last = position.get(key)
        names.append(key if last is None else ber.oid_dotted(last[0]))
    return names


def _source(addr: tuple[str | Any, int]) -> str:
    with contextlib.suppress(IndexError, TypeError):
        return f"{addr[0]}:{addr[1]}"
    return str(addr)
