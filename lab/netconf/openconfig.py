"""OpenConfig trees for the lab's devices, by role: configuration and state.

Each ``*_tree`` function returns a ``<data>`` element (NETCONF base
namespace) whose children are OpenConfig top-level containers. With
``state=False`` it holds only ``config`` containers and list keys: the
running configuration a device starts with. With ``state=True`` it holds
only ``state`` containers and keys, which the datastore merges over running
for ``get``.

What each role serves (paths without module prefixes):

- **router**: ``interfaces/interface[name]`` (openconfig-interfaces, with
  ``subinterfaces/subinterface[0]/ipv4/addresses/address[ip]`` from
  openconfig-if-ip), ``network-instances/network-instance[DEFAULT]/protocols``
  with ``protocol[BGP]/bgp`` (global, ``neighbors/neighbor[neighbor-address]``,
  ``afi-safis/afi-safi[IPV4_UNICAST]``) and ``protocol[ISIS]/isis``
  (``interfaces/interface[interface-id]/levels/level[2]`` with
  ``afi-safi/af[IPV4,UNICAST]/config/metric`` and ``adjacencies``), and
  ``system`` (hostname, ``cpus/cpu[ALL]``, ``memory``, and the daemons as
  ``processes/process[pid]`` from openconfig-procmon).
- **transponder**: ``components/component[name]`` (openconfig-platform): one
  ``OPTICAL_CHANNEL`` per line port, named after it (``xp-a1:line1``), with
  ``optical-channel`` (openconfig-terminal-device); a ``TRANSCEIVER``
  (``xp-a1:line1-transceiver``) with its temperature; a ``PORT`` per client;
  and ``terminal-device/logical-channels/channel[index]`` with OTN state. At
  the head end of a protected wavelength, its protection switch:
  ``aps/aps-modules/aps-module[name]`` (openconfig-transport-line-protection,
  named ``aps-line1`` after the line port, with a component of that name) with
  ``config/force-to-port`` and ``state/active-path``.
- **amplifier**: ``optical-amplifier/amplifiers/amplifier[name]``
  (openconfig-optical-amplifier).
- **roadm**: a ``PORT`` component per degree with
  ``port/optical-port/state`` total input and output power
  (openconfig-transport-line-common).

Identity values carry a prefix declared on their own leaf, so a leaf stays
well-formed wherever the datastore copies it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from lxml import etree

from lab.netconf.datastore import BASE_NS
from lab.network import BgpSessionState, InterfaceState, ProcessState, SystemState
from lab.optical import AmplifierState, ClientPortState, LinePortState, RoadmState

__all__ = [
    "AMP_TYPES",
    "APS_FORCE",
    "APS_TYPES",
    "BGP_TYPES",
    "IANA_IF_TYPE",
    "ISIS_TYPES",
    "LIST_KEYS",
    "NI_TYPES",
    "OC_AMPLIFIER_NS",
    "OC_INTERFACES_NS",
    "OC_IP_NS",
    "OC_LINE_COMMON_NS",
    "OC_LINE_PROTECTION_NS",
    "OC_NETWORK_INSTANCE_NS",
    "OC_PLATFORM_NS",
    "OC_SYSTEM_NS",
    "OC_TERMINAL_DEVICE_NS",
    "OC_TRANSCEIVER_NS",
    "PLATFORM_TYPES",
    "POLICY_TYPES",
    "TRANSPORT_TYPES",
    "ApsModule",
    "RouterFacts",
    "amplifier_tree",
    "aps_module_name",
    "esnr_db",
    "frequency_mhz",
    "identity_name",
    "roadm_tree",
    "router_tree",
    "transceiver_name",
    "transponder_tree",
]

Element = Any  # an lxml.etree._Element

OC_INTERFACES_NS = "http://openconfig.net/yang/interfaces"
OC_IP_NS = "http://openconfig.net/yang/interfaces/ip"
OC_NETWORK_INSTANCE_NS = "http://openconfig.net/yang/network-instance"
OC_SYSTEM_NS = "http://openconfig.net/yang/system"
OC_PLATFORM_NS = "http://openconfig.net/yang/platform"
OC_TRANSCEIVER_NS = "http://openconfig.net/yang/platform/transceiver"
OC_TERMINAL_DEVICE_NS = "http://openconfig.net/yang/terminal-device"
OC_AMPLIFIER_NS = "http://openconfig.net/yang/optical-amplfier"
"""Sic: openconfig-optical-amplifier's namespace has carried this typo since its first release."""
OC_LINE_COMMON_NS = "http://openconfig.net/yang/transport-line-common"
OC_LINE_PROTECTION_NS = "http://openconfig.net/yang/optical-transport-line-protection"

