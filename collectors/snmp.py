"""The SNMP client: a lean v1/v2c path, pysnmp 7 for the rest.

:class:`SnmpClient` does GET, GETBULK walks and integer SETs against one
inventory :class:`~autonoc.core.inventory.Device` at a time. v1/v2c GETs and
walks to IPv4 agents go through :class:`collectors.snmpwire.SnmpWire` (our own
BER codec, one UDP socket for all devices); SNMPv3, SETs and IPv6 go through
pysnmp. Every failure of either is translated in :func:`_map_snmp_errors` into
:class:`~autonoc.core.errors.DeviceUnreachable`,
:class:`~autonoc.core.errors.DeviceRejected` or
:class:`~autonoc.core.errors.DeviceError`. What is read and how it becomes
canonical samples lives in :mod:`collectors.snmp_groups`;
:func:`poll_many` fans a collector out over many devices, returning one
result per device whatever happens (:mod:`collectors.scheduler` does the
same on a schedule).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import structlog
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES_BLUMENTHAL,
    USM_PRIV_CFB256_AES_BLUMENTHAL,
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
    set_cmd,
)
from pysnmp.proto import errind, rfc1902
from pysnmp.proto.rfc1905 import EndOfMibView

from autonoc.core.errors import (
    AutonocError,
    ConfigError,
    DeviceError,
    DeviceRejected,
    DeviceUnreachable,
)
from autonoc.core.inventory import Device, SnmpV2c, SnmpV3
from autonoc.core.settings import SnmpSettings
from collectors.base import Collector, CollectRequest, CollectResult
from collectors.snmpwire import (
    DEFAULT_MAX_IN_FLIGHT,
    SnmpWire,
    WireError,
    WireStats,
    WireStatus,
    WireTarget,
    WireTimeout,
)

__all__ = ["AUTH_PROTOCOLS", "PRIV_PROTOCOLS", "SnmpClient", "auth_data", "poll_many"]

log = structlog.get_logger(__name__)

# ---------------------------------------------------------------------------
# Credentials

#: pysnmp's USM authentication protocols by the inventory's names.
AUTH_PROTOCOLS: dict[str, Any] = {
    "md5": USM_AUTH_HMAC96_MD5,
    "sha": USM_AUTH_HMAC96_SHA,
    "sha224": USM_AUTH_HMAC128_SHA224,
    "sha256": USM_AUTH_HMAC192_SHA256,
    "sha384": USM_AUTH_HMAC256_SHA384,
    "sha512": USM_AUTH_HMAC384_SHA512,
}
# AES-192/256 with Blumenthal key extension, as Net-SNMP's AES192/AES256 do.
PRIV_PROTOCOLS: dict[str, Any] = {
    "des": USM_PRIV_CBC56_DES,
    "aes": USM_PRIV_CFB128_AES,
    "aes192": USM_PRIV_CFB192_AES_BLUMENTHAL,
    "aes256": USM_PRIV_CFB256_AES_BLUMENTHAL,
}


def auth_data(creds: SnmpV2c | SnmpV3, *, write: bool = False) -> Any:
    """pysnmp credentials (CommunityData or UsmUserData) for inventory credentials.

    Args:
        creds: a device's ``snmp`` section.
        write: for SETs: use ``write_community`` when the device has one.
    """
    if isinstance(creds, SnmpV2c):
        secret = creds.community
        if write and creds.write_community is not None:
            secret = creds.write_community
        return CommunityData(secret.get_secret_value(), mpModel=0 if creds.version == "v1" else 1)
    kwargs: dict[str, Any] = {}
    if creds.auth_protocol is not None and creds.auth_key is not None:
        kwargs["authProtocol"] = AUTH_PROTOCOLS[creds.auth_protocol]
        kwargs["authKey"] = creds.auth_key.get_secret_value()
    if creds.priv_protocol is not None and creds.priv_key is not None:
        kwargs["privProtocol"] = PRIV_PROTOCOLS[creds.priv_protocol]
        kwargs["privKey"] = creds.priv_key.get_secret_value()
    return UsmUserData(creds.user, **kwargs)


# ---------------------------------------------------------------------------
# Error mapping: the one place pysnmp failures become autonoc errors


class _SnmpResponseError(Exception):
    """A response (or its absence) that carries an error; raised only for the mapper."""

    def __init__(self, indication: Any, status: Any, index: Any, oids: Sequence[str]) -> None:
        super().__init__(str(indication or status))
        self.indication = indication
        self.status = status
        self.index = int(index or 0)
        self.oids = tuple(oids)


_SYS_UPTIME = "1.3.6.1.2.1.1.3.0"

# Errors reported by the agent's security or protocol layer: it answered, with a refusal.
_REJECTIONS = (
    errind.UnknownUserName,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.WrongDigest,
    errind.AuthenticationFailure,
    errind.DecryptionError,
    errind.NotInTimeWindow,
    errind.UnknownEngineID,
    errind.ReportPduReceived,
    errind.OidNotIncreasing,
)

_STATUS_HINTS = {
    "tooBig": "lower snmp.max_repetitions or ask for fewer OIDs at once",
    "noSuchName": "the device does not implement this OID",
    "noAccess": "the community or user may not do this; check the write community and the view",
    "notWritable": "this object cannot be set on this device",
    "authorizationError": "the community or user may not do this; check the device's ACL and view",
    "wrongType": "the device expects another value type",
    "wrongValue": "the device refuses this value",
    "noCreation": "no such row on the device (check the index)",
}


def _check(indication: Any, status: Any, index: Any, oids: Sequence[str]) -> None:
    """Raise for a pysnmp (errorIndication, errorStatus, errorIndex) that signals failure."""
    if indication or status:
        raise _SnmpResponseError(indication, status, index, oids)


def _rejected(device_name: str, address: str, name: str, oid: str) -> DeviceRejected:
    hint = _STATUS_HINTS.get(name)
    return DeviceRejected(
        device_name, f"{address} answered {name} for {oid}" + (f" ({hint})" if hint else "")
    )


def _unreachable(device_name: str, address: str, attempts: int) -> DeviceUnreachable:
    return DeviceUnreachable(
        device_name,
        f"no SNMP response from {address} after {attempts} "
        f"attempt{'s' if attempts != 1 else ''} (check the address, port, "
        "community/credentials and ACLs)",
    )


@contextmanager
def _map_snmp_errors(device_name: str, address: str, attempts: int) -> Iterator[None]:
    """Translate pysnmp and wire-client failures inside the block into autonoc's error tree.

    Args:
        device_name: the device, named in every message.
        address: ``host:port`` that was asked.
        attempts: requests sent per operation (1 + retries).
    """
    try:
        yield
    except WireTimeout as exc:
        raise _unreachable(device_name, address, attempts) from exc
    except WireStatus as exc:
        raise _rejected(device_name, address, exc.name, exc.oid) from exc
    except WireError as exc:  # malformed replies, an invalid OID, a closed client
        raise DeviceError(device_name, f"SNMP request to {address} failed: {exc}") from exc
    except _SnmpResponseError as exc:
        if isinstance(exc.indication, errind.RequestTimedOut):
            raise _unreachable(device_name, address, attempts) from exc
        if exc.indication:
            message = f"SNMP error from {address}: {exc.indication}"
            if isinstance(exc.indication, _REJECTIONS):
                raise DeviceRejected(
                    device_name, f"{message} (check the SNMPv3 user, protocols and keys)"
                ) from exc
            raise DeviceError(device_name, message) from exc
        oid = exc.oids[exc.index - 1] if 0 < exc.index <= len(exc.oids) else "?"
        raise _rejected(device_name, address, _status_name(exc.status), oid) from exc
    except (PySnmpError, PyAsn1Error) as exc:
        raise DeviceError(
            device_name, f"SNMP request to {address} failed: {type(exc).__name__}: {exc}"
        ) from exc
    except OSError as exc:
        raise DeviceUnreachable(
            device_name, f"cannot send SNMP to {address}: {exc.strerror or exc}"
        ) from exc


def _status_name(status: Any) -> str:
    pretty = getattr(status, "prettyPrint", None)
    return str(pretty()) if callable(pretty) else str(status)


# ---------------------------------------------------------------------------
# Values


def _oid_str(name: Any) -> str:
    return str(name).lstrip(".")


def _oid_tuple(oid: str) -> tuple[int, ...]:
    return tuple(int(x) for x in oid.strip(".").split("."))


def _to_python(value: Any) -> Any:
    """A pysnmp value as a plain Python value; None for noSuch*/endOfMibView."""
    if isinstance(value, univ.Null):
        return None
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, rfc1902.IpAddress):
        return str(value.prettyPrint())
    if isinstance(value, univ.OctetString):
        raw = bytes(value.asOctets())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    if isinstance(value, univ.ObjectIdentifier):
        return _oid_str(value)
    return str(value.prettyPrint())


# ---------------------------------------------------------------------------
# The client


class SnmpClient:
    """SNMP GET, walk and SET for all devices: a lean v1/v2c path, pysnmp for the rest.

    v1/v2c GETs and walks to IPv4 agents (addresses, or names that resolve to
    one) share one :class:`~collectors.snmpwire.SnmpWire`; SNMPv3, SETs and
    IPv6 share one pysnmp engine. Both are created on first use on the running
    event loop (and again if a later call runs on another loop). Call
    :meth:`close`, or use the client as an async context manager, to release
    their sockets.

    Args:
        settings: timeouts, retries and GETBULK size.
        max_in_flight: v1/v2c requests outstanding at once, over all devices.
    """

    def __init__(
        self, settings: SnmpSettings, *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    ) -> None:
        self.settings = settings
        self.max_in_flight = max_in_flight
        self._engine: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._targets: dict[tuple[str, int], Any] = {}
        self._wire: SnmpWire | None = None
        self._wire_stats = WireStats()  # what closed wire clients did, carried over
        self._ipv4: dict[str, str | None] = {}  # host -> IPv4 address, None: use pysnmp
        # Rows seen per walk last time, per (device, roots): GETBULK then asks for
        # little more than the table holds instead of decoding max_repetitions
        # rows of whatever follows it.
        self._rows_hint: dict[tuple[str, tuple[str, ...]], int] = {}

    async def get(self, device: Device, oids: Sequence[str]) -> dict[str, Any]:
        """GET ``oids``; a missing instance maps to None.

        Raises:
            DeviceUnreachable, DeviceRejected, DeviceError: see :func:`_map_snmp_errors`.
            ConfigError: the device has no ``snmp`` section.
        """
        wire = await self._wire_route(device)
        if wire is not None:
            with self._errors(device):
                return await wire[0].get(wire[1], oids)
        engine, auth, target = await self._session(device, write=False)
        oids = [_oid_str(o) for o in oids]
        try:
            with self._errors(device):
                ind, status, index, vbs = await get_cmd(
                    engine, auth, target, ContextData(), *_object_types(oids), lookupMib=False
                )
                _check(ind, status, index, oids)
        except DeviceUnreachable as exc:
            raise await self._explain_silence(device, exc) from exc
        return {_oid_str(name): _to_python(value) for name, value in vbs}

    async def walk(
        self, device: Device, root_oids: Sequence[str], *, scalars: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Walk the subtrees under ``root_oids`` together, with GETBULK (GETNEXT for v1).

        Each subtree's walk stops where it ends; the walks share requests.

        Args:
            device: the device to ask.
            root_oids: table columns or subtrees to walk.
            scalars: instance OIDs (ending in ``.0``) fetched in the first request as
                non-repeaters, saving a separate GET.

        Returns:
            OID to value for every instance found (scalars that do not exist
            are left out).

        Raises:
            DeviceUnreachable, DeviceRejected, DeviceError, ConfigError: as :meth:`get`.
        """
        roots = {_oid_str(r): _oid_tuple(r) for r in root_oids}
        hint_key = (device.name, tuple(roots))
        max_reps = min(self.settings.max_repetitions, self._rows_hint.get(hint_key, 10**6))
        wire = await self._wire_route(device)
        if wire is not None:
            with self._errors(device):
                out: dict[str, Any] = await wire[0].walk(
                    wire[1], list(roots), scalars=scalars, max_repetitions=max_reps
                )
        else:
            try:
                out = await self._pysnmp_walk(device, roots, scalars, max_reps)
            except DeviceUnreachable as exc:
                raise await self._explain_silence(device, exc) from exc
        if roots:
            rows = len(out) // len(roots)
            self._rows_hint[hint_key] = max(2, rows + 2)
        return out

    async def _pysnmp_walk(
        self,
        device: Device,
        roots: Mapping[str, tuple[int, ...]],
        scalars: Sequence[str],
        max_reps: int,
    ) -> dict[str, Any]:
        engine, auth, target = await self._session(device, write=False)
        assert device.snmp is not None
        v1 = device.snmp.version == "v1"
        position = dict.fromkeys(roots, "")  # last OID seen per root; "" = the root itself
        pending_scalars = [_oid_str(s) for s in scalars]
        out: dict[str, Any] = {}
        with self._errors(device):
            while position or pending_scalars:
                active = list(position)
                asked = [s.rpartition(".")[0] for s in pending_scalars]  # GETNEXT of the parent
                asked += [position[r] or r for r in active]
                if v1:
                    ind, status, index, vbs = await next_cmd(
                        engine, auth, target, ContextData(), *_object_types(asked), lookupMib=False
                    )
                    if status and _status_name(status) == "noSuchName" and index:
                        # v1 ends a walk with noSuchName: drop that varbind and ask again.
                        gone = int(index) - 1
                        if gone < len(pending_scalars):
                            del pending_scalars[gone]
                        else:
                            del position[active[gone - len(pending_scalars)]]
                        continue
                    _check(ind, status, index, asked)
                    n_scalars, reps = len(pending_scalars), 1
                else:
                    ind, status, index, vbs = await bulk_cmd(
                        engine,
                        auth,
                        target,
                        ContextData(),
                        len(pending_scalars),
                        max_reps,
                        *_object_types(asked),
                        lookupMib=False,
                    )
                    _check(ind, status, index, asked)
                    n_scalars, reps = len(pending_scalars), max_reps
                for want, (name, value) in zip(pending_scalars, vbs[:n_scalars], strict=False):
                    if _oid_str(name) == want and not isinstance(value, univ.Null):
                        out[want] = _to_python(value)
                pending_scalars = []
                self._advance(vbs[n_scalars:], active, roots, position, out, reps)
        return out

    @staticmethod
    def _advance(
        vbs: Sequence[Any],
        active: list[str],
        roots: Mapping[str, tuple[int, ...]],
        position: dict[str, str],
        out: dict[str, Any],
        reps: int,
    ) -> None:
        """Fold one response's repeaters into ``out``; drop roots whose subtree ended."""
        width = len(active)
        progressed: set[str] = set()
        finished: set[str] = set()
        for i, (name, value) in enumerate(vbs[: width * reps]):
            root = active[i % width]
            if root in finished:
                continue
            oid = _oid_tuple(str(name))
            last = position[root]
            if (
                isinstance(value, EndOfMibView)
                or oid[: len(roots[root])] != roots[root]
                or (last and oid <= _oid_tuple(last))  # not increasing: stop, never loop
            ):
                finished.add(root)
                continue
            key = _oid_str(name)
            out[key] = _to_python(value)
            position[root] = key
            progressed.add(root)
        if not progressed:
            # Nothing new for any root: stop rather than ask the same question forever.
            finished.update(active)
        for root in finished:
            del position[root]

    async def set(self, device: Device, oid: str, value: int, *, write: bool = True) -> None:
        """SET one integer object, e.g. ``ifAdminStatus.<ifIndex>`` to up(1).

        Args:
            write: use the device's write community (v1/v2c) when it has one;
                False sends the read community.

        Raises:
            DeviceRejected: the device refused (noAccess, wrongValue, ...).
            DeviceUnreachable, DeviceError, ConfigError: as for :meth:`get`.
        """
        engine, auth, target = await self._session(device, write=write)
        oid = _oid_str(oid)
        with self._errors(device):
            ind, status, index, _ = await set_cmd(
                engine,
                auth,
                target,
                ContextData(),
                ObjectType(ObjectIdentity(oid), rfc1902.Integer(value)),
                lookupMib=False,
            )
            _check(ind, status, index, [oid])

    def close(self) -> None:
        """Release the sockets. The client can be used again afterwards."""
        self._close_engine()
        self._close_wire()

    def stats(self) -> WireStats:
        """The v1/v2c wire client's counters since this client was created.

        ``in_flight`` and ``rcvbuf`` describe the current socket (0 when none is open).
        """
        done = self._wire_stats
        if self._wire is None:
            return done
        now = self._wire.stats()
        return WireStats(
            requests=done.requests + now.requests,
            retries=done.retries + now.retries,
            replies=done.replies + now.replies,
            timeouts=done.timeouts + now.timeouts,
            malformed=done.malformed + now.malformed,
            unmatched=done.unmatched + now.unmatched,
            wrong_source=done.wrong_source + now.wrong_source,
            varbinds=done.varbinds + now.varbinds,
            in_flight=now.in_flight,
            rcvbuf=now.rcvbuf,
        )

    async def __aenter__(self) -> SnmpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Internals ------------------------------------------------------------

    async def _explain_silence(self, device: Device, exc: DeviceUnreachable) -> DeviceError:
        """Tell a wrong SNMPv3 privacy key from a dead device.

        An agent that cannot decrypt a request (a wrong privacy key or
        protocol) drops it without a report, as net-snmp does, so the
        request times out like a dead device. An unauthenticated probe with
        an unknown user draws a report from any live v3 agent: if it
        answers, the agent is alive and it is our keys it will not take.
        """
        creds = device.snmp
        if not isinstance(creds, SnmpV3) or creds.priv_protocol is None:
            return exc
        engine, _, target = await self._session(device, write=False)
        probe_target = await type(target).create(
            (device.mgmt.host, device.mgmt.snmp_port),
            timeout=min(1.0, self.settings.timeout),
            retries=0,
        )
        ind, _, _, _ = await get_cmd(
            engine,
            UsmUserData("autonoc-probe"),
            probe_target,
            ContextData(),
            *_object_types([_SYS_UPTIME]),
            lookupMib=False,
        )
        if isinstance(ind, _REJECTIONS):
            return DeviceRejected(
                device.name,
                f"{_address(device)} answers SNMPv3 but not user {creds.user!r}'s encrypted "
                "requests: the privacy key or protocol is probably wrong (agents drop what "
                "they cannot decrypt without answering; check the SNMPv3 user, protocols "
                "and keys)",
            )
        return exc

    def _errors(self, device: Device) -> Any:
        return _map_snmp_errors(device.name, _address(device), attempts=self.settings.retries + 1)

    def _close_engine(self) -> None:
        engine, self._engine, self._loop = self._engine, None, None
        self._targets.clear()
        if engine is not None:
            engine.close_dispatcher()

    def _close_wire(self) -> None:
        if self._wire is None:
            return
        wire, self._wire_stats = self._wire, self.stats()
        self._wire = None
        wire.close()

    async def _wire_route(self, device: Device) -> tuple[SnmpWire, WireTarget] | None:
        """The wire client and target for a v1/v2c device with an IPv4 address, else None."""
        creds = _credentials(device)
        if not isinstance(creds, SnmpV2c):
            return None
        host = device.mgmt.host
        if host in self._ipv4:
            address = self._ipv4[host]
        else:
            address, final = await _resolve_ipv4(host)
            if final:
                self._ipv4[host] = address
        if address is None:
            return None
        loop = asyncio.get_running_loop()
        if self._wire is not None and self._wire.loop not in (None, loop):
            self._close_wire()
        if self._wire is None:
            self._wire = SnmpWire(
                timeout=self.settings.timeout,
                retries=self.settings.retries,
                max_in_flight=self.max_in_flight,
            )
        target = WireTarget(
            address,
            device.mgmt.snmp_port,
            creds.community.get_secret_value().encode(),
            0 if creds.version == "v1" else 1,
        )
        return self._wire, target

    async def _session(self, device: Device, *, write: bool) -> tuple[Any, Any, Any]:
        creds = _credentials(device)
        loop = asyncio.get_running_loop()
        if self._engine is None or self._loop is not loop:
            if self._engine is not None and self._loop is not None and not self._loop.is_closed():
                self._close_engine()
            self._engine, self._loop = SnmpEngine(), loop
            self._targets.clear()
        key = (device.mgmt.host, device.mgmt.snmp_port)
        target = self._targets.get(key)
        if target is None:
            cls = Udp6TransportTarget if ":" in device.mgmt.host else UdpTransportTarget
            with self._errors(device):
                target = await cls.create(
                    key, timeout=self.settings.timeout, retries=self.settings.retries
                )
            self._targets[key] = target
        return self._engine, auth_data(creds, write=write), target


