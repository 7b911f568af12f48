"""The lab's living network: routers, IP links on DWDM wavelengths, traffic, BGP and IGP.

No sockets: only state and time. A :class:`LabNetwork` is built from a
:class:`lab.topology.Topology` and evolves with its clock (epoch seconds; a
:class:`SimClock` runs it faster than the wall clock, a fake clock drives
tests).

How it hangs together:

- **Optical layer** (:class:`lab.optical.OpticalNetwork`): spans, EDFAs,
  ROADMs, transponders; a link budget gives each line port its rx power,
  OSNR and pre-FEC BER. An IP link that rides a wavelength is up only while
  both line ports see light and the FEC can still frame the signal; above the
  FEC limit, uncorrectable blocks show as input errors on the router ports.
- **IP layer**: an interface is up when both ends are admin up, nothing has
  failed it, and its wavelength (if any) is up. An IGP adjacency needs the
  link up and the same MTU at both ends; SPF with ECMP over the adjacencies
  routes the traffic demands between PE routers. eBGP runs on every IP link
  between the interface addresses (one AS per router, as in RFC 7938).
- **Protection**: a wavelength with a protection path switches to it only
  by hand (:meth:`LabNetwork.set_protection`), so a playbook can restore an
  IP link whose working fibre is cut.
- **Processes**: each router runs a few daemons (:data:`PROCESSES`) that
  share its CPU and memory; a runaway one pins the CPU until it is restarted
  (:meth:`LabNetwork.restart_process`).
- **Traffic**: each demand follows a daily curve (trough at 04:00 UTC, peak
  at 16:00) with a little deterministic noise. A link that is offered more
  than its capacity drops the excess (output discards) and every demand
  crossing it loses its share, so "service restored" is measurable: see
  :meth:`LabNetwork.health`.

State advances lazily: every query first integrates the counters from the
last instant to now in steps of at most :data:`STEP_S` simulated seconds, so
counters are exact integrals of the rates, monotonic, and cheap to read.
Thread-safe: one re-entrant lock guards everything (the SNMP and NETCONF
servers read from their event loop while faults are injected from others).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import SecretStr
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from autonoc.core.errors import LabError
from autonoc.core.inventory import (
    BgpSession,
    Device,
    Endpoint,
    Inventory,
    Link,
    LinkKind,
    Mgmt,
    Role,
    Service,
    SnmpV2c,
    Span,
    Wavelength,
)
from lab.optical import OpticalNetwork, OpticalSnapshot
from lab.optical import physics as ph
from lab.topology import PRESETS, DemandSpec, Topology

__all__ = [
    "COUNTER32_MODULUS",
    "DEFAULT_RUNAWAY_PROCESS",
    "PRESETS",
    "PROCESSES",
    "STEP_S",
    "BgpSessionState",
    "DemandState",
    "DeviceInfo",
    "Event",
    "Health",
    "InterfaceState",
    "LabNetwork",
    "ProcessState",
    "SimClock",
    "SystemState",
    "counter32",
]

COUNTER32_MODULUS = 2**32
STEP_S = 5.0
"""The longest integration step, in simulated seconds."""
MIN_STEP_S = 0.5
"""Rates are recomputed at most this often (simulated seconds) unless something changes."""
IGP_MAX_METRIC = 16_777_214
"""IS-IS wide-metric maximum: a link at this metric is used only when nothing else is left."""
LOSS_THRESHOLD = 0.01
"""A demand losing more than this fraction is not delivered (see :meth:`LabNetwork.health`)."""
UTILISATION_LIMIT = 0.9
CONTROL_BPS = 64_000.0
"""Routing-protocol chatter on every up IP link, each way."""
_TWO_PI = 2.0 * math.pi
_ETHERNET_CSMACD = 6
_SOFTWARE_LOOPBACK = 24
_PEN = (1, 3, 6, 1, 4, 1, 32473)  # RFC 5612 documentation PEN: no real vendor
_MEM_TOTAL_KB = 16 * 1024 * 1024
PROCESSES: tuple[tuple[str, float, float], ...] = (
    ("bgpd", 0.30, 0.060),
    ("isisd", 0.08, 0.015),
    ("snmpd", 0.06, 0.006),
    ("netconfd", 0.04, 0.010),
    ("telemetryd", 0.12, 0.020),
)
"""Every router's daemons: name, share of the router's normal CPU load, share of the
memory in use. The rest of the load is the kernel and forwarding, which no table lists."""
DEFAULT_RUNAWAY_PROCESS = "telemetryd"
"""The process a ``cpu_runaway`` fault pins when its target names none."""
RUNAWAY_CPU_PCT = 97.0
RUNAWAY_LEAK_FRACTION = 0.15
"""A runaway process leaks this much of the router's memory over :data:`RUNAWAY_LEAK_S`."""
RUNAWAY_LEAK_S = 600.0
_PID_STRIDE = 23  # other processes come and go between two restarts


def counter32(value: int) -> int:
    """The Counter32 view of a 64-bit counter: it wraps at 2**32."""
    return value % COUNTER32_MODULUS


class SimClock:
    """Simulated epoch seconds running ``speed`` times faster than the wall clock.

    Starts at the wall clock's now (or ``start``); :meth:`set_speed` changes
    the pace from this instant on without a jump.
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if not 0.0 < speed <= 10_000.0:
            raise LabError(f"speed must be in (0, 10000], got {speed}")
        self._lock = threading.Lock()
        self._wall0 = time.time()
        self._sim0 = self._wall0 if start is None else start
        self.speed = speed

    def __call__(self) -> float:
        with self._lock:
            return self._sim0 + (time.time() - self._wall0) * self.speed

    def set_speed(self, speed: float) -> None:
        if not 0.0 < speed <= 10_000.0:
            raise LabError(f"speed must be in (0, 10000], got {speed}")
        with self._lock:
            now = time.time()
            self._sim0 += (now - self._wall0) * self.speed
            self._wall0, self.speed = now, speed


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Static facts about one simulated device."""

    name: str
    role: Role
    vendor: str
    platform: str
    site: str
    tags: tuple[str, ...]
    sys_descr: str
    sys_object_id: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class InterfaceState:
    """One router interface at one instant: configuration, status, counters and rates.

    ``last_change`` is in hundredths of a second since the device booted.
    Counters are 64-bit; use :func:`counter32` for the 32-bit views.
    """

    device: str
    name: str
    if_index: int
    if_type: int
    alias: str
    speed_bps: int
    mtu: int
    mac: bytes
    admin_up: bool
    oper_up: bool
    last_change: int
    in_octets: int
    out_octets: int
    in_ucast_pkts: int
    out_ucast_pkts: int
    in_errors: int
    out_errors: int
    in_discards: int
    out_discards: int
    in_bps: float
    out_bps: float
    address: str | None
    igp_metric: int | None
    igp_up: bool
    peer: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class BgpSessionState:
    """One eBGP session as seen from ``device``."""

    device: str
    ifname: str
    local_address: str
    peer_address: str
    peer_device: str
    local_as: int
    peer_as: int
    enabled: bool
    state: Literal["idle", "connect", "active", "opensent", "openconfirm", "established"]
    established_since: float | None
    transitions: int
    prefixes_received: int
    prefixes_sent: int
    in_updates: int
    out_updates: int


@dataclass(frozen=True, slots=True)
class SystemState:
    """CPU, memory and uptime of one router."""

    device: str
    cpu_pct: float
    mem_total_kb: int
    mem_used_kb: int
    uptime_ticks: int