# Identity modules as (prefix, namespace).
IANA_IF_TYPE = ("ianaift", "urn:ietf:params:xml:ns:yang:iana-if-type")
NI_TYPES = ("oc-ni-types", "http://openconfig.net/yang/network-instance-types")
POLICY_TYPES = ("oc-pol-types", "http://openconfig.net/yang/policy-types")
BGP_TYPES = ("oc-bgp-types", "http://openconfig.net/yang/bgp-types")
ISIS_TYPES = ("oc-isis-types", "http://openconfig.net/yang/isis-types")
PLATFORM_TYPES = ("oc-platform-types", "http://openconfig.net/yang/platform-types")
TRANSPORT_TYPES = ("oc-opt-types", "http://openconfig.net/yang/transport-types")
AMP_TYPES = ("oc-opt-amp", OC_AMPLIFIER_NS)
APS_TYPES = ("oc-line-protect", OC_LINE_PROTECTION_NS)
APS_FORCE = ("NONE", "PRIMARY", "SECONDARY")
"""openconfig-transport-line-protection's ``force-to-port`` enumeration."""

DEFAULT_INSTANCE = "DEFAULT"
ISIS_LEVEL = "2"
PREFIX_LENGTH = 30
"""The lab numbers every IP link from a /30 (see :mod:`lab.network`)."""
_LOOPBACK_TYPE = 24  # IANAifType softwareLoopback
_STD_NORMAL = NormalDist()


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


LIST_KEYS: Mapping[str, tuple[str, ...]] = {
    _q(OC_INTERFACES_NS, "interface"): ("name",),
    _q(OC_INTERFACES_NS, "subinterface"): ("index",),
    _q(OC_IP_NS, "address"): ("ip",),
    _q(OC_NETWORK_INSTANCE_NS, "network-instance"): ("name",),
    _q(OC_NETWORK_INSTANCE_NS, "protocol"): ("identifier", "name"),
    _q(OC_NETWORK_INSTANCE_NS, "neighbor"): ("neighbor-address",),
    # Not "afi-safi": the datastore keys lists by element name alone, and IS-IS
    # levels have a keyless afi-safi container of that name. BGP neighbours carry
    # one afi-safi (IPV4_UNICAST), so matching it by name alone is enough.
    # The IS-IS interface list; the instance's own interfaces list is not served.
    _q(OC_NETWORK_INSTANCE_NS, "interface"): ("interface-id",),
    _q(OC_NETWORK_INSTANCE_NS, "level"): ("level-number",),
    _q(OC_NETWORK_INSTANCE_NS, "af"): ("afi-name", "safi-name"),
    _q(OC_NETWORK_INSTANCE_NS, "adjacency"): ("system-id",),
    _q(OC_SYSTEM_NS, "cpu"): ("index",),
    _q(OC_SYSTEM_NS, "process"): ("pid",),
    _q(OC_PLATFORM_NS, "component"): ("name",),
    _q(OC_TERMINAL_DEVICE_NS, "channel"): ("index",),
    _q(OC_TERMINAL_DEVICE_NS, "assignment"): ("index",),
    _q(OC_AMPLIFIER_NS, "amplifier"): ("name",),
    _q(OC_LINE_PROTECTION_NS, "aps-module"): ("name",),
}
"""Key leaves of every list entry served, by Clark name of the entry."""


# Building blocks -------------------------------------------------------------------


