"""The SNMP trap and inform receiver: notifications from the inventory's devices become alarms.

:class:`TrapReceiver` listens on one UDP port (default ``0.0.0.0:162``; 162 needs root or
``CAP_NET_BIND_SERVICE``, so the lab and tests use a high port) on the running asyncio
loop. pysnmp does the protocol work: SNMPv1 traps, SNMPv2c traps and informs, SNMPv3 USM
traps and informs; informs are acknowledged, and only once the notification passed every
check below.

Nothing is trusted before it is checked against the inventory, in this order:

1. **Source.** The datagram's source must be a device: first the exact ``(ip, port)`` of
   a device's ``mgmt.host`` / ``mgmt.snmp_port`` (the lab sends every device's traps from
   its own port, all on 127.0.0.1), else the source IP when exactly one device has that
   management host. Anything else is counted as ``unknown_source`` and dropped before a
   byte of it is decoded.
2. **Credentials.** SNMPv1/v2c: the community must be *that device's* read community
   (``bad_community`` otherwise). SNMPv3: the message must pass USM (user, keys, time
   window) at the security level the user is configured for, and a device polled over v3
   must use its own user (``bad_auth`` otherwise).

Every drop is counted (:class:`TrapStats`) and logged as a rate-limited warning that names
the reason and the source, never a community or key.

SNMPv3 and engine IDs: an INFORM is sent to the receiver's engine ID, which the sender
discovers by itself, so v3 informs need nothing beyond the user's protocols and keys. A
TRAP is sent under the *sender's* engine ID, to which the keys are localized, so the
receiver must know it (as net-snmp's ``snmptrapd`` needs ``createUser -e ENGINEID``).
Either pin it per device (``TrapReceiver(engine_ids={"pe1": ["0x80001f88..."]})``, the
value of the device's ``SNMP-FRAMEWORK-MIB::snmpEngineID.0``, or net-snmp's ``snmptrap
-e``; or per user, :attr:`TrapUser.engine_ids`), or leave the device unpinned and the
receiver learns the engine IDs that a known device sends from, a few per device at most
(:data:`MAX_LEARNED_ENGINE_IDS`): learning adds a key table entry but trusts nothing,
since only the user's real keys authenticate under it.

Mapping (:func:`alarm_from_notification`): IF-MIB linkDown/linkUp become ``link_down`` /
``link_up`` alarms on the interface (ifName from the trap, else ifDescr, else the
``if_names`` resolver, else ``ifIndex.N``); BGP4-MIB bgpBackwardTransition /
bgpEstablished (RFC 1657 and RFC 4273 forms) become ``bgp_down`` / ``bgp_up`` on the peer
address taken from the varbinds' index. Any other notification from a trusted source is
kept as kind ``trap`` (severity warning) with its OID in the text, so nothing a device
reports is silently lost. Device text is data: alarm text and instances are plain,
printable, bounded strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import structlog
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pydantic import SecretStr
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.error import PySnmpError
from pysnmp.proto import rfc1902
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from autonoc.core import ber
from autonoc.core.errors import ConfigError
from autonoc.core.inventory import Device, Inventory, SnmpV2c, SnmpV3
from autonoc.core.types import Alarm, Severity
from collectors.snmp import AUTH_PROTOCOLS, PRIV_PROTOCOLS

__all__ = [
    "BGP_BACKWARD_TRANSITION",
    "BGP_ESTABLISHED",
    "LINK_DOWN",
    "LINK_UP",
    "MAX_LEARNED_ENGINE_IDS",
    "RECEIVE_BUFFER_BYTES",
    "AlarmSink",
    "IfNameResolver",
    "TrapReceiver",
    "TrapStats",
    "TrapUser",
    "alarm_from_notification",
    "trap_users",
]

log = structlog.get_logger(__name__)

AlarmSink = Callable[[Sequence[Alarm]], Awaitable[None] | None]
"""Receives alarms in batches (usually one); may be a plain function or a coroutine function."""

IfNameResolver = Callable[[str, int], str | None]
"""``(device, ifIndex) -> ifName``, e.g. from the poller's last IF-MIB walk; None if unknown."""

# ---------------------------------------------------------------------------
# The mapping: notifications to alarms

SYS_UPTIME_0 = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID_0 = "1.3.6.1.6.3.1.1.4.1.0"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
LINK_UP = "1.3.6.1.6.3.1.1.5.4"
#: bgpEstablished: RFC 1657 (bgpTraps.1) and RFC 4273 bgpEstablishedNotification.
BGP_ESTABLISHED = ("1.3.6.1.2.1.15.7.1", "1.3.6.1.2.1.15.0.1")
#: bgpBackwardTransition: RFC 1657 (bgpTraps.2) and RFC 4273 bgpBackwardTransNotification.
BGP_BACKWARD_TRANSITION = ("1.3.6.1.2.1.15.7.2", "1.3.6.1.2.1.15.0.2")

