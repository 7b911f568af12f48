"""The SNMP client (pysnmp 7, asyncio) and the IF-MIB interface poller.

:class:`SnmpClient` does GET, GETBULK walks and integer SETs against one
inventory :class:`~autonoc.core.inventory.Device` at a time; every pysnmp
failure is translated in :func:`_map_snmp_errors` into
:class:`~autonoc.core.errors.DeviceUnreachable` or
:class:`~autonoc.core.errors.DeviceRejected`. :class:`SnmpInterfaceCollector`
turns IF-MIB walks into canonical :class:`~autonoc.core.types.Sample` values
through the one table :data:`IF_METRICS` (documented in ``docs/metrics.md``),
and :func:`poll_many` fans a collector out over many devices, returning one
result per device whatever happens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
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
from autonoc.core.types import Sample
from collectors.base import Collector, CollectRequest, CollectResult
from collectors.rates import RateTracker

__all__ = [
    "IF_COUNTER_DISCONTINUITY_TIME",
    "IF_METRICS",
    "IF_NAME",
    "IF_POLL_COLUMNS",
    "SYS_UPTIME",
    "Derive",
    "MetricSource",
    "SnmpClient",
    "SnmpInterfaceCollector",
    "auth_data",
    "poll_many",
    "samples_from_walk",
]

log = structlog.get_logger(__name__)

# ---------------------------------------------------------------------------
# The mapping: MIB objects to canonical metrics (documented in docs/metrics.md)


class Derive(StrEnum):
    """How a canonical value is derived from its MIB object."""

    RATE = "rate"  # counter -> per-second rate via RateTracker, times scale
    UP = "up"  # status enum -> 1.0 when up(1), else 0.0
    TICKS = "ticks"  # TimeTicks (1/100 s) -> seconds


@dataclass(frozen=True, slots=True)
class MetricSource:
    """Where one canonical metric comes from and how it is derived."""

    metric: str
    mib_object: str
    unit: str
    derive: Derive
    scale: float = 1.0
    bits: int = 64


SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_COUNTER_DISCONTINUITY_TIME = "1.3.6.1.2.1.31.1.1.1.19"

#: Canonical metric sources by OID: a column (``…`` + ``.ifIndex``) or a scalar instance.
IF_METRICS: dict[str, MetricSource] = {
    "1.3.6.1.2.1.31.1.1.1.6": MetricSource(
        "if_in_bps", "IF-MIB::ifHCInOctets", "bit/s", Derive.RATE, scale=8.0
    ),
    "1.3.6.1.2.1.31.1.1.1.10": MetricSource(
        "if_out_bps", "IF-MIB::ifHCOutOctets", "bit/s", Derive.RATE, scale=8.0
    ),
    "1.3.6.1.2.1.2.2.1.14": MetricSource(
        "if_in_errors_ps", "IF-MIB::ifInErrors", "packets/s", Derive.RATE, bits=32
    ),
    "1.3.6.1.2.1.2.2.1.20": MetricSource(
        "if_out_errors_ps", "IF-MIB::ifOutErrors", "packets/s", Derive.RATE, bits=32
    ),
    "1.3.6.1.2.1.2.2.1.13": MetricSource(
        "if_in_discards_ps", "IF-MIB::ifInDiscards", "packets/s", Derive.RATE, bits=32
    ),
    "1.3.6.1.2.1.2.2.1.19": MetricSource(
        "if_out_discards_ps", "IF-MIB::ifOutDiscards", "packets/s", Derive.RATE, bits=32
    ),
    "1.3.6.1.2.1.2.2.1.7": MetricSource("if_admin_up", "IF-MIB::ifAdminStatus", "1", Derive.UP),
    "1.3.6.1.2.1.2.2.1.8": MetricSource("if_oper_up", "IF-MIB::ifOperStatus", "1", Derive.UP),
    SYS_UPTIME: MetricSource("sys_uptime_s", "SNMPv2-MIB::sysUpTime.0", "s", Derive.TICKS),
}

_COLUMNS = {oid: src for oid, src in IF_METRICS.items() if oid != SYS_UPTIME}
#: Every IF-MIB column one interface poll walks.
IF_POLL_COLUMNS: tuple[str, ...] = (IF_NAME, *_COLUMNS, IF_COUNTER_DISCONTINUITY_TIME)


def samples_from_walk(
    device: str, ts: float, walked: Mapping[str, Any], rates: RateTracker
) -> list[Sample]:
    """Map one poll's raw values to canonical samples.

    Args:
        device: the device's inventory name.
        ts: when the values were read, epoch seconds.
        walked: OID (dotted, no leading dot) to value: ints for numbers,
            str for names, None for missing instances; as :meth:`SnmpClient.walk`
            returns them.
        rates: the baselines that turn counters into rates; updated in place.

    Returns:
        Status and uptime samples always; rate samples only where a previous
        poll gave a baseline and no wrap, reboot or counter reset intervened.
    """
    samples: list[Sample] = []
    ticks = walked.get(SYS_UPTIME)
    uptime: float | None = None
    if isinstance(ticks, int):
        uptime = ticks / 100.0
        samples.append(Sample(device, "sys_uptime_s", "", ts, uptime))

    rows: dict[str, dict[str, Any]] = {}
    for oid, value in walked.items():
        column, _, index = oid.rpartition(".")
        rows.setdefault(index, {})[column] = value

    for index, row in rows.items():
        name = row.get(IF_NAME)
        if not isinstance(name, str) or not name:
            if not any(col in row for col in _COLUMNS):
                continue  # not an interface row (a scalar such as sysUpTime.0)
            name = f"ifIndex.{index}"
        disc = row.get(IF_COUNTER_DISCONTINUITY_TIME)
        discontinuity = disc if isinstance(disc, int) else None
        for column, src in _COLUMNS.items():
            value = row.get(column)
            if not isinstance(value, int):
                continue
            if src.derive is Derive.UP:
                samples.append(Sample(device, src.metric, name, ts, 1.0 if value == 1 else 0.0))
                continue
            rate = rates.update(
                device,
                name,
                src.metric,
                ts,
                value,
                bits=src.bits,
                uptime=uptime,
                discontinuity=discontinuity,
            )
            if rate is not None:
                samples.append(Sample(device, src.metric, name, ts, rate * src.scale))
    return samples


# ---------------------------------------------------------------------------
# Credentials

_AUTH_PROTOCOLS: dict[str, Any] = {
    "md5": USM_AUTH_HMAC96_MD5,
    "sha": USM_AUTH_HMAC96_SHA,
    "sha224": USM_AUTH_HMAC128_SHA224,
    "sha256": USM_AUTH_HMAC192_SHA256,
    "sha384": USM_AUTH_HMAC256_SHA384,
    "sha512": USM_AUTH_HMAC384_SHA512,
}
# AES-192/256 with Blumenthal key extension, as Net-SNMP's AES192/AES256 do.
_PRIV_PROTOCOLS: dict[str, Any] = {
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
        kwargs["authProtocol"] = _AUTH_PROTOCOLS[creds.auth_protocol]
        kwargs["authKey"] = creds.auth_key.get_secret_value()
    if creds.priv_protocol is not None and creds.priv_key is not None:
        kwargs["privProtocol"] = _PRIV_PROTOCOLS[creds.priv_protocol]
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


@contextmanager
def _map_snmp_errors(device_name: str, address: str, attempts: int) -> Iterator[None]:
    """Translate pysnmp failures inside the block into autonoc's error tree.

    Args:
        device_name: the device, named in every message.
        address: ``host:port`` that was asked.
        attempts: requests sent per operation (1 + retries).
    """
    try:
        yield
    except _SnmpResponseError as exc:
        if isinstance(exc.indication, errind.RequestTimedOut):
            raise DeviceUnreachable(
                device_name,
                f"no SNMP response from {address} after {attempts} "
                f"attempt{'s' if attempts != 1 else ''} (check the address, port, "
                "community/credentials and ACLs)",
            ) from exc
        if exc.indication:
            message = f"SNMP error from {address}: {exc.indication}"
            if isinstance(exc.indication, _REJECTIONS):
                raise DeviceRejected(
                    device_name, f"{message} (check the SNMPv3 user, protocols and keys)"
                ) from exc
            raise DeviceError(device_name, message) from exc
        name = _status_name(exc.status)
        oid = exc.oids[exc.index - 1] if 0 < exc.index <= len(exc.oids) else "?"
        hint = _STATUS_HINTS.get(name)
        raise DeviceRejected(
            device_name,
            f"{address} answered {name} for {oid}" + (f" ({hint})" if hint else ""),
        ) from exc
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
    """SNMP GET, walk and SET over one pysnmp engine, shared by all devices.

    The engine is created on first use on the running event loop (and again
    if a later call runs on another loop). Call :meth:`close`, or use the
    client as an async context manager, to release its socket.
    """

    def __init__(self, settings: SnmpSettings) -> None:
        self.settings = settings
        self._engine: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._targets: dict[tuple[str, int], Any] = {}
        # Rows seen per walk last time, per (device, roots): GETBULK then asks for
        # little more than the table holds instead of decoding max_repetitions
        # rows of whatever follows it (pysnmp's decoder is the costly part).
        self._rows_hint: dict[tuple[str, tuple[str, ...]], int] = {}

    async def get(self, device: Device, oids: Sequence[str]) -> dict[str, Any]:
        """GET ``oids``; a missing instance maps to None.

        Raises:
            DeviceUnreachable, DeviceRejected, DeviceError: see :func:`_map_snmp_errors`.
            ConfigError: the device has no ``snmp`` section.
        """
        engine, auth, target = await self._session(device, write=False)
        oids = [_oid_str(o) for o in oids]
        with self._errors(device):
            ind, status, index, vbs = await get_cmd(
                engine, auth, target, ContextData(), *_object_types(oids), lookupMib=False
            )
            _check(ind, status, index, oids)
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
        """
        engine, auth, target = await self._session(device, write=False)
        assert device.snmp is not None
        v1 = device.snmp.version == "v1"
        roots = {_oid_str(r): _oid_tuple(r) for r in root_oids}
        position = dict.fromkeys(roots, "")  # last OID seen per root; "" = the root itself
        pending_scalars = [_oid_str(s) for s in scalars]
        out: dict[str, Any] = {}
        hint_key = (device.name, tuple(roots))
        max_reps = min(self.settings.max_repetitions, self._rows_hint.get(hint_key, 10**6))
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
        if roots:
            rows = len(out) // len(roots)
            self._rows_hint[hint_key] = max(2, rows + 2)
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
        """Release the engine's socket. The client can be used again afterwards."""
        engine, self._engine, self._loop = self._engine, None, None
        self._targets.clear()
        if engine is not None:
            engine.close_dispatcher()

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

    def _errors(self, device: Device) -> Any:
        return _map_snmp_errors(device.name, _address(device), attempts=self.settings.retries + 1)

    async def _session(self, device: Device, *, write: bool) -> tuple[Any, Any, Any]:
        if device.snmp is None:
            raise ConfigError(
                f"{device.name}: no snmp section in the inventory "
                "(add snmp: {version: v2c, community: ...})"
            )
        loop = asyncio.get_running_loop()
        if self._engine is None or self._loop is not loop:
            if self._engine is not None and self._loop is not None and not self._loop.is_closed():
                self.close()
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
        return self._engine, auth_data(device.snmp, write=write), target