class _Ns:
    """Makes elements in one namespace: ``IF(parent, "name", "eth1")``."""

    __slots__ = ("ns",)

    def __init__(self, ns: str) -> None:
        self.ns = ns

    def __call__(self, parent: Element, local: str, text: str | None = None) -> Element:
        el = etree.SubElement(parent, f"{{{self.ns}}}{local}")
        if text is not None:
            el.text = text
        return el

    def top(self, data: Element, local: str) -> Element:
        """A top-level container declaring this namespace as its default."""
        return etree.SubElement(data, f"{{{self.ns}}}{local}", nsmap={None: self.ns})

    def ident(self, parent: Element, local: str, module: tuple[str, str], value: str) -> Element:
        """An identityref leaf: ``prefix:value`` with the prefix declared on the leaf.

        An identity of the leaf's own module goes unprefixed: the leaf's default
        namespace already names that module (RFC 7950 section 9.10.3).
        """
        prefix, uri = module
        if uri == self.ns:
            return self(parent, local, value)
        el = etree.SubElement(parent, f"{{{self.ns}}}{local}", nsmap={prefix: uri})
        el.text = f"{prefix}:{value}"
        return el

    def aug(self, parent: Element, local: str) -> Element:
        """An augmenting container, declaring this namespace as its default."""
        return etree.SubElement(parent, f"{{{self.ns}}}{local}", nsmap={None: self.ns})

    def instant(self, parent: Element, local: str, value: float, digits: int = 2) -> None:
        """An OpenConfig statistics container with just its ``instant`` leaf."""
        self(self(parent, local), "instant", _dec(value, digits))


IF = _Ns(OC_INTERFACES_NS)
IP = _Ns(OC_IP_NS)
NI = _Ns(OC_NETWORK_INSTANCE_NS)
SYS = _Ns(OC_SYSTEM_NS)
PLAT = _Ns(OC_PLATFORM_NS)
XCVR = _Ns(OC_TRANSCEIVER_NS)
TERM = _Ns(OC_TERMINAL_DEVICE_NS)
AMP = _Ns(OC_AMPLIFIER_NS)
LINE = _Ns(OC_LINE_COMMON_NS)
APS = _Ns(OC_LINE_PROTECTION_NS)


def _data() -> Element:
    return etree.Element(f"{{{BASE_NS}}}data", nsmap={None: BASE_NS})


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _dec(value: float, digits: int = 2) -> str:
    """A decimal64 with ``digits`` fraction digits; non-finite values are clamped."""
    if not math.isfinite(value):
        value = -99.0 if value < 0 else 99.0
    text = f"{value:.{digits}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0.0 else text


def _updown(up: bool) -> str:
    return "UP" if up else "DOWN"


def identity_name(text: str | None) -> str:
    """The local part of an identityref value: ``oc-pol-types:BGP`` → ``BGP``."""
    return (text or "").strip().rpartition(":")[2]


def frequency_mhz(thz: float) -> int:
    """OpenConfig frequencies are integer MHz."""
    return round(thz * 1e6)


def esnr_db(pre_fec_ber: float) -> float:
    """Effective SNR of a DP-16QAM signal from its pre-FEC BER.

    Inverts BER = 3/8 · erfc(√(SNR/10)), the relation :mod:`lab.optical.physics`
    uses, so ESNR, BER and Q always agree.
    """
    y = min(max(8.0 * pre_fec_ber / 3.0, 1e-300), 1.0 - 1e-12)
    erfcinv = -_STD_NORMAL.inv_cdf(y / 2.0) / math.sqrt(2.0)
    snr = 10.0 * erfcinv * erfcinv
    # No signal (BER 0.5) reads 0 dB, as modules report it, not minus hundreds.
    return max(0.0, 10.0 * math.log10(snr)) if snr > 0.0 else 0.0


def transceiver_name(line_port: str) -> str:
    """The TRANSCEIVER component holding line port ``line_port``'s module."""
    return f"{line_port}-transceiver"


def aps_module_name(line_port: str) -> str:
    """The protection switch of line port ``line_port``: ``xp-a1:line1`` → ``aps-line1``."""
    return f"aps-{line_port.rpartition(':')[2]}"


@dataclass(frozen=True, slots=True)
class ApsModule:
    """A wavelength's 1:1 protection switch at its head-end line port.

    ``force_to_port`` is the configured ``NONE``, ``PRIMARY`` or ``SECONDARY``
    (switching is manual: NONE keeps the working path); ``secondary`` says the
    light takes the protection path now.
    """

    line_port: str
    force_to_port: str
    secondary: bool

    @property
    def name(self) -> str:
        return aps_module_name(self.line_port)


# Routers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouterFacts:
    """What a router's trees need beyond its interfaces and sessions.

    ``asn`` is None for a router with no BGP session; ``router_id`` is its
    loopback address; ``system_ids`` holds every router's IS-IS system ID by
    name; ``boot_ns`` is the boot time in nanoseconds since the epoch.
    """

    hostname: str
    asn: int | None
    router_id: str
    system_ids: Mapping[str, str]
    boot_ns: int