_IF_INDEX = "1.3.6.1.2.1.2.2.1.1."
_IF_DESCR = "1.3.6.1.2.1.2.2.1.2."
_IF_ADMIN = "1.3.6.1.2.1.2.2.1.7."
_IF_OPER = "1.3.6.1.2.1.2.2.1.8."
_IF_NAME = "1.3.6.1.2.1.31.1.1.1.1."
_BGP_PEER_ENTRY = "1.3.6.1.2.1.15.3.1."
_BGP_PEER_STATE = 2
_BGP_PEER_REMOTE_ADDR = 7
_BGP_PEER_LAST_ERROR = 14
#: SNMPv1 trap conversion adds these (RFC 3584); the community never reaches an alarm.
_NEVER_SHOWN = ("1.3.6.1.6.3.18.1.4.0", "1.3.6.1.6.3.18.1.3.0", "1.3.6.1.6.3.1.1.4.3.0")

_IF_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent"}
_BGP_STATES = {
    1: "idle",
    2: "connect",
    3: "active",
    4: "opensent",
    5: "openconfirm",
    6: "established",
}
_GENERIC_TRAPS = {
    "1.3.6.1.6.3.1.1.5.1": "coldStart",
    "1.3.6.1.6.3.1.1.5.2": "warmStart",
    "1.3.6.1.6.3.1.1.5.5": "authenticationFailure",
}

MAX_TEXT = 240
MAX_INSTANCE = 64
_MAX_VALUE = 48
_OTHER_VARBINDS_SHOWN = 4

Value = int | str | bytes | None


def alarm_from_notification(
    device: str,
    varbinds: Sequence[tuple[str, Value]],
    ts: float,
    *,
    if_names: IfNameResolver | None = None,
) -> Alarm | None:
    """Map one notification's varbinds to an alarm.

    Args:
        device: the inventory device it came from (already checked).
        varbinds: ``(dotted OID, value)`` in PDU order, in the SNMPv2 form
            (sysUpTime.0, snmpTrapOID.0, then the objects); values are ints, dotted
            strings (OIDs, IP addresses), bytes or str.
        ts: receive time, epoch seconds.
        if_names: resolves ifIndex to ifName when the trap carries neither ifName nor ifDescr.

    Returns:
        The alarm, or None when there is no snmpTrapOID.0 (not a notification).
    """
    values = dict(varbinds)
    trap_oid = values.get(SNMP_TRAP_OID_0)
    if not isinstance(trap_oid, str) or not trap_oid:
        return None
    trap_oid = trap_oid.lstrip(".")
    if trap_oid in (LINK_DOWN, LINK_UP):
        return _link_alarm(device, trap_oid == LINK_DOWN, varbinds, ts, if_names)
    if trap_oid in BGP_ESTABLISHED or trap_oid in BGP_BACKWARD_TRANSITION:
        return _bgp_alarm(device, trap_oid in BGP_BACKWARD_TRANSITION, varbinds, ts)
    shown = [
        f"{oid}={_show(value)}"
        for oid, value in varbinds
        if oid not in (SYS_UPTIME_0, SNMP_TRAP_OID_0, *_NEVER_SHOWN)
    ][:_OTHER_VARBINDS_SHOWN]
    name = _GENERIC_TRAPS.get(trap_oid, "notification")
    text = f"{name} {trap_oid}" + (": " + ", ".join(shown) if shown else "")
    return Alarm(
        device=device, instance="", kind="trap", severity=Severity.WARNING, ts=ts, text=_bound(text)
    )


