"""The MIB objects each simulated device serves, for :mod:`lab.snmp`'s fast agent.

:func:`device_mib` turns one device of a :class:`~lab.network.LabNetwork` into a
:class:`~lab.snmp.mib.DeviceMib`:

- every device: the SNMPv2-MIB system group;
- routers: IF-MIB (ifNumber, ifTable, ifXTable), HOST-RESOURCES-MIB (one
  processor, one RAM storage row), BGP4-MIB (bgpLocalAs, bgpIdentifier,
  bgpPeerTable) and, for 4-octet ASNs and prefix counts, CISCO-BGP4-MIB
  (cbgpLocalAs, cbgpPeer2RemoteAs, cbgpPeer2AcceptedPrefixes); ifAdminStatus is
  writable;
- transponders, amplifiers and ROADMs: ENTITY-MIB entPhysicalTable and
  entAliasMappingTable, ENTITY-SENSOR-MIB entPhySensorTable (one sensor entity
  per measured value) and a read-only IF-MIB status view of their ports.

``docs/lab-mibs.md`` lists every object with its units and encoding;
:data:`MIB_OBJECTS` holds their OIDs and :data:`SENSOR_KINDS` the optical sensor
encodings.

How it stays cheap with thousands of devices: a device's OIDs are computed
once. Each OID's value comes from a *getter*, a function of one request's
:class:`_View`, and getters capture only structural positions (the 3rd
interface, the 2nd peer, slot 5 of the device's constants), so devices of the
same shape share one getter table, and devices with identical OIDs share one
:class:`~lab.snmp.mib.MibLayout` (see :class:`MibCache`). A reader takes each
snapshot (interfaces, BGP, system, optics) at most once, when a row of that
table is first read. A device whose shape changed is noticed by the reader and
rebuilt at the next :meth:`LabDeviceMib.layout`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from autonoc.core.ber import (
    COUNTER32,
    COUNTER64,
    GAUGE32,
    INTEGER,
    IP_ADDRESS,
    NO_SUCH_INSTANCE,
    OBJECT_IDENTIFIER,
    OCTET_STRING,
    TIMETICKS,
)
from autonoc.core.errors import LabError
from autonoc.core.inventory import Role
from lab.network import BgpSessionState, InterfaceState, LabNetwork, SystemState
from lab.optical import OpticalSnapshot
from lab.optical.state import AmplifierState, DegreeState, LinePortState
from lab.snmp.mib import (
    NO_CREATION,
    NO_ERROR,
    NOT_WRITABLE,
    WRONG_TYPE,
    WRONG_VALUE,
    MibLayout,
    Oid,
    Value,
)

__all__ = [
    "AS_TRANS",
    "LAB_PEN",
    "MIB_OBJECTS",
    "SENSOR_KINDS",
    "LabDeviceMib",
    "MibCache",
    "SensorKind",
    "device_mib",
    "device_mibs",
]

# OIDs: the one place they are spelled ----------------------------------------

LAB_PEN: Oid = (1, 3, 6, 1, 4, 1, 32473)
"""RFC 5612's documentation enterprise number: the lab's sysObjectIDs and vendor types."""

_MIB2: Oid = (1, 3, 6, 1, 2, 1)
_SYSTEM: Oid = (*_MIB2, 1)
_IF_ENTRY: Oid = (*_MIB2, 2, 2, 1)
_IFX_ENTRY: Oid = (*_MIB2, 31, 1, 1, 1)
_HR_STORAGE_ENTRY: Oid = (*_MIB2, 25, 2, 3, 1)
_HR_PROCESSOR_ENTRY: Oid = (*_MIB2, 25, 3, 3, 1)
_BGP: Oid = (*_MIB2, 15)
_BGP_PEER_ENTRY: Oid = (*_BGP, 3, 1)
_CBGP: Oid = (1, 3, 6, 1, 4, 1, 9, 9, 187, 1)
_CBGP_PEER2_ENTRY: Oid = (*_CBGP, 2, 5, 1)
_CBGP_PEER2_PREFIX_ENTRY: Oid = (*_CBGP, 2, 8, 1)
_ENT_PHYSICAL_ENTRY: Oid = (*_MIB2, 47, 1, 1, 1, 1)
_ENT_ALIAS_MAPPING_ENTRY: Oid = (*_MIB2, 47, 1, 3, 2, 1)
_ENT_SENSOR_ENTRY: Oid = (*_MIB2, 99, 1, 1, 1)

_OBJECT_TABLE: tuple[tuple[str, Oid], ...] = (
    # SNMPv2-MIB system group (RFC 3418)
    ("sysDescr", (*_SYSTEM, 1)),
    ("sysObjectID", (*_SYSTEM, 2)),
    ("sysUpTime", (*_SYSTEM, 3)),
    ("sysContact", (*_SYSTEM, 4)),
    ("sysName", (*_SYSTEM, 5)),
    ("sysLocation", (*_SYSTEM, 6)),
    # IF-MIB (RFC 2863)
    ("ifNumber", (*_MIB2, 2, 1)),
    ("ifIndex", (*_IF_ENTRY, 1)),
    ("ifDescr", (*_IF_ENTRY, 2)),
    ("ifType", (*_IF_ENTRY, 3)),
    ("ifMtu", (*_IF_ENTRY, 4)),
    ("ifSpeed", (*_IF_ENTRY, 5)),
    ("ifPhysAddress", (*_IF_ENTRY, 6)),
    ("ifAdminStatus", (*_IF_ENTRY, 7)),
    ("ifOperStatus", (*_IF_ENTRY, 8)),
    ("ifLastChange", (*_IF_ENTRY, 9)),
    ("ifInOctets", (*_IF_ENTRY, 10)),
    ("ifInUcastPkts", (*_IF_ENTRY, 11)),
    ("ifInDiscards", (*_IF_ENTRY, 13)),
    ("ifInErrors", (*_IF_ENTRY, 14)),
    ("ifOutOctets", (*_IF_ENTRY, 16)),
    ("ifOutUcastPkts", (*_IF_ENTRY, 17)),
    ("ifOutDiscards", (*_IF_ENTRY, 19)),
    ("ifOutErrors", (*_IF_ENTRY, 20)),
    ("ifName", (*_IFX_ENTRY, 1)),
    ("ifHCInOctets", (*_IFX_ENTRY, 6)),
    ("ifHCInUcastPkts", (*_IFX_ENTRY, 7)),
    ("ifHCOutOctets", (*_IFX_ENTRY, 10)),
    ("ifHCOutUcastPkts", (*_IFX_ENTRY, 11)),
    ("ifHighSpeed", (*_IFX_ENTRY, 15)),
    ("ifAlias", (*_IFX_ENTRY, 18)),
    ("ifCounterDiscontinuityTime", (*_IFX_ENTRY, 19)),
    # HOST-RESOURCES-MIB (RFC 2790)
    ("hrStorageRam", (*_MIB2, 25, 2, 1, 2)),
    ("hrStorageIndex", (*_HR_STORAGE_ENTRY, 1)),
    ("hrStorageType", (*_HR_STORAGE_ENTRY, 2)),
    ("hrStorageDescr", (*_HR_STORAGE_ENTRY, 3)),
    ("hrStorageAllocationUnits", (*_HR_STORAGE_ENTRY, 4)),
    ("hrStorageSize", (*_HR_STORAGE_ENTRY, 5)),
    ("hrStorageUsed", (*_HR_STORAGE_ENTRY, 6)),
    ("hrProcessorLoad", (*_HR_PROCESSOR_ENTRY, 2)),
    # BGP4-MIB (RFC 4273)
    ("bgpLocalAs", (*_BGP, 2)),
    ("bgpIdentifier", (*_BGP, 4)),
    ("bgpPeerIdentifier", (*_BGP_PEER_ENTRY, 1)),
    ("bgpPeerState", (*_BGP_PEER_ENTRY, 2)),
    ("bgpPeerAdminStatus", (*_BGP_PEER_ENTRY, 3)),
    ("bgpPeerNegotiatedVersion", (*_BGP_PEER_ENTRY, 4)),
    ("bgpPeerLocalAddr", (*_BGP_PEER_ENTRY, 5)),
    ("bgpPeerLocalPort", (*_BGP_PEER_ENTRY, 6)),
    ("bgpPeerRemoteAddr", (*_BGP_PEER_ENTRY, 7)),
    ("bgpPeerRemotePort", (*_BGP_PEER_ENTRY, 8)),
    ("bgpPeerRemoteAs", (*_BGP_PEER_ENTRY, 9)),
    ("bgpPeerInUpdates", (*_BGP_PEER_ENTRY, 10)),
    ("bgpPeerOutUpdates", (*_BGP_PEER_ENTRY, 11)),
    ("bgpPeerFsmEstablishedTransitions", (*_BGP_PEER_ENTRY, 15)),
    ("bgpPeerFsmEstablishedTime", (*_BGP_PEER_ENTRY, 16)),
    # CISCO-BGP4-MIB
    ("cbgpPeer2RemoteAs", (*_CBGP_PEER2_ENTRY, 11)),
    ("cbgpPeer2AcceptedPrefixes", (*_CBGP_PEER2_PREFIX_ENTRY, 1)),
    ("cbgpLocalAs", (*_CBGP, 3, 2)),
    # ENTITY-MIB (RFC 6933)
    ("entPhysicalDescr", (*_ENT_PHYSICAL_ENTRY, 2)),
    ("entPhysicalVendorType", (*_ENT_PHYSICAL_ENTRY, 3)),
    ("entPhysicalContainedIn", (*_ENT_PHYSICAL_ENTRY, 4)),
    ("entPhysicalClass", (*_ENT_PHYSICAL_ENTRY, 5)),
    ("entPhysicalParentRelPos", (*_ENT_PHYSICAL_ENTRY, 6)),
    ("entPhysicalName", (*_ENT_PHYSICAL_ENTRY, 7)),
    ("entAliasMappingIdentifier", (*_ENT_ALIAS_MAPPING_ENTRY, 2)),
    # ENTITY-SENSOR-MIB (RFC 3433)
    ("entPhySensorType", (*_ENT_SENSOR_ENTRY, 1)),
    ("entPhySensorScale", (*_ENT_SENSOR_ENTRY, 2)),
    ("entPhySensorPrecision", (*_ENT_SENSOR_ENTRY, 3)),
    ("entPhySensorValue", (*_ENT_SENSOR_ENTRY, 4)),
    ("entPhySensorOperStatus", (*_ENT_SENSOR_ENTRY, 5)),
    ("entPhySensorUnitsDisplay", (*_ENT_SENSOR_ENTRY, 6)),
    ("entPhySensorValueTimeStamp", (*_ENT_SENSOR_ENTRY, 7)),
    ("entPhySensorValueUpdateRate", (*_ENT_SENSOR_ENTRY, 8)),
)

MIB_OBJECTS: Mapping[str, Oid] = MappingProxyType(dict(_OBJECT_TABLE))
"""Every object the lab serves (scalars without ``.0``, table columns), by MIB name.
``hrStorageRam`` is the storage type value, not a served object."""

_O = MIB_OBJECTS
IF_ADMIN_STATUS = _O["ifAdminStatus"]

_U32 = 2**32
_GAUGE_MAX = _U32 - 1
_UP, _DOWN = 1, 2
AS_TRANS = 23456
"""What BGP4-MIB's 2-octet AS objects show for a 4-octet AS number (RFC 6793)."""
_BGP_STATES = {"idle": 1, "connect": 2, "active": 3, "opensent": 4, "openconfirm": 5}
_ESTABLISHED = 6
_BGP_PORT = 179
_SENSOR_LIMIT = 1_000_000_000  # EntitySensorValue range (RFC 3433)
_COMMIT_FAILED = 14  # RFC 3416; lab.snmp.mib has no constant for it
_CONTACT = b"autonoc lab NOC (simulated)"

