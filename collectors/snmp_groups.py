"""SNMP metric groups: the MIB-to-canonical mapping tables and the collector that polls them.

Each metric group has one declarative table of :class:`MibObject` rows (MIB
object, OID, syntax, how the canonical value is derived); ``docs/metrics.md``
documents the same tables and must change with them. :class:`SnmpCollector`
polls the groups a :class:`~collectors.base.CollectRequest` names, all of them
in one shared walk (table columns share GETBULK requests, scalars such as
``sysUpTime.0`` ride in the first request as non-repeaters), and maps what it
read with :func:`map_poll`.

Groups and the interval a scheduler should poll them at (:data:`DEFAULT_INTERVALS`):

========== ======= ==============================================================
group      every   what
========== ======= ==============================================================
optics     10 s    ENTITY-SENSOR-MIB optical sensors (transponders, amps, ROADMs)
interfaces 30 s    IF-MIB traffic, packet, error and discard rates, status, speed
system     30 s    uptime, CPU (HOST-RESOURCES, else UCD-SNMP), memory
bgp        30 s    BGP4-MIB peer state and update rates, CISCO-BGP4-MIB prefixes
inventory  900 s   sysDescr, sysObjectID, sysName (facts); interface speeds
========== ======= ==============================================================

Text a device reports (sysDescr, entPhysicalName, ifName) is data: it names
things and is passed on, never interpreted as anything else.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

import structlog

from autonoc.core.errors import ConfigError, DeviceError
from autonoc.core.inventory import Device, Role
from autonoc.core.types import Sample
from collectors.base import CollectRequest, CollectResult
from collectors.rates import RateTracker
from collectors.scheduler import DEFAULT_INTERVALS

__all__ = [
    "BGP",
    "DEFAULT_INTERVALS",
    "GROUPS",
    "INTERFACES",
    "INTERFACES_V1",
    "INVENTORY",
    "OPTICS",
    "SENSOR_METRICS",
    "SYSTEM",
    "Derive",
    "MibObject",
    "SensorMetric",
    "SnmpCollector",
    "SnmpReader",
    "cisco_peer_index",
    "map_poll",
    "poll_plan",
]

log = structlog.get_logger(__name__)


# ---------------------------------------------------------------------------
# The mapping tables


class Derive(StrEnum):
    """How a canonical value comes from its MIB object."""

    RATE = "rate"  # counter -> per-second rate (collectors.rates.RateTracker), times scale
    UP = "up"  # status enum -> 1.0 when up(1), else 0.0
    TICKS = "ticks"  # TimeTicks (1/100 s) -> seconds
    GAUGE = "gauge"  # the value as read, times scale
    SENSOR = "sensor"  # ENTITY-SENSOR value x 10^-precision, scaled to the canonical unit
    KEY = "key"  # read only to name, select or qualify other values
    FACT = "fact"  # text into CollectResult.facts


@dataclass(frozen=True, slots=True)
class MibObject:
    """One MIB object a group reads, and what becomes of it.

    Attributes:
        name: ``MODULE::object``.
        oid: the column (rows are ``oid.<index>``), or the instance when ``scalar``.
        syntax: the SMI syntax as the MIB declares it.
        derive: how the canonical value is derived.
        metric: the canonical metric it feeds; empty for objects read only to
            derive others.
        unit: the canonical metric's unit.
        scale: multiplier applied after deriving (octets -> bits: 8).
        bits: counter width for rates (32 or 64).
        scalar: fetched as a non-repeater instance (``….0``), not walked.
        note: how the value is derived, for the documentation.
    """

    name: str
    oid: str
    syntax: str
    derive: Derive
    metric: str = ""
    unit: str = ""
    scale: float = 1.0
    bits: int = 64
    scalar: bool = False
    note: str = ""


SYS_DESCR = MibObject(
    "SNMPv2-MIB::sysDescr", "1.3.6.1.2.1.1.1.0", "DisplayString", Derive.FACT, scalar=True
)
SYS_OBJECT_ID = MibObject(
    "SNMPv2-MIB::sysObjectID", "1.3.6.1.2.1.1.2.0", "OBJECT IDENTIFIER", Derive.FACT, scalar=True
)
SYS_UPTIME = MibObject(
    "SNMPv2-MIB::sysUpTime",
    "1.3.6.1.2.1.1.3.0",
    "TimeTicks",
    Derive.TICKS,
    "sys_uptime_s",
    "s",
    scalar=True,
    note="ticks / 100; also the time base of every rate",
)
SYS_NAME = MibObject(
    "SNMPv2-MIB::sysName", "1.3.6.1.2.1.1.5.0", "DisplayString", Derive.FACT, scalar=True
)

IF_NAME = MibObject(
    "IF-MIB::ifName",
    "1.3.6.1.2.1.31.1.1.1.1",
    "DisplayString",
    Derive.KEY,
    note="the instance; `ifIndex.<n>` when absent",
)
IF_COUNTER_DISCONTINUITY_TIME = MibObject(
    "IF-MIB::ifCounterDiscontinuityTime",
    "1.3.6.1.2.1.31.1.1.1.19",
    "TimeTicks",
    Derive.KEY,
    note="a change resets the interface's rate baselines",
)
IF_HIGH_SPEED = MibObject(
    "IF-MIB::ifHighSpeed",
    "1.3.6.1.2.1.31.1.1.1.15",
    "Gauge32",
    Derive.GAUGE,
    "if_speed_bps",
    "bit/s",
    scale=1e6,
    note="Mbit/s x 10^6",
)


def _rate(
    name: str, oid: str, syntax: str, metric: str, unit: str, *, scale: float = 1.0
) -> MibObject:
    bits = 64 if syntax == "Counter64" else 32
    note = f"rate x {scale:g}" if scale != 1.0 else "rate"
    return MibObject(
        name, oid, syntax, Derive.RATE, metric, unit, scale=scale, bits=bits, note=note
    )


_IF_STATUS = (
    MibObject(
        "IF-MIB::ifAdminStatus", "1.3.6.1.2.1.2.2.1.7", "INTEGER", Derive.UP, "if_admin_up", "1",
        note="1.0 when up(1), else 0.0",
    ),
    MibObject(
        "IF-MIB::ifOperStatus", "1.3.6.1.2.1.2.2.1.8", "INTEGER", Derive.UP, "if_oper_up", "1",
        note="1.0 when up(1), else 0.0 (dormant, lowerLayerDown, ... are 0.0)",
    ),
)  # fmt: skip
_IF_ERRORS = (
    _rate("IF-MIB::ifInErrors", "1.3.6.1.2.1.2.2.1.14", "Counter32", "if_in_errors_ps", "1/s"),
    _rate("IF-MIB::ifOutErrors", "1.3.6.1.2.1.2.2.1.20", "Counter32", "if_out_errors_ps", "1/s"),
    _rate("IF-MIB::ifInDiscards", "1.3.6.1.2.1.2.2.1.13", "Counter32", "if_in_discards_ps", "1/s"),
    _rate(
        "IF-MIB::ifOutDiscards", "1.3.6.1.2.1.2.2.1.19", "Counter32", "if_out_discards_ps", "1/s"
    ),
)
_IF_TRAFFIC_HC = (
    _rate("IF-MIB::ifHCInOctets", "1.3.6.1.2.1.31.1.1.1.6", "Counter64", "if_in_bps", "bit/s",
          scale=8.0),
    _rate("IF-MIB::ifHCOutOctets", "1.3.6.1.2.1.31.1.1.1.10", "Counter64", "if_out_bps", "bit/s",
          scale=8.0),
    _rate("IF-MIB::ifHCInUcastPkts", "1.3.6.1.2.1.31.1.1.1.7", "Counter64", "if_in_pps", "1/s"),
    _rate("IF-MIB::ifHCOutUcastPkts", "1.3.6.1.2.1.31.1.1.1.11", "Counter64", "if_out_pps", "1/s"),
)  # fmt: skip
# SNMPv1 cannot carry Counter64: the 32-bit columns instead, with wrap handling.
_IF_TRAFFIC_32 = (
    _rate("IF-MIB::ifInOctets", "1.3.6.1.2.1.2.2.1.10", "Counter32", "if_in_bps", "bit/s",
          scale=8.0),
    _rate("IF-MIB::ifOutOctets", "1.3.6.1.2.1.2.2.1.16", "Counter32", "if_out_bps", "bit/s",
          scale=8.0),
    _rate("IF-MIB::ifInUcastPkts", "1.3.6.1.2.1.2.2.1.11", "Counter32", "if_in_pps", "1/s"),
    _rate("IF-MIB::ifOutUcastPkts", "1.3.6.1.2.1.2.2.1.17", "Counter32", "if_out_pps", "1/s"),
)  # fmt: skip

#: IF-MIB ifTable/ifXTable over SNMPv2c/v3. Utilisation (``if_in_util``,
#: ``if_out_util``) is derived from the bit rates and ``if_speed_bps``.
INTERFACES: tuple[MibObject, ...] = (
    SYS_UPTIME,
    IF_NAME,
    IF_COUNTER_DISCONTINUITY_TIME,
    *_IF_TRAFFIC_HC,
    *_IF_ERRORS,
    *_IF_STATUS,
    IF_HIGH_SPEED,
)
#: The same over SNMPv1: 32-bit octet and packet counters.
INTERFACES_V1: tuple[MibObject, ...] = (
    SYS_UPTIME,
    IF_NAME,
    IF_COUNTER_DISCONTINUITY_TIME,
    *_IF_TRAFFIC_32,
    *_IF_ERRORS,
    *_IF_STATUS,
    IF_HIGH_SPEED,
)

HR_PROCESSOR_LOAD = MibObject(
    "HOST-RESOURCES-MIB::hrProcessorLoad", "1.3.6.1.2.1.25.3.3.1.2", "Integer32", Derive.GAUGE,
    "cpu_util_pct", "%", note="mean over processors (first choice)",
)  # fmt: skip
HR_STORAGE_TYPE = MibObject(
    "HOST-RESOURCES-MIB::hrStorageType", "1.3.6.1.2.1.25.2.3.1.2", "OBJECT IDENTIFIER",
    Derive.KEY, note="selects the hrStorageRam (1.3.6.1.2.1.25.2.1.2) row",
)  # fmt: skip
HR_STORAGE_UNITS = MibObject(
    "HOST-RESOURCES-MIB::hrStorageAllocationUnits", "1.3.6.1.2.1.25.2.3.1.4", "Integer32",
    Derive.KEY, note="bytes per unit",
)  # fmt: skip
HR_STORAGE_SIZE = MibObject(
    "HOST-RESOURCES-MIB::hrStorageSize", "1.3.6.1.2.1.25.2.3.1.5", "Integer32", Derive.GAUGE,
    "mem_used_pct", "%", note="RAM row: 100 x used / size (first choice)",
)  # fmt: skip
HR_STORAGE_USED = MibObject(
    "HOST-RESOURCES-MIB::hrStorageUsed", "1.3.6.1.2.1.25.2.3.1.6", "Integer32", Derive.GAUGE,
    "mem_used_bytes", "B", note="RAM row: used x units (first choice)",
)  # fmt: skip


def _ucd(name: str, arc: str, syntax: str, derive: Derive, metric: str, note: str) -> MibObject:
    unit = "%" if metric.endswith("_pct") else "B" if metric else ""
    return MibObject(
        f"UCD-SNMP-MIB::{name}",
        f"1.3.6.1.4.1.2021.{arc}.0",
        syntax,
        derive,
        metric,
        unit,
        scalar=True,
        bits=32,
        note=note,
    )


_CPU_RAW_NOTE = "fallback: busy share of the summed raw CPU counters' rates"
# Busy + idle time, each counted once: ssCpuRawKernel overlaps system (and wait on
# some platforms) and guest time is already inside user, so those are left out.
UCD_CPU_RAW: tuple[MibObject, ...] = tuple(
    _ucd(name, arc, "Counter32", Derive.RATE, "", _CPU_RAW_NOTE)
    for name, arc in (
        ("ssCpuRawUser", "11.50"),
        ("ssCpuRawNice", "11.51"),
        ("ssCpuRawSystem", "11.52"),
        ("ssCpuRawWait", "11.54"),
        ("ssCpuRawInterrupt", "11.56"),
        ("ssCpuRawSoftIRQ", "11.61"),
        ("ssCpuRawSteal", "11.64"),
    )
)
UCD_CPU_RAW_IDLE = _ucd(
    "ssCpuRawIdle", "11.53", "Counter32", Derive.RATE, "cpu_util_pct",
    "fallback: 100 x (1 - idle rate / sum of all raw CPU rates)",
)  # fmt: skip
UCD_CPU_IDLE = _ucd(
    "ssCpuIdle", "11.11", "Integer32", Derive.GAUGE, "cpu_util_pct",
    "last fallback: 100 - idle percent",
)  # fmt: skip
UCD_MEM_TOTAL = _ucd(
    "memTotalReal", "4.5", "Integer32", Derive.GAUGE, "mem_used_pct", "fallback: KiB of RAM"
)
UCD_MEM_SYS_AVAIL = _ucd(
    "memSysAvail", "4.27", "Counter64", Derive.KEY, "",
    "fallback: the kernel's MemAvailable, KiB; used = total - this",
)  # fmt: skip
UCD_MEM_AVAIL = _ucd(
    "memAvailReal", "4.6", "Integer32", Derive.KEY, "",
    "without memSysAvail: used = total - (avail + buffer + cached)",
)  # fmt: skip
UCD_MEM_BUFFER = _ucd("memBuffer", "4.14", "Integer32", Derive.KEY, "", "KiB, counted as free")
UCD_MEM_CACHED = _ucd("memCached", "4.15", "Integer32", Derive.KEY, "", "KiB, counted as free")

#: Uptime, CPU and memory: HOST-RESOURCES-MIB first, UCD-SNMP-MIB where it is missing.
SYSTEM: tuple[MibObject, ...] = (
    SYS_UPTIME,
    HR_PROCESSOR_LOAD,
    HR_STORAGE_TYPE,
    HR_STORAGE_UNITS,
    HR_STORAGE_SIZE,
    HR_STORAGE_USED,
    *UCD_CPU_RAW,
    UCD_CPU_RAW_IDLE,
    UCD_CPU_IDLE,
    UCD_MEM_TOTAL,
    UCD_MEM_SYS_AVAIL,
    UCD_MEM_AVAIL,
    UCD_MEM_BUFFER,
    UCD_MEM_CACHED,
)

BGP_PEER_STATE = MibObject(
    "BGP4-MIB::bgpPeerState", "1.3.6.1.2.1.15.3.1.2", "INTEGER", Derive.GAUGE, "bgp_peer_state",
    "1", note="idle(1) ... established(6); also bgp_peer_up = 1.0 when established(6)",
)  # fmt: skip
BGP_IN_UPDATES = _rate(
    "BGP4-MIB::bgpPeerInUpdates", "1.3.6.1.2.1.15.3.1.10", "Counter32", "bgp_updates_in_ps", "1/s"
)
BGP_OUT_UPDATES = _rate(
    "BGP4-MIB::bgpPeerOutUpdates", "1.3.6.1.2.1.15.3.1.11", "Counter32", "bgp_updates_out_ps",
    "1/s",
)  # fmt: skip
BGP_TRANSITIONS = _rate(
    "BGP4-MIB::bgpPeerFsmEstablishedTransitions", "1.3.6.1.2.1.15.3.1.15", "Counter32",
    "bgp_transitions_ps", "1/s",
)  # fmt: skip
CBGP_ACCEPTED_PREFIXES = MibObject(
    "CISCO-BGP4-MIB::cbgpPeer2AcceptedPrefixes", "1.3.6.1.4.1.9.9.187.1.2.8.1.1", "Counter32",
    Derive.GAUGE, "bgp_prefixes_accepted", "1",
    note="a count, not a rate: summed over the peer's AFI/SAFI rows",
)  # fmt: skip

#: BGP4-MIB peers (instance: the peer address from the row index) and CISCO-BGP4-MIB
#: prefix counts (index ``type.len.addr.afi.safi``).
BGP: tuple[MibObject, ...] = (
    SYS_UPTIME,
    BGP_PEER_STATE,
    BGP_IN_UPDATES,
    BGP_OUT_UPDATES,
    BGP_TRANSITIONS,
    CBGP_ACCEPTED_PREFIXES,
)

ENT_PHYSICAL_NAME = MibObject(
    "ENTITY-MIB::entPhysicalName", "1.3.6.1.2.1.47.1.1.1.1.7", "SnmpAdminString", Derive.KEY,
    note="`<component>/<sensor>`: the instance and, with the role, the metric",
)  # fmt: skip
ENT_SENSOR_SCALE = MibObject(
    "ENTITY-SENSOR-MIB::entPhySensorScale", "1.3.6.1.2.1.99.1.1.1.2", "INTEGER", Derive.KEY,
    note="power of ten of the value's unit (nano(6) = 10^-9, units(9) = 1)",
)  # fmt: skip
ENT_SENSOR_PRECISION = MibObject(
    "ENTITY-SENSOR-MIB::entPhySensorPrecision", "1.3.6.1.2.1.99.1.1.1.3", "Integer32",
    Derive.KEY, note="decimal places in the value",
)  # fmt: skip
ENT_SENSOR_VALUE = MibObject(
    "ENTITY-SENSOR-MIB::entPhySensorValue", "1.3.6.1.2.1.99.1.1.1.4", "Integer32",
    Derive.SENSOR, "(see the sensor table)",
    note="value x 10^-precision x 10^(scale - unit's own power of ten)",
)  # fmt: skip
ENT_SENSOR_STATUS = MibObject(
    "ENTITY-SENSOR-MIB::entPhySensorOperStatus", "1.3.6.1.2.1.99.1.1.1.5", "INTEGER",
    Derive.KEY, note="anything but ok(1): no sample",
)  # fmt: skip
ENT_SENSOR_UNITS = MibObject(
    "ENTITY-SENSOR-MIB::entPhySensorUnitsDisplay", "1.3.6.1.2.1.99.1.1.1.6", "SnmpAdminString",
    Derive.KEY, note="must name the canonical metric's unit, else no sample",
)  # fmt: skip

#: ENTITY-MIB names and ENTITY-SENSOR-MIB values of optical devices' sensors.
OPTICS: tuple[MibObject, ...] = (
    ENT_PHYSICAL_NAME,
    ENT_SENSOR_SCALE,
    ENT_SENSOR_PRECISION,
    ENT_SENSOR_VALUE,
    ENT_SENSOR_STATUS,
    ENT_SENSOR_UNITS,
)

#: Facts and interface speeds, read rarely.
INVENTORY: tuple[MibObject, ...] = (SYS_DESCR, SYS_OBJECT_ID, SYS_NAME, IF_NAME, IF_HIGH_SPEED)

#: Every group's table over SNMPv2c/v3.
GROUPS: Mapping[str, tuple[MibObject, ...]] = MappingProxyType(
    {
        "interfaces": INTERFACES,
        "system": SYSTEM,
        "bgp": BGP,
        "optics": OPTICS,
        "inventory": INVENTORY,
    }
)


@dataclass(frozen=True, slots=True)
class SensorMetric:
    """A canonical metric for one optical sensor kind.

    Attributes:
        metric: the canonical name.
        unit: its unit.
        units: entPhySensorUnitsDisplay values (case-insensitive) that name that
            unit; a sensor displaying another unit yields no sample. An empty
            display is accepted.
        power: the unit's own power of ten (mA: -3), so the decoded value
            lands in it whatever entPhySensorScale the device uses.
    """

    metric: str
    unit: str
    units: frozenset[str]
    power: int = 0


def _sensor(metric: str, unit: str, *aliases: str, power: int = 0) -> SensorMetric:
    return SensorMetric(metric, unit, frozenset(u.casefold() for u in (unit, *aliases)), power)


_DBM = ("dBm",)
_LINE_PORT = {
    "tx-power": _sensor("opt_tx_power_dbm", *_DBM),
    "rx-power": _sensor("opt_rx_power_dbm", *_DBM),
    "laser-bias": _sensor("opt_laser_bias_ma", "mA", power=-3),
    "temperature": _sensor("opt_module_temp_c", "C", "celsius", "degC", "°C"),
    "osnr": _sensor("opt_osnr_db", "dB"),
    "pre-fec-ber": _sensor("opt_pre_fec_ber", "BER"),
    "q-factor": _sensor("opt_q_db", "dB"),
    "chromatic-dispersion": _sensor("opt_cd_ps_nm", "ps/nm"),
    "post-fec-uncorrectable": _sensor("opt_post_fec_uncorrectable", "blocks/s"),
}
_AMPLIFIER = {
    "input-power": _sensor("amp_input_power_dbm", *_DBM),
    "output-power": _sensor("amp_output_power_dbm", *_DBM),
    "gain": _sensor("amp_gain_db", "dB"),
    "target-gain": _sensor("amp_target_gain_db", "dB"),
    "tilt": _sensor("amp_gain_tilt_db", "dB"),
    "pump-current": _sensor("amp_pump_current_ma", "mA", power=-3),
}
# Per-channel WSS attenuation (`deg-N/<channel>/attenuation`) has no canonical metric.
_ROADM_DEGREE = {
    "input-power": _sensor("roadm_input_power_dbm", *_DBM),
    "output-power": _sensor("roadm_output_power_dbm", *_DBM),
}

#: Canonical metric per device role and sensor kind (the entPhysicalName part
#: after the last ``/``). Roles not listed have no optics group.
SENSOR_METRICS: Mapping[Role, Mapping[str, SensorMetric]] = MappingProxyType(
    {
        Role.TRANSPONDER: MappingProxyType(_LINE_PORT),
        Role.AMPLIFIER: MappingProxyType(_AMPLIFIER),
        Role.ROADM: MappingProxyType(_ROADM_DEGREE),
    }
)

# entPhySensorScale (RFC 3433 EntitySensorDataScale) -> power of ten. exa(14) and
# peta(15) are out of order in the RFC, hence a table rather than arithmetic.
_SCALE_POWER = {
    1: -24, 2: -21, 3: -18, 4: -15, 5: -12, 6: -9, 7: -6, 8: -3, 9: 0,
    10: 3, 11: 6, 12: 9, 13: 12, 14: 18, 15: 15, 16: 21, 17: 24,
}  # fmt: skip
_SENSOR_OK = 1
_HR_STORAGE_RAM = "1.3.6.1.2.1.25.2.1.2"
_BGP_ESTABLISHED = 6
_FACT_MAX_CHARS = 1024

# ---------------------------------------------------------------------------
# Planning: which OIDs one poll reads


def _tables(groups: Iterable[str], *, v1: bool, role: Role) -> list[tuple[MibObject, ...]]:
    tables = []
    for group in dict.fromkeys(groups):
        if group == "interfaces" and v1:
            tables.append(INTERFACES_V1)
        elif group == "optics" and role not in SENSOR_METRICS:
            continue  # nothing of a router's sensors maps to a canonical metric
        elif group in GROUPS:
            tables.append(GROUPS[group])
    return tables


def poll_plan(
    groups: Iterable[str], *, v1: bool = False, role: Role = Role.ROUTER
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The columns to walk and the scalars to fetch for ``groups``, each once.

    Args:
        groups: metric group names; unknown names are ignored.
        v1: the device speaks SNMPv1 (no Counter64: 32-bit interface counters).
        role: the device's role; optics are read only where :data:`SENSOR_METRICS`
            maps the role's sensors.

    Returns:
        ``(columns, scalars)`` in table order, for
        ``SnmpClient.walk(device, columns, scalars=scalars)``.
    """
    columns: dict[str, None] = {}
    scalars: dict[str, None] = {}
    for table in _tables(groups, v1=v1, role=role):
        for obj in table:
            (scalars if obj.scalar else columns)[obj.oid] = None
    return tuple(columns), tuple(scalars)