def _object_types(oids: Iterable[str]) -> list[Any]:
    return [ObjectType(ObjectIdentity(oid)) for oid in oids]


def _address(device: Device) -> str:
    host = device.mgmt.host
    return f"[{host}]:{device.mgmt.snmp_port}" if ":" in host else f"{host}:{device.mgmt.snmp_port}"


# ---------------------------------------------------------------------------
# The interface collector and the fan-out


class SnmpInterfaceCollector:
    """Polls IF-MIB interface counters and status; a :class:`~collectors.base.Collector`.

    Counters become rates with a :class:`RateTracker` the collector owns, so
    rates appear from the second poll of a device on.

    Args:
        client: the SNMP client to poll through.
        clock: epoch seconds; injectable for tests.
    """

    name = "snmp"

    def __init__(self, client: SnmpClient, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.rates = RateTracker()
        self._clock = clock

    async def collect(self, device: Device, request: CollectRequest) -> CollectResult:
        """Poll ``device``; failures come back as ``failed=True`` results, never raised."""
        started = time.perf_counter()
        if "interfaces" not in request.groups:
            return CollectResult(device=device.name)
        before = self._clock()
        try:
            walked = await self.client.walk(device, IF_POLL_COLUMNS, scalars=(SYS_UPTIME,))
        except (DeviceError, ConfigError) as exc:
            log.debug("snmp_poll_failed", device=device.name, error=str(exc))
            return CollectResult(
                device=device.name,
                failed=True,
                exception=exc,
                elapsed_ms=(time.perf_counter() - started) * 1000,
            )
        # The values were read somewhere between the first request and the
        # last answer; the midpoint keeps successive polls comparable.
        ts = (before + self._clock()) / 2
        samples = samples_from_walk(device.name, ts, walked, self.rates)
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug(
            "snmp_poll_completed",
            device=device.name,
            varbinds=len(walked),
            samples=len(samples),
            ms=round(elapsed_ms, 1),
        )
        return CollectResult(device=device.name, samples=samples, elapsed_ms=elapsed_ms)


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