def router_tree(
    facts: RouterFacts,
    interfaces: Sequence[InterfaceState],
    sessions: Sequence[BgpSessionState],
    system: SystemState | None,
    *,
    state: bool,
    processes: Sequence[ProcessState] = (),
) -> Element:
    """A router's interfaces, default network instance (BGP, IS-IS) and system.

    ``system`` and ``processes`` are only read with ``state=True``.
    """
    data = _data()
    _interfaces(data, interfaces, facts, state)
    _network_instance(data, interfaces, sessions, facts, state)
    sys_root = SYS.top(data, "system")
    box = SYS(sys_root, "state" if state else "config")
    SYS(box, "hostname", facts.hostname)
    if state and system is not None:
        SYS(box, "boot-time", str(facts.boot_ns))
        cpu = SYS(SYS(sys_root, "cpus"), "cpu")
        SYS(cpu, "index", "ALL")
        cpu_state = SYS(cpu, "state")
        SYS(cpu_state, "index", "ALL")
        SYS(SYS(cpu_state, "total"), "instant", str(round(system.cpu_pct)))
        mem = SYS(SYS(sys_root, "memory"), "state")
        SYS(mem, "physical", str(system.mem_total_kb * 1024))
        SYS(mem, "used", str(system.mem_used_kb * 1024))
        SYS(mem, "free", str((system.mem_total_kb - system.mem_used_kb) * 1024))
        _processes(sys_root, processes, system.mem_total_kb * 1024)
    return data


def _processes(sys_root: Element, processes: Sequence[ProcessState], mem_bytes: int) -> None:
    """``system/processes`` (openconfig-procmon, used by openconfig-system): state only."""
    if not processes:
        return
    table = SYS(sys_root, "processes")
    for proc in processes:
        entry = SYS(table, "process")
        SYS(entry, "pid", str(proc.pid))
        box = SYS(entry, "state")
        SYS(box, "pid", str(proc.pid))
        SYS(box, "name", proc.name)
        SYS(box, "start-time", str(round(proc.start_time * 1e9)))
        # oc-types:percentage is a uint8 0..100.
        SYS(box, "cpu-utilization", str(min(100, max(0, round(proc.cpu_pct)))))
        SYS(box, "memory-usage", str(proc.mem_bytes))
        SYS(box, "memory-utilization", str(min(100, round(100 * proc.mem_bytes / mem_bytes))))


def _interfaces(
    data: Element, interfaces: Sequence[InterfaceState], facts: RouterFacts, state: bool
) -> None:
    box_name = "state" if state else "config"
    root = IF.top(data, "interfaces")
    for intf in interfaces:
        loopback = intf.if_type == _LOOPBACK_TYPE
        entry = IF(root, "interface")
        IF(entry, "name", intf.name)
        box = IF(entry, box_name)
        IF(box, "name", intf.name)
        IF.ident(box, "type", IANA_IF_TYPE, "softwareLoopback" if loopback else "ethernetCsmacd")
        if not loopback:  # the loopback's MTU (65536) does not fit OpenConfig's uint16
            IF(box, "mtu", str(intf.mtu))
        IF(box, "description", intf.alias)
        IF(box, "enabled", _bool(intf.admin_up))
        if state:
            IF(box, "ifindex", str(intf.if_index))
            IF(box, "admin-status", _updown(intf.admin_up))
            IF(box, "oper-status", _updown(intf.oper_up))
            IF(box, "last-change", str(facts.boot_ns + intf.last_change * 10_000_000))
            counters = IF(box, "counters")
            for leaf, value in (
                ("in-octets", intf.in_octets),
                ("in-unicast-pkts", intf.in_ucast_pkts),
                ("in-discards", intf.in_discards),
                ("in-errors", intf.in_errors),
                ("out-octets", intf.out_octets),
                ("out-unicast-pkts", intf.out_ucast_pkts),
                ("out-discards", intf.out_discards),
                ("out-errors", intf.out_errors),
            ):
                IF(counters, leaf, str(value))
        if intf.address is not None:
            sub = IF(IF(entry, "subinterfaces"), "subinterface")
            IF(sub, "index", "0")
            sub_box = IF(sub, box_name)
            IF(sub_box, "index", "0")
            if state:
                IF(sub_box, "oper-status", _updown(intf.oper_up))
            address = IP(IP(IP.aug(sub, "ipv4"), "addresses"), "address")
            IP(address, "ip", intf.address)
            addr_box = IP(address, box_name)
            IP(addr_box, "ip", intf.address)
            IP(addr_box, "prefix-length", str(PREFIX_LENGTH))