def _link_alarm(
    device: str,
    down: bool,
    varbinds: Sequence[tuple[str, Value]],
    ts: float,
    if_names: IfNameResolver | None,
) -> Alarm:
    index: int | None = None
    name = descr = None
    admin = oper = None
    for oid, value in varbinds:
        for prefix in (_IF_INDEX, _IF_ADMIN, _IF_OPER, _IF_NAME, _IF_DESCR):
            if oid.startswith(prefix) and oid[len(prefix) :].isdigit():
                index = index if index is not None else int(oid[len(prefix) :])
                if prefix == _IF_NAME:
                    name = _clean(value, MAX_INSTANCE)
                elif prefix == _IF_DESCR:
                    descr = _clean(value, MAX_INSTANCE)
                elif prefix == _IF_ADMIN and isinstance(value, int):
                    admin = value
                elif prefix == _IF_OPER and isinstance(value, int):
                    oper = value
    instance = name or descr
    if not instance and index is not None and if_names is not None:
        instance = _clean(if_names(device, index), MAX_INSTANCE)
    if not instance:
        instance = f"ifIndex.{index}" if index is not None else ""
    parts = ["linkDown" if down else "linkUp", instance]
    if index is not None and instance != f"ifIndex.{index}":
        parts.append(f"ifIndex {index}")
    if admin is not None:
        parts.append(f"admin {_IF_STATUS.get(admin, str(admin))}")
    if oper is not None:
        parts.append(f"oper {_IF_STATUS.get(oper, str(oper))}")
    return Alarm(
        device=device,
        instance=instance,
        kind="link_down" if down else "link_up",
        severity=Severity.MAJOR if down else Severity.INFO,
        ts=ts,
        text=_bound(" ".join(p for p in parts if p)),
    )


def _bgp_alarm(device: str, down: bool, varbinds: Sequence[tuple[str, Value]], ts: float) -> Alarm:
    peer = ""
    state: int | None = None
    last_error: bytes | None = None
    for oid, value in varbinds:
        if not oid.startswith(_BGP_PEER_ENTRY):
            continue
        column, _, index = oid[len(_BGP_PEER_ENTRY) :].partition(".")
        if not peer:
            peer = _ipv4_index(index)
        if column == str(_BGP_PEER_STATE) and isinstance(value, int):
            state = value
        elif column == str(_BGP_PEER_LAST_ERROR) and isinstance(value, bytes):
            last_error = value[:2]
        elif column == str(_BGP_PEER_REMOTE_ADDR) and not peer and isinstance(value, str):
            peer = _ipv4_index(value)
    parts = ["bgpBackwardTransition" if down else "bgpEstablished"]
    if peer:
        parts.append(f"peer {peer}")
    if state is not None:
        parts.append(f"state {_BGP_STATES.get(state, str(state))}({state})")
    if last_error and any(last_error):
        parts.append(f"last error {last_error.hex(' ')}")
    return Alarm(
        device=device,
        instance=peer,
        kind="bgp_down" if down else "bgp_up",
        severity=Severity.MAJOR if down else Severity.INFO,
        ts=ts,
        text=_bound(" ".join(parts)),
    )


def _ipv4_index(text: str) -> str:
    """``a.b.c.d`` when ``text`` is a dotted IPv4 address (an index or a value), else ''."""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return ""


