"""A pure-Python model of a small routed network: no sockets, only state and time.

Counters are computed lazily from an injectable clock, so a test can move
time forward by an hour in one line. Each direction of traffic is a
:class:`_Flow` whose rate is a smooth curve (a base rate, a slow ±10 %
sinusoid, and two small fast sinusoids standing in for noise). Octets are the
curve's closed-form integral, so counters are exact, monotonic and cheap to
read at any instant. The two ends of an IP link share the flow objects of
each direction, which makes A's out-octets exactly B's in-octets.

All state sits behind one :class:`threading.Lock`: SNMP handlers run on the
lab's event-loop thread while faults are injected from others.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from autonoc.core.errors import LabError
from autonoc.core.inventory import (
    Device,
    Endpoint,
    Inventory,
    Link,
    LinkKind,
    Mgmt,
    Role,
    SnmpV2c,
)

__all__ = [
    "COUNTER32_MODULUS",
    "PRESETS",
    "DeviceInfo",
    "InterfaceState",
    "LabNetwork",
    "counter32",
]

COUNTER32_MODULUS = 2**32
SPEED_BPS = 10_000_000_000
_TWO_PI = 2.0 * math.pi


def counter32(value: int) -> int:
    """The Counter32 view of a 64-bit counter: it wraps at 2**32."""
    return value % COUNTER32_MODULUS


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
    """One interface as seen at one instant: configuration, status and counters.

    ``last_change`` is in hundredths of a second since the device booted
    (sysUpTime at the last status change), as ifLastChange reports it.
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


class _Flow:
    """One direction of traffic: a rate curve and the octets it has carried.

    Octets accrue only while the flow is running; stopping freezes them and
    starting again resumes from the frozen value.
    """

    __slots__ = (
        "_accum",
        "_seg_start",
        "amplitudes",
        "base_bps",
        "boot",
        "omegas",
        "phases",
        "pkt_size",
        "running",
    )

    def __init__(self, rng: random.Random, boot: float) -> None:
        self.boot = boot
        self.base_bps = rng.uniform(200e6, 800e6)
        self.pkt_size = rng.randint(600, 1200)
        # A slow ±10 % swing (10 to 30 minutes), then two small fast terms as noise.
        self.amplitudes = (0.10, 0.02, 0.01)
        self.omegas = (
            _TWO_PI / rng.uniform(600.0, 1800.0),
            _TWO_PI / rng.uniform(7.0, 13.0),
            _TWO_PI / rng.uniform(1.3, 2.9),
        )
        self.phases = tuple(rng.uniform(0.0, _TWO_PI) for _ in range(3))
        self.running = True
        self._accum = 0.0
        self._seg_start = boot

    def _integral(self, t: float) -> float:
        """Bytes the curve carries from boot to ``t`` (closed form)."""
        tau = t - self.boot
        wobble = 0.0
        for a, w, p in zip(self.amplitudes, self.omegas, self.phases, strict=True):
            wobble += a / w * (math.cos(w * tau + p) - math.cos(p))
        return self.base_bps / 8.0 * (tau - wobble)

    def rate_bps(self, t: float) -> float:
        if not self.running:
            return 0.0
        tau = t - self.boot
        factor = 1.0
        for a, w, p in zip(self.amplitudes, self.omegas, self.phases, strict=True):
            factor += a * math.sin(w * tau + p)
        return self.base_bps * factor

    def octets(self, t: float) -> int:
        if not self.running:
            return int(self._accum)
        return int(self._accum + self._integral(t) - self._integral(self._seg_start))

    def packets(self, t: float) -> int:
        return self.octets(t) // self.pkt_size

    def set_running(self, running: bool, t: float) -> None:
        if running == self.running:
            return
        self._accum = float(self.octets(t))
        self._seg_start = t
        self.running = running


