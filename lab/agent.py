"""The SNMP agent side of the lab: one pysnmp engine per simulated device.

Values come straight from :class:`lab.network.LabNetwork` through
:class:`LabMibController`, a custom MIB instrumentation controller that
serves a fixed, sorted OID table (system group, IF-MIB ifNumber, ifTable and
ifXTable). GETNEXT and GETBULK find their successor with :func:`bisect`, so
walks come back in lexicographic order and end with ``endOfMibView``.

Access control stays with pysnmp's VACM: the read-only community may read
everything, the read-write community may also SET; the controller asks the
engine through ``context["acFun"]`` for every varbind.
"""

from __future__ import annotations

import asyncio
import socket
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.smi import error as smi_error
from pysnmp.smi.instrum import AbstractMibInstrumController

from autonoc.core.errors import LabError
from lab.network import InterfaceState, LabNetwork, counter32

__all__ = ["IF_ADMIN_STATUS", "LabAgent", "LabMibController"]

Oid = tuple[int, ...]

SYSTEM = (1, 3, 6, 1, 2, 1, 1)
IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
IF_ADMIN_STATUS = (*IF_ENTRY, 7)
"""ifAdminStatus column: the one writable object (up(1) / down(2))."""

_UP, _DOWN = 1, 2
_GAUGE32_MAX = 2**32 - 1
# TimeTicks wrap at 2**32 like Counter32 (after 497 days): counter32() serves both.

_RO_NAME = "lab-ro"
_RW_NAME = "lab-rw"


class _Read:
    """One request's view of the network: one instant, snapshots made on demand."""

    __slots__ = ("_cache", "at", "device", "network")

    def __init__(self, network: LabNetwork, device: str) -> None:
        self.network = network
        self.device = device
        self.at = network.now()
        self._cache: dict[str, InterfaceState] = {}

    def intf(self, ifname: str) -> InterfaceState:
        state = self._cache.get(ifname)
        if state is None:
            state = self.network.interface(self.device, ifname, at=self.at)
            self._cache[ifname] = state
        return state


Getter = Callable[[_Read], Any]