def _clean(value: object, limit: int) -> str:
    """Device text as a plain, printable, bounded string."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = "".join(ch if ch.isprintable() else " " for ch in str(value)).strip()
    return text[:limit]


def _show(value: Value) -> str:
    if isinstance(value, bytes):
        text = _clean(value, _MAX_VALUE)
        printable = value.decode("utf-8", errors="replace").isprintable()
        return repr(text) if printable else value[: _MAX_VALUE // 2].hex()
    return _clean(value, _MAX_VALUE)


def _bound(text: str) -> str:
    text = _clean(text, MAX_TEXT + 1)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _plain(value: Any) -> Value:
    """A pysnmp value as int, dotted str (OIDs, IP addresses) or bytes."""
    if isinstance(value, univ.Null):
        return None
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(b) for b in bytes(value.asOctets()))
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return ".".join(str(x) for x in value)
    return str(value.prettyPrint())


# ---------------------------------------------------------------------------
# SNMPv3 users

#: Engine IDs learned per device for unpinned users; more are refused (and counted as bad_auth).
MAX_LEARNED_ENGINE_IDS = 4


def _engine_id(value: str | bytes) -> bytes:
    """An snmpEngineID from bytes or hex text (``80001f88...`` or ``0x80001f88...``)."""
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0x").replace(":", "")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ConfigError(
                f"SNMPv3 engine ID {value!r} is not hex (write it as 0x80001f8803..., as "
                "snmpget SNMP-FRAMEWORK-MIB::snmpEngineID.0 shows it)"
            ) from None
    else:
        raw = bytes(value)
    if not 5 <= len(raw) <= 32:
        raise ConfigError(f"SNMPv3 engine ID {raw.hex()} must be 5 to 32 octets, not {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class TrapUser:
    """An SNMPv3 user notifications may come from.

    Attributes:
        engine_ids: the senders' snmpEngineIDs this user's TRAPs come with (keys are
            localized to them); informs never need them. See the module docs for learning.
    """

    user: str
    auth_protocol: str | None = None
    auth_key: SecretStr | None = None
    priv_protocol: str | None = None
    priv_key: SecretStr | None = None
    engine_ids: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.auth_protocol is not None and self.auth_protocol not in AUTH_PROTOCOLS:
            raise ConfigError(
                f"SNMPv3 user {self.user!r}: unknown auth protocol {self.auth_protocol!r} "
                f"(use one of {', '.join(AUTH_PROTOCOLS)})"
            )
        if self.priv_protocol is not None and self.priv_protocol not in PRIV_PROTOCOLS:
            raise ConfigError(
                f"SNMPv3 user {self.user!r}: unknown privacy protocol {self.priv_protocol!r} "
                f"(use one of {', '.join(PRIV_PROTOCOLS)})"
            )
        if (self.auth_protocol is None) != (self.auth_key is None) or (
            self.priv_protocol is None
        ) != (self.priv_key is None):
            raise ConfigError(f"SNMPv3 user {self.user!r}: set each protocol with its key")
        object.__setattr__(self, "engine_ids", tuple(_engine_id(e) for e in self.engine_ids))

    @classmethod
    def from_credentials(cls, creds: SnmpV3, engine_ids: Iterable[str | bytes] = ()) -> TrapUser:
        """The user of an inventory device's ``snmp`` section."""
        return cls(
            user=creds.user,
            auth_protocol=creds.auth_protocol,
            auth_key=creds.auth_key,
            priv_protocol=creds.priv_protocol,
            priv_key=creds.priv_key,
            engine_ids=tuple(_engine_id(e) for e in engine_ids),
        )

    @property
    def security_level(self) -> int:
        """The least level a notification from this user needs: 1 noAuth, 2 auth, 3 authPriv."""
        return 3 if self.priv_key is not None else 2 if self.auth_key is not None else 1

    def _same_keys(self, other: TrapUser) -> bool:
        def secret(s: SecretStr | None) -> str | None:
            return None if s is None else s.get_secret_value()

        return (
            self.auth_protocol == other.auth_protocol
            and self.priv_protocol == other.priv_protocol
            and secret(self.auth_key) == secret(other.auth_key)
            and secret(self.priv_key) == secret(other.priv_key)
        )


def trap_users(
    inventory: Inventory, engine_ids: Mapping[str, Sequence[str | bytes]] | None = None
) -> list[TrapUser]:
    """The SNMPv3 users of the inventory's v3 devices, one per distinct user and keys.

    Args:
        engine_ids: device name to the engine IDs its TRAPs carry (pins that device's
            user; see the module docs). Devices not named here are learned.
    """
    engine_ids = engine_ids or {}
    unknown = set(engine_ids) - {d.name for d in inventory.devices}
    if unknown:
        raise ConfigError(f"engine IDs given for devices not in the inventory: {sorted(unknown)}")
    users: list[TrapUser] = []
    for device in inventory.devices:
        if not isinstance(device.snmp, SnmpV3):
            continue
        mine = TrapUser.from_credentials(device.snmp, engine_ids.get(device.name, ()))
        for i, known in enumerate(users):
            if known.user == mine.user and known._same_keys(mine):
                merged = tuple(dict.fromkeys((*known.engine_ids, *mine.engine_ids)))
                users[i] = replace(known, engine_ids=merged)
                break
        else:
            users.append(mine)
    return users


# ---------------------------------------------------------------------------
# The receiver


@dataclass(slots=True)
class TrapStats:
    """What the receiver did with each datagram; every datagram lands in exactly one bucket.

    ``received`` = ``accepted`` + ``unknown_source`` + ``bad_community`` + ``bad_auth``
    + ``undecodable`` + ``unsupported`` + ``v3_discovery``.
    """

    received: int = 0
    accepted: int = 0
    #: Accepted notifications by alarm kind (link_down, bgp_up, trap, ...).
    by_kind: dict[str, int] = field(default_factory=dict)
    unknown_source: int = 0
    bad_community: int = 0
    #: SNMPv3: unknown user or engine ID, wrong keys, too low a security level, wrong user.
    bad_auth: int = 0
    #: Not SNMP, truncated, or a notification without snmpTrapOID.0.
    undecodable: int = 0
    #: SNMP, but not a notification (a GET sent to the trap port, a stray response).
    unsupported: int = 0
    #: SNMPv3 engine-ID discovery and time synchronisation, answered with a REPORT
    #: (the first step of every v3 INFORM; not a failure).
    v3_discovery: int = 0