# IANAifType values.
_IF_OPTICAL_CHANNEL = 195
_IF_OPTICAL_TRANSPORT = 196
_IF_ETHERNET = 6
# IANAPhysicalClass values.
_CHASSIS, _SENSOR, _MODULE, _PORT = 3, 8, 9, 10
# EntitySensorDataType, EntitySensorDataScale, EntitySensorStatus values.
_OTHER, _AMPERES, _CELSIUS = 1, 5, 8
_NANO, _MILLI, _UNITS = 6, 8, 9
_OK, _UNAVAILABLE, _NONOPERATIONAL = 1, 2, 3

_NO_SUCH: Value = (NO_SUCH_INSTANCE, None)
_ZERO_IP = bytes(4)

Getter = Callable[["_View"], Value]


# One request's view ----------------------------------------------------------


class _View:
    """One request's consistent view of a device: each snapshot taken at most once, lazily."""

    __slots__ = (
        "_bgp",
        "_bgp_at",
        "_ifs",
        "_opt",
        "_opt_ticks",
        "_sys",
        "_uptime",
        "built",
        "device",
        "getters",
        "keys",
        "mib",
        "network",
        "statics",
    )

    def __init__(self, mib: LabDeviceMib, built: _Built) -> None:
        self.mib = mib
        self.network = mib.network
        self.device = mib.device
        self.built = built
        self.getters = built.getters
        self.statics = built.statics
        self.keys = built.keys
        self._ifs: list[InterfaceState] | None = None
        self._bgp: list[BgpSessionState] | None = None
        self._bgp_at = 0.0
        self._sys: SystemState | None = None
        self._opt: OpticalSnapshot | None = None
        self._opt_ticks = 0
        self._uptime: int | None = None

    def read(self, i: int) -> Value:
        try:
            return self.getters[i](self)
        except (IndexError, KeyError):
            # The device no longer has this row: its shape changed under the layout.
            self.mib.invalidate()
            return _NO_SUCH

    def uptime(self) -> int:
        if self._uptime is None:
            self._uptime = self.network.sys_uptime(self.device)
        return self._uptime

    def ifs(self) -> list[InterfaceState]:
        ifs = self._ifs
        if ifs is None:
            ifs = self._ifs = self.network.interfaces(self.device)
            if tuple(s.if_index for s in ifs) != self.built.if_key:
                self.mib.invalidate()
        return ifs

    def bgp(self) -> list[BgpSessionState]:
        sessions = self._bgp
        if sessions is None:
            self._bgp_at = self.network.now()
            sessions = self._bgp = self.network.bgp_sessions(self.device)
            if tuple(s.peer_address for s in sessions) != self.built.peer_key:
                self.mib.invalidate()
        return sessions

    def bgp_at(self) -> float:
        self.bgp()
        return self._bgp_at

    def sys(self) -> SystemState:
        state = self._sys
        if state is None:
            state = self._sys = self.network.system(self.device)
        return state

    def opt(self) -> OpticalSnapshot:
        snap = self._opt
        if snap is None:
            snap = self._opt = self.network.optical_snapshot()
            self._opt_ticks = self.network.sys_uptime(self.device, at=snap.at)
            check = self.built.opt_check
            if check is not None and not check(snap, self):
                self.mib.invalidate()
        return snap

    def opt_ticks(self) -> int:
        self.opt()
        return self._opt_ticks