def _column_getters() -> dict[Oid, Callable[[str], Getter]]:
    """Per column OID, a factory from an interface name to that cell's getter."""

    def col(f: Callable[[InterfaceState], Any]) -> Callable[[str], Getter]:
        return lambda ifname: lambda r: f(r.intf(ifname))

    c32, c64 = rfc1902.Counter32, rfc1902.Counter64
    return {
        (*IF_ENTRY, 1): col(lambda s: rfc1902.Integer32(s.if_index)),
        (*IF_ENTRY, 2): col(lambda s: rfc1902.OctetString(s.name)),
        (*IF_ENTRY, 3): col(lambda s: rfc1902.Integer32(s.if_type)),
        (*IF_ENTRY, 4): col(lambda s: rfc1902.Integer32(s.mtu)),
        (*IF_ENTRY, 5): col(lambda s: rfc1902.Gauge32(min(s.speed_bps, _GAUGE32_MAX))),
        (*IF_ENTRY, 6): col(lambda s: rfc1902.OctetString(s.mac)),
        (*IF_ENTRY, 7): col(lambda s: rfc1902.Integer32(_UP if s.admin_up else _DOWN)),
        (*IF_ENTRY, 8): col(lambda s: rfc1902.Integer32(_UP if s.oper_up else _DOWN)),
        (*IF_ENTRY, 9): col(lambda s: rfc1902.TimeTicks(counter32(s.last_change))),
        (*IF_ENTRY, 10): col(lambda s: c32(counter32(s.in_octets))),
        (*IF_ENTRY, 11): col(lambda s: c32(counter32(s.in_ucast_pkts))),
        (*IF_ENTRY, 13): col(lambda s: c32(counter32(s.in_discards))),
        (*IF_ENTRY, 14): col(lambda s: c32(counter32(s.in_errors))),
        (*IF_ENTRY, 16): col(lambda s: c32(counter32(s.out_octets))),
        (*IF_ENTRY, 17): col(lambda s: c32(counter32(s.out_ucast_pkts))),
        (*IF_ENTRY, 19): col(lambda s: c32(counter32(s.out_discards))),
        (*IF_ENTRY, 20): col(lambda s: c32(counter32(s.out_errors))),
        (*IFX_ENTRY, 1): col(lambda s: rfc1902.OctetString(s.name)),
        (*IFX_ENTRY, 6): col(lambda s: c64(s.in_octets)),
        (*IFX_ENTRY, 7): col(lambda s: c64(s.in_ucast_pkts)),
        (*IFX_ENTRY, 10): col(lambda s: c64(s.out_octets)),
        (*IFX_ENTRY, 11): col(lambda s: c64(s.out_ucast_pkts)),
        (*IFX_ENTRY, 15): col(lambda s: rfc1902.Gauge32(s.speed_bps // 1_000_000)),
        (*IFX_ENTRY, 18): col(lambda s: rfc1902.OctetString(s.alias)),
        # Counters never reset while the lab runs.
        (*IFX_ENTRY, 19): col(lambda s: rfc1902.TimeTicks(0)),
    }


class LabMibController(AbstractMibInstrumController):  # type: ignore[misc]
    """Serves one simulated device's MIB objects from a :class:`LabNetwork`.

    Each method takes ``(name, value)`` varbinds and returns a list of
    ``(name, value)``, as pysnmp's command responders expect.
    """

    def __init__(self, network: LabNetwork, device: str) -> None:
        self.network = network
        self.device = device
        info = network.device(device)
        states = network.interfaces(device)
        self._index_to_name = {s.if_index: s.name for s in states}

        getters: dict[Oid, Getter] = {
            (*SYSTEM, 1, 0): lambda r: rfc1902.OctetString(info.sys_descr),
            (*SYSTEM, 2, 0): lambda r: rfc1902.ObjectIdentifier(info.sys_object_id),
            (*SYSTEM, 3, 0): lambda r: rfc1902.TimeTicks(
                counter32(r.network.sys_uptime(r.device, at=r.at))
            ),
            (*SYSTEM, 5, 0): lambda r: rfc1902.OctetString(info.name),
            IF_NUMBER: lambda r: rfc1902.Integer32(len(states)),
        }
        # Objects (scalars without .0, and table columns): what tells
        # noSuchInstance (object known, instance not) from noSuchObject.
        self._objects: set[Oid] = {oid[:-1] for oid in getters}
        for column, factory in _column_getters().items():
            self._objects.add(column)
            for s in states:
                getters[(*column, s.if_index)] = factory(s.name)
        self._getters = getters
        self._sorted: list[Oid] = sorted(getters)
        self._names = {oid: rfc1902.ObjectName(oid) for oid in self._sorted}

    # AbstractMibInstrumController API

    def read_variables(self, *varBinds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """GET: each name's value, or noSuchObject / noSuchInstance."""
        read = _Read(self.network, self.device)
        result: list[tuple[Any, Any]] = []
        for idx, (name, _) in enumerate(varBinds):
            oid = tuple(name)
            getter = self._getters.get(oid)
            if getter is None:
                result.append((name, self._missing(oid)))
                continue
            value = getter(read)
            if _denied("read", name, value, idx, context):
                value = rfc1905.noSuchObject
            result.append((name, value))
        return result

    def read_next_variables(self, *varBinds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """GETNEXT (and each GETBULK step): the next name in OID order, or endOfMibView."""
        read = _Read(self.network, self.device)
        result: list[tuple[Any, Any]] = []
        for idx, (name, _) in enumerate(varBinds):
            pos = bisect_right(self._sorted, tuple(name))
            found: tuple[Any, Any] | None = None
            while pos < len(self._sorted):
                oid = self._sorted[pos]
                value = self._getters[oid](read)
                try:
                    denied = _denied("read", self._names[oid], value, idx, context)
                except smi_error.NoAccessError:
                    denied = True  # e.g. Counter64 asked for over SNMPv1: skip it
                if not denied:
                    found = (self._names[oid], value)
                    break
                pos += 1
            result.append(found if found is not None else (name, rfc1905.endOfMibView))
        return result

    def write_variables(self, *varBinds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """SET: only ifAdminStatus, to up(1) or down(2); all or nothing.

        Raises:
            pysnmp.smi.error.MibOperationError: the SET is refused (not
                writable, no such row, wrong type or value, not authorized).
        """
        changes: list[tuple[str, bool]] = []
        for idx, (name, value) in enumerate(varBinds):
            oid = tuple(name)
            if _denied("write", name, value, idx, context):
                raise smi_error.NoAccessError(name=name, idx=idx)
            if oid[:-1] != IF_ADMIN_STATUS:
                if oid in self._getters or oid[:-1] in self._objects:
                    raise smi_error.NotWritableError(name=name, idx=idx)
                raise smi_error.NoCreationError(name=name, idx=idx)
            ifname = self._index_to_name.get(oid[-1])
            if ifname is None:
                raise smi_error.NoCreationError(name=name, idx=idx)
            if not isinstance(value, rfc1902.Integer) or isinstance(value, rfc1902.Unsigned32):
                raise smi_error.WrongTypeError(name=name, idx=idx)
            if int(value) not in (_UP, _DOWN):
                raise smi_error.WrongValueError(name=name, idx=idx)
            changes.append((ifname, int(value) == _UP))
        # Validate everything first so that a bad varbind changes nothing.
        for ifname, up in changes:
            self.network.set_admin_status(self.device, ifname, up)
        return self.read_variables(*varBinds, **context)

    def _missing(self, oid: Oid) -> Any:
        for n in range(len(oid), 0, -1):
            if oid[:n] in self._objects:
                return rfc1905.noSuchInstance
        return rfc1905.noSuchObject


def _denied(view: str, name: Any, value: Any, idx: int, context: dict[str, Any]) -> bool:
    """Ask the engine's access control; True when the name is outside the view."""
    ac_fun = context.get("acFun")
    if ac_fun is None:
        return False
    return bool(ac_fun(view, (name, value), idx=idx, **context))


@dataclass(frozen=True, slots=True)
class V3User:
    """An SNMPv3 authPriv user: HMAC-SHA-96 authentication, AES-128 privacy."""

    user: str
    auth_key: str
    priv_key: str

    def __post_init__(self) -> None:
        if len(self.auth_key) < 8 or len(self.priv_key) < 8:
            raise LabError("SNMPv3 auth and priv keys need at least 8 characters (RFC 3414)")


class LabAgent:
    """One simulated device's SNMP agent (v1, v2c and, with a user, v3) on its own UDP socket.

    Create and :meth:`start` it on the event loop that will serve it;
    :meth:`close` it on the same loop.
    """

    def __init__(
        self,
        network: LabNetwork,
        device: str,
        community: str,
        write_community: str,
        v3_user: V3User | None = None,
    ) -> None:
        if community == write_community:
            raise LabError("the read and write communities must differ")
        self.device = device
        self.controller = LabMibController(network, device)
        self._community = community
        self._write_community = write_community
        self._v3_user = v3_user
        self._engine: SnmpEngine | None = None
        self._transport: udp.UdpAsyncioTransport | None = None
        self.port: int | None = None

    async def start(self, sock: socket.socket) -> None:
        """Serve SNMP on ``sock``, an already bound UDP socket."""
        loop = asyncio.get_running_loop()
        engine = SnmpEngine()
        engine.register_transport_dispatcher(AsyncioDispatcher(loop=loop))
        # Views spelled out: pysnmp lets any write through for a view with no entries.
        config.add_context(engine, "")
        config.add_vacm_view(engine, "lab-all", "included", (1, 3, 6), "")
        config.add_vacm_view(engine, "lab-none", "excluded", (1, 3, 6), "")
        for security_model in (1, 2):  # SNMPv1 and v2c
            for name, write_view in ((_RO_NAME, "lab-none"), (_RW_NAME, "lab-all")):
                group = f"{name}-group"
                config.add_vacm_group(engine, group, security_model, name)
                config.add_vacm_access(
                    engine,
                    group,
                    "",
                    security_model,
                    "noAuthNoPriv",
                    "exact",
                    "lab-all",
                    write_view,
                    "lab-none",
                )
        config.add_v1_system(engine, _RO_NAME, self._community)
        config.add_v1_system(engine, _RW_NAME, self._write_community)
        if self._v3_user is not None:
            v3 = self._v3_user
            config.add_v3_user(
                engine,
                v3.user,
                config.USM_AUTH_HMAC96_SHA,
                v3.auth_key,
                config.USM_PRIV_CFB128_AES,
                v3.priv_key,
            )
            config.add_vacm_group(engine, "lab-v3-group", 3, v3.user)
            # authPriv only: a request without privacy is refused by the view.
            config.add_vacm_access(
                engine,
                "lab-v3-group",
                "",
                3,
                "authPriv",
                "exact",
                "lab-all",
                "lab-all",
                "lab-none",
            )

        snmp_context = context.SnmpContext(engine)
        # The default context would serve the engine's own MIB tree; ours replaces it.
        snmp_context.unregister_context_name(b"")
        snmp_context.register_context_name(b"", self.controller)
        cmdrsp.GetCommandResponder(engine, snmp_context)
        cmdrsp.NextCommandResponder(engine, snmp_context)
        cmdrsp.BulkCommandResponder(engine, snmp_context)
        cmdrsp.SetCommandResponder(engine, snmp_context)

        transport = udp.UdpAsyncioTransport(loop=loop)
        await loop.create_datagram_endpoint(lambda: transport, sock=sock)
        config.add_transport(engine, udp.DOMAIN_NAME, transport)
        self._engine, self._transport = engine, transport
        self.port = int(sock.getsockname()[1])

    def close(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close_dispatcher()  # closes the transport and its socket
        self._transport = None