def _protocol(protocols: Element, name: str, state: bool) -> Element:
    proto = NI(protocols, "protocol")
    NI.ident(proto, "identifier", POLICY_TYPES, name)
    NI(proto, "name", name)
    box = NI(proto, "state" if state else "config")
    NI.ident(box, "identifier", POLICY_TYPES, name)
    NI(box, "name", name)
    return proto


def _network_instance(
    data: Element,
    interfaces: Sequence[InterfaceState],
    sessions: Sequence[BgpSessionState],
    facts: RouterFacts,
    state: bool,
) -> None:
    box_name = "state" if state else "config"
    instance = NI(NI.top(data, "network-instances"), "network-instance")
    NI(instance, "name", DEFAULT_INSTANCE)
    box = NI(instance, box_name)
    NI(box, "name", DEFAULT_INSTANCE)
    NI.ident(box, "type", NI_TYPES, "DEFAULT_INSTANCE")
    protocols = NI(instance, "protocols")
    if sessions:
        _bgp(NI(_protocol(protocols, "BGP", state), "bgp"), sessions, facts, state)
    links = [i for i in interfaces if i.igp_metric is not None]
    if links:
        _isis(NI(_protocol(protocols, "ISIS", state), "isis"), links, sessions, facts, state)


def _bgp(
    bgp: Element, sessions: Sequence[BgpSessionState], facts: RouterFacts, state: bool
) -> None:
    box_name = "state" if state else "config"
    glob = NI(NI(bgp, "global"), box_name)
    if facts.asn is not None:
        NI(glob, "as", str(facts.asn))
    NI(glob, "router-id", facts.router_id)
    neighbors = NI(bgp, "neighbors")
    for s in sessions:
        neighbor = NI(neighbors, "neighbor")
        NI(neighbor, "neighbor-address", s.peer_address)
        box = NI(neighbor, box_name)
        NI(box, "neighbor-address", s.peer_address)
        NI(box, "peer-as", str(s.peer_as))
        NI(box, "enabled", _bool(s.enabled))
        NI(box, "description", f"{s.peer_device} via {s.ifname}")
        if state:
            NI(box, "session-state", s.state.upper())
            NI(box, "established-transitions", str(s.transitions))
            if s.established_since is not None:
                NI(box, "last-established", str(round(s.established_since * 1e9)))
            messages = NI(box, "messages")
            NI(NI(messages, "sent"), "UPDATE", str(s.out_updates))
            NI(NI(messages, "received"), "UPDATE", str(s.in_updates))
        afi_safi = NI(NI(neighbor, "afi-safis"), "afi-safi")
        NI.ident(afi_safi, "afi-safi-name", BGP_TYPES, "IPV4_UNICAST")
        af_box = NI(afi_safi, box_name)
        NI.ident(af_box, "afi-safi-name", BGP_TYPES, "IPV4_UNICAST")
        NI(af_box, "enabled", "true")
        if state:
            prefixes = NI(af_box, "prefixes")
            NI(prefixes, "received", str(s.prefixes_received))
            NI(prefixes, "sent", str(s.prefixes_sent))
            NI(prefixes, "installed", str(s.prefixes_received))


def _isis(
    isis: Element,
    links: Sequence[InterfaceState],
    sessions: Sequence[BgpSessionState],
    facts: RouterFacts,
    state: bool,
) -> None:
    box_name = "state" if state else "config"
    glob = NI(NI(isis, "global"), box_name)
    NI(glob, "net", f"49.0001.{facts.system_ids[facts.hostname]}.00")
    NI(glob, "level-capability", "LEVEL_2")
    peer_address = {s.ifname: s.peer_address for s in sessions}
    interfaces = NI(isis, "interfaces")
    for intf in links:
        entry = NI(interfaces, "interface")
        NI(entry, "interface-id", intf.name)
        box = NI(entry, box_name)
        NI(box, "interface-id", intf.name)
        NI(box, "enabled", "true")
        NI(box, "circuit-type", "POINT_TO_POINT")
        level = NI(NI(entry, "levels"), "level")
        NI(level, "level-number", ISIS_LEVEL)
        level_box = NI(level, box_name)
        NI(level_box, "level-number", ISIS_LEVEL)
        NI(level_box, "enabled", "true")
        if state and intf.peer is not None:
            system_id = facts.system_ids.get(intf.peer[0], "0000.0000.0000")
            adjacency = NI(NI(level, "adjacencies"), "adjacency")
            NI(adjacency, "system-id", system_id)
            adj_box = NI(adjacency, "state")
            NI(adj_box, "system-id", system_id)
            if intf.name in peer_address:
                NI(adj_box, "neighbor-ipv4-address", peer_address[intf.name])
            NI(adj_box, "adjacency-state", _updown(intf.igp_up))
        af = NI(NI(level, "afi-safi"), "af")
        NI.ident(af, "afi-name", ISIS_TYPES, "IPV4")
        NI.ident(af, "safi-name", ISIS_TYPES, "UNICAST")
        af_box = NI(af, box_name)
        NI.ident(af_box, "afi-name", ISIS_TYPES, "IPV4")
        NI.ident(af_box, "safi-name", ISIS_TYPES, "UNICAST")
        NI(af_box, "metric", str(intf.igp_metric))