_DROP_REASONS = ("unknown_source", "bad_community", "bad_auth", "undecodable", "unsupported")

# pysnmp's own counters, read around each message to learn why it dropped one.
_COUNTERS: dict[str, tuple[tuple[str, str], ...]] = {
    "undecodable": (
        ("__SNMPv2-MIB", "snmpInASNParseErrs"),
        ("__SNMPv2-MIB", "snmpInBadVersions"),
        ("__SNMP-MPD-MIB", "snmpInvalidMsgs"),
        ("__SNMP-MPD-MIB", "snmpUnknownSecurityModels"),
    ),
    "bad_community": (("__SNMPv2-MIB", "snmpInBadCommunityNames"),),
    "bad_auth": (
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnsupportedSecLevels"),
    ),
    "v3_discovery": (
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows"),
    ),
}

#: SO_RCVBUF asked for (Linux caps it at net.core.rmem_max; raise that for large fleets).
RECEIVE_BUFFER_BYTES = 8 << 20

_WARN_INTERVAL_S = 60.0
_WARN_KEYS_MAX = 4096

# Errors a hostile datagram could still raise out of pysnmp's decoder; counted, never fatal.
_DECODE_ERRORS = (PySnmpError, PyAsn1Error, ValueError, TypeError, KeyError, IndexError)


class _SharedSocketTransport(udp.UdpAsyncioTransport):  # type: ignore[misc]
    """pysnmp's UDP transport, sending through the receiver's own socket (for acks, reports)."""

    def close_transport(self) -> None:
        self.transport = None
        self.unregister_callback()


class _SharedSocketTransport6(udp6.Udp6AsyncioTransport):  # type: ignore[misc]
    def close_transport(self) -> None:
        self.transport = None
        self.unregister_callback()


class _Notifications(ntfrcv.NotificationReceiver):  # type: ignore[misc]
    """pysnmp's notification receiver, with the checks run before it acknowledges."""

    def __init__(self, engine: SnmpEngine, owner: TrapReceiver) -> None:
        super().__init__(engine, self._varbinds)
        self._owner = owner
        self._accepted = False

    def process_pdu(
        self,
        engine: SnmpEngine,
        mp_model: int,
        security_model: int,
        security_name: Any,
        security_level: int,
        *rest: Any,
    ) -> None:
        if not self._owner._admit(int(mp_model), str(security_name), int(security_level)):
            return  # not acknowledged, not mapped
        super().process_pdu(engine, mp_model, security_model, security_name, security_level, *rest)

    def _varbinds(
        self,
        engine: SnmpEngine,
        state_reference: Any,
        context_engine_id: Any,
        context_name: Any,
        varbinds: Sequence[tuple[Any, Any]],
        cb_ctx: Any,
    ) -> None:
        self._owner._notification([(str(name), _plain(value)) for name, value in varbinds])


@dataclass(slots=True)
class _Current:
    """The datagram being processed (pysnmp calls back synchronously inside receive_message)."""

    device: Device
    address: tuple[str, int]
    outcome: str | None = None