def _credentials(device: Device) -> SnmpV2c | SnmpV3:
    if device.snmp is None:
        raise ConfigError(
            f"{device.name}: no snmp section in the inventory "
            "(add snmp: {version: v2c, community: ...})"
        )
    return device.snmp


async def _resolve_ipv4(host: str) -> tuple[str | None, bool]:
    """``host`` as a dotted IPv4 address, or None for IPv6 or a name without one.

    Returns:
        The address, and whether the answer may be kept (a failed lookup may
        succeed later: until then pysnmp resolves the name and reports why not).
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return (str(address) if address.version == 4 else None), True
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM
        )
    except OSError:
        return None, False
    return (str(infos[0][4][0]), True) if infos else (None, False)


def _object_types(oids: Iterable[str]) -> list[Any]:
    return [ObjectType(ObjectIdentity(oid)) for oid in oids]


def _address(device: Device) -> str:
    host = device.mgmt.host
    return f"[{host}]:{device.mgmt.snmp_port}" if ":" in host else f"{host}:{device.mgmt.snmp_port}"


# ---------------------------------------------------------------------------
# The fan-out


async def poll_many(
    collector: Collector,
    devices: Iterable[Device],
    request: CollectRequest,
    concurrency: int,
) -> list[CollectResult]:
    """Collect from every device, at most ``concurrency`` at once.

    Returns:
        One result per device, in the order given, each with ``elapsed_ms``
        set; a failed device is a result with ``failed=True``, never an exception.
    """
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(device: Device) -> CollectResult:
        async with semaphore:
            started = time.perf_counter()
            try:
                result = await collector.collect(device, request)
            except AutonocError as exc:  # a collector that raised instead of returning
                result = CollectResult(device=device.name, failed=True, exception=exc)
            result.elapsed_ms = (time.perf_counter() - started) * 1000
            return result

    return list(await asyncio.gather(*(one(d) for d in devices)))
