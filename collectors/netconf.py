"""The NETCONF collector (ncclient, off the event loop): a session pool and the YANG mapping.

:class:`NetconfSessionPool` keeps one ncclient session per device, opened on
first use, kept alive with SSH keepalives, reused across polls, and closed
after any transport failure so that the next poll reconnects. ncclient
blocks, so every call runs in the pool's bounded thread pool under a
per-call timeout; every ncclient, paramiko and lxml failure is translated in
:func:`_map_netconf_errors` into :class:`~autonoc.core.errors.DeviceUnreachable`,
:class:`~autonoc.core.errors.DeviceRejected` or
:class:`~autonoc.core.errors.DeviceError`.

:class:`NetconfCollector` sends one subtree-filtered ``<get>`` per metric
group (``interfaces``, ``optics``, ``bgp``, ``system``), choosing the YANG
models the device advertises in its hello (OpenConfig first, ``ietf-interfaces``
for interfaces where a device has no OpenConfig), parses the reply with
:func:`parse_reply` (no DTDs, no entities, no network, bounded size) and maps
it with :func:`samples_from_data` to the same canonical metrics and instances
the SNMP collector produces, so a model sees one series whichever protocol
carried it. The mapping is documented in ``docs/metrics.md`` (section
"NETCONF (OpenConfig)") and must change with the tables below.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qs

import paramiko  # type: ignore[import-untyped]
import structlog
from lxml import etree
from ncclient import NCClientError, manager
from ncclient.operations import RPCError
from ncclient.transport.errors import (
    AuthenticationError,
    SessionCloseError,
    SSHError,
    SSHUnknownHostError,
    TransportError,
)

from autonoc.core.errors import (
    AutonocError,
    ConfigError,
    DeviceError,
    DeviceRejected,
    DeviceUnreachable,
)
from autonoc.core.inventory import Device
from autonoc.core.types import Sample
from collectors.base import CollectRequest, CollectResult
from collectors.rates import RateTracker

__all__ = [
    "GROUPS",
    "MAX_REPLY_BYTES",
    "MODULES",
    "MappedReply",
    "NetconfCollector",
    "NetconfSessionPool",
    "RpcErrorReply",
    "UnsafeReply",
    "advertised_modules",
    "close_manager",
    "connect_args",
    "filters_for",
    "map_netconf_errors",
    "parse_reply",
    "reply_data",
    "samples_from_data",
]

log = structlog.get_logger(__name__)

Element = Any  # an lxml.etree._Element
T = TypeVar("T")

MAX_REPLY_BYTES = 32 * 1024 * 1024
"""The largest ``<rpc-reply>`` parsed; larger ones are refused (a router's state is < 1 MiB)."""

GROUPS: tuple[str, ...] = ("interfaces", "optics", "bgp", "system")
"""The metric groups this collector serves; others (``inventory``) are ignored."""

# ---------------------------------------------------------------------------
# YANG modules and namespaces

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
OC_IF = "http://openconfig.net/yang/interfaces"
OC_ETH = "http://openconfig.net/yang/interfaces/ethernet"
OC_NI = "http://openconfig.net/yang/network-instance"
OC_SYS = "http://openconfig.net/yang/system"
OC_PLAT = "http://openconfig.net/yang/platform"
OC_TERM = "http://openconfig.net/yang/terminal-device"
# Sic: openconfig-optical-amplifier's namespace has carried this typo since its first release.
OC_AMP = "http://openconfig.net/yang/optical-amplfier"
OC_LINE = "http://openconfig.net/yang/transport-line-common"
IETF_IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
IETF_SYS = "urn:ietf:params:xml:ns:yang:ietf-system"

MODULES: Mapping[str, str] = {
    "openconfig-interfaces": OC_IF,
    "openconfig-if-ethernet": OC_ETH,
    "openconfig-network-instance": OC_NI,
    "openconfig-system": OC_SYS,
    "openconfig-platform": OC_PLAT,
    "openconfig-terminal-device": OC_TERM,
    "openconfig-optical-amplifier": OC_AMP,
    "openconfig-transport-line-common": OC_LINE,
    "ietf-interfaces": IETF_IF,
    "ietf-system": IETF_SYS,
}
"""Every YANG module the collector reads, by name, with its namespace."""

# The first ietf-interfaces revision with NMDA state under /interfaces (RFC 8343).
_IETF_IF_NMDA = "2018-02-20"


def advertised_modules(capabilities: Iterable[str]) -> dict[str, str]:
    """YANG modules a server's hello advertises: module name to revision ("" when unstated).

    Capabilities look like ``http://openconfig.net/yang/interfaces?module=openconfig-interfaces&revision=2021-04-06``.
    """
    out: dict[str, str] = {}
    for uri in capabilities:
        _, sep, query = str(uri).partition("?")
        if not sep:
            continue
        params = parse_qs(query)
        names = params.get("module")
        if names:
            out[names[0]] = params.get("revision", [""])[0]
    return out


# ---------------------------------------------------------------------------
# Filters: one subtree-filtered <get> per group, built from what the device advertises

_OC_BOOT = f'<system xmlns="{OC_SYS}"><state><boot-time/><current-datetime/></state></system>'
_IETF_BOOT = (
    f'<system-state xmlns="{IETF_SYS}"><clock><boot-datetime/><current-datetime/></clock>'
    "</system-state>"
)
_IETF_IF_LEAVES = "<interface><name/><admin-status/><oper-status/><speed/><statistics/></interface>"


def filters_for(group: str, modules: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """The subtree filters of ``group``'s ``<get>``, and the modules they read.

    Filters name leaves rather than whole containers: replies stay small, and
    some servers' instrumentation fails on leaves nobody needs (yuma123's
    ietf-interfaces module aborts netconfd on an unfiltered ``interfaces-state``).

    Args:
        group: ``interfaces``, ``optics``, ``bgp`` or ``system``.
        modules: what the device advertises (:func:`advertised_modules`).

    Returns:
        ``(filters, modules used)``; both empty when the device advertises no
        model for the group.
    """
    has = modules.__contains__
    used: list[str] = []
    flt: list[str] = []
    if group == "interfaces":
        if has("openconfig-interfaces"):
            eth = ""
            if has("openconfig-if-ethernet"):
                eth = (
                    f'<ethernet xmlns="{OC_ETH}"><state><port-speed/><negotiated-port-speed/>'
                    "</state></ethernet>"
                )
                used.append("openconfig-if-ethernet")
            flt.append(
                f'<interfaces xmlns="{OC_IF}"><interface><name/><state><name/><admin-status/>'
                f"<oper-status/><counters/></state>{eth}</interface></interfaces>"
            )
            used.insert(0, "openconfig-interfaces")
        elif has("ietf-interfaces"):
            container = (
                "interfaces" if modules["ietf-interfaces"] >= _IETF_IF_NMDA else "interfaces-state"
            )
            flt.append(f'<{container} xmlns="{IETF_IF}">{_IETF_IF_LEAVES}</{container}>')
            used.append("ietf-interfaces")
        if flt:
            _add_boot(flt, used, modules)
    elif group == "system":
        if has("openconfig-system"):
            flt.append(
                f'<system xmlns="{OC_SYS}"><state><hostname/><boot-time/><current-datetime/>'
                "</state><cpus><cpu><index/><state><total/></state></cpu></cpus>"
                "<memory><state/></memory></system>"
            )
            used.append("openconfig-system")
        elif has("ietf-system"):
            _add_boot(flt, used, modules)
    elif group == "bgp":
        if has("openconfig-network-instance"):
            flt.append(
                f'<network-instances xmlns="{OC_NI}"><network-instance><name/><protocols>'
                "<protocol><identifier/><name/><bgp><neighbors><neighbor><neighbor-address/>"
                "<state/><afi-safis><afi-safi><afi-safi-name/><state><prefixes/></state>"
                "</afi-safi></afi-safis></neighbor></neighbors></bgp></protocol></protocols>"
                "</network-instance></network-instances>"
            )
            used.append("openconfig-network-instance")
            _add_boot(flt, used, modules)
    elif group == "optics":
        if has("openconfig-platform"):
            och = ""
            if has("openconfig-terminal-device"):
                och = (
                    f'<optical-channel xmlns="{OC_TERM}"><state><output-power/><input-power/>'
                    "<laser-bias-current/><chromatic-dispersion/><osnr/></state></optical-channel>"
                )
            port = ""
            if has("openconfig-transport-line-common"):
                port = (
                    f'<port><optical-port xmlns="{OC_LINE}"><state><input-power/><output-power/>'
                    "</state></optical-port></port>"
                )
                used.append("openconfig-transport-line-common")
            flt.append(
                f'<components xmlns="{OC_PLAT}"><component><name/><state><name/><type/>'
                f"<oper-status/><temperature/></state>{och}{port}</component></components>"
            )
            used.insert(0, "openconfig-platform")
        if has("openconfig-terminal-device"):
            flt.append(
                f'<terminal-device xmlns="{OC_TERM}"><logical-channels><channel><index/>'
                "<state><link-state/></state><otn><state><pre-fec-ber/><q-value/>"
                "<fec-uncorrectable-blocks/></state></otn><logical-channel-assignments>"
                "<assignment><index/><state><optical-channel/></state></assignment>"
                "</logical-channel-assignments></channel></logical-channels></terminal-device>"
            )
            used.append("openconfig-terminal-device")
        if has("openconfig-optical-amplifier"):
            flt.append(
                f'<optical-amplifier xmlns="{OC_AMP}"><amplifiers><amplifier><name/><state/>'
                "</amplifier></amplifiers></optical-amplifier>"
            )
            used.append("openconfig-optical-amplifier")
    return flt, used


def _add_boot(flt: list[str], used: list[str], modules: Mapping[str, str]) -> None:
    """Ask for the boot time too: it gives ``sys_uptime_s`` and marks a reboot for rates."""
    if "openconfig-system" in modules:
        flt.append(_OC_BOOT)
        used.append("openconfig-system")
    elif "ietf-system" in modules:
        flt.append(_IETF_BOOT)
        used.append("ietf-system")


# ---------------------------------------------------------------------------
# Parsing replies safely


class UnsafeReply(ValueError):
    """A reply that is too large, carries a DTD, or is not well-formed XML."""


def _safe_parser() -> etree.XMLParser:
    # A parser per call: lxml parsers must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_reply(raw: str | bytes, *, max_bytes: int = MAX_REPLY_BYTES) -> Element:
    """Parse one ``<rpc-reply>`` without trusting it.

    Entities are never expanded and nothing is fetched from the network; a
    document with a DTD (the carrier of entity bombs and external entities)
    is refused outright, as NETCONF has no use for one.

    Raises:
        UnsafeReply: over ``max_bytes``, a DTD, or malformed XML.
    """
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise UnsafeReply(f"reply of {len(data):,} bytes exceeds the {max_bytes:,}-byte limit")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise UnsafeReply("reply carries a DTD (entity declarations are refused)")
    try:
        root = etree.fromstring(data, parser=_safe_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeReply(f"malformed XML: {exc}") from exc
    if root.getroottree().docinfo.doctype:
        raise UnsafeReply("reply carries a DTD (entity declarations are refused)")
    return root


class _RpcErrorReply(Exception):
    """An ``<rpc-error>`` of severity error in a reply."""

    def __init__(self, tag: str, message: str) -> None:
        super().__init__(f"{tag}: {message}" if message else tag)
        self.tag = tag
        self.message = message


def _reply_data(root: Element) -> Element:
    """The ``<data>`` of a ``<get>`` reply; raises :class:`_RpcErrorReply` on an rpc-error."""
    if etree.QName(root).localname != "rpc-reply":
        raise UnsafeReply(f"expected <rpc-reply>, got <{etree.QName(root).localname}>")
    for err in root.iterfind(f"{{{BASE_NS}}}rpc-error"):
        if (err.findtext(f"{{{BASE_NS}}}error-severity") or "error").strip() != "error":
            continue
        tag = (err.findtext(f"{{{BASE_NS}}}error-tag") or "unknown").strip()
        message = " ".join((err.findtext(f"{{{BASE_NS}}}error-message") or "").split())
        raise _RpcErrorReply(tag, message[:300])
    data = root.find(f"{{{BASE_NS}}}data")
    return data if data is not None else etree.Element(f"{{{BASE_NS}}}data")


# ---------------------------------------------------------------------------
# The mapping: YANG leaves to canonical metrics (documented in docs/metrics.md)

#: Interface counters (OpenConfig ``state/counters`` and ietf-interfaces ``statistics``
#: share leaf names): leaf → (canonical metric, scale). All are rates of 64-bit counters.
IF_COUNTERS: Mapping[str, tuple[str, float]] = {
    "in-octets": ("if_in_bps", 8.0),
    "out-octets": ("if_out_bps", 8.0),
    "in-unicast-pkts": ("if_in_pps", 1.0),
    "out-unicast-pkts": ("if_out_pps", 1.0),
    "in-errors": ("if_in_errors_ps", 1.0),
    "out-errors": ("if_out_errors_ps", 1.0),
    "in-discards": ("if_in_discards_ps", 1.0),
    "out-discards": ("if_out_discards_ps", 1.0),
}

#: terminal-device ``optical-channel/state`` (on an OPTICAL_CHANNEL component): leaf →
#: (metric, signal). Signal-quality values are left out while the channel is not ACTIVE.
OCH_GAUGES: Mapping[str, tuple[str, bool]] = {
    "output-power": ("opt_tx_power_dbm", False),
    "input-power": ("opt_rx_power_dbm", False),
    "laser-bias-current": ("opt_laser_bias_ma", False),
    "chromatic-dispersion": ("opt_cd_ps_nm", True),
    "osnr": ("opt_osnr_db", True),
}

#: terminal-device ``logical-channels/channel/otn/state`` gauges (signal quality).
OTN_GAUGES: Mapping[str, str] = {
    "pre-fec-ber": "opt_pre_fec_ber",
    "q-value": "opt_q_db",
}

#: optical-amplifier ``amplifiers/amplifier/state``: leaf → metric.
AMP_GAUGES: Mapping[str, str] = {
    "input-power-total": "amp_input_power_dbm",
    "output-power-total": "amp_output_power_dbm",
    "actual-gain": "amp_gain_db",
    "target-gain": "amp_target_gain_db",
    "actual-gain-tilt": "amp_gain_tilt_db",
    "laser-bias-current": "amp_pump_current_ma",
}

#: transport-line-common ``port/optical-port/state`` of a PORT component (ROADM degree).
LINE_PORT_GAUGES: Mapping[str, str] = {
    "input-power": "roadm_input_power_dbm",
    "output-power": "roadm_output_power_dbm",
}

#: OpenConfig BGP ``session-state`` → BGP4-MIB bgpPeerState.
BGP_STATES: Mapping[str, int] = {
    "IDLE": 1,
    "CONNECT": 2,
    "ACTIVE": 3,
    "OPENSENT": 4,
    "OPENCONFIRM": 5,
    "ESTABLISHED": 6,
}

AMPLIFIER_INSTANCE = "edfa"
"""The instance of an amplifier named after its device (one per shelf), as SNMP names it."""

# Above this an advertised speed is a sentinel for "unknown" (yuma123 reports 2^64 - 10^6).
_MAX_SPEED_BPS = 10**15
_SPEED_IDENTITY = re.compile(r"SPEED_(\d+)(MB|GB|TB)$")
_SPEED_UNIT = {"MB": 10**6, "GB": 10**9, "TB": 10**12}


@dataclass(slots=True)
class MappedReply:
    """What one group's reply gave: samples, leaves read, and descriptive facts."""

    samples: list[Sample] = field(default_factory=list)
    leaves: int = 0
    facts: dict[str, str] = field(default_factory=dict)


def samples_from_data(
    group: str,
    device: str,
    data: Element,
    ts: float,
    rates: RateTracker,
) -> MappedReply:
    """Map one ``<get>`` reply's ``<data>`` to canonical samples.

    Args:
        group: the metric group the reply answers.
        device: the device's inventory name (also stripped from component
            names, so ``xp-a1:line1`` is instance ``line1`` as over SNMP).
        data: the reply's ``<data>`` element.
        ts: when the values were read, epoch seconds.
        rates: the baselines that turn counters into rates; updated in place.

    Returns:
        Gauges and status always; rates only where a previous reply gave a
        baseline and no reboot or counter clear intervened.
    """
    m = _Mapper(device, ts, rates)
    uptime = m.uptime(data)
    if group == "interfaces":
        if uptime is not None:
            m.add("sys_uptime_s", "", uptime)
        m.oc_interfaces(data, uptime)
        m.ietf_interfaces(data, uptime)
    elif group == "system":
        if uptime is not None:
            m.add("sys_uptime_s", "", uptime)
        m.oc_system(data)
    elif group == "bgp":
        m.oc_bgp(data, uptime)
    elif group == "optics":
        m.oc_optics(data)
    return m.out


def _q(ns: str, *path: str) -> str:
    return "/".join(f"{{{ns}}}{p}" for p in path)


def _ident(text: str | None) -> str:
    """An enum or identityref's local name: ``oc-platform-types:ACTIVE`` → ``ACTIVE``."""
    return (text or "").strip().rpartition(":")[2]


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _token(text: str | None) -> int | None:
    """A discontinuity token from a timestamp leaf (ns since the epoch or date-and-time)."""
    if text is None or not text.strip():
        return None
    value = _int(text)
    return value if value is not None else zlib.crc32(text.strip().encode())


def _epoch(text: str | None) -> float | None:
    """Seconds since the epoch from OpenConfig timeticks64 (ns) or yang:date-and-time."""
    if text is None or not text.strip():
        return None
    ns = _int(text)
    if ns is not None:
        return ns / 1e9
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None


def _speed_bps(text: str | None) -> float | None:
    """A plausible interface speed in bit/s, from a number or an OpenConfig SPEED_* identity."""
    if text is None:
        return None
    number = _int(text)
    if number is None:
        match = _SPEED_IDENTITY.search(_ident(text))
        if match is None:
            return None
        number = int(match.group(1)) * _SPEED_UNIT[match.group(2)]
    return float(number) if 0 < number <= _MAX_SPEED_BPS else None


class _Mapper:
    """Accumulates one reply's samples; one method per YANG subtree."""

    def __init__(self, device: str, ts: float, rates: RateTracker) -> None:
        self.device = device
        self.ts = ts
        self.rates = rates
        self.out = MappedReply()

    def add(self, metric: str, instance: str, value: float) -> None:
        self.out.samples.append(Sample(self.device, metric, instance, self.ts, value))

    def instance(self, name: str) -> str:
        prefix = f"{self.device}:"
        return name[len(prefix) :] if name.startswith(prefix) and len(name) > len(prefix) else name

    def gauge(self, metric: str, instance: str, leaf: Element | None) -> None:
        """A plain decimal leaf, or an OpenConfig statistics container (instant, else avg)."""
        if leaf is None:
            return
        text = leaf.text
        if len(leaf):
            text = None
            for name in ("instant", "avg"):
                found = next((c for c in leaf if etree.QName(c).localname == name), None)
                if found is not None:
                    text = found.text
                    break
        value = _float(text)
        if value is not None:
            self.out.leaves += 1
            self.add(metric, instance, value)

    def rate(
        self,
        metric: str,
        instance: str,
        text: str | None,
        scale: float = 1.0,
        *,
        uptime: float | None = None,
        discontinuity: int | None = None,
    ) -> float | None:
        value = _int(text)
        if value is None or value < 0:
            return None
        self.out.leaves += 1
        rate = self.rates.update(
            self.device,
            instance,
            metric,
            self.ts,
            value,
            bits=64,
            uptime=uptime,
            discontinuity=discontinuity,
        )
        if rate is None:
            return None
        self.add(metric, instance, rate * scale)
        return rate * scale

    def updown(self, metric: str, instance: str, text: str | None) -> None:
        if text is None:
            return
        self.out.leaves += 1
        self.add(metric, instance, 1.0 if _ident(text).upper() == "UP" else 0.0)

    # Uptime ------------------------------------------------------------------

    def uptime(self, data: Element) -> float | None:
        """Seconds since boot from openconfig-system or ietf-system, if the reply has it."""
        boot = now = None
        state = data.find(_q(OC_SYS, "system", "state"))
        if state is not None:
            boot = _epoch(state.findtext(_q(OC_SYS, "boot-time")))
            now = _epoch(state.findtext(_q(OC_SYS, "current-datetime")))
        clock = data.find(_q(IETF_SYS, "system-state", "clock"))
        if boot is None and clock is not None:
            boot = _epoch(clock.findtext(_q(IETF_SYS, "boot-datetime")))
            now = _epoch(clock.findtext(_q(IETF_SYS, "current-datetime")))
        if boot is None:
            return None
        self.out.leaves += 1
        return max(0.0, (now if now is not None else self.ts) - boot)

    # Interfaces --------------------------------------------------------------

    def oc_interfaces(self, data: Element, uptime: float | None) -> None:
        for entry in data.iterfind(_q(OC_IF, "interfaces", "interface")):
            name = (entry.findtext(_q(OC_IF, "name")) or "").strip()
            state = entry.find(_q(OC_IF, "state"))
            if not name or state is None:
                continue
            self.updown("if_admin_up", name, state.findtext(_q(OC_IF, "admin-status")))
            self.updown("if_oper_up", name, state.findtext(_q(OC_IF, "oper-status")))
            eth = entry.find(_q(OC_ETH, "ethernet", "state"))
            speed = None
            if eth is not None:
                speed = _speed_bps(eth.findtext(_q(OC_ETH, "negotiated-port-speed"))) or _speed_bps(
                    eth.findtext(_q(OC_ETH, "port-speed"))
                )
            counters = state.find(_q(OC_IF, "counters"))
            clear = None if counters is None else counters.findtext(_q(OC_IF, "last-clear"))
            self._interface(name, counters, OC_IF, speed, uptime, _token(clear))

    def ietf_interfaces(self, data: Element, uptime: float | None) -> None:
        entries = [
            *data.iterfind(_q(IETF_IF, "interfaces-state", "interface")),
            *data.iterfind(_q(IETF_IF, "interfaces", "interface")),
        ]
        for entry in entries:
            name = (entry.findtext(_q(IETF_IF, "name")) or "").strip()
            if not name:
                continue
            self.updown("if_admin_up", name, entry.findtext(_q(IETF_IF, "admin-status")))
            self.updown("if_oper_up", name, entry.findtext(_q(IETF_IF, "oper-status")))
            speed = _speed_bps(entry.findtext(_q(IETF_IF, "speed")))
            stats = entry.find(_q(IETF_IF, "statistics"))
            disc = None if stats is None else stats.findtext(_q(IETF_IF, "discontinuity-time"))
            self._interface(name, stats, IETF_IF, speed, uptime, _token(disc))

    def _interface(
        self,
        name: str,
        counters: Element | None,
        ns: str,
        speed: float | None,
        uptime: float | None,
        discontinuity: int | None,
    ) -> None:
        if speed is not None:
            self.out.leaves += 1
            self.add("if_speed_bps", name, speed)
        if counters is None:
            return
        for leaf, (metric, scale) in IF_COUNTERS.items():
            rate = self.rate(
                metric,
                name,
                counters.findtext(f"{{{ns}}}{leaf}"),
                scale,
                uptime=uptime,
                discontinuity=discontinuity,
            )
            if rate is not None and speed and metric in ("if_in_bps", "if_out_bps"):
                self.add(metric.replace("_bps", "_util"), name, rate / speed)

    # System ------------------------------------------------------------------

    def oc_system(self, data: Element) -> None:
        system = data.find(_q(OC_SYS, "system"))
        if system is None:
            return
        hostname = system.findtext(_q(OC_SYS, "state", "hostname"))
        if hostname and hostname.strip():
            self.out.facts["hostname"] = hostname.strip()[:255]
        loads: dict[str, float] = {}
        for cpu in system.iterfind(_q(OC_SYS, "cpus", "cpu")):
            index = (cpu.findtext(_q(OC_SYS, "index")) or "").strip()
            total = cpu.find(_q(OC_SYS, "state", "total"))
            if total is None:
                continue
            value = _float(
                total.findtext(_q(OC_SYS, "instant")) or total.findtext(_q(OC_SYS, "avg"))
            )
            if value is not None:
                loads[index] = value
        if loads:
            # The ALL entry is the device's own aggregate; otherwise average the CPUs.
            value = loads["ALL"] if "ALL" in loads else sum(loads.values()) / len(loads)
            self.out.leaves += len(loads)
            self.add("cpu_util_pct", "", value)
        memory = system.find(_q(OC_SYS, "memory", "state"))
        if memory is None:
            return
        physical = _int(memory.findtext(_q(OC_SYS, "physical")))
        used = _int(memory.findtext(_q(OC_SYS, "used")))
        free = _int(memory.findtext(_q(OC_SYS, "free")))
        if used is None and physical is not None and free is not None:
            used = physical - free
        if used is None:
            return
        self.out.leaves += sum(v is not None for v in (physical, used, free))
        self.add("mem_used_bytes", "", float(used))
        if physical:
            self.add("mem_used_pct", "", 100.0 * used / physical)

    # BGP ---------------------------------------------------------------------

    def oc_bgp(self, data: Element, uptime: float | None) -> None:
        for ni in data.iterfind(_q(OC_NI, "network-instances", "network-instance")):
            ni_name = (ni.findtext(_q(OC_NI, "name")) or "").strip()
            path = _q(OC_NI, "protocols", "protocol", "bgp", "neighbors", "neighbor")
            for neighbor in ni.iterfind(path):
                address = (neighbor.findtext(_q(OC_NI, "neighbor-address")) or "").strip()
                state = neighbor.find(_q(OC_NI, "state"))
                if not address or state is None:
                    continue
                # The default instance's peers are named by address alone, as over SNMP.
                instance = (
                    address if ni_name in ("", "DEFAULT", "default") else f"{address}%{ni_name}"
                )
                self._neighbor(instance, neighbor, state, uptime)

    def _neighbor(
        self, instance: str, neighbor: Element, state: Element, uptime: float | None
    ) -> None:
        session = state.findtext(_q(OC_NI, "session-state"))
        code = BGP_STATES.get(_ident(session).upper())
        if code is not None:
            self.out.leaves += 1
            self.add("bgp_peer_state", instance, float(code))
            self.add("bgp_peer_up", instance, 1.0 if code == 6 else 0.0)
        for metric, path in (
            ("bgp_transitions_ps", ("established-transitions",)),
            ("bgp_updates_in_ps", ("messages", "received", "UPDATE")),
            ("bgp_updates_out_ps", ("messages", "sent", "UPDATE")),
        ):
            self.rate(metric, instance, state.findtext(_q(OC_NI, *path)), uptime=uptime)
        accepted: int | None = None
        for afi_safi in neighbor.iterfind(_q(OC_NI, "afi-safis", "afi-safi")):
            received = _int(afi_safi.findtext(_q(OC_NI, "state", "prefixes", "received")))
            if received is not None:
                self.out.leaves += 1
                accepted = (accepted or 0) + received
        if accepted is not None:
            self.add("bgp_prefixes_accepted", instance, float(accepted))

    # Optics ------------------------------------------------------------------

    def oc_optics(self, data: Element) -> None:
        components = list(data.iterfind(_q(OC_PLAT, "components", "component")))
        channels: dict[str, bool] = {}  # OPTICAL_CHANNEL component name -> ACTIVE
        for comp in components:
            name = (comp.findtext(_q(OC_PLAT, "name")) or "").strip()
            state = comp.find(_q(OC_PLAT, "state"))
            if (
                state is not None
                and _ident(state.findtext(_q(OC_PLAT, "type"))) == "OPTICAL_CHANNEL"
            ):
                oper = state.findtext(_q(OC_PLAT, "oper-status"))
                channels[name] = oper is None or _ident(oper) == "ACTIVE"
        for comp in components:
            self._component(comp, channels)
        self._logical_channels(data, channels)
        for amp in data.iterfind(_q(OC_AMP, "optical-amplifier", "amplifiers", "amplifier")):
            name = (amp.findtext(_q(OC_AMP, "name")) or "").strip()
            state = amp.find(_q(OC_AMP, "state"))
            if not name or state is None:
                continue
            instance = AMPLIFIER_INSTANCE if name == self.device else self.instance(name)
            for leaf, metric in AMP_GAUGES.items():
                self.gauge(metric, instance, state.find(f"{{{OC_AMP}}}{leaf}"))

    def _component(self, comp: Element, channels: Mapping[str, bool]) -> None:
        name = (comp.findtext(_q(OC_PLAT, "name")) or "").strip()
        if not name:
            return
        state = comp.find(_q(OC_PLAT, "state"))
        kind = "" if state is None else _ident(state.findtext(_q(OC_PLAT, "type")))
        och = comp.find(_q(OC_TERM, "optical-channel", "state"))
        if och is not None:
            active = channels.get(name, True)
            instance = self.instance(name)
            for leaf, (metric, signal) in OCH_GAUGES.items():
                if signal and not active:
                    continue  # no light: OSNR and CD are meaningless (SNMP: status unavailable)
                self.gauge(metric, instance, och.find(f"{{{OC_TERM}}}{leaf}"))
        if kind == "TRANSCEIVER" and state is not None:
            self.gauge(
                "opt_module_temp_c",
                self.instance(_owning_channel(name, channels) or name),
                state.find(_q(OC_PLAT, "temperature")),
            )
        port = comp.find(_q(OC_PLAT, "port") + "/" + _q(OC_LINE, "optical-port", "state"))
        if port is not None:
            instance = self.instance(name)
            for leaf, metric in LINE_PORT_GAUGES.items():
                self.gauge(metric, instance, port.find(f"{{{OC_LINE}}}{leaf}"))

    def _logical_channels(self, data: Element, channels: Mapping[str, bool]) -> None:
        path = _q(OC_TERM, "terminal-device", "logical-channels", "channel")
        for channel in data.iterfind(path):
            index = (channel.findtext(_q(OC_TERM, "index")) or "").strip()
            otn = channel.find(_q(OC_TERM, "otn", "state"))
            if otn is None:
                continue
            och = None
            for assignment in channel.iterfind(
                _q(OC_TERM, "logical-channel-assignments", "assignment", "state", "optical-channel")
            ):
                if assignment.text and assignment.text.strip():
                    och = assignment.text.strip()
                    break
            link = channel.findtext(_q(OC_TERM, "state", "link-state"))
            active = channels.get(och, True) if och else _ident(link).upper() != "DOWN"
            instance = self.instance(och) if och else f"logical-channel-{index}"
            blocks = otn.findtext(_q(OC_TERM, "fec-uncorrectable-blocks"))
            # The counter keeps its baseline through LOS; only its rate is withheld.
            rate_before = len(self.out.samples)
            self.rate("opt_post_fec_uncorrectable", instance, blocks)
            if not active:
                del self.out.samples[rate_before:]
                continue
            for leaf, metric in OTN_GAUGES.items():
                self.gauge(metric, instance, otn.find(f"{{{OC_TERM}}}{leaf}"))


def _owning_channel(transceiver: str, channels: Iterable[str]) -> str | None:
    """The optical channel a transceiver component belongs to, by the longest name prefix."""
    owners = [c for c in channels if transceiver.startswith(c)]
    return max(owners, key=len) if owners else None


# ---------------------------------------------------------------------------
# Error mapping: the one place ncclient, paramiko and lxml failures become autonoc errors


class _RpcTimeout(Exception):
    """No reply within the per-call timeout."""


class _PoolFull(Exception):
    """Every session slot is busy."""


class _Refused(Exception):
    """A batch with a refused reply: the outcomes stand, the session goes."""

    def __init__(self, outcomes: list[Any]) -> None:
        super().__init__("refused reply")
        self.outcomes = outcomes


@contextmanager
def _map_netconf_errors(device: Device, timeout: float) -> Iterator[None]:
    name = device.name
    address = _address(device)
    user = device.netconf.username if device.netconf is not None else "?"
    try:
        yield
    except AutonocError:
        raise
    except AuthenticationError as exc:
        raise DeviceRejected(
            name,
            f"NETCONF login to {address} as {user!r} was refused "
            "(check netconf.username and the password or key_file)",
        ) from exc
    except SSHUnknownHostError as exc:
        raise DeviceRejected(
            name,
            f"the SSH host key of {address} is not in known_hosts (add it, e.g. with "
            "ssh-keyscan, or set netconf.hostkey_verify: false for a lab)",
        ) from exc
    except SessionCloseError as exc:
        raise DeviceUnreachable(
            name, f"{address} closed the NETCONF session mid-RPC (the next poll reconnects)"
        ) from exc
    except SSHError as exc:
        text = str(exc)
        if "Could not open socket" in text:
            raise DeviceUnreachable(
                name,
                f"cannot open a NETCONF connection to {address} (check the address, "
                "mgmt.netconf_port, that NETCONF over SSH is enabled, and ACLs)",
            ) from exc
        raise DeviceUnreachable(name, f"SSH to {address} failed: {text}") from exc
    except TransportError as exc:
        raise DeviceUnreachable(
            name, f"NETCONF transport to {address} failed: {type(exc).__name__}: {exc}"
        ) from exc
    except _RpcTimeout as exc:
        raise DeviceUnreachable(
            name, f"no NETCONF reply from {address} within {timeout:g} s (the session is reset)"
        ) from exc
    except _RpcErrorReply as exc:
        raise DeviceRejected(name, f"{address} answered rpc-error {exc}") from exc
    except RPCError as exc:
        raise DeviceRejected(name, f"{address} answered rpc-error {exc.tag}: {exc}") from exc
    except UnsafeReply as exc:
        raise DeviceError(name, f"refused the NETCONF reply from {address}: {exc}") from exc
    except etree.XMLSyntaxError as exc:
        raise DeviceError(name, f"malformed NETCONF message from {address}: {exc}") from exc
    except _PoolFull as exc:
        raise DeviceError(
            name, f"every NETCONF session slot is busy ({exc}); raise max_sessions"
        ) from exc
    except paramiko.SSHException as exc:
        raise DeviceUnreachable(name, f"SSH to {address} failed: {exc}") from exc
    except OSError as exc:
        raise DeviceUnreachable(
            name, f"cannot reach NETCONF at {address}: {exc.strerror or exc}"
        ) from exc


def _as_device_error(device: Device, exc: Exception, timeout: float) -> DeviceError:
    """``exc`` as the autonoc error :func:`_map_netconf_errors` makes of it."""
    try:
        with _map_netconf_errors(device, timeout):
            raise exc
    except DeviceError as mapped:
        return mapped
    raise AssertionError("unreachable")  # pragma: no cover


def _address(device: Device) -> str:
    host, port = device.mgmt.host, device.mgmt.netconf_port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------------------
# The session pool


@dataclass(eq=False)
class _Slot:
    """One device's session; its lock serialises that device's calls."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    manager: Any = None
    last_used: float = 0.0


class NetconfSessionPool:
    """One ncclient session per device, opened lazily and reused across polls.

    Every call runs in a bounded thread pool (ncclient blocks) under a
    per-call timeout. A session is checked for life before each use; after
    any failure other than an ``<rpc-error>`` it is closed, so the next call
    opens a fresh one. At most ``max_sessions`` sessions stay open: the least
    recently used idle one is closed to make room.

    Args:
        workers: threads running ncclient calls (devices talked to at once).
        max_sessions: sessions kept open at most.
        timeout: seconds to wait for one RPC's reply.
        connect_timeout: seconds to connect, log in and exchange hellos.
        keepalive: seconds between SSH keepalives on an idle session (0: none).
        max_reply_bytes: the largest reply parsed; a larger one is refused.
        connect: opens a session (``ncclient.manager.connect``); tests pass a fake.
    """

    def __init__(
        self,
        *,
        workers: int = 8,
        max_sessions: int = 256,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        keepalive: float = 30.0,
        max_reply_bytes: int = MAX_REPLY_BYTES,
        connect: Callable[..., Any] = manager.connect,
    ) -> None:
        if workers < 1 or max_sessions < 1:
            raise ValueError("workers and max_sessions must be at least 1")
        self.workers = workers
        self.max_sessions = max_sessions
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.max_reply_bytes = max_reply_bytes
        self._connect = connect
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        #: Sessions opened so far (reconnects included), for the collectors' health metrics.
        self.connects = 0

    # Public ----------------------------------------------------------------

    async def capabilities(self, device: Device) -> frozenset[str]:
        """The capabilities ``device``'s server advertised in its hello (opens the session)."""
        return await self._call(device, lambda m: frozenset(str(c) for c in m.server_capabilities))

    async def get(self, device: Device, filters: Sequence[str]) -> Element:
        """Send one ``<get>`` with these subtree filters; return the reply's ``<data>``.

        Raises:
            DeviceUnreachable: no connection, login timed out, the session
                dropped, or no reply within :attr:`timeout`.
            DeviceRejected: login refused, unknown host key, or an ``<rpc-error>``.
            DeviceError: the reply was refused (too large, a DTD, malformed).
            ConfigError: the device has no ``netconf`` section.
        """
        (outcome,) = await self.get_many(device, [filters])
        if isinstance(outcome, DeviceError):
            raise outcome
        return outcome

    async def get_many(
        self, device: Device, requests: Sequence[Sequence[str]]
    ) -> list[Element | DeviceError]:
        """Send several ``<get>`` requests at once (pipelined) and collect their replies.

        ncclient's session thread sends a queued request only between reads, so
        pipelining costs one such wait for the lot instead of one per request.

        Args:
            device: the device to ask.
            requests: each request's subtree filters.

        Returns:
            Per request, in order: the reply's ``<data>``, or the
            :class:`DeviceRejected` (``<rpc-error>``) or :class:`DeviceError`
            (refused reply) it came back as; the other requests still count.

        Raises:
            DeviceUnreachable, DeviceRejected, DeviceError, ConfigError: the
                session could not be opened or failed under the requests (as
                for :meth:`get`), or no reply came within :attr:`timeout`.
        """
        outcomes = await self._call(device, lambda m: self._get_many(m, requests))
        return [
            o if not isinstance(o, Exception) else _as_device_error(device, o, self.timeout)
            for o in outcomes
        ]

    def open_sessions(self) -> int:
        """How many sessions are open now."""
        with self._slots_lock:
            return sum(s.manager is not None for s in self._slots.values())

    def close(self, device: str) -> None:
        """Close ``device``'s session, if open (waits for a call in progress on it)."""
        with self._slots_lock:
            slot = self._slots.get(device)
        if slot is not None:
            with slot.lock:
                self._drop(slot, polite=True)

    def close_all(self) -> None:
        """Close every session and stop the threads. The pool can be used again afterwards."""
        with self._slots_lock:
            names = list(self._slots)
        for name in names:
            self.close(name)
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """:meth:`close_all` without blocking the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close_all)

    async def __aenter__(self) -> NetconfSessionPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # Internals -------------------------------------------------------------

    async def _call(self, device: Device, op: Callable[[Any], T]) -> T:
        if device.netconf is None:
            raise ConfigError(
                f"{device.name}: no netconf section in the inventory "
                "(add netconf: {username: ..., password: ...})"
            )
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="autonoc-netconf")
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, self._run_locked, device, op
        )
        # The thread's own timeouts end it; this guard only keeps a wedged library
        # call from holding the poll. It also counts time spent waiting for a free
        # worker, so callers keep their concurrency near ``workers``.
        guard = self.connect_timeout + self.timeout + 5.0
        try:
            return await asyncio.wait_for(future, guard)
        except TimeoutError:
            raise DeviceUnreachable(
                device.name, f"NETCONF call to {_address(device)} took over {guard:g} s"
            ) from None

    def _run_locked(self, device: Device, op: Callable[[Any], T]) -> T:
        with self._slots_lock:
            slot = self._slots.setdefault(device.name, _Slot())
        with slot.lock, _map_netconf_errors(device, self.timeout):
            mgr = self._ensure(device, slot)
            try:
                return op(mgr)
            except _RpcErrorReply:
                raise  # the device said no; the session is fine
            except _Refused as refused:
                self._drop(slot, polite=False)
                return refused.outcomes  # type: ignore[return-value]
            except BaseException:
                self._drop(slot, polite=False)
                raise

    def _ensure(self, device: Device, slot: _Slot) -> Any:
        mgr = slot.manager
        if mgr is not None and not _alive(mgr):
            log.info("netconf_session_lost", device=device.name)
            self._drop(slot, polite=False)
            mgr = None
        if mgr is None:
            self._make_room(slot)
            mgr = self._connect(**self._connect_args(device))
            mgr.async_mode = True  # replies come back raw: this module parses them
            slot.manager = mgr
            with self._slots_lock:
                self.connects += 1
            log.debug("netconf_session_opened", device=device.name, address=_address(device))
        slot.last_used = time.monotonic()
        return mgr

    def _connect_args(self, device: Device) -> dict[str, Any]:
        return connect_args(
            device,
            connect_timeout=self.connect_timeout,
            timeout=self.timeout,
            keepalive=self.keepalive,
        )

    def _make_room(self, keep: _Slot) -> None:
        """Close least recently used idle sessions until one more fits."""
        with self._slots_lock:
            open_slots = [
                s for s in self._slots.values() if s.manager is not None and s is not keep
            ]
        excess = len(open_slots) + 1 - self.max_sessions
        for slot in sorted(open_slots, key=lambda s: s.last_used):
            if excess <= 0:
                return
            if slot.lock.acquire(blocking=False):
                try:
                    self._drop(slot, polite=True)
                finally:
                    slot.lock.release()
                excess -= 1
        if excess > 0:
            raise _PoolFull(f"{self.max_sessions} open, all in use")

    def _get_many(
        self, mgr: Any, requests: Sequence[Sequence[str]]
    ) -> list[Element | _RpcErrorReply | UnsafeReply]:
        rpcs = [mgr.get(filter=list(filters)) for filters in requests]
        deadline = time.monotonic() + self.timeout
        outcomes: list[Element | _RpcErrorReply | UnsafeReply] = []
        for rpc in rpcs:
            if not rpc.event.wait(max(0.0, deadline - time.monotonic())):
                raise _RpcTimeout
            if rpc.error is not None:
                raise rpc.error
            try:
                outcomes.append(
                    _reply_data(parse_reply(rpc.reply.xml, max_bytes=self.max_reply_bytes))
                )
            except (_RpcErrorReply, UnsafeReply) as exc:
                outcomes.append(exc)
        if any(isinstance(o, UnsafeReply) for o in outcomes):
            # A device that sends DTDs or floods is not one to keep talking to on this session.
            raise _Refused(outcomes)
        return outcomes

    def _drop(self, slot: _Slot, *, polite: bool) -> None:
        mgr, slot.manager = slot.manager, None
        if mgr is not None:
            _close_manager(mgr, polite=polite)


def connect_args(
    device: Device, *, connect_timeout: float, timeout: float, keepalive: float = 0.0
) -> dict[str, Any]:
    """``ncclient.manager.connect`` arguments for ``device`` (its secrets included: never log)."""
    creds = device.netconf
    if creds is None:
        raise ConfigError(
            f"{device.name}: no netconf section in the inventory "
            "(add netconf: {username: ..., password: ...})"
        )
    args: dict[str, Any] = {
        "host": device.mgmt.host,
        "port": device.mgmt.netconf_port,
        "username": creds.username,
        "hostkey_verify": creds.hostkey_verify,
        "allow_agent": False,
        "look_for_keys": False,
        "timeout": connect_timeout,
        "device_params": {"name": "default"},
        "manager_params": {"timeout": timeout},
    }
    if keepalive > 0:
        args["keepalive"] = keepalive
    if creds.password is not None:
        args["password"] = creds.password.get_secret_value()
    if creds.key_file is not None:
        args["key_filename"] = str(Path(creds.key_file).expanduser())
    return args


def _alive(mgr: Any) -> bool:
    if not mgr.connected:
        return False
    transport = getattr(getattr(mgr, "_session", None), "transport", None)
    return transport is None or bool(transport.is_active())


def _close_manager(mgr: Any, *, polite: bool) -> None:
    """End a session: ``<close-session>`` first when it still works, then the transport.

    Closing never fails: whatever the peer does, the socket goes.
    """
    if polite:
        with suppress(NCClientError, OSError, paramiko.SSHException):
            if mgr.connected:
                rpc = mgr.close_session()
                # ncclient drops the session on the server's answer without
                # signalling the RPC's event, so watch the session instead.
                deadline = time.monotonic() + _CLOSE_WAIT
                while mgr.connected and time.monotonic() < deadline:
                    if rpc.event.wait(0.02):
                        break
    session = getattr(mgr, "_session", None)
    if session is not None:
        with suppress(NCClientError, OSError, paramiko.SSHException):
            session.close()


_CLOSE_WAIT = 1.0

#: For other NETCONF clients in autonoc (the playbook engine): one error mapping, one parser.
map_netconf_errors = _map_netconf_errors
reply_data = _reply_data
close_manager = _close_manager
RpcErrorReply = _RpcErrorReply


# ---------------------------------------------------------------------------
# The collector


class NetconfCollector:
    """Polls OpenConfig and ietf-interfaces state; a :class:`~collectors.base.Collector`.

    One subtree-filtered ``<get>`` per requested group, built from the models
    the device advertises. Counters become rates with a :class:`RateTracker`
    the collector owns, so rates appear from the second poll on.

    A group whose models the device does not advertise gives no samples and
    a ``netconf_missing`` fact; an error ends the collection as a failed
    result that still carries the samples of the groups read before it.

    Args:
        pool: the sessions to poll through.
        clock: epoch seconds; injectable for tests (the lab's simulated clock).
    """

    name = "netconf"

    def __init__(self, pool: NetconfSessionPool, *, clock: Callable[[], float] = time.time) -> None:
        self.pool = pool
        self.rates = RateTracker()
        self._clock = clock

    async def collect(self, device: Device, request: CollectRequest) -> CollectResult:
        """Poll ``device``; failures come back as ``failed=True`` results, never raised."""
        started = time.perf_counter()
        result = CollectResult(device=device.name)
        groups = [g for g in request.groups if g in GROUPS]
        if not groups:
            return result
        try:
            modules = advertised_modules(await self.pool.capabilities(device))
            plans = {g: filters_for(g, modules) for g in groups}
            asked = [g for g in groups if plans[g][0]]
            before = self._clock()
            outcomes = await self.pool.get_many(device, [plans[g][0] for g in asked])
            # Read somewhere between the first request and the last reply: the
            # midpoint keeps successive polls comparable.
            ts = (before + self._clock()) / 2
        except (DeviceError, ConfigError) as exc:
            result.failed = True
            result.exception = exc
            log.debug("netconf_poll_failed", device=device.name, error=str(exc))
            result.elapsed_ms = (time.perf_counter() - started) * 1000
            return result
        used: set[str] = set()
        for group, outcome in zip(asked, outcomes, strict=True):
            if isinstance(outcome, DeviceError):
                # One group's model refused: the others still count, the result fails.
                result.failed = True
                result.exception = result.exception or outcome
                continue
            used.update(plans[group][1])
            mapped = samples_from_data(group, device.name, outcome, ts, self.rates)
            result.samples.extend(mapped.samples)
            result.varbinds += mapped.leaves
            result.facts.update(mapped.facts)
        if used:
            result.facts["netconf_models"] = ", ".join(sorted(used))
        missing = [g for g in groups if g not in asked]
        if missing:
            result.facts["netconf_missing"] = "; ".join(
                f"{g}: {_WANTED[g]} not advertised" for g in missing
            )
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug(
            "netconf_poll_completed",
            device=device.name,
            failed=result.failed,
            leaves=result.varbinds,
            samples=len(result.samples),
            ms=round(result.elapsed_ms, 1),
        )
        return result


_WANTED: Mapping[str, str] = {
    "interfaces": "openconfig-interfaces or ietf-interfaces",
    "system": "openconfig-system or ietf-system",
    "bgp": "openconfig-network-instance",
    "optics": "openconfig-platform, openconfig-terminal-device or openconfig-optical-amplifier",
}