# Transponders ---------------------------------------------------------------------------


def transponder_tree(
    line_ports: Sequence[LinePortState],
    clients: Sequence[ClientPortState],
    tx_targets: Mapping[str, float],
    fec_blocks: Mapping[str, int],
    *,
    state: bool,
    aps: Sequence[ApsModule] = (),
) -> Element:
    """A transponder's platform components, terminal-device logical channels and
    protection switches.

    ``tx_targets`` is each line port's configured output power;
    ``fec_blocks`` its uncorrectable-block counter (read with ``state=True``).
    Logical channel ``n`` is the OTN signal of the ``n``-th line port. ``aps``
    holds a protection switch for each line port that heads a protected wavelength.
    """
    box_name = "state" if state else "config"
    data = _data()
    components = PLAT.top(data, "components")
    for port in line_ports:
        comp = PLAT(components, "component")
        PLAT(comp, "name", port.name)
        box = PLAT(comp, box_name)
        PLAT(box, "name", port.name)
        if state:
            PLAT.ident(box, "type", TRANSPORT_TYPES, "OPTICAL_CHANNEL")
            PLAT.ident(box, "oper-status", PLATFORM_TYPES, "ACTIVE" if port.oper_up else "INACTIVE")
        och = TERM(TERM.aug(comp, "optical-channel"), box_name)
        if port.frequency_thz is not None:
            TERM(och, "frequency", str(frequency_mhz(port.frequency_thz)))
        TERM(och, "target-output-power", _dec(tx_targets[port.name]))
        TERM(och, "operational-mode", "1")
        if state:
            TERM.instant(och, "output-power", port.tx_power_dbm)
            TERM.instant(och, "input-power", port.rx_power_dbm)
            TERM.instant(och, "laser-bias-current", port.laser_bias_ma)
            TERM.instant(och, "chromatic-dispersion", port.cd_ps_nm)
            TERM.instant(och, "osnr", port.osnr_db)

        xcvr = PLAT(components, "component")
        PLAT(xcvr, "name", transceiver_name(port.name))
        xbox = PLAT(xcvr, box_name)
        PLAT(xbox, "name", transceiver_name(port.name))
        if state:
            PLAT.ident(xbox, "type", PLATFORM_TYPES, "TRANSCEIVER")
            PLAT.ident(xbox, "oper-status", PLATFORM_TYPES, "ACTIVE")
            PLAT.instant(xbox, "temperature", port.module_temp_c, digits=1)
            xstate = XCVR(XCVR.aug(xcvr, "transceiver"), "state")
            XCVR(xstate, "present", "PRESENT")
            XCVR.ident(xstate, "form-factor", TRANSPORT_TYPES, "QSFP56_DD_TYPE1")
    for client in clients:
        comp = PLAT(components, "component")
        PLAT(comp, "name", client.name)
        box = PLAT(comp, box_name)
        PLAT(box, "name", client.name)
        if state:
            PLAT.ident(box, "type", PLATFORM_TYPES, "PORT")
            PLAT.ident(
                box, "oper-status", PLATFORM_TYPES, "ACTIVE" if client.oper_up else "INACTIVE"
            )

    for module in aps:
        comp = PLAT(components, "component")
        PLAT(comp, "name", module.name)
        box = PLAT(comp, box_name)
        PLAT(box, "name", module.name)
        if state:
            PLAT(box, "description", f"1:1 protection switch of {module.line_port}")
            PLAT.ident(box, "oper-status", PLATFORM_TYPES, "ACTIVE")

    channels = TERM(TERM.top(data, "terminal-device"), "logical-channels")
    for index, port in enumerate(line_ports, start=1):
        channel = TERM(channels, "channel")
        TERM(channel, "index", str(index))
        box = TERM(channel, box_name)
        TERM(box, "index", str(index))
        TERM(box, "description", f"400ZR OTN on {port.name}")
        TERM(box, "admin-state", "ENABLED")
        TERM.ident(box, "logical-channel-type", TRANSPORT_TYPES, "PROT_OTN")
        if state:
            TERM(box, "link-state", _updown(port.oper_up))
            otn = TERM(TERM(channel, "otn"), "state")
            TERM.instant(otn, "pre-fec-ber", port.pre_fec_ber, digits=18)
            TERM.instant(otn, "q-value", port.q_db)
            TERM.instant(otn, "esnr", esnr_db(port.pre_fec_ber))
            TERM(otn, "fec-uncorrectable-blocks", str(fec_blocks.get(port.name, 0)))
        assignment = TERM(TERM(channel, "logical-channel-assignments"), "assignment")
        TERM(assignment, "index", "1")
        a_box = TERM(assignment, box_name)
        TERM(a_box, "index", "1")
        TERM(a_box, "assignment-type", "OPTICAL_CHANNEL")
        TERM(a_box, "optical-channel", port.name)
        TERM(a_box, "allocation", "400")
    if aps:
        _aps(data, aps, state)
    return data


