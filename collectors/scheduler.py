"""Polling on a schedule: per-group intervals with jitter, a concurrency limit, timeouts, backoff.

Which groups a device gets depends on its role (:data:`ROLE_GROUPS`); which
protocol serves a group depends on what the device's inventory entry enables
and on :data:`GROUP_PROTOCOLS` (optics prefer NETCONF, counters prefer SNMP),
so a device with both is polled over both without reading a metric twice.

Each device gets a fixed phase inside every interval, derived from its name,
so a fleet's polls spread over the interval instead of starting in lockstep;
a little random jitter on top keeps them from drifting back together. Groups
of one device that fall due together go out as one collection. A device that
fails is not asked again until its backoff (doubling, capped, jittered) ends;
one success clears it. Every collection runs under its own timeout, so one
device that never answers cannot hold up a cycle.

:func:`shard_devices` splits a fleet between workers by a stable hash of the
device name; each worker runs its own :class:`Poller` on its shard.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import random
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import structlog

from autonoc.core.errors import AutonocError, DeviceUnreachable
from autonoc.core.inventory import Device, Role
from autonoc.core.settings import CollectSettings
from collectors.base import Collector, CollectRequest, CollectResult

__all__ = [
    "DEFAULT_INTERVALS",
    "GROUP_PROTOCOLS",
    "ROLE_GROUPS",
    "Backoff",
    "PollOutcome",
    "PollPolicy",
    "Poller",
    "plan_polls",
    "shard_devices",
    "shard_of",
]

log = structlog.get_logger(__name__)

#: Seconds between polls of each metric group (the settings' defaults).
DEFAULT_INTERVALS: Mapping[str, float] = MappingProxyType(CollectSettings().intervals)

#: The groups each kind of device is polled for.
ROLE_GROUPS: dict[Role, tuple[str, ...]] = {
    Role.ROUTER: ("interfaces", "system", "bgp", "inventory"),
    Role.SWITCH: ("interfaces", "system", "bgp", "inventory"),
    Role.TRANSPONDER: ("optics", "interfaces", "inventory"),
    Role.AMPLIFIER: ("optics", "interfaces", "inventory"),
    Role.ROADM: ("optics", "interfaces", "inventory"),
}

#: Protocols that can serve each group, preferred first. NETCONF reads optics
#: as the platform models them (no sensor-table decoding, one get per
#: component tree); SNMP is the cheaper path for counters and status.
GROUP_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "optics": ("netconf", "snmp"),
    "interfaces": ("snmp", "netconf"),
    "system": ("snmp", "netconf"),
    "bgp": ("snmp", "netconf"),
    "inventory": ("snmp",),
}


def _enabled(device: Device, protocol: str) -> bool:
    if protocol == "snmp":
        return device.snmp is not None
    if protocol == "netconf":
        return device.netconf is not None
    return False


def plan_polls(
    device: Device,
    protocols: Collection[str],
    *,
    role_groups: Mapping[Role, Sequence[str]] = ROLE_GROUPS,
    group_protocols: Mapping[str, Sequence[str]] = GROUP_PROTOCOLS,
    only: Collection[str] | None = None,
) -> dict[str, tuple[str, ...]]:
    """Which groups to poll over which protocol for ``device``.

    Args:
        device: the inventory entry (its ``snmp``/``netconf`` sections say what is enabled).
        protocols: collectors available in this process.
        only: restrict to these groups (``None``: every group of the device's role).

    Returns:
        protocol name to groups; empty when the device enables no usable protocol.
    """
    plan: dict[str, list[str]] = {}
    for group in role_groups.get(device.role, ()):
        if only is not None and group not in only:
            continue
        for protocol in group_protocols.get(group, ()):
            if protocol in protocols and _enabled(device, protocol):
                plan.setdefault(protocol, []).append(group)
                break
    return {protocol: tuple(groups) for protocol, groups in plan.items()}


def _unit_hash(*parts: str) -> float:
    """A stable number in [0, 1) for ``parts``: the same on every host and run."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def shard_of(device: str, shards: int) -> int:
    """The shard (0-based) that polls ``device`` when a fleet is split ``shards`` ways."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    return int(_unit_hash("shard", device) * shards)


def shard_devices(devices: Iterable[Device], shard: int, shards: int) -> list[Device]:
    """The devices of shard ``shard`` of ``shards`` (stable as devices come and go)."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard must be in 0..{shards - 1}, got {shard}")
    return [d for d in devices if shard_of(d.name, shards) == shard]