# ---------------------------------------------------------------------------
# Mapping: what one poll read -> canonical samples and facts


def _split_columns(walked: Mapping[str, Any], columns: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{column: {index: value}}`` for the walked OIDs under ``columns``."""
    by_length: dict[int, set[str]] = {}
    for column in columns:
        by_length.setdefault(len(column), set()).add(column)
    lengths = sorted(by_length)
    out: dict[str, dict[str, Any]] = {c: {} for cs in by_length.values() for c in cs}
    for oid, value in walked.items():
        for n in lengths:
            if len(oid) > n + 1 and oid[n] == "." and oid[:n] in by_length[n]:
                out[oid[:n]][oid[n + 1 :]] = value
                break
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return None


def _int(value: Any) -> int | None:
    # bool is an int to Python but never an SNMP value.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(slots=True)
class _Poll:
    """One device's poll being mapped: its readings and what they became."""

    device: str
    ts: float
    rates: RateTracker
    columns: dict[str, dict[str, Any]]
    scalars: Mapping[str, Any]
    uptime: float | None
    samples: list[Sample] = field(default_factory=list)

    def emit(self, metric: str, instance: str, value: float) -> None:
        self.samples.append(Sample(self.device, metric, instance, self.ts, float(value)))

    def rate(
        self, obj: MibObject, instance: str, value: int, discontinuity: int | None = None
    ) -> float | None:
        """The rate of ``obj`` (times its scale); baselines are kept per MIB object."""
        rate = self.rates.update(
            self.device,
            instance,
            obj.name,
            self.ts,
            value,
            bits=obj.bits,
            uptime=self.uptime,
            discontinuity=discontinuity,
        )
        return None if rate is None else rate * obj.scale


def map_poll(
    device: str,
    groups: Iterable[str],
    ts: float,
    walked: Mapping[str, Any],
    rates: RateTracker,
    *,
    role: Role = Role.ROUTER,
    v1: bool = False,
) -> tuple[list[Sample], dict[str, str]]:
    """Map one poll's raw values to canonical samples and facts.

    Args:
        device: the device's inventory name.
        groups: the groups that were polled (as for :func:`poll_plan`).
        ts: when the values were read, epoch seconds.
        walked: OID (dotted, no leading dot) to value, as ``SnmpClient.walk``
            returns them: ints for numbers, str (or bytes) for text, dotted str
            for OIDs, None for missing instances.
        rates: the baselines that turn counters into rates; updated in place.
        role: the device's role (selects the optical sensor mapping).
        v1: the poll used SNMPv1 (32-bit interface counters).

    Returns:
        ``(samples, facts)``. Rates appear only where a previous poll gave a
        baseline and no wrap, reboot or counter reset intervened; a value
        that is missing or of the wrong type is left out, never guessed.
    """
    tables = _tables(groups, v1=v1, role=role)
    wanted = {obj.oid for table in tables for obj in table if not obj.scalar}
    ticks = _int(walked.get(SYS_UPTIME.oid))
    poll = _Poll(
        device=device,
        ts=ts,
        rates=rates,
        columns=_split_columns(walked, wanted),
        scalars=walked,
        uptime=None if ticks is None else ticks / 100.0,
    )
    polled = set(groups)
    facts: dict[str, str] = {}
    if poll.uptime is not None and polled & {"interfaces", "system"}:
        poll.emit(SYS_UPTIME.metric, "", poll.uptime)
    if "interfaces" in polled:
        _interfaces(poll, INTERFACES_V1 if v1 else INTERFACES)
    if "system" in polled:
        _system(poll)
    if "bgp" in polled:
        _bgp(poll)
    if "optics" in polled and role in SENSOR_METRICS:
        _optics(poll, SENSOR_METRICS[role])
    if "inventory" in polled:
        for obj in (SYS_DESCR, SYS_OBJECT_ID, SYS_NAME):
            text = _text(walked.get(obj.oid))
            if text is not None:
                facts[obj.name.partition("::")[2]] = text[:_FACT_MAX_CHARS]
        if "interfaces" not in polled:  # else the interfaces group has emitted the speeds
            _speeds(poll)
    return poll.samples, facts


def _if_names(poll: _Poll, indexes: Iterable[str]) -> dict[str, str]:
    names = poll.columns.get(IF_NAME.oid, {})
    out = {}
    for index in indexes:
        name = _text(names.get(index))
        out[index] = name if name else f"ifIndex.{index}"
    return out


def _speeds(poll: _Poll) -> None:
    speeds = poll.columns.get(IF_HIGH_SPEED.oid, {})
    for index, name in _if_names(poll, speeds).items():
        mbps = _int(speeds[index])
        if mbps is not None:
            poll.emit(IF_HIGH_SPEED.metric, name, mbps * IF_HIGH_SPEED.scale)


def _interfaces(poll: _Poll, table: Sequence[MibObject]) -> None:
    values = [obj for obj in table if obj.derive in (Derive.RATE, Derive.UP, Derive.GAUGE)]
    indexes: dict[str, None] = {}
    for obj in values:
        indexes.update(dict.fromkeys(poll.columns.get(obj.oid, {})))
    disc_column = poll.columns.get(IF_COUNTER_DISCONTINUITY_TIME.oid, {})
    for index, name in _if_names(poll, indexes).items():
        discontinuity = _int(disc_column.get(index))
        bps: dict[str, float] = {}
        speed = 0.0
        for obj in values:
            raw = _int(poll.columns.get(obj.oid, {}).get(index))
            if raw is None:
                continue
            if obj.derive is Derive.UP:
                poll.emit(obj.metric, name, 1.0 if raw == 1 else 0.0)
            elif obj.derive is Derive.GAUGE:
                speed = raw * obj.scale
                poll.emit(obj.metric, name, speed)
            else:
                rate = poll.rate(obj, name, raw, discontinuity)
                if rate is not None:
                    poll.emit(obj.metric, name, rate)
                    bps[obj.metric] = rate
        if speed > 0:
            for direction in ("in", "out"):
                rate = bps.get(f"if_{direction}_bps")
                if rate is not None:
                    poll.emit(f"if_{direction}_util", name, rate / speed)


def _system(poll: _Poll) -> None:
    cpu = _cpu_percent(poll)
    if cpu is not None:
        poll.emit("cpu_util_pct", "", cpu)
    memory = _memory(poll)
    if memory is not None:
        used, total = memory
        poll.emit("mem_used_bytes", "", used)
        poll.emit("mem_used_pct", "", 100.0 * used / total)


def _cpu_percent(poll: _Poll) -> float | None:
    loads = [
        v for v in map(_int, poll.columns.get(HR_PROCESSOR_LOAD.oid, {}).values()) if v is not None
    ]
    if loads:
        return sum(loads) / len(loads)
    idle_raw = _int(poll.scalars.get(UCD_CPU_RAW_IDLE.oid))
    if idle_raw is not None:
        # Every counter is updated each poll so that all share one baseline.
        idle = poll.rate(UCD_CPU_RAW_IDLE, "", idle_raw)
        busy: float | None = 0.0
        for obj in UCD_CPU_RAW:
            raw = _int(poll.scalars.get(obj.oid))
            if raw is None:
                continue
            rate = poll.rate(obj, "", raw)
            busy = None if rate is None or busy is None else busy + rate
        if idle is not None and busy is not None and idle + busy > 0:
            return min(100.0, max(0.0, 100.0 * busy / (idle + busy)))
    idle_pct = _int(poll.scalars.get(UCD_CPU_IDLE.oid))
    if idle_pct is not None and 0 <= idle_pct <= 100:
        return 100.0 - idle_pct
    return None


def _memory(poll: _Poll) -> tuple[float, float] | None:
    """``(used bytes, total bytes)`` of RAM, or None when the device reports neither MIB."""
    types = poll.columns.get(HR_STORAGE_TYPE.oid, {})
    for index in sorted(types, key=lambda i: (len(i), i)):
        if types[index] != _HR_STORAGE_RAM:
            continue
        units = _int(poll.columns.get(HR_STORAGE_UNITS.oid, {}).get(index))
        size = _int(poll.columns.get(HR_STORAGE_SIZE.oid, {}).get(index))
        used = _int(poll.columns.get(HR_STORAGE_USED.oid, {}).get(index))
        # Integer32 columns: a huge RAM in small units can overflow into nonsense.
        if units and units > 0 and size and size > 0 and used is not None and 0 <= used <= size:
            return float(used * units), float(size * units)
    kib = {
        obj.oid: _int(poll.scalars.get(obj.oid))
        for obj in (UCD_MEM_TOTAL, UCD_MEM_SYS_AVAIL, UCD_MEM_AVAIL, UCD_MEM_BUFFER, UCD_MEM_CACHED)
    }
    total = kib[UCD_MEM_TOTAL.oid]
    if not total or total <= 0:
        return None
    free = kib[UCD_MEM_SYS_AVAIL.oid]
    if free is None:
        avail = kib[UCD_MEM_AVAIL.oid]
        if avail is None:
            return None
        free = avail + (kib[UCD_MEM_BUFFER.oid] or 0) + (kib[UCD_MEM_CACHED.oid] or 0)
    used = min(total, max(0, total - free))
    return float(used * 1024), float(total * 1024)


def _ipv4_index(index: str) -> str | None:
    parts = index.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        return None
    return ".".join(str(int(p)) for p in parts)


def cisco_peer_index(index: str) -> tuple[str, int, int] | None:
    """Parse a cbgpPeer2AddrFamily row index ``type.len.addr….afi.safi``.

    ``type`` is an InetAddressType: ipv4(1), ipv6(2), ipv4z(3), ipv6z(4); the
    address is length-prefixed (4 or 16 octets, plus 4 for a zone index).

    Returns:
        ``(peer address as text, afi, safi)``; None for a malformed index.
    """
    try:
        arcs = [int(a) for a in index.split(".")]
    except ValueError:
        return None
    if len(arcs) < 4:
        return None
    kind, length = arcs[0], arcs[1]
    octets, rest = arcs[2 : 2 + length], arcs[2 + length :]
    sizes = {1: 4, 2: 16, 3: 8, 4: 20}
    if sizes.get(kind) != length or len(octets) != length or len(rest) != 2:
        return None
    if not all(0 <= o <= 255 for o in octets):
        return None
    family = 4 if kind in (1, 3) else 16
    address = str(ipaddress.ip_address(bytes(octets[:family])))
    if length > family:  # zoned: the zone index follows the address
        address += f"%{int.from_bytes(bytes(octets[family:]), 'big')}"
    return address, rest[0], rest[1]


def _bgp(poll: _Poll) -> None:
    states = poll.columns.get(BGP_PEER_STATE.oid, {})
    for index, value in states.items():
        peer, state = _ipv4_index(index), _int(value)
        if peer is None or state is None:
            continue
        poll.emit(BGP_PEER_STATE.metric, peer, state)
        poll.emit("bgp_peer_up", peer, 1.0 if state == _BGP_ESTABLISHED else 0.0)
        for obj in (BGP_IN_UPDATES, BGP_OUT_UPDATES, BGP_TRANSITIONS):
            raw = _int(poll.columns.get(obj.oid, {}).get(index))
            if raw is None:
                continue
            rate = poll.rate(obj, peer, raw)
            if rate is not None:
                poll.emit(obj.metric, peer, rate)
    prefixes: dict[str, int] = {}
    for index, value in poll.columns.get(CBGP_ACCEPTED_PREFIXES.oid, {}).items():
        parsed, count = cisco_peer_index(index), _int(value)
        if parsed is None or count is None:
            continue
        prefixes[parsed[0]] = prefixes.get(parsed[0], 0) + count
    for peer, count in prefixes.items():
        poll.emit(CBGP_ACCEPTED_PREFIXES.metric, peer, count)


def _optics(poll: _Poll, kinds: Mapping[str, SensorMetric]) -> None:
    names = poll.columns.get(ENT_PHYSICAL_NAME.oid, {})
    column = poll.columns.get
    for index, raw in column(ENT_SENSOR_VALUE.oid, {}).items():
        name = _text(names.get(index))
        if not name or "/" not in name:
            continue
        component, _, kind = name.rpartition("/")
        target = kinds.get(kind)
        if target is None:
            continue  # no canonical metric (ROADM channel attenuation, say)
        value = _int(raw)
        status = _int(column(ENT_SENSOR_STATUS.oid, {}).get(index))
        scale = _int(column(ENT_SENSOR_SCALE.oid, {}).get(index))
        precision = _int(column(ENT_SENSOR_PRECISION.oid, {}).get(index))
        if value is None or status != _SENSOR_OK or scale not in _SCALE_POWER or precision is None:
            continue  # unavailable, failed, or not decodable: no sample, never the raw value
        units = _text(column(ENT_SENSOR_UNITS.oid, {}).get(index))
        if units and units.strip().casefold() not in target.units:
            continue  # the device measures this in another unit than the metric's
        # Divide by an exact power of ten where possible: -797 / 100 is -7.97, exactly.
        power = _SCALE_POWER[scale] - precision - target.power
        decoded = value * 10.0**power if power >= 0 else value / 10.0**-power
        poll.emit(target.metric, component, decoded)


# ---------------------------------------------------------------------------
# The collector


class SnmpReader(Protocol):
    """What :class:`SnmpCollector` needs of an SNMP client (:class:`collectors.snmp.SnmpClient`)."""

    async def walk(
        self, device: Device, root_oids: Sequence[str], *, scalars: Sequence[str] = ()
    ) -> dict[str, Any]: ...

    async def get(self, device: Device, oids: Sequence[str]) -> dict[str, Any]: ...


class SnmpCollector:
    """Polls the SNMP metric groups; a :class:`~collectors.base.Collector` named ``snmp``.

    One :meth:`collect` reads every requested group in one shared walk.
    Counters become rates with a :class:`~collectors.rates.RateTracker` the
    collector owns, so rates appear from a device's second poll on.

    Args:
        client: the SNMP client to poll through (``collectors.snmp.SnmpClient``).
        clock: epoch seconds; injectable for tests.
    """

    name = "snmp"

    def __init__(self, client: SnmpReader, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.rates = RateTracker()
        self._clock = clock
        # ifIndex -> ifName per device, from the latest walk that read ifName:
        # traps name interfaces by ifIndex only.
        self._if_names: dict[str, dict[int, str]] = {}

    async def collect(self, device: Device, request: CollectRequest) -> CollectResult:
        """Poll ``request.groups`` of ``device``; failures come back as results, never raised."""
        started = time.perf_counter()
        v1 = device.snmp is not None and device.snmp.version == "v1"
        columns, scalars = poll_plan(request.groups, v1=v1, role=device.role)
        if not columns and not scalars:
            return CollectResult(device=device.name)
        before = self._clock()
        try:
            walked = await self.client.walk(device, columns, scalars=scalars)
        except (DeviceError, ConfigError) as exc:
            log.debug("snmp_poll_failed", device=device.name, error=str(exc))
            return CollectResult(
                device=device.name,
                failed=True,
                exception=exc,
                elapsed_ms=(time.perf_counter() - started) * 1000,
            )
        # Read somewhere between the first request and the last answer; the
        # midpoint keeps successive polls comparable.
        ts = (before + self._clock()) / 2
        self._remember_if_names(device.name, walked)
        samples, facts = map_poll(
            device.name, request.groups, ts, walked, self.rates, role=device.role, v1=v1
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug(
            "snmp_poll_completed",
            device=device.name,
            groups=",".join(request.groups),
            varbinds=len(walked),
            samples=len(samples),
            ms=round(elapsed_ms, 1),
        )
        return CollectResult(
            device=device.name,
            samples=samples,
            elapsed_ms=elapsed_ms,
            varbinds=len(walked),
            facts=facts,
        )

    def if_name(self, device: str, if_index: int) -> str | None:
        """The ifName of ``if_index`` on ``device`` as last polled; None when unknown."""
        return self._if_names.get(device, {}).get(if_index)

    def forget(self, device: str) -> None:
        """Drop ``device``'s rate baselines (it left the inventory)."""
        self.rates.forget(device)
        self._if_names.pop(device, None)

    def _remember_if_names(self, device: str, walked: Mapping[str, Any]) -> None:
        prefix = IF_NAME.oid + "."
        names = {
            int(oid[len(prefix) :]): value
            for oid, value in walked.items()
            if oid.startswith(prefix) and isinstance(value, str) and oid[len(prefix) :].isdigit()
        }
        if names:
            self._if_names[device] = names