def _aps(data: Element, modules: Sequence[ApsModule], state: bool) -> None:
    """openconfig-transport-line-protection: manual, non-revertive 1:1 switches."""
    table = APS(APS.top(data, "aps"), "aps-modules")
    for module in modules:
        entry = APS(table, "aps-module")
        APS(entry, "name", module.name)
        box = APS(entry, "state" if state else "config")
        APS(box, "name", module.name)
        APS(box, "revertive", "false")
        APS(box, "force-to-port", module.force_to_port)
        if state:
            APS.ident(box, "active-path", APS_TYPES, "SECONDARY" if module.secondary else "PRIMARY")


# Amplifiers and ROADMs --------------------------------------------------------------------


def amplifier_tree(amp: AmplifierState, *, state: bool) -> Element:
    """One EDFA in constant-gain mode; ``target-gain`` is its knob."""
    data = _data()
    entry = AMP(AMP(AMP.top(data, "optical-amplifier"), "amplifiers"), "amplifier")
    AMP(entry, "name", amp.name)
    box = AMP(entry, "state" if state else "config")
    AMP(box, "name", amp.name)
    AMP.ident(box, "type", AMP_TYPES, "EDFA")
    AMP(box, "target-gain", _dec(amp.target_gain_db))
    AMP.ident(box, "amp-mode", AMP_TYPES, "CONSTANT_GAIN")
    AMP(box, "enabled", "true")
    if state:
        AMP(box, "min-gain", _dec(amp.min_gain_db))
        AMP(box, "max-gain", _dec(amp.max_gain_db))
        AMP(box, "max-output-power", _dec(amp.max_output_dbm))
        AMP.instant(box, "actual-gain", amp.gain_db)
        AMP.instant(box, "actual-gain-tilt", amp.tilt_db)
        AMP.instant(box, "input-power-total", amp.input_power_dbm)
        AMP.instant(box, "output-power-total", amp.output_power_dbm)
        AMP.instant(box, "laser-bias-current", amp.pump_current_ma)
    return data


def roadm_tree(roadm: RoadmState, *, state: bool) -> Element:
    """A ROADM's degrees as PORT components with total line power in and out."""
    data = _data()
    components = PLAT.top(data, "components")
    for degree in roadm.degrees:
        comp = PLAT(components, "component")
        PLAT(comp, "name", degree.name)
        box = PLAT(comp, "state" if state else "config")
        PLAT(box, "name", degree.name)
        if state:
            PLAT.ident(box, "type", PLATFORM_TYPES, "PORT")
            PLAT(box, "description", f"line degree toward {degree.toward}")
            PLAT.ident(box, "oper-status", PLATFORM_TYPES, "ACTIVE")
            port_state = LINE(LINE.aug(PLAT(comp, "port"), "optical-port"), "state")
            LINE.instant(port_state, "input-power", degree.input_power_dbm)
            LINE.instant(port_state, "output-power", degree.output_power_dbm)
    return data