@dataclass(frozen=True, slots=True)
class ProcessState:
    """One daemon of a router at one instant, as ``ps`` would show it.

    ``start_time`` is in epoch seconds; ``cpu_pct`` is its share of the router's CPU.
    """

    device: str
    name: str
    pid: int
    start_time: float
    cpu_pct: float
    mem_bytes: int


@dataclass(frozen=True, slots=True)
class DemandState:
    src: str
    dst: str
    offered_bps: float
    delivered_bps: float
    loss: float
    path_hops: int | None


@dataclass(frozen=True, slots=True)
class Health:
    """Service health: what a NOC would check before calling a network healthy."""

    ok: bool
    demands: tuple[DemandState, ...]
    lossy_demands: tuple[str, ...]
    hot_links: tuple[tuple[str, float], ...]
    bgp_down: tuple[str, ...]
    max_utilisation: float

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "lossy_demands": list(self.lossy_demands),
            "hot_links": [{"link": n, "utilisation": round(u, 3)} for n, u in self.hot_links],
            "bgp_down": list(self.bgp_down),
            "max_utilisation": round(self.max_utilisation, 3),
            "demands": len(self.demands),
        }


@dataclass(frozen=True, slots=True)
class Event:
    """A state change a device would announce (an SNMP notification, a syslog line)."""

    device: str
    kind: Literal["link_down", "link_up", "bgp_down", "bgp_up"]
    at: float
    ifname: str | None = None
    if_index: int | None = None
    peer_address: str | None = None
    bgp_state: int | None = None
    admin_up: bool = True


@dataclass(slots=True)
class _Interface:
    idx: int
    device: str
    if_index: int
    name: str
    if_type: int
    alias: str
    mtu: int
    mac: bytes
    speed_bps: int
    pkt_size: int
    link: int | None = None  # index into LabNetwork._links
    access: bool = False
    address: str | None = None
    igp_metric: int | None = None
    admin_up: bool = True
    oper_up: bool = True
    last_change: float = 0.0
    # Faults.
    failed: bool = False
    flap_period: float = 0.0
    crc_rate: float = 0.0


@dataclass(slots=True)
class _Link:
    a: int  # interface idx
    b: int
    wavelength: str | None
    capacity_bps: float


@dataclass(slots=True)
class _Session:
    device: str
    ifidx: int
    peer_ifidx: int
    enabled: bool = True
    up: bool = False
    since: float | None = None
    transitions: int = 0
    updates_in: float = 0.0
    updates_out: float = 0.0


@dataclass(slots=True)
class _Process:
    name: str
    pid: int
    started: float
    cpu_share: float
    mem_share: float
    runaway_since: float | None = None  # a fault: it spins and leaks from then on


@dataclass(slots=True)
class _Router:
    info: DeviceInfo
    boot: float
    asn: int
    prefixes: int
    loopback: str
    cpu_base: float
    interfaces: dict[str, _Interface] = field(default_factory=dict)
    sessions: dict[str, _Session] = field(default_factory=dict)  # by peer address
    processes: dict[str, _Process] = field(default_factory=dict)
    next_pid: int = 0
    churn: float = 0.0  # decaying count of recent BGP transitions


@dataclass(slots=True)
class _Routing:
    """Demand-to-edge fractions: edge ``e`` carries ``frac`` of demand ``d``'s traffic."""

    edge: np.ndarray
    demand: np.ndarray
    frac: np.ndarray
    reachable: np.ndarray
    hops: list[int | None]