@dataclass(slots=True)
class _Interface:
    if_index: int
    name: str
    if_type: int
    alias: str
    mtu: int
    mac: bytes
    rx: _Flow | None
    tx: _Flow | None
    # Packets per error/discard: large, so that errors stay rare.
    in_err_every: int
    out_err_every: int
    in_disc_every: int
    out_disc_every: int
    peer: tuple[str, str] | None = None
    admin_up: bool = True
    oper_up: bool = True
    last_change: float = 0.0


@dataclass(slots=True)
class _Device:
    info: DeviceInfo
    boot: float
    interfaces: dict[str, _Interface] = field(default_factory=dict)


_ETHERNET_CSMACD = 6
_SOFTWARE_LOOPBACK = 24


class LabNetwork:
    """A simulated network of routers with links, traffic and faults.

    Build one with :meth:`preset`. Time comes from ``clock`` (epoch seconds);
    inject a fake clock in tests. Every method is thread-safe.
    """

    def __init__(self, clock: Callable[[], float] = time.time, seed: int = 7) -> None:
        self.clock = clock
        self.seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._boot = clock()
        self._last_now = self._boot
        self._devices: dict[str, _Device] = {}
        self._links: list[tuple[tuple[str, str], tuple[str, str]]] = []

    # Construction ---------------------------------------------------------

    @classmethod
    def preset(
        cls, name: str = "ring4", seed: int = 7, clock: Callable[[], float] = time.time
    ) -> LabNetwork:
        """Build a named topology.

        Raises:
            LabError: ``name`` is not one of :data:`PRESETS`.
        """
        try:
            build = PRESETS[name]
        except KeyError:
            known = ", ".join(sorted(PRESETS))
            raise LabError(f"unknown lab preset {name!r} (known presets: {known})") from None
        network = cls(clock=clock, seed=seed)
        build(network)
        return network

    def add_router(self, name: str, tags: tuple[str, ...] = (), site: str = "lab") -> None:
        """Add a router with only its loopback ``lo0``; links and ports add the rest."""
        with self._lock:
            if name in self._devices:
                raise LabError(f"lab device {name!r} already exists")
            info = DeviceInfo(
                name=name,
                role=Role.ROUTER,
                vendor="autonoc-lab",
                platform="lab-router",
                site=site,
                tags=tags,
                sys_descr=f"autonoc-lab lab-router {name} (simulated)",
                # The PEN reserved for documentation (RFC 5612): no real vendor.
                sys_object_id=(1, 3, 6, 1, 4, 1, 32473, 1, 1),
            )
            device = _Device(info=info, boot=self._boot)
            self._devices[name] = device
            self._new_interface(device, "lo0", "loopback", _SOFTWARE_LOOPBACK, None, None)

    def add_link(self, a: tuple[str, str], b: tuple[str, str]) -> None:
        """Add an IP link between ``(device, ifname)`` pairs, creating both interfaces."""
        with self._lock:
            a_to_b = _Flow(self._rng, self._boot)
            b_to_a = _Flow(self._rng, self._boot)
            for (dev, ifname), (far_dev, far_if), rx, tx in (
                (a, b, b_to_a, a_to_b),
                (b, a, a_to_b, b_to_a),
            ):
                device = self._device(dev)
                alias = f"to {far_dev} {far_if}"
                intf = self._new_interface(device, ifname, alias, _ETHERNET_CSMACD, rx, tx)
                intf.peer = (far_dev, far_if)
            self._links.append((a, b))

    def add_access_port(self, device: str, ifname: str, alias: str = "customer access") -> None:
        """Add an interface with no link; its traffic comes from customers."""
        with self._lock:
            dev = self._device(device)
            rx = _Flow(self._rng, self._boot)
            tx = _Flow(self._rng, self._boot)
            self._new_interface(dev, ifname, alias, _ETHERNET_CSMACD, rx, tx)

    def _new_interface(
        self,
        device: _Device,
        ifname: str,
        alias: str,
        if_type: int,
        rx: _Flow | None,
        tx: _Flow | None,
    ) -> _Interface:
        if ifname in device.interfaces:
            raise LabError(f"lab interface {device.info.name}:{ifname} already exists")
        rng = self._rng
        mac = bytes([0x02, 0x00, *rng.randbytes(4)])  # locally administered
        intf = _Interface(
            if_index=len(device.interfaces) + 1,
            name=ifname,
            if_type=if_type,
            alias=alias,
            mtu=9000 if if_type == _ETHERNET_CSMACD else 65536,
            mac=mac,
            rx=rx,
            tx=tx,
            in_err_every=rng.randint(20_000_000, 200_000_000),
            out_err_every=rng.randint(100_000_000, 1_000_000_000),
            in_disc_every=rng.randint(10_000_000, 100_000_000),
            out_disc_every=rng.randint(10_000_000, 100_000_000),
            last_change=self._boot,
        )
        device.interfaces[ifname] = intf
        return intf

    # Queries --------------------------------------------------------------

    @property
    def device_names(self) -> tuple[str, ...]:
        """Device names in the order they were added."""
        with self._lock:
            return tuple(self._devices)

    def device(self, name: str) -> DeviceInfo:
        """Static facts about device ``name``; LabError when unknown."""
        with self._lock:
            return self._device(name).info

    @property
    def links(self) -> tuple[tuple[tuple[str, str], tuple[str, str]], ...]:
        """IP links as ``((device, ifname), (device, ifname))`` pairs."""
        with self._lock:
            return tuple(self._links)

    def peer(self, device: str, ifname: str) -> tuple[str, str] | None:
        """The ``(device, ifname)`` at the far end of ``device:ifname``'s link, if any."""
        with self._lock:
            return self._interface(device, ifname).peer

    def now(self) -> float:
        """The clock's time, never earlier than a time this network already used."""
        with self._lock:
            return self._now()

    def sys_uptime(self, device: str, at: float | None = None) -> int:
        """Hundredths of a second since ``device`` booted (the network's construction)."""
        with self._lock:
            t = self._now() if at is None else at
            return _ticks(t - self._device(device).boot)

    def interface(self, device: str, ifname: str, at: float | None = None) -> InterfaceState:
        """A snapshot of ``device:ifname`` at ``at`` (default: now).

        Raises:
            LabError: no such device or interface.
        """
        with self._lock:
            t = self._now() if at is None else at
            dev = self._device(device)
            return self._state(dev, self._interface(device, ifname), t)

    def interfaces(self, device: str, at: float | None = None) -> list[InterfaceState]:
        """Snapshots of every interface of ``device``, in ifIndex order."""
        with self._lock:
            t = self._now() if at is None else at
            dev = self._device(device)
            return [self._state(dev, i, t) for i in dev.interfaces.values()]

    # Faults and state -----------------------------------------------------

    def set_admin_status(self, device: str, ifname: str, up: bool) -> None:
        """Set ``device:ifname`` admin up or down, as ``ifAdminStatus`` SETs do.

        Admin down takes this end oper down, the link's far end oper down
        (its admin status unchanged) and traffic on both ends to zero. Oper
        status comes back when both ends are admin up.

        Raises:
            LabError: no such device or interface.
        """
        with self._lock:
            t = self._now()
            intf = self._interface(device, ifname)
            if intf.admin_up != up:
                intf.admin_up = up
                intf.last_change = t
            peer = self._interface(*intf.peer) if intf.peer is not None else None
            oper = intf.admin_up and (peer is None or peer.admin_up)
            for end in (intf, peer):
                if end is None:
                    continue
                if end.oper_up != oper:
                    end.oper_up = oper
                    end.last_change = t
                for flow in (end.rx, end.tx):
                    if flow is not None:
                        flow.set_running(oper, t)

    # Inventory ------------------------------------------------------------

    def to_inventory(self, host: str, ports: dict[str, int], community: str) -> Inventory:
        """The inventory that reaches this network's devices on ``host:ports[name]``.

        Raises:
            LabError: ``ports`` lacks a device.
        """
        with self._lock:
            missing = [name for name in self._devices if name not in ports]
            if missing:
                raise LabError(f"no SNMP port given for lab device(s) {', '.join(missing)}")
            devices = tuple(
                Device(
                    name=d.info.name,
                    role=d.info.role,
                    vendor=d.info.vendor,
                    platform=d.info.platform,
                    site=d.info.site,
                    mgmt=Mgmt(host=host, snmp_port=ports[d.info.name]),
                    snmp=SnmpV2c(community=community),
                    tags=d.info.tags,
                )
                for d in self._devices.values()
            )
            links = tuple(
                Link(
                    kind=LinkKind.IP,
                    a=Endpoint(device=a[0], port=a[1]),
                    b=Endpoint(device=b[0], port=b[1]),
                )
                for a, b in self._links
            )
        return Inventory(devices=devices, links=links)

    # Internals (call with the lock held) ----------------------------------

    def _now(self) -> float:
        # A clock that steps back (NTP) must not make counters run backwards.
        self._last_now = max(self._last_now, self.clock())
        return self._last_now

    def _device(self, name: str) -> _Device:
        try:
            return self._devices[name]
        except KeyError:
            raise LabError(f"no lab device named {name!r}") from None

    def _interface(self, device: str, ifname: str) -> _Interface:
        dev = self._device(device)
        try:
            return dev.interfaces[ifname]
        except KeyError:
            known = ", ".join(dev.interfaces)
            raise LabError(
                f"lab device {device!r} has no interface {ifname!r} (it has: {known})"
            ) from None

    def _state(self, dev: _Device, intf: _Interface, t: float) -> InterfaceState:
        in_octets = intf.rx.octets(t) if intf.rx else 0
        out_octets = intf.tx.octets(t) if intf.tx else 0
        in_pkts = intf.rx.packets(t) if intf.rx else 0
        out_pkts = intf.tx.packets(t) if intf.tx else 0
        return InterfaceState(
            device=dev.info.name,
            name=intf.name,
            if_index=intf.if_index,
            if_type=intf.if_type,
            alias=intf.alias,
            speed_bps=SPEED_BPS,
            mtu=intf.mtu,
            mac=intf.mac,
            admin_up=intf.admin_up,
            oper_up=intf.oper_up,
            last_change=_ticks(intf.last_change - dev.boot),
            in_octets=in_octets,
            out_octets=out_octets,
            in_ucast_pkts=in_pkts,
            out_ucast_pkts=out_pkts,
            in_errors=in_pkts // intf.in_err_every,
            out_errors=out_pkts // intf.out_err_every,
            in_discards=in_pkts // intf.in_disc_every,
            out_discards=out_pkts // intf.out_disc_every,
            in_bps=intf.rx.rate_bps(t) if intf.rx else 0.0,
            out_bps=intf.tx.rate_bps(t) if intf.tx else 0.0,
        )


def _ticks(seconds: float) -> int:
    return max(0, int(seconds * 100))


def _ring4(network: LabNetwork, access_ports: int = 1) -> None:
    for name, tags in (("pe1", ("pe",)), ("pe2", ("pe",)), ("p1", ("p",)), ("p2", ("p",))):
        network.add_router(name, tags=tags)
    network.add_link(("pe1", "eth1"), ("p1", "eth1"))
    network.add_link(("p1", "eth2"), ("p2", "eth1"))
    network.add_link(("p2", "eth2"), ("pe2", "eth1"))
    network.add_link(("pe2", "eth2"), ("pe1", "eth2"))
    for pe in ("pe1", "pe2"):
        for n in range(3, 3 + access_ports):
            network.add_access_port(pe, f"eth{n}")


def _ring4_wide(network: LabNetwork) -> None:
    # 40 interfaces on each PE: for walk-speed checks and benchmarks.
    _ring4(network, access_ports=37)


PRESETS: dict[str, Callable[[LabNetwork], None]] = {
    "ring4": _ring4,
    "ring4-wide": _ring4_wide,
}
"""Named topologies :meth:`LabNetwork.preset` knows."""