class Backoff:
    """When an unreachable device may be asked again.

    After the n-th consecutive failure a device waits ``base × 2^(n-1)``
    seconds, at most ``maximum``, ±20 % so that devices that failed together
    come back spread out.
    """

    def __init__(
        self, base: float = 30.0, maximum: float = 900.0, *, rng: random.Random | None = None
    ) -> None:
        self.base = base
        self.maximum = maximum
        self._rng = rng or random.Random()
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def failed(self, device: str, now: float) -> float:
        """Record a failure; returns when the device may be polled again."""
        n = self._failures.get(device, 0) + 1
        self._failures[device] = n
        delay = min(self.maximum, self.base * float(2 ** min(n - 1, 30)))
        until = now + delay * self._rng.uniform(0.8, 1.2)
        self._until[device] = until
        return until

    def succeeded(self, device: str) -> None:
        self._failures.pop(device, None)
        self._until.pop(device, None)

    def until(self, device: str) -> float:
        """When the device's backoff ends (0.0 when it has none)."""
        return self._until.get(device, 0.0)

    def failures(self, device: str) -> int:
        return self._failures.get(device, 0)

    def backing_off(self, now: float) -> int:
        """How many devices are waiting out a backoff at ``now``."""
        return sum(1 for until in self._until.values() if until > now)


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How a :class:`Poller` paces its work."""

    intervals: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_INTERVALS))
    concurrency: int = 64
    #: Seconds one device's collection (all its requests and retries) may take.
    device_timeout: float = 20.0
    #: Random jitter around each due time, as a fraction of the interval.
    jitter: float = 0.05
    backoff_base: float = 30.0
    backoff_max: float = 900.0
    #: The first polls spread over at most this many seconds (or the group's
    #: interval, when shorter), so a slow group such as inventory does not
    #: wait a whole interval for its first poll.
    max_initial_spread: float = 60.0
    role_groups: Mapping[Role, Sequence[str]] = field(default_factory=lambda: dict(ROLE_GROUPS))
    group_protocols: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: dict(GROUP_PROTOCOLS)
    )


@dataclass(slots=True)
class PollOutcome:
    """One collection from one device over one protocol."""

    device: Device
    protocol: str
    groups: tuple[str, ...]
    result: CollectResult
    #: Seconds between when the poll was due and when it started.
    lag_s: float = 0.0


OnOutcome = Callable[[PollOutcome], Awaitable[None] | None]


@dataclass(order=True, slots=True)
class _Due:
    at: float
    seq: int
    device: str = field(compare=False)
    protocol: str = field(compare=False)
    group: str = field(compare=False)
    #: The slot on the device's grid before jitter; jitter never accumulates.
    grid: float = field(compare=False, default=0.0)


class Poller:
    """Polls a set of devices over the collectors given, once or on schedule.

    Args:
        devices: the devices this poller owns (a shard of the fleet).
        collectors: by protocol name (``snmp``, ``netconf``).
        policy: intervals, concurrency, timeouts and backoff.
        on_outcome: called with each outcome as it completes (sync or async);
            it publishes samples, updates exporters and health.
        rng: for jitter and backoff; seed it in tests.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        devices: Iterable[Device],
        collectors: Mapping[str, Collector],
        policy: PollPolicy | None = None,
        *,
        on_outcome: OnOutcome | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.devices = {d.name: d for d in devices}
        self.collectors = dict(collectors)
        self.policy = policy or PollPolicy()
        self.on_outcome = on_outcome
        self._rng = rng or random.Random()
        self._clock = clock
        self.backoff = Backoff(self.policy.backoff_base, self.policy.backoff_max, rng=self._rng)
        self._semaphore: asyncio.Semaphore | None = None
        self._in_flight: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[PollOutcome]] = set()
        self._seq = 0
        self._jitter_seed = self._rng.getrandbits(32)
        #: Polls skipped because the previous one of that device was still running.
        self.overruns = 0
        #: The largest lag seen since the last :meth:`take_max_lag`.
        self._max_lag = 0.0

    def plan(
        self, device: Device, only: Collection[str] | None = None
    ) -> dict[str, tuple[str, ...]]:
        """Groups per protocol for ``device`` in this poller."""
        return plan_polls(
            device,
            self.collectors,
            role_groups=self.policy.role_groups,
            group_protocols=self.policy.group_protocols,
            only=only,
        )

    async def poll_once(
        self, groups: Collection[str] | None = None, *, respect_backoff: bool = False
    ) -> list[PollOutcome]:
        """Poll every device once for every group of its role (or ``groups``).

        Returns:
            One outcome per (device, protocol), devices in the order given;
            devices still backing off are left out when ``respect_backoff``.
        """
        now = self._clock()
        jobs = [
            (device, protocol, device_groups)
            for device in self.devices.values()
            if not (respect_backoff and self.backoff.until(device.name) > now)
            for protocol, device_groups in self.plan(device, groups).items()
        ]
        return list(await asyncio.gather(*(self._poll(d, p, g, due=now) for d, p, g in jobs)))

    async def run(self, stop: asyncio.Event) -> None:
        """Poll on schedule until ``stop`` is set; in-flight polls finish first."""
        heap = self._initial_schedule()
        while not stop.is_set():
            if not heap:
                await stop.wait()
                break
            wait = heap[0].at - self._clock()
            if wait > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                    break
                except TimeoutError:
                    pass
            now = self._clock()
            # Everything due within a short window goes out now, so one
            # device's groups that share a phase become one collection.
            batch: dict[tuple[str, str], list[_Due]] = {}
            while heap and heap[0].at <= now + 0.25:
                due = heapq.heappop(heap)
                batch.setdefault((due.device, due.protocol), []).append(due)
            for (name, protocol), dues in batch.items():
                device = self.devices[name]
                earliest = min(d.at for d in dues)
                for due in dues:
                    heapq.heappush(heap, self._next(due, now))
                if (name, protocol) in self._in_flight:
                    self.overruns += 1
                    log.debug("poll_overrun", device=name, protocol=protocol)
                    continue
                if self.backoff.until(name) > now:
                    continue
                groups = tuple(dict.fromkeys(d.group for d in dues))
                task = asyncio.create_task(self._poll(device, protocol, groups, due=earliest))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def take_max_lag(self) -> float:
        """The largest start lag since the previous call (for a health gauge)."""
        lag, self._max_lag = self._max_lag, 0.0
        return lag

    # Internals ------------------------------------------------------------

    def _interval(self, group: str) -> float:
        return float(self.policy.intervals.get(group, DEFAULT_INTERVALS.get(group, 60.0)))

    def _initial_schedule(self) -> list[_Due]:
        now = self._clock()
        heap: list[_Due] = []
        seq = 0
        for device in self.devices.values():
            phase = _unit_hash("phase", device.name)
            for protocol, groups in self.plan(device).items():
                for group in groups:
                    spread = min(self._interval(group), self.policy.max_initial_spread)
                    at = now + phase * spread
                    heap.append(_Due(at, seq, device.name, protocol, group, grid=at))
                    seq += 1
        heapq.heapify(heap)
        self._seq = seq
        return heap

    def _next(self, due: _Due, now: float) -> _Due:
        interval = self._interval(due.group)
        grid = due.grid + interval
        if grid <= now:  # far behind (a stalled loop, a long pause): skip, keep the phase
            grid += interval * (1 + (now - grid) // interval)
        # The same jitter for every group of a device that shares this slot, so
        # they still go out as one collection.
        unit = _unit_hash("jitter", due.device, f"{grid:.3f}", str(self._jitter_seed))
        at = grid + (2 * unit - 1) * self.policy.jitter * interval
        self._seq += 1
        return _Due(max(at, now), self._seq, due.device, due.protocol, due.group, grid=grid)

    async def _poll(
        self, device: Device, protocol: str, groups: tuple[str, ...], *, due: float
    ) -> PollOutcome:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(max(1, self.policy.concurrency))
        key = (device.name, protocol)
        self._in_flight.add(key)
        try:
            async with self._semaphore:
                lag = max(0.0, self._clock() - due)
                self._max_lag = max(self._max_lag, lag)
                result = await self._collect(device, protocol, groups)
            if result.failed:
                self.backoff.failed(device.name, self._clock())
            else:
                self.backoff.succeeded(device.name)
            outcome = PollOutcome(device, protocol, groups, result, lag)
            if self.on_outcome is not None:
                pending = self.on_outcome(outcome)
                if pending is not None:
                    await pending
            return outcome
        finally:
            self._in_flight.discard(key)

    async def _collect(
        self, device: Device, protocol: str, groups: tuple[str, ...]
    ) -> CollectResult:
        collector = self.collectors[protocol]
        started = time.perf_counter()
        timeout = self.policy.device_timeout
        try:
            result = await asyncio.wait_for(
                collector.collect(device, CollectRequest(groups=groups)), timeout
            )
        except TimeoutError:
            result = CollectResult(
                device=device.name,
                failed=True,
                exception=DeviceUnreachable(
                    device.name,
                    f"{protocol} poll of {', '.join(groups)} took longer than {timeout:g} s "
                    "(raise collect.device_timeout, or check the device's load and the path)",
                ),
            )
        except AutonocError as exc:  # a collector that raised instead of returning
            result = CollectResult(device=device.name, failed=True, exception=exc)
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result