class LabNetwork:
    """A simulated IP-over-DWDM network with traffic, routing and faults.

    Build one from a :class:`~lab.topology.Topology`, or with :meth:`preset`. Every method is
    thread-safe.
    """

    def __init__(
        self, topology: Topology, clock: Callable[[], float] = time.time, seed: int | None = None
    ) -> None:
        self.topology = topology
        self.clock = clock
        self.seed = topology.seed if seed is None else seed
        self._rng = random.Random(self.seed)
        self._lock = threading.RLock()
        self._boot = clock()
        self._t = self._boot
        self._now_seen = self._boot
        self._flapping = 0
        self._routers: dict[str, _Router] = {}
        self._ifaces: list[_Interface] = []
        self._links: list[_Link] = []
        self._optical_devices: dict[str, DeviceInfo] = {}
        self._listeners: list[Callable[[Event], None]] = []
        self._routing: _Routing | None = None
        self._prefix_cache: dict[tuple[str, bool], int] | None = None
        self._config_versions: dict[str, int] = {}
        self._optical_cache: tuple[float, int, OpticalSnapshot] | None = None
        self._optical_version = 0
        self._channel_up: dict[str, bool] = {}
        self._channel_err: dict[str, float] = {}
        self.optical: OpticalNetwork | None = None
        self._build(topology)
        self._init_arrays()
        self._refresh(self._boot, announce=False)

    # Construction ---------------------------------------------------------

    @classmethod
    def preset(
        cls, name: str = "metro-ring", seed: int = 7, clock: Callable[[], float] = time.time
    ) -> LabNetwork:
        """Build a named topology (see :data:`lab.topology.PRESETS`).

        Raises:
            LabError: ``name`` is not a preset.
        """
        try:
            build = PRESETS[name]
        except KeyError:
            known = ", ".join(sorted(PRESETS))
            raise LabError(f"unknown lab preset {name!r} (known presets: {known})") from None
        return cls(build(seed), clock=clock)

    def _build(self, topo: Topology) -> None:
        rng = self._rng
        big_as = len(topo.routers) > 500
        for n, spec in enumerate(topo.routers, start=1):
            prefixes = spec.prefixes
            if prefixes is None:
                prefixes = rng.randint(100, 400) if spec.role in ("pe", "leaf") else 1
            info = DeviceInfo(
                name=spec.name,
                role=Role.ROUTER,
                vendor="autonoc-lab",
                platform="lab-router",
                site=spec.site,
                tags=(spec.role,),
                sys_descr=f"autonoc-lab lab-router {spec.name} ({spec.role}, simulated)",
                sys_object_id=(*_PEN, 1, 1),
            )
            asn = spec.asn or ((4_200_000_000 if big_as else 65_000) + n)
            router = _Router(
                info=info,
                boot=self._boot,
                asn=asn,
                prefixes=prefixes,
                loopback=f"10.255.{n // 256}.{n % 256}",
                cpu_base=rng.uniform(4.0, 14.0),
            )
            _start_processes(router, self.seed)
            self._routers[spec.name] = router
            self._new_interface(router, "lo0", "loopback", _SOFTWARE_LOOPBACK, 0)
        for k, ls in enumerate(topo.links):
            (ad, an), (bd, bn) = ls.a.split(":", 1), ls.b.split(":", 1)
            ia = self._new_interface(
                self._routers[ad], an, f"to {bd} {bn}", _ETHERNET_CSMACD, ls.capacity_gbps
            )
            ib = self._new_interface(
                self._routers[bd], bn, f"to {ad} {an}", _ETHERNET_CSMACD, ls.capacity_gbps
            )
            base = 4 * k
            for intf, host in ((ia, 1), (ib, 2)):
                n = base + host
                intf.address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
                intf.link = k
                intf.igp_metric = ls.metric
            self._links.append(_Link(ia.idx, ib.idx, ls.wavelength, ls.capacity_gbps * 1e9))
            for near, far in ((ia, ib), (ib, ia)):
                assert far.address is not None
                self._routers[near.device].sessions[far.address] = _Session(
                    device=near.device, ifidx=near.idx, peer_ifidx=far.idx
                )
        for spec in topo.routers:
            router = self._routers[spec.name]
            count = spec.access_ports
            if count is None:
                count = 1 if spec.role in ("pe", "leaf") else 0
            used = [
                int(n[3:]) for n in router.interfaces if n.startswith("eth") and n[3:].isdigit()
            ]
            first = max(used, default=0) + 1
            for n in range(first, first + count):
                intf = self._new_interface(
                    router, f"eth{n}", "customer access", _ETHERNET_CSMACD, 400.0
                )
                intf.access = True
        self._build_optical(topo)
        self._build_demands(topo)

    def _build_optical(self, topo: Topology) -> None:
        if not topo.roadms:
            return
        rng = random.Random(f"optical/{self.seed}")
        net = OpticalNetwork(clock=self.clock, seed=self.seed)
        for name in topo.roadms:
            net.add_roadm(name)
            self._optical_devices[name] = self._optical_info(name, Role.ROADM, "lab-roadm", name)
        for span in topo.spans:
            for src, dst in ((span.a, span.b), (span.b, span.a)):
                amp = f"amp-{_short(src)}-{_short(dst)}"
                net.add_span(
                    span_name(src, dst),
                    src,
                    dst,
                    span.length_km,
                    connectors_db=round(rng.uniform(0.8, 1.4), 2),
                    amplifier=amp,
                    noise_figure_db=round(rng.uniform(5.0, 6.0), 2),
                    tilt_db=round(rng.uniform(-0.5, 0.5), 2),
                )
                self._optical_devices[amp] = self._optical_info(
                    amp, Role.AMPLIFIER, "lab-edfa", dst
                )
        for xp in topo.transponders:
            net.add_transponder(
                xp.name,
                xp.roadm,
                tx_power_dbm=rng.choice((-8.5, -8.0, -7.5)),
                bias_ma=round(rng.uniform(45.0, 75.0), 1),
                temp_c=round(rng.uniform(38.0, 48.0), 1),
            )
            self._optical_devices[xp.name] = self._optical_info(
                xp.name, Role.TRANSPONDER, "lab-400zr", xp.roadm
            )
        carried = {ls.wavelength: (ls.a, ls.b) for ls in topo.links if ls.wavelength}
        for ch in topo.channels:
            path = [span_name(s, d) for s, d in itertools.pairwise(ch.path)]
            protection = None
            if ch.protection is not None:
                protection = [span_name(s, d) for s, d in itertools.pairwise(ch.protection)]
            net.add_channel(
                ch.name,
                ch.index,
                ch.a,
                ch.b,
                path,
                carries=carried.get(ch.name),
                protection=protection,
            )
        net.commission()
        self.optical = net

    def _optical_info(self, name: str, role: Role, platform: str, roadm: str) -> DeviceInfo:
        site = _short(roadm)
        return DeviceInfo(
            name=name,
            role=role,
            vendor="autonoc-lab",
            platform=platform,
            site=site,
            tags=(role.value,),
            sys_descr=f"autonoc-lab {platform} {name} (simulated)",
            sys_object_id=(*_PEN, 1, {"roadm": 2, "amplifier": 3, "transponder": 4}[role.value]),
        )

    def _build_demands(self, topo: Topology) -> None:
        rng = random.Random(f"demands/{self.seed}")
        specs = topo.demands
        if specs is None:
            edge = [r.name for r in topo.routers if r.role in ("pe", "leaf")]
            specs = tuple(
                DemandSpec(src=s, dst=d, gbps=round(rng.uniform(2.0, 8.0), 1))
                for s in edge
                for d in edge
                if s != d
            )
        self._demands = [(d.src, d.dst) for d in specs]
        self._peak_bps = np.array([d.gbps * 1e9 for d in specs], dtype=float)
        n = len(specs)
        self._noise_w = np.array(
            [
                [_TWO_PI / rng.uniform(a, b) for a, b in ((5, 9), (23, 41), (150, 260))]
                for _ in range(n)
            ]
        ).reshape(n, 3)
        self._noise_p = np.array([[rng.uniform(0, _TWO_PI) for _ in range(3)] for _ in range(n)])
        self._noise_p = self._noise_p.reshape(n, 3)
        self._demand_extra = np.zeros(n)
        self._surges: dict[tuple[str, str], tuple[np.ndarray, float]] = {}

    def _new_interface(
        self, router: _Router, ifname: str, alias: str, if_type: int, gbps: float
    ) -> _Interface:
        if ifname in router.interfaces:
            raise LabError(f"lab interface {router.info.name}:{ifname} is defined twice")
        rng = self._rng
        intf = _Interface(
            idx=len(self._ifaces),
            device=router.info.name,
            if_index=len(router.interfaces) + 1,
            name=ifname,
            if_type=if_type,
            alias=alias,
            mtu=9000 if if_type == _ETHERNET_CSMACD else 65536,
            mac=bytes([0x02, 0x00, *rng.randbytes(4)]),
            speed_bps=int(gbps * 1e9),
            pkt_size=rng.randint(600, 1200),
            last_change=self._boot,
        )
        router.interfaces[ifname] = intf
        self._ifaces.append(intf)
        return intf

    def _init_arrays(self) -> None:
        n = len(self._ifaces)
        self._ctr: np.ndarray = np.zeros(
            (8, n)
        )  # in/out octets, in/out pkts, in/out errors, in/out discards
        self._rate: np.ndarray = np.zeros((8, n))  # the same, per second
        self._err_base = np.array([rng_err(self.seed, i) for i in range(n)])
        self._pkt = np.array([i.pkt_size for i in self._ifaces], dtype=float)
        e = 2 * len(self._links)
        self._edge_tx = np.zeros(e, dtype=np.int64)
        self._edge_rx = np.zeros(e, dtype=np.int64)
        self._edge_cap = np.zeros(e)
        for k, link in enumerate(self._links):
            self._edge_tx[2 * k], self._edge_rx[2 * k] = link.a, link.b
            self._edge_tx[2 * k + 1], self._edge_rx[2 * k + 1] = link.b, link.a
            self._edge_cap[2 * k] = self._edge_cap[2 * k + 1] = link.capacity_bps
        self._edge_up = np.zeros(e, dtype=bool)
        self._edge_igp = np.zeros(e, dtype=bool)
        self._edge_extra: np.ndarray = np.zeros(e)
        self._edge_err: np.ndarray = np.zeros(e)
        self._edge_load: np.ndarray = np.zeros(e)
        self._demand_loss: np.ndarray = np.zeros(len(self._demands))
        self._demand_rate: np.ndarray = np.zeros(len(self._demands))
        rid = {name: i for i, name in enumerate(self._routers)}
        self._router_index = rid
        self._access_of: dict[str, int] = {}
        for router in self._routers.values():
            for intf in router.interfaces.values():
                if intf.access:
                    self._access_of.setdefault(router.info.name, intf.idx)
        self._access_idx = np.array(list(self._access_of.values()), dtype=np.int64)
        self._access_router = np.array([rid[n] for n in self._access_of], dtype=np.int64)
        self._demand_src = np.array([rid[s] for s, _ in self._demands], dtype=np.int64)
        self._demand_dst = np.array([rid[d] for _, d in self._demands], dtype=np.int64)

    # Queries --------------------------------------------------------------

    @property
    def device_names(self) -> tuple[str, ...]:
        """Routers first (in topology order), then ROADMs, amplifiers, transponders."""
        return (*self._routers, *self._optical_devices)

    @property
    def router_names(self) -> tuple[str, ...]:
        return tuple(self._routers)

    def device(self, name: str) -> DeviceInfo:
        """Static facts about device ``name``; LabError when unknown."""
        router = self._routers.get(name)
        if router is not None:
            return router.info
        try:
            return self._optical_devices[name]
        except KeyError:
            raise LabError(f"no lab device named {name!r}") from None

    @property
    def links(self) -> tuple[tuple[tuple[str, str], tuple[str, str]], ...]:
        """IP links as ``((device, ifname), (device, ifname))`` pairs."""
        out = []
        for link in self._links:
            a, b = self._ifaces[link.a], self._ifaces[link.b]
            out.append(((a.device, a.name), (b.device, b.name)))
        return tuple(out)

    def peer(self, device: str, ifname: str) -> tuple[str, str] | None:
        """The ``(device, ifname)`` at the far end of ``device:ifname``'s link, if any."""
        far = self._far(self._interface(device, ifname))
        return (far.device, far.name) if far is not None else None

    def link_wavelength(self, device: str, ifname: str) -> str | None:
        """The wavelength ``device:ifname``'s link rides, if any."""
        intf = self._interface(device, ifname)
        return self._links[intf.link].wavelength if intf.link is not None else None

    def now(self) -> float:
        """The clock's time, never earlier than a time this network already used."""
        with self._lock:
            return self._sync()

    def sys_uptime(self, device: str, at: float | None = None) -> int:
        """Hundredths of a second since ``device`` booted (the network's construction)."""
        self.device(device)
        with self._lock:
            t = self._sync() if at is None else at
            return _ticks(t - self._boot)

    def interface(self, device: str, ifname: str, at: float | None = None) -> InterfaceState:
        """A snapshot of ``device:ifname`` now (``at`` is accepted for compatibility)."""
        with self._lock:
            t = self._sync()
            return self._state(self._interface(device, ifname), t)

    def interfaces(self, device: str, at: float | None = None) -> list[InterfaceState]:
        """Snapshots of every interface of ``device``, in ifIndex order."""
        with self._lock:
            t = self._sync()
            return [self._state(i, t) for i in self._router(device).interfaces.values()]

    def bgp_sessions(self, device: str) -> list[BgpSessionState]:
        """``device``'s eBGP sessions, ordered by peer address."""
        with self._lock:
            self._sync()
            router = self._router(device)
            total = self._prefixes_by_component()
            out = []
            for addr, s in sorted(router.sessions.items(), key=lambda kv: _ip_key(kv[0])):
                near, far = self._ifaces[s.ifidx], self._ifaces[s.peer_ifidx]
                peer = self._routers[far.device]
                rx = total.get((far.device, True), 0) if s.up else 0
                state = "established" if s.up else ("idle" if not s.enabled else "active")
                out.append(
                    BgpSessionState(
                        device=device,
                        ifname=near.name,
                        local_address=near.address or "",
                        peer_address=addr,
                        peer_device=far.device,
                        local_as=router.asn,
                        peer_as=peer.asn,
                        enabled=s.enabled,
                        state=state,  # type: ignore[arg-type]
                        established_since=s.since if s.up else None,
                        transitions=s.transitions,
                        prefixes_received=max(0, rx - router.prefixes) if s.up else 0,
                        prefixes_sent=total.get((device, True), 0) - peer.prefixes if s.up else 0,
                        in_updates=int(s.updates_in),
                        out_updates=int(s.updates_out),
                    )
                )
            return out

    def system(self, device: str) -> SystemState:
        """CPU and memory of router ``device``."""
        with self._lock:
            t = self._sync()
            router = self._router(device)
            return self._system(router, t)

    def optical_snapshot(self, *, noise: bool = True) -> OpticalSnapshot:
        """The optical layer now (cached per simulated second); LabError with no optics."""
        with self._lock:
            t = self._sync()
            if self.optical is None:
                raise LabError("this lab topology has no optical layer")
            cached = self._optical_cache
            fresh = cached is not None and cached[:2] == (math.floor(t), self._optical_version)
            if noise and cached is not None and fresh:
                return cached[2]
            snap = self.optical.snapshot(at=t, noise=noise)
            if noise:
                self._optical_cache = (math.floor(t), self._optical_version, snap)
            return snap

    def optical_devices(self, role: Role | None = None) -> tuple[str, ...]:
        return tuple(n for n, i in self._optical_devices.items() if role is None or i.role is role)

    def health(self) -> Health:
        """Is the service up? Every demand delivered (loss below 1 %), no link above 90 %,
        and every BGP session on an admin-up link established."""
        with self._lock:
            self._sync()
            routing = self._routing
            demands = []
            lossy = []
            for d, (src, dst) in enumerate(self._demands):
                offered = float(self._demand_rate[d])
                loss = float(self._demand_loss[d])
                hops = routing.hops[d] if routing is not None else None
                demands.append(DemandState(src, dst, offered, offered * (1 - loss), loss, hops))
                if loss > LOSS_THRESHOLD:
                    lossy.append(f"{src}->{dst}")
            util = np.divide(
                self._edge_load,
                self._edge_cap,
                out=np.zeros_like(self._edge_cap),
                where=self._edge_cap > 0,
            )
            hot = []
            for e in np.flatnonzero(util > UTILISATION_LIMIT):
                tx = self._ifaces[int(self._edge_tx[e])]
                hot.append((f"{tx.device}:{tx.name}", float(util[e])))
            down = []
            for router in self._routers.values():
                for addr, s in router.sessions.items():
                    # Expected up unless an operator shut the link itself (a drain):
                    # a neighbour shut in config is a fault, not an intent.
                    near, far = self._ifaces[s.ifidx], self._ifaces[s.peer_ifidx]
                    if near.admin_up and far.admin_up and not s.up:
                        down.append(f"bgp:{router.info.name}:{addr}")
            max_util = float(util.max()) if len(util) else 0.0
            return Health(
                ok=not lossy and not hot and not down,
                demands=tuple(demands),
                lossy_demands=tuple(lossy),
                hot_links=tuple(hot),
                bgp_down=tuple(down),
                max_utilisation=max_util,
            )

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` (on whichever thread changed the state) for every :class:`Event`."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Event], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # Configuration (what NETCONF edits and SNMP SETs change) --------------

    def set_admin_status(self, device: str, ifname: str, up: bool) -> None:
        """Set ``device:ifname`` admin up or down. Admin down stops its traffic and takes
        the far end oper down; oper status returns when both ends are admin up."""
        with self._lock:
            t = self._sync()
            intf = self._interface(device, ifname)
            if intf.admin_up != up:
                intf.admin_up = up
                intf.last_change = t
                self._touch(device)
            self._refresh(t)

    def set_mtu(self, device: str, ifname: str, mtu: int) -> None:
        """Set an interface's MTU; an IGP adjacency needs the same MTU at both ends."""
        if not 576 <= mtu <= 9216:
            raise LabError(f"MTU {mtu} is outside 576-9216")
        with self._lock:
            t = self._sync()
            self._interface(device, ifname).mtu = mtu
            self._touch(device)
            self._refresh(t)

    def set_description(self, device: str, ifname: str, text: str) -> None:
        with self._lock:
            self._interface(device, ifname).alias = text[:255]
            self._touch(device)

    def set_igp_metric(self, device: str, ifname: str, metric: int) -> None:
        """Set the IGP metric out of ``device:ifname``; traffic moves at once.

        ``IGP_MAX_METRIC`` drains the link: it is used only as a last resort.
        """
        if not 1 <= metric <= IGP_MAX_METRIC:
            raise LabError(f"IGP metric {metric} is outside 1-{IGP_MAX_METRIC}")
        with self._lock:
            t = self._sync()
            intf = self._interface(device, ifname)
            if intf.link is None:
                raise LabError(f"{device}:{ifname} is not an IP link; it has no IGP metric")
            intf.igp_metric = metric
            self._touch(device)
            self._refresh(t)

    def set_bgp_neighbor(self, device: str, peer_address: str, enabled: bool) -> None:
        """Enable or shut down ``device``'s BGP neighbour ``peer_address``."""
        with self._lock:
            t = self._sync()
            self._session(device, peer_address).enabled = enabled
            self._touch(device)
            self._refresh(t)

    def set_amplifier_gain(self, amp: str, db: float) -> None:
        """Set an EDFA's target gain (raising it restores power after a span loss)."""
        with self._lock:
            t = self._sync()
            self._need_optical().set_amplifier_gain(amp, db)
            self._touch(amp)
            self._optical_changed(t)

    def set_protection(self, transponder_port: str, secondary: bool) -> None:
        """Switch the wavelength whose head end is ``transponder_port`` (``xp-a1:line1``) to
        its protection path (``secondary``) or back to its working path.

        Manual 1:1 bidirectional switching (see
        :meth:`lab.optical.OpticalNetwork.set_protection`): a fibre cut on the
        working path stays cut, but the IP link riding the wavelength comes back
        up on the protection path, with the OSNR, BER and dispersion of that path.

        Raises:
            LabError: no optical layer, or the port is not the head end of a
                protected wavelength.
        """
        with self._lock:
            t = self._sync()
            self._need_optical().set_protection(transponder_port, secondary)
            self._touch(transponder_port.partition(":")[0])
            self._optical_changed(t)

    def set_tx_power(self, port: str, dbm: float) -> None:
        with self._lock:
            t = self._sync()
            self._need_optical().set_tx_power(port, dbm)
            self._touch(port.partition(":")[0])
            self._optical_changed(t)

    def config_version(self, device: str) -> int:
        """A number that changes whenever ``device``'s configuration changes, by any path."""
        with self._lock:
            return self._config_versions.get(device, 0)

    # Fault primitives (lab.faults composes these) -------------------------

    def fail_interface(self, device: str, ifname: str, failed: bool) -> None:
        """A hardware failure at ``device:ifname`` (optic, cable): oper down, admin unchanged."""
        with self._lock:
            t = self._sync()
            self._interface(device, ifname).failed = failed
            self._refresh(t)

    def flap_interface(self, device: str, ifname: str, period_s: float) -> None:
        """Make ``device:ifname`` bounce: down for half of every ``period_s`` (0 stops it)."""
        if period_s < 0:
            raise LabError("flap period must be positive")
        with self._lock:
            t = self._sync()
            self._interface(device, ifname).flap_period = period_s
            self._flapping = sum(1 for i in self._ifaces if i.flap_period)
            self._refresh(t)

    def set_crc_errors(self, device: str, ifname: str, rate: float) -> None:
        """Corrupt ``rate`` of the frames received on ``device:ifname`` (0 clears)."""
        if not 0.0 <= rate <= 1.0:
            raise LabError(f"CRC error rate must be in [0, 1], got {rate}")
        with self._lock:
            t = self._sync()
            self._interface(device, ifname).crc_rate = rate
            self._refresh(t)

    def set_extra_traffic(self, device: str, ifname: str, gbps: float) -> None:
        """A traffic surge of ``gbps`` more through ``device:ifname`` (0 clears it).

        The surge grows the demands that cross the port today, so rerouting
        (an IGP metric change, a drain) moves it like real traffic; a port no
        demand crosses gets the surge pinned to it.
        """
        if gbps < 0:
            raise LabError("extra traffic must be >= 0")
        with self._lock:
            t = self._sync()
            intf = self._interface(device, ifname)
            if intf.link is None:
                raise LabError(f"{device}:{ifname} is not an IP link")
            k = intf.link
            e = 2 * k if self._links[k].a == intf.idx else 2 * k + 1
            key = (device, ifname)
            previous = self._surges.pop(key, None)
            if previous is not None:
                self._demand_extra -= previous[0]
                self._edge_extra[e] -= previous[1]
            if gbps > 0:
                routing = self._routing
                assert routing is not None
                crossing = routing.edge == e
                per_demand = np.zeros(len(self._demands))
                pinned = 0.0
                share = float(routing.frac[crossing].sum())
                if share > 0:
                    per_demand[routing.demand[crossing]] = gbps * 1e9 / share
                else:
                    pinned = gbps * 1e9
                self._demand_extra += per_demand
                self._edge_extra[e] += pinned
                self._surges[key] = (per_demand, pinned)
            self._refresh(t)

    def set_cpu_runaway(
        self, device: str, on: bool, process: str = DEFAULT_RUNAWAY_PROCESS
    ) -> None:
        """Make ``device``'s ``process`` spin (the router's CPU pinned near 97 %) and leak
        memory, or stop that (``on=False``). Restarting the process also stops it.

        Raises:
            LabError: ``device`` is not a router, or runs no such process.
        """
        with self._lock:
            t = self._sync()
            proc = self._process(device, process)
            if on and proc.runaway_since is None:
                proc.runaway_since = t
            elif not on:
                proc.runaway_since = None

    def processes(self, device: str) -> tuple[ProcessState, ...]:
        """Router ``device``'s daemons now, by pid."""
        with self._lock:
            t = self._sync()
            router = self._router(device)
            return tuple(sorted(self._process_states(router, t), key=lambda p: p.pid))

    def process(self, device: str, name: str) -> ProcessState:
        """Router ``device``'s daemon ``name`` now; LabError when it runs none by that name."""
        with self._lock:
            t = self._sync()
            self._process(device, name)
            (state,) = (p for p in self._process_states(self._router(device), t) if p.name == name)
            return state

    def process_runaway(self, device: str, name: str) -> bool:
        """Whether ``device``'s ``name`` is spinning (ground truth, for :mod:`lab.faults`)."""
        with self._lock:
            return self._process(device, name).runaway_since is not None

    def restart_process(self, device: str, name: str) -> ProcessState:
        """Restart router ``device``'s daemon ``name``: a new pid and start time, its CPU and
        memory back to normal (a runaway stops).

        Routing daemons restart gracefully (BGP graceful restart, RFC 4724; IS-IS
        restart signalling, RFC 5306): sessions and adjacencies stay up.

        Raises:
            LabError: ``device`` is not a router, or runs no daemon called ``name``.
        """
        with self._lock:
            t = self._sync()
            router = self._router(device)
            proc = self._process(device, name)
            proc.pid, router.next_pid = router.next_pid, router.next_pid + _PID_STRIDE
            proc.started = t
            proc.runaway_since = None
            return self.process(device, name)

    def optical_changed(self) -> None:
        """Tell the IP layer that the optical layer's configuration or faults changed."""
        with self._lock:
            self._optical_changed(self._sync())

    # Inventory ------------------------------------------------------------

    def to_inventory(
        self,
        host: str,
        ports: dict[str, int],
        community: str,
        netconf_ports: dict[str, int] | None = None,
    ) -> Inventory:
        """The inventory that reaches this network's devices on ``host:ports[name]``.

        Links: every IP link (with the wavelength it rides), and every fibre
        span as a ``fiber`` link between the ROADM degrees. The layers around
        them, for the agents' topology: each span direction with its EDFA,
        each wavelength with its paths, every router's BGP sessions and the
        traffic demands as services.

        Raises:
            LabError: ``ports`` lacks a device.
        """
        missing = [name for name in self.device_names if name not in ports]
        if missing:
            raise LabError(f"no SNMP port given for lab device(s) {', '.join(missing[:5])}")
        devices = []
        for name in self.device_names:
            info = self.device(name)
            mgmt = Mgmt(host=host, snmp_port=ports[name])
            if netconf_ports and name in netconf_ports:
                mgmt = Mgmt(host=host, snmp_port=ports[name], netconf_port=netconf_ports[name])
            devices.append(
                Device(
                    name=name,
                    role=info.role,
                    vendor=info.vendor,
                    platform=info.platform,
                    site=info.site,
                    mgmt=mgmt,
                    snmp=SnmpV2c(community=SecretStr(community)),
                    tags=info.tags,
                )
            )
        links = [
            Link(
                kind=LinkKind.IP,
                a=Endpoint(device=a[0], port=a[1]),
                b=Endpoint(device=b[0], port=b[1]),
                wavelength=link.wavelength,
            )
            for (a, b), link in zip(self.links, self._links, strict=True)
        ]
        spans: list[Span] = []
        wavelengths: list[Wavelength] = []
        if self.optical is not None:
            snap = self.optical.snapshot(noise=False)
            for span in snap.spans.values():
                if span.src_roadm < span.dst_roadm:
                    links.append(
                        Link(
                            kind=LinkKind.FIBER,
                            a=Endpoint(device=span.src_roadm, port=span.src_degree),
                            b=Endpoint(device=span.dst_roadm, port=span.dst_degree),
                        )
                    )
                spans.append(
                    Span(
                        name=span.name,
                        a=Endpoint(device=span.src_roadm, port=span.src_degree),
                        b=Endpoint(device=span.dst_roadm, port=span.dst_degree),
                        amplifier=span.amplifier,
                        length_km=span.length_km,
                    )
                )
            for ch in snap.channels.values():
                wavelengths.append(
                    Wavelength(
                        name=ch.name,
                        a=_port_endpoint(ch.a_port),
                        b=_port_endpoint(ch.b_port),
                        path=ch.path_ab,
                        path_back=ch.path_ba,
                        protection=ch.protection_ab,
                        protection_back=ch.protection_ba,
                        active_protection=ch.on_protection,
                    )
                )
        sessions = [
            BgpSession(
                device=name,
                port=self._ifaces[s.ifidx].name,
                local_address=self._ifaces[s.ifidx].address or "",
                peer_address=addr,
                peer_device=self._ifaces[s.peer_ifidx].device,
            )
            for name, router in self._routers.items()
            for addr, s in sorted(router.sessions.items(), key=lambda kv: _ip_key(kv[0]))
        ]
        services = [
            Service(name=f"{src}->{dst}", src=src, dst=dst, gbps=round(float(peak) / 1e9, 3))
            for (src, dst), peak in zip(self._demands, self._peak_bps, strict=True)
        ]
        return Inventory(
            devices=tuple(devices),
            links=tuple(links),
            spans=tuple(spans),
            wavelengths=tuple(wavelengths),
            bgp_sessions=tuple(sessions),
            services=tuple(services),
        )

    # Internals (call with the lock held) ----------------------------------

    def _router(self, name: str) -> _Router:
        try:
            return self._routers[name]
        except KeyError:
            if name in self._optical_devices:
                raise LabError(f"{name!r} is an optical device, not a router") from None
            raise LabError(f"no lab device named {name!r}") from None

    def _interface(self, device: str, ifname: str) -> _Interface:
        router = self._router(device)
        try:
            return router.interfaces[ifname]
        except KeyError:
            known = ", ".join(router.interfaces)
            raise LabError(
                f"lab device {device!r} has no interface {ifname!r} (it has: {known})"
            ) from None

    def _process(self, device: str, name: str) -> _Process:
        router = self._router(device)
        try:
            return router.processes[name]
        except KeyError:
            known = ", ".join(router.processes)
            raise LabError(f"{device} runs no process {name!r} (it runs: {known})") from None

    def _session(self, device: str, peer_address: str) -> _Session:
        router = self._router(device)
        try:
            return router.sessions[peer_address]
        except KeyError:
            known = ", ".join(router.sessions) or "none"
            raise LabError(
                f"{device} has no BGP neighbour {peer_address} (it has: {known})"
            ) from None

    def _touch(self, device: str) -> None:
        self._config_versions[device] = self._config_versions.get(device, 0) + 1

    def _need_optical(self) -> OpticalNetwork:
        if self.optical is None:
            raise LabError("this lab topology has no optical layer")
        return self.optical

    def _far(self, intf: _Interface) -> _Interface | None:
        if intf.link is None:
            return None
        link = self._links[intf.link]
        return self._ifaces[link.b if link.a == intf.idx else link.a]

    def _sync(self) -> float:
        """Bring the state up to the clock's now (never backwards) and return that instant.

        Rates are recomputed at most every :data:`MIN_STEP_S` (and at every
        change); in between, counters are read as the last commit plus rate
        times the time since, which the next commit then makes permanent, so
        reads stay exact and monotonic at a fraction of the cost.
        """
        t = max(self._now_seen, self.clock())
        self._now_seen = t
        while t - self._t >= MIN_STEP_S:
            t_end = min(t, self._t + STEP_S)
            if self._flapping:
                self._refresh(t_end)
            else:
                self._advance_to(t_end)
                self._rates(t_end)
        return t

    def _optical_changed(self, t: float) -> None:
        self._optical_version += 1
        self._optical_cache = None
        self._refresh(t)

    def _refresh(self, t: float, announce: bool = True) -> None:
        """Recompute oper status, adjacencies, BGP and routing after any change."""
        self._advance_to(t)
        events: list[Event] = []
        self._prefix_cache = None
        self._refresh_optical()
        for intf in self._ifaces:
            oper = self._oper(intf, t)
            if oper != intf.oper_up:
                intf.oper_up = oper
                intf.last_change = t
                events.append(
                    Event(
                        device=intf.device,
                        kind="link_up" if oper else "link_down",
                        at=t,
                        ifname=intf.name,
                        if_index=intf.if_index,
                        admin_up=intf.admin_up,
                    )
                )
        for k, link in enumerate(self._links):
            a, b = self._ifaces[link.a], self._ifaces[link.b]
            up = a.oper_up and b.oper_up
            self._edge_up[2 * k] = self._edge_up[2 * k + 1] = up
            self._edge_igp[2 * k] = self._edge_igp[2 * k + 1] = up and a.mtu == b.mtu
            err = self._channel_err.get(link.wavelength or "", 0.0)
            self._edge_err[2 * k] = min(1.0, b.crc_rate + err)
            self._edge_err[2 * k + 1] = min(1.0, a.crc_rate + err)
        for router in self._routers.values():
            for addr, s in router.sessions.items():
                near, far = self._ifaces[s.ifidx], self._ifaces[s.peer_ifidx]
                back = self._routers[far.device].sessions[near.address or ""]
                up = near.oper_up and far.oper_up and s.enabled and back.enabled
                if up != s.up:
                    s.up = up
                    s.transitions += 1
                    s.since = t if up else None
                    router.churn += 1.0
                    events.append(
                        Event(
                            device=router.info.name,
                            kind="bgp_up" if up else "bgp_down",
                            at=t,
                            peer_address=addr,
                            bgp_state=6 if up else (1 if not s.enabled else 3),
                        )
                    )
        self._access_up = np.ones(len(self._routers), dtype=bool)
        for name, idx in self._access_of.items():
            self._access_up[self._router_index[name]] = self._ifaces[idx].oper_up
        self._routing = self._route()
        self._rates(t)
        if announce:
            for event in events:
                for listener in list(self._listeners):
                    listener(event)

    def _refresh_optical(self) -> None:
        if self.optical is None:
            return
        snap = self.optical.snapshot(noise=False)
        self._channel_up.clear()
        self._channel_err.clear()
        for ch in snap.channels.values():
            a, b = snap.line_ports[ch.a_port], snap.line_ports[ch.b_port]
            worst = max(a.post_fec_uncorrectable, b.post_fec_uncorrectable) / ph.FEC_BLOCKS_PER_S
            # Past about half the blocks lost the framer gives up: loss of frame, link down.
            self._channel_up[ch.name] = ch.oper_up and worst < 0.5
            # One uncorrectable block corrupts the frame it is in; frames span a few blocks.
            self._channel_err[ch.name] = min(1.0, 4.0 * worst)

    def _oper(self, intf: _Interface, t: float) -> bool:
        if intf.if_type == _SOFTWARE_LOOPBACK:
            return True
        up = intf.admin_up and not intf.failed and not _flap_down(intf, t, self._boot)
        far = self._far(intf)
        if far is not None:
            up = up and far.admin_up and not far.failed and not _flap_down(far, t, self._boot)
            wavelength = self._links[intf.link].wavelength if intf.link is not None else None
            if wavelength is not None:
                up = up and self._channel_up.get(wavelength, False)
        return up

    def _route(self) -> _Routing:
        """SPF with ECMP over up IGP adjacencies: each demand's share on each edge."""
        nodes = len(self._routers)
        up_edges = np.flatnonzero(self._edge_igp)
        weights: dict[tuple[int, int], float] = {}
        adj: dict[int, list[tuple[int, int, float]]] = {}
        rid = self._router_index
        for e in up_edges.tolist():
            tx, rx = self._ifaces[int(self._edge_tx[e])], self._ifaces[int(self._edge_rx[e])]
            u, v = rid[tx.device], rid[rx.device]
            w = float(tx.igp_metric or 10)
            adj.setdefault(u, []).append((int(e), v, w))
            if weights.get((u, v), math.inf) > w:
                weights[(u, v)] = w
        dests = sorted({int(d) for d in self._demand_dst})
        if weights:
            rows, cols = zip(*weights.keys(), strict=True)
            # Reversed graph: distances *to* each destination.
            graph = csr_matrix((list(weights.values()), (cols, rows)), shape=(nodes, nodes))
            dist = dijkstra(graph, directed=True, indices=dests)
        else:
            dist = np.full((len(dests), nodes), np.inf)
            for j, d in enumerate(dests):
                dist[j, d] = 0.0
        row_of = {d: j for j, d in enumerate(dests)}
        edges: list[int] = []
        demand_ids: list[int] = []
        fracs: list[float] = []
        reachable = np.zeros(len(self._demands), dtype=bool)
        hops: list[int | None] = []
        for d_i, (s_node, d_node) in enumerate(
            zip(self._demand_src, self._demand_dst, strict=True)
        ):
            s, dst = int(s_node), int(d_node)
            dd = dist[row_of[dst]]
            if not math.isfinite(dd[s]):
                hops.append(None)
                continue
            reachable[d_i] = True
            flow = {int(s): 1.0}
            heap = [(-dd[s], int(s))]
            longest = 0
            depth = {int(s): 0}
            while heap:
                _, u = heapq.heappop(heap)
                f = flow.pop(u, 0.0)
                if u == dst or f == 0.0:
                    continue
                nexts = [(e, v) for e, v, w in adj.get(u, []) if abs(w + dd[v] - dd[u]) < 1e-9]
                share = f / len(nexts)
                for e, v in nexts:
                    edges.append(e)
                    demand_ids.append(d_i)
                    fracs.append(share)
                    depth[v] = depth[u] + 1
                    longest = max(longest, depth[v])
                    if v not in flow:
                        heapq.heappush(heap, (-dd[v], v))
                    flow[v] = flow.get(v, 0.0) + share
            hops.append(longest)
        return _Routing(
            edge=np.array(edges, dtype=np.int64),
            demand=np.array(demand_ids, dtype=np.int64),
            frac=np.array(fracs),
            reachable=reachable,
            hops=hops,
        )

    def _rates(self, t: float) -> None:
        """Every rate at ``t``: demands, link loads, losses, interface counters per second."""
        routing = self._routing
        assert routing is not None
        tau = t - self._boot
        hour = (t % 86_400.0) / 3600.0
        daily = 0.35 + 0.65 * (0.5 - 0.5 * math.cos(_TWO_PI * (hour - 4.0) / 24.0))
        noise = 1.0 + (np.sin(self._noise_w * tau + self._noise_p) * (0.03, 0.02, 0.04)).sum(axis=1)
        rate = self._peak_bps * daily * noise + self._demand_extra
        self._demand_rate = rate
        n_e = len(self._edge_cap)
        routed = np.bincount(
            routing.edge, weights=routing.frac * rate[routing.demand], minlength=n_e
        )
        load = routed[:n_e] + np.where(self._edge_up, self._edge_extra + CONTROL_BPS, 0.0)
        self._edge_load = load
        sent = np.minimum(load, self._edge_cap)
        dropped = load - sent
        corrupted = sent * self._edge_err
        edge_loss = np.divide(dropped + corrupted, load, out=np.zeros(n_e), where=load > 0)
        summed = np.bincount(
            routing.demand, weights=routing.frac * edge_loss[routing.edge], minlength=len(rate)
        )
        edge_ok = self._access_up[self._demand_src] & self._access_up[self._demand_dst]
        loss = np.where(routing.reachable & edge_ok, np.minimum(summed[: len(rate)], 1.0), 1.0)
        self._demand_loss = loss
        delivered = rate * (1.0 - loss)

        n = len(self._ifaces)
        r = self._rate
        r[:] = 0.0
        r[0] = np.bincount(self._edge_rx, weights=sent, minlength=n)[:n]  # in bits/s for now
        r[1] = np.bincount(self._edge_tx, weights=sent, minlength=n)[:n]
        r[4] = np.bincount(self._edge_rx, weights=corrupted, minlength=n)[:n]
        r[7] = np.bincount(self._edge_tx, weights=dropped, minlength=n)[:n]
        routers = len(self._routers)
        offered_by = np.bincount(self._demand_src, weights=rate, minlength=routers)
        delivered_to = np.bincount(self._demand_dst, weights=delivered, minlength=routers)
        ingress = np.where(self._access_up[self._access_router], 1.0, 0.0)
        r[0, self._access_idx] += offered_by[self._access_router] * ingress
        r[1, self._access_idx] += delivered_to[self._access_router]
        r /= 8.0  # bits to octets
        pkt = self._pkt
        r[2] = r[0] / pkt
        r[3] = r[1] / pkt
        r[4] = r[4] / pkt + r[2] * self._err_base  # rare background errors
        r[5] = r[3] * self._err_base * 0.1
        r[6] = r[2] * self._err_base * 2.0
        r[7] = r[7] / pkt + r[3] * self._err_base

    def _advance_to(self, t: float) -> None:
        """Commit the counters up to ``t`` at the current rates (what reads have shown)."""
        dt = t - self._t
        if dt <= 0:
            return
        self._ctr += self._rate * dt
        self._t = t
        for router in self._routers.values():
            if router.churn:
                router.churn *= math.exp(-dt / 120.0)
            for s in router.sessions.values():
                if s.up:
                    s.updates_in += dt * (0.02 + 0.5 * router.churn)
                    s.updates_out += dt * (0.02 + 0.5 * router.churn)

    def _state(self, intf: _Interface, t: float) -> InterfaceState:
        r = self._rate[:, intf.idx]
        c = self._ctr[:, intf.idx] + r * max(0.0, t - self._t)
        far = self._far(intf)
        igp_up = False
        if intf.link is not None:
            k = intf.link
            igp_up = bool(self._edge_igp[2 * k])
        return InterfaceState(
            device=intf.device,
            name=intf.name,
            if_index=intf.if_index,
            if_type=intf.if_type,
            alias=intf.alias,
            speed_bps=intf.speed_bps,
            mtu=intf.mtu,
            mac=intf.mac,
            admin_up=intf.admin_up,
            oper_up=intf.oper_up,
            last_change=_ticks(intf.last_change - self._boot),
            in_octets=int(c[0]),
            out_octets=int(c[1]),
            in_ucast_pkts=int(c[2]),
            out_ucast_pkts=int(c[3]),
            in_errors=int(c[4]),
            out_errors=int(c[5]),
            in_discards=int(c[6]),
            out_discards=int(c[7]),
            in_bps=float(r[0] * 8.0),
            out_bps=float(r[1] * 8.0),
            address=intf.address,
            igp_metric=intf.igp_metric,
            igp_up=igp_up,
            peer=(far.device, far.name) if far is not None else None,
        )

    def _system(self, router: _Router, t: float) -> SystemState:
        _normal, cpu = self._cpu(router, t)
        used = self._mem_used_kb(router) + sum(_leak_kb(p, t) for p in router.processes.values())
        return SystemState(
            device=router.info.name,
            cpu_pct=cpu,
            mem_total_kb=_MEM_TOTAL_KB,
            mem_used_kb=min(used, _MEM_TOTAL_KB),
            uptime_ticks=_ticks(t - router.boot),
        )

    def _cpu(self, router: _Router, t: float) -> tuple[float, float]:
        """The router's CPU load without any runaway, and its load now (percent)."""
        util = []
        for intf in router.interfaces.values():
            if intf.speed_bps:
                util.append(float(self._rate[1, intf.idx]) * 8.0 / intf.speed_bps)
        mean_util = sum(util) / len(util) if util else 0.0
        tau = t - self._boot
        wobble = 1.5 * math.sin(tau / 37.0 + router.cpu_base) + 0.8 * math.sin(tau / 5.3)
        cpu = router.cpu_base + 25.0 * mean_util + 6.0 * min(router.churn, 5.0) + wobble
        normal = max(0.5, min(100.0, cpu))
        if any(p.runaway_since is not None for p in router.processes.values()):
            cpu = RUNAWAY_CPU_PCT + 2.0 * math.sin(tau / 3.1)
        return normal, max(0.5, min(100.0, cpu))

    def _mem_used_kb(self, router: _Router) -> int:
        """Memory in use without any leak: the base image plus the routing table."""
        prefixes = sum(1 for s in router.sessions.values() if s.up) * 50 + router.prefixes
        return int(_MEM_TOTAL_KB * (0.22 + router.cpu_base / 200.0)) + 2 * prefixes

    def _process_states(self, router: _Router, t: float) -> list[ProcessState]:
        normal, cpu = self._cpu(router, t)
        spinning = [p for p in router.processes.values() if p.runaway_since is not None]
        # The runaways take what the router's load has above normal, in equal parts.
        excess = (cpu - normal) / len(spinning) if spinning else 0.0
        used_kb = self._mem_used_kb(router)
        return [
            ProcessState(
                device=router.info.name,
                name=p.name,
                pid=p.pid,
                start_time=p.started,
                cpu_pct=min(100.0, p.cpu_share * normal + (excess if p in spinning else 0.0)),
                mem_bytes=(int(p.mem_share * used_kb) + _leak_kb(p, t)) * 1024,
            )
            for p in router.processes.values()
        ]

    def _prefixes_by_component(self) -> dict[tuple[str, bool], int]:
        """Prefixes each router can see: all those originated in its BGP-connected component.

        Cached until the next :meth:`_refresh` (BGP state changes only there).
        """
        if self._prefix_cache is None:
            self._prefix_cache = self._count_prefixes()
        return self._prefix_cache

    def _count_prefixes(self) -> dict[tuple[str, bool], int]:
        parent = {name: name for name in self._routers}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for router in self._routers.values():
            for s in router.sessions.values():
                if s.up:
                    a, b = find(router.info.name), find(self._ifaces[s.peer_ifidx].device)
                    parent[a] = b
        totals: dict[str, int] = {}
        for name, router in self._routers.items():
            root = find(name)
            totals[root] = totals.get(root, 0) + router.prefixes
        return {(name, True): totals[find(name)] for name in self._routers}


def _start_processes(router: _Router, seed: int) -> None:
    """Give ``router`` its daemons (:data:`PROCESSES`), started in turn at boot."""
    rng = random.Random(f"processes/{seed}/{router.info.name}")
    pid = rng.randint(300, 900)
    started = router.boot
    for name, cpu_share, mem_share in PROCESSES:
        pid += rng.randint(1, 40)
        started += rng.uniform(0.01, 0.2)
        router.processes[name] = _Process(name, pid, started, cpu_share, mem_share)
    router.next_pid = pid + rng.randint(200, 600)


def _leak_kb(proc: _Process, t: float) -> int:
    """What a runaway process has leaked by ``t``: growing from its start, then flat."""
    if proc.runaway_since is None:
        return 0
    grown = min(1.0, max(0.0, t - proc.runaway_since) / RUNAWAY_LEAK_S)
    return int(_MEM_TOTAL_KB * RUNAWAY_LEAK_FRACTION * grown)


def _port_endpoint(port: str) -> Endpoint:
    device, _, name = port.partition(":")
    return Endpoint(device=device, port=name)


def span_name(src: str, dst: str) -> str:
    """The span from ROADM ``src`` to ``dst``, as fault targets name it."""
    return f"span:{src}:{dst}"


def _short(roadm: str) -> str:
    return roadm.removeprefix("roadm-")


def _ticks(seconds: float) -> int:
    return max(0, int(seconds * 100))


def _flap_down(intf: _Interface, t: float, boot: float) -> bool:
    if not intf.flap_period:
        return False
    return ((t - boot) % intf.flap_period) >= intf.flap_period / 2.0


def _ip_key(address: str) -> tuple[int, ...]:
    return tuple(int(p) for p in address.split("."))


def rng_err(seed: int, i: int) -> float:
    """Background error ratio of interface ``i``: one frame in 10⁸ to 10⁹."""
    return random.Random(f"err/{seed}/{i}").uniform(1e-9, 1e-8)