class TrapReceiver:
    """Receives SNMP notifications from the inventory's devices and hands alarms to a sink.

    Args:
        inventory: the devices notifications are accepted from, with their credentials.
        sink: called with each batch of alarms (usually one; bursts arriving in one loop
            turn share a batch) from the event loop; it must not block: hand the alarms to
            a queue or return a coroutine (awaited in a task; :meth:`stop` waits for them).
            An exception it raises goes to the loop's exception handler and loses that batch.
        host: the address to listen on; ``0.0.0.0``, ``::`` (both families), or one address.
        port: the UDP port; 162 needs privileges, 0 picks a free one (see :attr:`port`).
        users: the SNMPv3 users; None takes them from the inventory's v3 devices
            (:func:`trap_users` with ``engine_ids``).
        engine_ids: device name to the engine IDs its v3 TRAPs carry; a device named here
            is pinned (nothing is learned for it).
        engine_id: this receiver's snmpEngineID (hex or bytes) for v3 informs; random when None.
        if_names: resolves ifIndex to ifName for link traps that carry no interface name.
        learn_engine_ids: learn the engine IDs of v3 TRAPs from known devices that are
            not pinned (see the module docs).
        clock: epoch seconds, the alarms' ``ts``; injectable for tests.
    """

    def __init__(
        self,
        inventory: Inventory,
        sink: AlarmSink,
        host: str = "0.0.0.0",
        port: int = 162,
        *,
        users: Sequence[TrapUser] | None = None,
        engine_ids: Mapping[str, Sequence[str | bytes]] | None = None,
        engine_id: str | bytes | None = None,
        if_names: IfNameResolver | None = None,
        learn_engine_ids: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inventory = inventory
        self.host = host
        self.requested_port = port
        self.users = list(users) if users is not None else trap_users(inventory, engine_ids)
        self._pinned = set(engine_ids or ())
        self.engine_id = _engine_id(engine_id) if engine_id is not None else None
        self.if_names = if_names
        self.learn_engine_ids = learn_engine_ids
        self._sink = sink
        self._clock = clock
        self._stats = TrapStats()
        self._by_addr: dict[tuple[str, int], list[Device]] = {}
        self._by_ip: dict[str, list[Device]] = {}
        self._communities: dict[str, str] = {}  # device name -> pysnmp securityName
        self._learned: dict[str, set[bytes]] = {}
        self._registered: set[tuple[bytes, str]] = set()
        self._engine: SnmpEngine | None = None
        self._domain: tuple[int, ...] = udp.DOMAIN_NAME
        self._transport: asyncio.DatagramTransport | None = None
        self._counters: dict[str, list[Any]] = {}
        self._current: _Current | None = None
        self._pending: list[Alarm] = []
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned: dict[tuple[str, str], tuple[float, int]] = {}

    # Lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port and start receiving on the running loop.

        Raises:
            ConfigError: the port cannot be bound, or a v3 user or engine ID is unusable.
        """
        if self._transport is not None:
            raise ConfigError("the trap receiver is already running")
        loop = asyncio.get_running_loop()
        await self._index_devices(loop)
        engine = self._build_engine(loop)
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=(self.host, self.requested_port)
            )
        except OSError as exc:
            engine.close_dispatcher()
            hint = (
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE; pick a port above 1024 "
                "and point the devices' trap target at it)"
                if 0 < self.requested_port < 1024
                else " (free the port or pick another)"
            )
            raise ConfigError(
                f"the trap receiver cannot listen on udp {self.host}:{self.requested_port}: "
                f"{exc.strerror or exc}{hint}"
            ) from exc
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A link flap across a fleet arrives as a burst; the kernel drops what does not fit.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        shared: Any
        if sock is not None and sock.family == socket.AF_INET6:
            self._domain, shared = udp6.DOMAIN_NAME, _SharedSocketTransport6(loop=loop)
        else:
            self._domain, shared = udp.DOMAIN_NAME, _SharedSocketTransport(loop=loop)
        shared.connection_made(transport)
        config.add_transport(engine, self._domain, shared)
        self._engine, self._transport = engine, transport
        log.info("trap_receiver_started", host=self.host, port=self.port, devices=len(self._by_ip))

    async def stop(self) -> None:
        """Stop receiving, deliver the alarms already mapped, and wait for async sinks."""
        engine, self._engine = self._engine, None
        transport, self._transport = self._transport, None
        if engine is not None:
            engine.close_dispatcher()
        if transport is not None:
            transport.close()
        self._flush()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if transport is not None:
            log.info("trap_receiver_stopped", **self._stats_fields())

    async def __aenter__(self) -> TrapReceiver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._transport is not None

    @property
    def port(self) -> int:
        """The UDP port bound (useful after asking for port 0)."""
        if self._transport is None:
            return self.requested_port
        return int(self._transport.get_extra_info("sockname")[1])

    @property
    def stats(self) -> TrapStats:
        """A snapshot of the counters."""
        return replace(self._stats, by_kind=dict(self._stats.by_kind))

    # Setup ----------------------------------------------------------------

    async def _index_devices(self, loop: asyncio.AbstractEventLoop) -> None:
        self._by_addr.clear()
        self._by_ip.clear()
        for device in self.inventory.devices:
            for ip in await _addresses(loop, device.mgmt.host):
                self._by_addr.setdefault((ip, device.mgmt.snmp_port), []).append(device)
                self._by_ip.setdefault(ip, []).append(device)

    def _build_engine(self, loop: asyncio.AbstractEventLoop) -> SnmpEngine:
        engine = SnmpEngine(
            snmpEngineID=rfc1902.OctetString(self.engine_id) if self.engine_id else None
        )
        engine.register_transport_dispatcher(AsyncioDispatcher(loop=loop))
        # One pysnmp community entry per distinct community; the device check maps back.
        names: dict[str, str] = {}
        self._communities.clear()
        for device in self.inventory.devices:
            if isinstance(device.snmp, SnmpV2c) and device.snmp.community.get_secret_value():
                secret = device.snmp.community.get_secret_value()
                if secret not in names:
                    names[secret] = f"autonoc-community-{len(names)}"
                    config.add_v1_system(engine, names[secret], secret, securityName=names[secret])
                self._communities[device.name] = names[secret]
        self._registered.clear()
        self._learned.clear()
        local: dict[str, TrapUser] = {}
        for user in self.users:
            if user.user in local:
                if not local[user.user]._same_keys(user):
                    log.warning(
                        "trap_v3_user_conflict",
                        user=user.user,
                        note="same user name with other keys: only the first takes informs; "
                        "the others' traps need pinned or learned engine IDs",
                    )
            else:
                local[user.user] = user
                self._add_user(engine, user, None)
            for engine_id in user.engine_ids:
                self._add_user(engine, user, engine_id)
        _Notifications(engine, self)  # pysnmp's dispatcher keeps it
        builder = engine.get_mib_builder()
        self._counters = {
            reason: [builder.import_symbols(mib, name)[0] for mib, name in symbols]
            for reason, symbols in _COUNTERS.items()
        }
        return engine

    def _add_user(self, engine: SnmpEngine, user: TrapUser, engine_id: bytes | None) -> None:
        kwargs: dict[str, Any] = {}
        if user.auth_protocol is not None and user.auth_key is not None:
            kwargs["authProtocol"] = AUTH_PROTOCOLS[user.auth_protocol]
            kwargs["authKey"] = user.auth_key.get_secret_value()
        if user.priv_protocol is not None and user.priv_key is not None:
            kwargs["privProtocol"] = PRIV_PROTOCOLS[user.priv_protocol]
            kwargs["privKey"] = user.priv_key.get_secret_value()
        if engine_id is not None:
            kwargs["securityEngineId"] = rfc1902.OctetString(engine_id)
        try:
            config.add_v3_user(engine, user.user, **kwargs)
        except (PySnmpError, PyAsn1Error, ValueError) as exc:
            raise ConfigError(
                f"SNMPv3 user {user.user!r} cannot be used for notifications: {exc}"
            ) from exc
        if engine_id is not None:
            self._registered.add((engine_id, user.user))

    # The datagram path ----------------------------------------------------

    def _datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        engine = self._engine
        if engine is None:
            return
        self._stats.received += 1
        ip, port = _normalize_ip(str(addr[0])), int(addr[1])
        device = self._source(ip, port)
        if device is None:
            self._drop("unknown_source", ip, port, None)
            return
        if self.learn_engine_ids and _is_v3(data):
            self._maybe_learn(engine, device, data)
        before = {r: sum(int(c.syntax) for c in cs) for r, cs in self._counters.items()}
        current = self._current = _Current(device, (ip, port))
        address = (
            udp6.Udp6TransportAddress(addr)
            if self._domain == udp6.DOMAIN_NAME
            else udp.UdpTransportAddress((str(addr[0]), port))
        )
        try:
            engine.message_dispatcher.receive_message(engine, self._domain, address, data)
        except _DECODE_ERRORS:
            current.outcome = current.outcome or "undecodable"
        finally:
            self._current = None
        outcome = current.outcome
        if outcome is None:
            after = {r: sum(int(c.syntax) for c in cs) for r, cs in self._counters.items()}
            changed = [r for r in _COUNTERS if after[r] != before[r]]
            outcome = changed[0] if changed else "unsupported"
        if outcome == "v3_discovery":
            self._stats.v3_discovery += 1
        elif outcome != "accepted":
            self._drop(outcome, ip, port, device)

    def _source(self, ip: str, port: int) -> Device | None:
        exact = self._by_addr.get((ip, port), [])
        if len(exact) == 1:
            return exact[0]
        if exact:
            return None  # two inventory devices claim this address and port: trust neither
        same_ip = self._by_ip.get(ip, [])
        return same_ip[0] if len(same_ip) == 1 else None

    def _admit(self, mp_model: int, security_name: str, security_level: int) -> bool:
        """Check a decoded notification's credentials against its source device."""
        current = self._current
        if current is None:
            return False
        device = current.device
        if mp_model in (0, 1):  # SNMPv1 / v2c
            if self._communities.get(device.name) != security_name:
                current.outcome = "bad_community"
                return False
            return True
        user = self._user_for(device, security_name)
        if user is None or security_level < user.security_level:
            current.outcome = "bad_auth"
            return False
        return True

    def _user_for(self, device: Device, security_name: str) -> TrapUser | None:
        if isinstance(device.snmp, SnmpV3):
            if device.snmp.user != security_name:
                return None
            return TrapUser.from_credentials(device.snmp)
        return next((u for u in self.users if u.user == security_name), None)

    def _notification(self, varbinds: list[tuple[str, Value]]) -> None:
        current = self._current
        if current is None:
            return
        alarm = alarm_from_notification(
            current.device.name, varbinds, self._clock(), if_names=self.if_names
        )
        if alarm is None:
            current.outcome = "undecodable"
            return
        current.outcome = "accepted"
        self._stats.accepted += 1
        self._stats.by_kind[alarm.kind] = self._stats.by_kind.get(alarm.kind, 0) + 1
        log.debug(
            "trap_received",
            device=alarm.device,
            kind=alarm.kind,
            instance=alarm.instance,
            source=f"{current.address[0]}:{current.address[1]}",
        )
        self._pending.append(alarm)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        result = self._sink(batch)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # SNMPv3 engine IDs ------------------------------------------------------

    def _maybe_learn(self, engine: SnmpEngine, device: Device, data: bytes) -> None:
        """Register a known device's user under the engine ID its v3 TRAP carries."""
        header = _v3_header(data)
        if header is None:
            return
        engine_id, user_name = header
        if not 5 <= len(engine_id) <= 32 or (engine_id, user_name) in self._registered:
            return
        if self.engine_id is not None and engine_id == self.engine_id:
            return
        user = self._user_for(device, user_name)
        if user is None:
            return
        learned = self._learned.setdefault(device.name, set())
        if device.name in self._pinned or len(learned) >= MAX_LEARNED_ENGINE_IDS:
            return
        local = engine.get_mib_builder().import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineID")
        if bytes(local[0].syntax) == engine_id:
            return
        self._add_user(engine, user, engine_id)
        learned.add(engine_id)
        log.info(
            "trap_engine_id_learned", device=device.name, user=user_name, engine_id=engine_id.hex()
        )

    # Accounting -------------------------------------------------------------

    def _drop(self, reason: str, ip: str, port: int, device: Device | None) -> None:
        setattr(self._stats, reason, getattr(self._stats, reason) + 1)
        now = time.monotonic()
        key = (reason, ip)
        last, suppressed = self._warned.get(key, (-_WARN_INTERVAL_S, 0))
        if now - last < _WARN_INTERVAL_S:
            self._warned[key] = (last, suppressed + 1)
            return
        if len(self._warned) >= _WARN_KEYS_MAX:
            self._warned.clear()
        self._warned[key] = (now, 0)
        log.warning(
            "trap_dropped",
            reason=reason,
            source=f"{ip}:{port}",
            device=device.name if device is not None else None,
            suppressed=suppressed,
            hint=_HINTS[reason],
        )

    def _stats_fields(self) -> dict[str, Any]:
        s = self._stats
        return {
            "received": s.received,
            "accepted": s.accepted,
            **{reason: getattr(s, reason) for reason in _DROP_REASONS},
        }


_HINTS = {
    "unknown_source": "not an inventory device's management address (check mgmt.host)",
    "bad_community": "the community is not this device's read community",
    "bad_auth": "SNMPv3 user, keys, security level or (for traps) engine ID do not match",
    "undecodable": "not an SNMP notification",
    "unsupported": "an SNMP message that is not a notification",
}


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: TrapReceiver) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._owner._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable after an ack: nothing to do for UDP