# Shared getters: memoized, so devices of one shape share the same functions --


@cache
def _const(value: Value) -> Getter:
    def get(v: _View) -> Value:
        return value

    return get


@cache
def _static(slot: int) -> Getter:
    def get(v: _View) -> Value:
        return v.statics[slot]

    return get


def _sys_uptime(v: _View) -> Value:
    return (TIMETICKS, v.uptime() % _U32)


# Router interfaces.

IfColumn = Callable[[InterfaceState], Value]

_IF_COLUMNS: tuple[tuple[Oid, IfColumn], ...] = (
    (_O["ifIndex"], lambda s: (INTEGER, s.if_index)),
    (_O["ifDescr"], lambda s: (OCTET_STRING, s.name.encode())),
    (_O["ifType"], lambda s: (INTEGER, s.if_type)),
    (_O["ifMtu"], lambda s: (INTEGER, s.mtu)),
    (_O["ifSpeed"], lambda s: (GAUGE32, min(s.speed_bps, _GAUGE_MAX))),
    (_O["ifPhysAddress"], lambda s: (OCTET_STRING, s.mac)),
    (_O["ifAdminStatus"], lambda s: (INTEGER, _UP if s.admin_up else _DOWN)),
    (_O["ifOperStatus"], lambda s: (INTEGER, _UP if s.oper_up else _DOWN)),
    (_O["ifLastChange"], lambda s: (TIMETICKS, s.last_change % _U32)),
    (_O["ifInOctets"], lambda s: (COUNTER32, s.in_octets % _U32)),
    (_O["ifInUcastPkts"], lambda s: (COUNTER32, s.in_ucast_pkts % _U32)),
    (_O["ifInDiscards"], lambda s: (COUNTER32, s.in_discards % _U32)),
    (_O["ifInErrors"], lambda s: (COUNTER32, s.in_errors % _U32)),
    (_O["ifOutOctets"], lambda s: (COUNTER32, s.out_octets % _U32)),
    (_O["ifOutUcastPkts"], lambda s: (COUNTER32, s.out_ucast_pkts % _U32)),
    (_O["ifOutDiscards"], lambda s: (COUNTER32, s.out_discards % _U32)),
    (_O["ifOutErrors"], lambda s: (COUNTER32, s.out_errors % _U32)),
    (_O["ifName"], lambda s: (OCTET_STRING, s.name.encode())),
    (_O["ifHCInOctets"], lambda s: (COUNTER64, s.in_octets)),
    (_O["ifHCInUcastPkts"], lambda s: (COUNTER64, s.in_ucast_pkts)),
    (_O["ifHCOutOctets"], lambda s: (COUNTER64, s.out_octets)),
    (_O["ifHCOutUcastPkts"], lambda s: (COUNTER64, s.out_ucast_pkts)),
    (_O["ifHighSpeed"], lambda s: (GAUGE32, s.speed_bps // 1_000_000)),
    (_O["ifAlias"], lambda s: (OCTET_STRING, s.alias.encode())),
    # The lab's counters never reset while it runs.
    (_O["ifCounterDiscontinuityTime"], lambda s: (TIMETICKS, 0)),
)


@cache
def _if_cell(column: IfColumn, k: int) -> Getter:
    def get(v: _View) -> Value:
        return column(v.ifs()[k])

    return get


# Host resources.


def _hr_cpu(v: _View) -> Value:
    return (INTEGER, round(v.sys().cpu_pct))


def _hr_size(v: _View) -> Value:
    return (INTEGER, v.sys().mem_total_kb)


def _hr_used(v: _View) -> Value:
    return (INTEGER, v.sys().mem_used_kb)


# BGP.


def _as2(asn: int) -> int:
    return asn if asn <= 0xFFFF else AS_TRANS


def _bgp_local_as(v: _View) -> Value:
    sessions = v.bgp()
    return (INTEGER, _as2(sessions[0].local_as) if sessions else 0)


def _cbgp_local_as(v: _View) -> Value:
    sessions = v.bgp()
    return (GAUGE32, sessions[0].local_as if sessions else 0)


BgpColumn = Callable[[_View, BgpSessionState], Value]


def _established_time(v: _View, s: BgpSessionState) -> Value:
    # The model forgets when a session went down, so a down session reads 0.
    if s.established_since is None:
        return (GAUGE32, 0)
    return (GAUGE32, min(_GAUGE_MAX, max(0, int(v.bgp_at() - s.established_since))))


_BGP_COLUMNS: tuple[tuple[Oid, BgpColumn], ...] = (
    (_O["bgpPeerState"], lambda v, s: (INTEGER, _BGP_STATES.get(s.state, _ESTABLISHED))),
    (_O["bgpPeerAdminStatus"], lambda v, s: (INTEGER, 2 if s.enabled else 1)),
    (
        _O["bgpPeerNegotiatedVersion"],
        lambda v, s: (INTEGER, 4 if s.state == "established" else 0),
    ),
    (_O["bgpPeerRemoteAs"], lambda v, s: (INTEGER, _as2(s.peer_as))),
    (_O["bgpPeerInUpdates"], lambda v, s: (COUNTER32, s.in_updates % _U32)),
    (_O["bgpPeerOutUpdates"], lambda v, s: (COUNTER32, s.out_updates % _U32)),
    (_O["bgpPeerFsmEstablishedTransitions"], lambda v, s: (COUNTER32, s.transitions % _U32)),
    (_O["bgpPeerFsmEstablishedTime"], _established_time),
    (_O["cbgpPeer2RemoteAs"], lambda v, s: (GAUGE32, s.peer_as)),
    (_O["cbgpPeer2AcceptedPrefixes"], lambda v, s: (COUNTER32, s.prefixes_received % _U32)),
)


@cache
def _bgp_cell(column: BgpColumn, k: int) -> Getter:
    def get(v: _View) -> Value:
        return column(v, v.bgp()[k])

    return get


@cache
def _bgp_when_up(k: int, slot: int, down: Value) -> Getter:
    """A constant of the device that RFC 4273 shows only while the session is established."""

    def get(v: _View) -> Value:
        return v.statics[slot] if v.bgp()[k].state == "established" else down

    return get


# Optical elements and sensors.

Locator = Callable[[_View], object]


@cache
def _line_port(slot: int) -> Locator:
    def locate(v: _View) -> object:
        return v.opt().line_ports[v.keys[slot]]

    return locate


@cache
def _client_port(slot: int) -> Locator:
    def locate(v: _View) -> object:
        return v.opt().client_ports[v.keys[slot]]

    return locate


@cache
def _amplifier(slot: int) -> Locator:
    def locate(v: _View) -> object:
        return v.opt().amplifiers[v.keys[slot]]

    return locate


@cache
def _degree(k: int) -> Locator:
    def locate(v: _View) -> object:
        return v.opt().roadms[v.device].degrees[k]

    return locate


@cache
def _attenuation(k: int, slot: int, drop: bool) -> Locator:
    def locate(v: _View) -> object:
        degree = v.opt().roadms[v.device].degrees[k]
        table = degree.drop_attenuation_db if drop else degree.attenuation_db
        return table[v.keys[slot]]

    return locate


@dataclass(frozen=True, slots=True, eq=False)
class SensorKind:
    """How one kind of optical measurement is encoded in entPhySensorTable.

    ``entPhySensorValue = round(quantity × 10**precision)`` in ``units`` (which
    already include ``scale``), clamped to ±10⁹. A poller recovers the quantity
    with ENTITY-SENSOR-MIB's usual rule: ``value × 10**-precision`` in
    ``units``. ``metric`` is the canonical metric name (:data:`lab.optical.METRICS`),
    when there is one.
    """

    name: str
    description: str
    sensor_type: int
    scale: int
    precision: int
    units: str
    metric: str | None
    read: Callable[[object], float]
    status: Callable[[object], int]


def _ok(element: object) -> int:
    return _OK


def _unless_los(element: object) -> int:
    assert isinstance(element, LinePortState)
    return _UNAVAILABLE if element.los else _OK


def _unless_failed(element: object) -> int:
    assert isinstance(element, AmplifierState)
    return _NONOPERATIONAL if element.failed else _OK


def _field(name: str) -> Callable[[object], float]:
    def read(element: object) -> float:
        return float(getattr(element, name))

    return read


def _ber_nano(element: object) -> float:
    assert isinstance(element, LinePortState)
    return element.pre_fec_ber * 1e9


def _as_float(element: object) -> float:
    assert isinstance(element, float)
    return element


def _kind(
    name: str,
    description: str,
    encoding: tuple[int, int, int, str],
    metric: str | None,
    read: Callable[[object], float],
    status: Callable[[object], int] = _ok,
) -> SensorKind:
    sensor_type, scale, precision, units = encoding
    return SensorKind(name, description, sensor_type, scale, precision, units, metric, read, status)


_DBM = (_OTHER, _UNITS, 2, "dBm")
_DB = (_OTHER, _UNITS, 2, "dB")
_MA = (_AMPERES, _MILLI, 1, "mA")

_LINE_SENSORS = (
    _kind("tx-power", "transmit power", _DBM, "opt_tx_power_dbm", _field("tx_power_dbm")),
    _kind("rx-power", "receive power", _DBM, "opt_rx_power_dbm", _field("rx_power_dbm")),
    _kind("laser-bias", "laser bias current", _MA, "opt_laser_bias_ma", _field("laser_bias_ma")),
    _kind(
        "temperature",
        "module temperature",
        (_CELSIUS, _UNITS, 1, "C"),
        "opt_module_temp_c",
        _field("module_temp_c"),
    ),
    _kind("osnr", "OSNR (0.1 nm)", _DB, "opt_osnr_db", _field("osnr_db"), _unless_los),
    _kind(
        "pre-fec-ber",
        "pre-FEC bit error ratio",
        (_OTHER, _NANO, 0, "BER"),
        "opt_pre_fec_ber",
        _ber_nano,
        _unless_los,
    ),
    _kind("q-factor", "Q-factor", _DB, "opt_q_db", _field("q_db"), _unless_los),
    _kind(
        "chromatic-dispersion",
        "chromatic dispersion",
        (_OTHER, _UNITS, 0, "ps/nm"),
        "opt_cd_ps_nm",
        _field("cd_ps_nm"),
        _unless_los,
    ),
    _kind(
        "post-fec-uncorrectable",
        "uncorrectable FEC blocks per second",
        (_OTHER, _UNITS, 1, "blocks/s"),
        "opt_post_fec_uncorrectable",
        _field("post_fec_uncorrectable"),
        _unless_los,
    ),
)
_AMP_SENSORS = tuple(
    _kind(name, descr, enc, metric, _field(field), _unless_failed)
    for name, descr, enc, metric, field in (
        ("input-power", "total input power", _DBM, "amp_input_power_dbm", "input_power_dbm"),
        ("output-power", "total output power", _DBM, "amp_output_power_dbm", "output_power_dbm"),
        ("gain", "actual gain", _DB, "amp_gain_db", "gain_db"),
        ("target-gain", "target gain", _DB, "amp_target_gain_db", "target_gain_db"),
        ("tilt", "gain tilt", _DB, "amp_gain_tilt_db", "tilt_db"),
        ("pump-current", "pump laser current", _MA, "amp_pump_current_ma", "pump_current_ma"),
    )
)
_DEGREE_SENSORS = (
    _kind(
        "input-power", "total input power", _DBM, "roadm_input_power_dbm", _field("input_power_dbm")
    ),
    _kind(
        "output-power",
        "total output power",
        _DBM,
        "roadm_output_power_dbm",
        _field("output_power_dbm"),
    ),
)
_ATTENUATION = _kind("attenuation", "WSS attenuation, add/express", _DB, None, _as_float)
_DROP_ATTENUATION = _kind("drop-attenuation", "WSS attenuation, drop", _DB, None, _as_float)

SENSOR_KINDS: Mapping[str, SensorKind] = MappingProxyType(
    {
        **{f"line-port/{k.name}": k for k in _LINE_SENSORS},
        **{f"amplifier/{k.name}": k for k in _AMP_SENSORS},
        **{f"roadm-degree/{k.name}": k for k in _DEGREE_SENSORS},
        "roadm-channel/attenuation": _ATTENUATION,
        "roadm-channel/drop-attenuation": _DROP_ATTENUATION,
    }
)
"""Every optical sensor encoding, by ``element/sensor`` (the sensor's entPhysicalName
ends with the part after the slash)."""

_SENSOR_UPDATE_MS = 1000  # the optical snapshot changes once per simulated second


@cache
def _sensor_value(kind: SensorKind, locate: Locator) -> Getter:
    factor = 10.0**kind.precision

    def get(v: _View) -> Value:
        raw = round(kind.read(locate(v)) * factor)
        return (INTEGER, max(-_SENSOR_LIMIT, min(_SENSOR_LIMIT, raw)))

    return get


@cache
def _sensor_status(kind: SensorKind, locate: Locator) -> Getter:
    def get(v: _View) -> Value:
        return (INTEGER, kind.status(locate(v)))

    return get


def _sensor_timestamp(v: _View) -> Value:
    return (TIMETICKS, v.opt_ticks() % _U32)


def _oper(up: bool) -> Value:
    return (INTEGER, _UP if up else _DOWN)


@cache
def _port_oper(locate: Locator) -> Getter:
    """Line and client ports: up while they see their channel (LOS: down)."""

    def get(v: _View) -> Value:
        return _oper(bool(getattr(locate(v), "oper_up")))  # noqa: B009

    return get


@cache
def _amp_oper(locate: Locator) -> Getter:
    def get(v: _View) -> Value:
        amp = locate(v)
        assert isinstance(amp, AmplifierState)
        return _oper(not (amp.los or amp.shutdown))

    return get


@cache
def _degree_oper(slot: int) -> Getter:
    """A ROADM degree is down while the amplifier feeding it is in LOS or shut down."""

    def get(v: _View) -> Value:
        amp_name = v.keys[slot]
        if not amp_name:
            return _oper(True)
        amp = v.opt().amplifiers[amp_name]
        return _oper(not (amp.los or amp.shutdown))

    return get


# Building a device's MIB -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Built:
    """One device's MIB as built: shared layout and getters, its own constants."""

    layout: MibLayout
    getters: tuple[Getter, ...]
    statics: tuple[Value, ...]
    keys: tuple[str, ...]
    if_key: tuple[int, ...]
    peer_key: tuple[str, ...]
    if_names: Mapping[int, str] | None  # ifIndex -> name where ifAdminStatus is writable
    opt_check: Callable[[OpticalSnapshot, _View], bool] | None


class _Builder:
    def __init__(self) -> None:
        self.entries: list[tuple[Oid, Getter]] = []
        self.objects: set[Oid] = set()
        self.statics: list[Value] = []
        self.keys: list[str] = []

    def add(self, obj: Oid, index: Oid, getter: Getter) -> None:
        self.entries.append(((*obj, *index), getter))
        self.objects.add(obj)

    def const(self, obj: Oid, index: Oid, value: Value) -> None:
        """A value every device of this shape shares."""
        self.add(obj, index, _const(value))

    def static(self, obj: Oid, index: Oid, value: Value) -> None:
        """A value of this device only (a name, an address)."""
        self.add(obj, index, _static(self.slot(value)))

    def slot(self, value: Value) -> int:
        self.statics.append(value)
        return len(self.statics) - 1

    def key(self, name: str) -> int:
        self.keys.append(name)
        return len(self.keys) - 1


class MibCache:
    """Layouts and getter tables shared by the devices of one network.

    Devices with identical OIDs share one :class:`MibLayout`, devices of one
    shape one getter table. Routers differ in their bgpPeerTable indexes (peer
    addresses), so each has its own layout, but shares its getters.
    Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._layouts: dict[tuple[Oid, ...], MibLayout] = {}
        self._getters: dict[tuple[Getter, ...], tuple[Getter, ...]] = {}
        self._routers: weakref.WeakKeyDictionary[LabNetwork, _RouterIndex] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def layouts(self) -> int:
        """How many distinct layouts the cache holds."""
        return len(self._layouts)

    @property
    def getter_tables(self) -> int:
        """How many distinct getter tables (device shapes) the cache holds."""
        return len(self._getters)

    def finish(self, b: _Builder) -> tuple[MibLayout, tuple[Getter, ...]]:
        b.entries.sort(key=lambda e: e[0])
        oids = tuple(oid for oid, _ in b.entries)
        getters = tuple(g for _, g in b.entries)
        with self._lock:
            layout = self._layouts.get(oids)
            if layout is None:
                layout = self._layouts[oids] = MibLayout(oids, b.objects)
            getters = self._getters.setdefault(getters, getters)
        return layout, getters

    def routers(self, network: LabNetwork) -> _RouterIndex:
        with self._lock:
            index = self._routers.get(network)
            if index is None:
                index = self._routers[network] = _RouterIndex(network)
            return index


class _RouterIndex:
    """Interface addresses and router IDs of every router (both static in the lab)."""

    def __init__(self, network: LabNetwork) -> None:
        self.address: dict[tuple[str, str], str] = {}
        self.router_id: dict[str, bytes] = {}
        self.owner: dict[str, str] = {}
        for device in network.router_names:
            best = 0
            for s in network.interfaces(device):
                if s.address is not None:
                    self.address[(device, s.name)] = s.address
                    self.owner[s.address] = device
                    best = max(best, _ip_int(s.address))
            self.router_id[device] = best.to_bytes(4, "big")


_CACHES: weakref.WeakKeyDictionary[LabNetwork, MibCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache_for(network: LabNetwork) -> MibCache:
    with _CACHES_LOCK:
        found = _CACHES.get(network)
        if found is None:
            found = _CACHES[network] = MibCache()
        return found


def _ip(address: str) -> bytes:
    return bytes(int(part) for part in address.split("."))


def _ip_int(address: str) -> int:
    return int.from_bytes(_ip(address), "big")


def _system(b: _Builder, network: LabNetwork, device: str) -> None:
    info = network.device(device)
    b.static(_O["sysDescr"], (0,), (OCTET_STRING, info.sys_descr.encode()))
    b.static(_O["sysObjectID"], (0,), (OBJECT_IDENTIFIER, info.sys_object_id))
    b.add(_O["sysUpTime"], (0,), _sys_uptime)
    b.const(_O["sysContact"], (0,), (OCTET_STRING, _CONTACT))
    b.static(_O["sysName"], (0,), (OCTET_STRING, device.encode()))
    b.static(_O["sysLocation"], (0,), (OCTET_STRING, info.site.encode()))


def _build_router(
    b: _Builder,
    network: LabNetwork,
    device: str,
    index: _RouterIndex,
    sessions: Sequence[BgpSessionState] | None,
) -> tuple[tuple[int, ...], tuple[str, ...], dict[int, str]]:
    states = network.interfaces(device)
    b.const(_O["ifNumber"], (0,), (INTEGER, len(states)))
    for k, s in enumerate(states):
        for column, f in _IF_COLUMNS:
            b.add(column, (s.if_index,), _if_cell(f, k))
    # HOST-RESOURCES-MIB: one processor (hrDeviceIndex 1) and one RAM row (hrStorageIndex 1).
    b.add(_O["hrProcessorLoad"], (1,), _hr_cpu)
    b.const(_O["hrStorageIndex"], (1,), (INTEGER, 1))
    b.const(_O["hrStorageType"], (1,), (OBJECT_IDENTIFIER, _O["hrStorageRam"]))
    b.const(_O["hrStorageDescr"], (1,), (OCTET_STRING, b"Physical memory"))
    b.const(_O["hrStorageAllocationUnits"], (1,), (INTEGER, 1024))
    b.add(_O["hrStorageSize"], (1,), _hr_size)
    b.add(_O["hrStorageUsed"], (1,), _hr_used)

    # (peer address, local address): from the model's sessions when given, else from
    # the links (the lab runs eBGP on every IP link), which costs nothing per device.
    if sessions is not None:
        peers = [(s.peer_address, s.local_address) for s in sessions]
    else:
        peers = []
        for s in states:
            if s.peer is not None and s.address is not None:
                peers.append((index.address[s.peer], s.address))
        peers.sort(key=lambda p: _ip_int(p[0]))
    if peers:
        b.add(_O["bgpLocalAs"], (0,), _bgp_local_as)
        b.static(_O["bgpIdentifier"], (0,), (IP_ADDRESS, index.router_id.get(device, _ZERO_IP)))
        b.add(_O["cbgpLocalAs"], (0,), _cbgp_local_as)
    for k, (peer, local) in enumerate(peers):
        row = tuple(int(x) for x in peer.split("."))
        cbgp_row = (1, 4, *row)  # cbgpPeer2Type ipv4(1), InetAddress of 4 octets
        peer_id = index.router_id.get(index.owner.get(peer, ""), _ZERO_IP)
        # The lower address opens the TCP connection from an ephemeral port.
        p, q = _ip_int(peer), _ip_int(local)
        ephemeral = 49152 + min(p, q) % 16384
        local_port, remote_port = (ephemeral, _BGP_PORT) if q < p else (_BGP_PORT, ephemeral)
        zero_port: Value = (INTEGER, 0)
        b.add(
            _O["bgpPeerIdentifier"],
            row,
            _bgp_when_up(k, b.slot((IP_ADDRESS, peer_id)), (IP_ADDRESS, _ZERO_IP)),
        )
        b.static(_O["bgpPeerLocalAddr"], row, (IP_ADDRESS, _ip(local)))
        b.add(
            _O["bgpPeerLocalPort"], row, _bgp_when_up(k, b.slot((INTEGER, local_port)), zero_port)
        )
        b.static(_O["bgpPeerRemoteAddr"], row, (IP_ADDRESS, _ip(peer)))
        b.add(
            _O["bgpPeerRemotePort"], row, _bgp_when_up(k, b.slot((INTEGER, remote_port)), zero_port)
        )
        for bgp_column, cell in _BGP_COLUMNS:
            if bgp_column == _O["cbgpPeer2RemoteAs"]:
                b.add(bgp_column, cbgp_row, _bgp_cell(cell, k))
            elif bgp_column == _O["cbgpPeer2AcceptedPrefixes"]:
                # afi ipv4(1), safi unicast(1)
                b.add(bgp_column, (*cbgp_row, 1, 1), _bgp_cell(cell, k))
            else:
                b.add(bgp_column, row, _bgp_cell(cell, k))
    if_key = tuple(s.if_index for s in states)
    return if_key, tuple(p for p, _ in peers), {s.if_index: s.name for s in states}


# Optical devices.


@dataclass(frozen=True, slots=True)
class _Port:
    if_index: int
    name: str
    alias: str
    if_type: int
    speed_mbps: int
    oper: Getter


class _Entities:
    """Builds entPhysicalTable, entPhySensorTable and entAliasMappingTable rows."""

    def __init__(self, b: _Builder) -> None:
        self.b = b
        self.children: dict[int, int] = {}

    def entity(
        self,
        index: int,
        parent: int,
        klass: int,
        name: str,
        descr: str,
        vendor_type: Oid,
        shared: bool = True,
    ) -> None:
        b, row = self.b, (index,)
        position = -1
        if parent:
            position = self.children[parent] = self.children.get(parent, 0) + 1
        put = b.const if shared else b.static
        put(_O["entPhysicalDescr"], row, (OCTET_STRING, descr.encode()))
        b.const(_O["entPhysicalVendorType"], row, (OBJECT_IDENTIFIER, vendor_type))
        b.const(_O["entPhysicalContainedIn"], row, (INTEGER, parent))
        b.const(_O["entPhysicalClass"], row, (INTEGER, klass))
        b.const(_O["entPhysicalParentRelPos"], row, (INTEGER, position))
        put(_O["entPhysicalName"], row, (OCTET_STRING, name.encode()))

    def sensor(
        self,
        index: int,
        parent: int,
        prefix: str,
        kind: SensorKind,
        at: Locator,
        shared: bool = True,
    ) -> None:
        name, descr = f"{prefix}/{kind.name}", f"{prefix} {kind.description}"
        self.entity(index, parent, _SENSOR, name, descr, _SENSOR_TYPE, shared=shared)
        b, row = self.b, (index,)
        b.const(_O["entPhySensorType"], row, (INTEGER, kind.sensor_type))
        b.const(_O["entPhySensorScale"], row, (INTEGER, kind.scale))
        b.const(_O["entPhySensorPrecision"], row, (INTEGER, kind.precision))
        b.add(_O["entPhySensorValue"], row, _sensor_value(kind, at))
        b.add(_O["entPhySensorOperStatus"], row, _sensor_status(kind, at))
        b.const(_O["entPhySensorUnitsDisplay"], row, (OCTET_STRING, kind.units.encode()))
        b.add(_O["entPhySensorValueTimeStamp"], row, _sensor_timestamp)
        b.const(_O["entPhySensorValueUpdateRate"], row, (GAUGE32, _SENSOR_UPDATE_MS))

    def ports(self, ports: Iterable[tuple[int, _Port]]) -> None:
        """IF-MIB rows (read-only status) and their entAliasMapping to the port entities."""
        b = self.b
        listed = list(ports)
        b.const(_O["ifNumber"], (0,), (INTEGER, len(listed)))
        for entity, p in listed:
            row = (p.if_index,)
            b.const(_O["ifIndex"], row, (INTEGER, p.if_index))
            b.const(_O["ifDescr"], row, (OCTET_STRING, p.name.encode()))
            b.const(_O["ifType"], row, (INTEGER, p.if_type))
            b.const(_O["ifSpeed"], row, (GAUGE32, min(p.speed_mbps * 1_000_000, _GAUGE_MAX)))
            b.const(_O["ifAdminStatus"], row, (INTEGER, _UP))
            b.add(_O["ifOperStatus"], row, p.oper)
            b.const(_O["ifName"], row, (OCTET_STRING, p.name.encode()))
            b.const(_O["ifHighSpeed"], row, (GAUGE32, p.speed_mbps))
            b.static(_O["ifAlias"], row, (OCTET_STRING, p.alias.encode()))
            b.const(
                _O["entAliasMappingIdentifier"],
                (entity, 0),
                (OBJECT_IDENTIFIER, (*_O["ifIndex"], p.if_index)),
            )


_VENDOR_TYPES = (*LAB_PEN, 2)  # entPhysicalVendorType values: LAB_PEN.2.<kind>
_CHASSIS_TYPE = (*_VENDOR_TYPES, 1)
_MODULE_TYPE = (*_VENDOR_TYPES, 2)
_PORT_TYPE = (*_VENDOR_TYPES, 3)
_SENSOR_TYPE = (*_VENDOR_TYPES, 4)
_LINE_STRIDE = 1000  # entity indexes: line port n at n*1000 (module), +1 (port), ...


def _build_transponder(
    b: _Builder, network: LabNetwork, device: str, snap: OpticalSnapshot
) -> None:
    ents = _Entities(b)
    info = network.device(device)
    ents.entity(1, 0, _CHASSIS, device, info.sys_descr, _CHASSIS_TYPE, shared=False)
    lines = [p for p in snap.line_ports.values() if p.transponder == device]
    clients = {c.line_port: c for c in snap.client_ports.values() if c.transponder == device}
    ports: list[tuple[int, _Port]] = []
    for n, line in enumerate(lines, start=1):
        base = n * _LINE_STRIDE
        short = line.name.split(":", 1)[1]
        at = _line_port(b.key(line.name))
        ents.entity(base, 1, _MODULE, f"{short}-module", "400ZR QSFP-DD module", _MODULE_TYPE)
        ents.entity(base + 1, base, _PORT, short, "400ZR line port", _PORT_TYPE)
        for j, kind in enumerate(_LINE_SENSORS):
            parent = base if kind.name in ("temperature", "laser-bias") else base + 1
            ents.sensor(base + 10 + j, parent, short, kind, at)
        channel = f" on {line.channel}" if line.channel else ""
        ports.append(
            (
                base + 1,
                _Port(n, short, f"line{channel}", _IF_OPTICAL_CHANNEL, 400_000, _port_oper(at)),
            )
        )
        client = clients.get(line.name)
        if client is not None:
            cshort = client.name.split(":", 1)[1]
            cat = _client_port(b.key(client.name))
            ents.entity(base + 2, base, _PORT, cshort, f"{client.rate} client port", _PORT_TYPE)
            ports.append(
                (
                    base + 2,
                    _Port(
                        len(lines) + n,
                        cshort,
                        f"client of {short}",
                        _IF_ETHERNET,
                        400_000,
                        _port_oper(cat),
                    ),
                )
            )
    ents.ports(sorted(ports, key=lambda e: e[1].if_index))


def _build_amplifier(b: _Builder, network: LabNetwork, device: str, snap: OpticalSnapshot) -> None:
    ents = _Entities(b)
    info = network.device(device)
    amp = snap.amplifiers[device]
    at = _amplifier(b.key(device))
    ents.entity(1, 0, _CHASSIS, device, info.sys_descr, _CHASSIS_TYPE, shared=False)
    ents.entity(2, 1, _MODULE, "edfa", "C-band EDFA", _MODULE_TYPE)
    ents.entity(3, 2, _PORT, "line-in", "line input", _PORT_TYPE)
    ents.entity(4, 2, _PORT, "line-out", "line output", _PORT_TYPE)
    parents = {"input-power": 3, "output-power": 4}
    for j, kind in enumerate(_AMP_SENSORS):
        ents.sensor(10 + j, parents.get(kind.name, 2), "edfa", kind, at)
    alias = f"EDFA on {amp.span}"
    ents.ports([(3, _Port(1, "line", alias, _IF_OPTICAL_TRANSPORT, 0, _amp_oper(at)))])


def _roadm_channels(snap: OpticalSnapshot, degree: DegreeState, drop: bool) -> list[str]:
    table = degree.drop_attenuation_db if drop else degree.attenuation_db

    def order(name: str) -> tuple[int, str]:
        ch = snap.channels.get(name)
        return (ch.index if ch is not None else 0, name)

    return sorted(table, key=order)


def _roadm_fingerprint(snap: OpticalSnapshot, device: str) -> tuple[object, ...]:
    return tuple(
        (d.name, tuple(sorted(d.attenuation_db)), tuple(sorted(d.drop_attenuation_db)))
        for d in snap.roadms[device].degrees
    )


def _build_roadm(
    b: _Builder, network: LabNetwork, device: str, snap: OpticalSnapshot
) -> Callable[[OpticalSnapshot, _View], bool]:
    ents = _Entities(b)
    info = network.device(device)
    ents.entity(1, 0, _CHASSIS, device, info.sys_descr, _CHASSIS_TYPE, shared=False)
    feeding = {(s.dst_roadm, s.dst_degree): s.amplifier for s in snap.spans.values()}
    ports: list[tuple[int, _Port]] = []
    for k, degree in enumerate(snap.roadms[device].degrees):
        d = k + 1
        base = d * _LINE_STRIDE
        at = _degree(k)
        ents.entity(base, 1, _PORT, degree.name, "ROADM degree (line side)", _PORT_TYPE)
        for j, kind in enumerate(_DEGREE_SENSORS):
            ents.sensor(base + 1 + j, base, degree.name, kind, at)
        for drop, offset, kind in ((False, 100, _ATTENUATION), (True, 500, _DROP_ATTENUATION)):
            for j, channel in enumerate(_roadm_channels(snap, degree, drop), start=1):
                loc = _attenuation(k, b.key(channel), drop)
                prefix = f"{degree.name}/{channel}"
                ents.sensor(base + offset + j, base, prefix, kind, loc, shared=False)
        slot = b.key(feeding.get((device, degree.name), ""))
        port = _Port(
            d, degree.name, f"toward {degree.toward}", _IF_OPTICAL_TRANSPORT, 0, _degree_oper(slot)
        )
        ports.append((base, port))
    ents.ports(ports)
    expected = _roadm_fingerprint(snap, device)

    def check(now: OpticalSnapshot, v: _View) -> bool:
        return _roadm_fingerprint(now, v.device) == expected

    return check


# The DeviceMib ---------------------------------------------------------------


class LabDeviceMib:
    """One lab device's MIB: a :class:`~lab.snmp.mib.DeviceMib` over a :class:`LabNetwork`.

    Build it with :func:`device_mib` or :func:`device_mibs`. Thread-safe
    for readers; :meth:`write` applies through the network's own lock.
    """

    def __init__(
        self, network: LabNetwork, device: str, cache: MibCache, *, exact: bool = False
    ) -> None:
        self.network = network
        self.device = device
        self.role = network.device(device).role
        self._cache = cache
        self._stale = False
        self._built = self._build(exact)

    def layout(self) -> MibLayout:
        """The device's current shape; rebuilt when a reader saw the shape change."""
        if self._stale:
            self.refresh()
        return self._built.layout

    def reader(self) -> Callable[[int], Value]:
        """One request's view: position in :meth:`layout` -> ``(tag, value)``.

        Each snapshot (interfaces, BGP, system, optics) is taken once, at the
        first read of a row that needs it.
        """
        return _View(self, self._built).read

    def write(self, changes: Sequence[tuple[Oid, Value]]) -> tuple[int, int]:
        """SET ifAdminStatus (up(1) / down(2)) on router interfaces, all or nothing.

        Checks follow RFC 3416 section 4.2.5: an OID outside the ifAdminStatus
        column (or any OID on an optical device) is notWritable; a value that
        is not an INTEGER is wrongType; an instance that does not exist is
        noCreation; a value other than 1 or 2 is wrongValue.
        """
        names = self._built.if_names
        column = IF_ADMIN_STATUS
        width = len(column)
        staged: list[tuple[str, bool]] = []
        for n, (oid, (tag, value)) in enumerate(changes, start=1):
            if names is None or oid[:width] != column:
                return NOT_WRITABLE, n
            if tag != INTEGER or not isinstance(value, int):
                return WRONG_TYPE, n
            name = names.get(oid[width]) if len(oid) == width + 1 else None
            if name is None:
                return NO_CREATION, n
            if value not in (_UP, _DOWN):
                return WRONG_VALUE, n
            staged.append((name, value == _UP))
        done: list[tuple[str, bool]] = []
        try:
            before = {s.name: s.admin_up for s in self.network.interfaces(self.device)}
            for name, up in staged:
                self.network.set_admin_status(self.device, name, up)
                done.append((name, before[name]))
        except LabError:
            for name, up in reversed(done):
                self.network.set_admin_status(self.device, name, up)
            return _COMMIT_FAILED, len(done) + 1
        return NO_ERROR, 0

    def invalidate(self) -> None:
        """Mark the layout stale: the next :meth:`layout` rebuilds it."""
        self._stale = True

    def refresh(self) -> None:
        """Rebuild the layout from the device's current shape, now."""
        self._built = self._build(exact=True)
        self._stale = False

    def _build(self, exact: bool) -> _Built:
        network, device, cache = self.network, self.device, self._cache
        b = _Builder()
        _system(b, network, device)
        if_key: tuple[int, ...] = ()
        peer_key: tuple[str, ...] = ()
        if_names: dict[int, str] | None = None
        check: Callable[[OpticalSnapshot, _View], bool] | None = None
        if self.role is Role.ROUTER:
            sessions = network.bgp_sessions(device) if exact else None
            if_key, peer_key, if_names = _build_router(
                b, network, device, cache.routers(network), sessions
            )
        elif self.role in (Role.TRANSPONDER, Role.AMPLIFIER, Role.ROADM):
            snap = network.optical_snapshot(noise=False)
            if self.role is Role.TRANSPONDER:
                _build_transponder(b, network, device, snap)
            elif self.role is Role.AMPLIFIER:
                _build_amplifier(b, network, device, snap)
            else:
                check = _build_roadm(b, network, device, snap)
        layout, getters = cache.finish(b)
        return _Built(
            layout=layout,
            getters=getters,
            statics=tuple(b.statics),
            keys=tuple(b.keys),
            if_key=if_key,
            peer_key=peer_key,
            if_names=if_names,
            opt_check=check,
        )


def device_mib(network: LabNetwork, device: str, cache: MibCache | None = None) -> LabDeviceMib:
    """The MIB of lab device ``device`` (any role).

    Args:
        network: the lab network it lives in.
        device: the device's name.
        cache: where layouts are shared; by default one cache per network.

    Raises:
        LabError: there is no such device.
    """
    network.device(device)
    return LabDeviceMib(network, device, cache if cache is not None else _cache_for(network))


def device_mibs(
    network: LabNetwork, devices: Iterable[str] | None = None, cache: MibCache | None = None
) -> dict[str, LabDeviceMib]:
    """MIBs for many devices (by default every device of ``network``), sharing layouts."""
    shared = cache if cache is not None else _cache_for(network)
    names = network.device_names if devices is None else tuple(devices)
    return {name: device_mib(network, name, shared) for name in names}