def _is_v3(data: bytes) -> bool:
    try:
        return ber.peek_version(data) == 3
    except ber.BerError:
        return False


def _v3_header(data: bytes) -> tuple[bytes, str] | None:
    """``(msgAuthoritativeEngineID, msgUserName)`` of an SNMPv3 message, None otherwise."""
    try:
        msg, _ = ber_decoder.decode(data, asn1Spec=SNMPv3Message())
        if int(msg["msgVersion"]) != 3:
            return None
        params, _ = ber_decoder.decode(
            bytes(msg["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters()
        )
        user = bytes(params["msgUserName"]).decode("utf-8")
        return bytes(params["msgAuthoritativeEngineId"]), user
    except (PyAsn1Error, UnicodeDecodeError, ValueError, TypeError):
        return None


def _normalize_ip(text: str) -> str:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


async def _addresses(loop: asyncio.AbstractEventLoop, host: str) -> list[str]:
    """The IP addresses of a management host (a literal, or a name resolved once at start)."""
    try:
        return [_normalize_ip(str(ipaddress.ip_address(host)))]
    except ValueError:
        pass
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except OSError as exc:
        log.warning("trap_source_unresolved", host=host, error=str(exc))
        return []
    return sorted({_normalize_ip(str(info[4][0])) for info in infos})
