"""Continuous collection in one process: pollers, traps, the bus, history and /metrics.

:class:`CollectService` wires the parts of :mod:`collectors` together for
``autonoc collect run``:

- a :class:`~collectors.scheduler.Poller` over the SNMP and NETCONF collectors,
  for this process's shard of the inventory;
- every outcome goes to the Prometheus exporter's latest values and health,
  and its samples onto the Redis telemetry bus, in batches;
- a :class:`~collectors.traps.TrapReceiver` turns notifications into events on the bus;
- a :class:`~collectors.bus.HistoryWriter` thread stores the bus in SQL, and
  compacts old history once an hour (leave it to other processes with
  ``history=False``).

:func:`collect_once` is the one-cycle form behind ``autonoc collect once``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import redis
import structlog

from autonoc.core.errors import AutonocError, DatabaseUnavailable, RedisUnavailable
from autonoc.core.inventory import Device, Inventory
from autonoc.core.settings import Settings
from autonoc.core.types import Alarm, Sample
from collectors.base import Collector
from collectors.bus import HistoryWriter, TelemetryBus
from collectors.exporter import CollectorHealth, LatestMetrics, MetricsServer
from collectors.netconf import NetconfCollector, NetconfSessionPool
from collectors.scheduler import Poller, PollOutcome, PollPolicy, shard_devices
from collectors.snmp import SnmpClient
from collectors.snmp_groups import SnmpCollector
from collectors.snmpwire import udp_rcvbuf_errors
from collectors.store import SampleStore
from collectors.traps import TrapReceiver

__all__ = ["CollectService", "ServiceStats", "collect_once", "policy_from_settings"]

log = structlog.get_logger(__name__)

#: Cumulative wire counters exported as autonoc_snmp_datagrams_total{kind}.
_WIRE_COUNTERS = ("requests", "retries", "replies", "timeouts", "malformed", "unmatched")
_COMPACT_EVERY_S = 3600.0
_FLUSH_EVERY_S = 0.5
_HEALTH_EVERY_S = 5.0


def policy_from_settings(settings: Settings) -> PollPolicy:
    """The scheduler's pacing from ``settings.collect`` and ``settings.snmp``."""
    c = settings.collect
    return PollPolicy(
        intervals=dict(c.intervals),
        concurrency=settings.snmp.concurrency,
        device_timeout=c.device_timeout,
        jitter=c.jitter,
        backoff_base=c.backoff_base,
        backoff_max=c.backoff_max,
    )


@contextlib.contextmanager
def _collectors(settings: Settings) -> Iterator[tuple[dict[str, Collector], SnmpCollector]]:
    """The SNMP and NETCONF collectors, closed on exit."""
    client = SnmpClient(settings.snmp, max_in_flight=settings.snmp.max_in_flight)
    pool = NetconfSessionPool(workers=settings.collect.netconf_workers)
    snmp = SnmpCollector(client)
    try:
        yield {"snmp": snmp, "netconf": NetconfCollector(pool)}, snmp
    finally:
        pool.close_all()
        client.close()


async def collect_once(
    settings: Settings,
    devices: Sequence[Device],
    *,
    groups: Sequence[str] | None = None,
    protocols: Sequence[str] | None = None,
    progress: Callable[[PollOutcome], None] | None = None,
) -> list[PollOutcome]:
    """Poll every device once, over every protocol its inventory entry enables.

    Args:
        groups: only these metric groups (default: each device's role's groups).
        protocols: only these collectors (``snmp``, ``netconf``).
        progress: called as each device's poll completes.

    Returns:
        One outcome per (device, protocol); failures are outcomes, never raised.
    """
    with _collectors(settings) as (collectors, _):
        if protocols is not None:
            collectors = {p: c for p, c in collectors.items() if p in protocols}
        poller = Poller(
            devices,
            collectors,
            policy_from_settings(settings),
            on_outcome=progress,
        )
        return await poller.poll_once(groups)


@dataclass
class ServiceStats:
    """What a :class:`CollectService` did, for its status line and tests."""

    polls: int = 0
    failed: int = 0
    samples: int = 0
    published: int = 0
    events: int = 0
    publish_errors: int = 0
    by_protocol: dict[str, int] = field(default_factory=dict)


class CollectService:
    """Collects continuously from a shard of the inventory until stopped.

    Args:
        settings: the installation's settings (``collect``, ``snmp``, ``bus``, ``history``).
        inventory: the devices and links.
        redis_client: the telemetry bus's Redis; ``None`` collects without
            publishing (exporter only).
        store: the SQL history; with ``history=True`` this process also runs
            a history writer and compaction.
        shard: ``(index, count)``: this process polls the devices of shard ``index``.
        metrics: serve Prometheus ``/metrics`` on ``settings.collect.metrics_host/port``.
        traps: receive traps on ``settings.collect.trap_host/port``.
    """

    def __init__(
        self,
        settings: Settings,
        inventory: Inventory,
        *,
        redis_client: redis.Redis | None = None,
        store: SampleStore | None = None,
        history: bool = True,
        shard: tuple[int, int] = (0, 1),
        metrics: bool = True,
        traps: bool = True,
    ) -> None:
        self.settings = settings
        self.inventory = inventory
        self.devices = shard_devices(inventory.devices, *shard)
        self.redis = redis_client
        self.store = store
        self.history = history and store is not None and redis_client is not None
        self.bus = TelemetryBus.from_settings(redis_client, settings) if redis_client else None
        self.latest = LatestMetrics(staleness=3 * max(settings.collect.intervals.values()))
        self.health = CollectorHealth()
        self.stats = ServiceStats()
        self.metrics_server: MetricsServer | None = None
        self.trap_receiver: TrapReceiver | None = None
        self.writer: HistoryWriter | None = None
        self.poller: Poller | None = None
        self._want_metrics = metrics
        self._want_traps = traps
        self._pending_samples: list[Sample] = []
        self._pending_events: list[Alarm] = []
        self._writer_stop = threading.Event()

    async def run(self, stop: asyncio.Event, *, ready: Callable[[], None] | None = None) -> None:
        """Collect until ``stop`` is set; everything started is stopped on the way out.

        Raises:
            ConfigError: the metrics or trap port cannot be bound.
        """
        with contextlib.ExitStack() as stack, _collectors(self.settings) as (collectors, snmp):
            self.poller = Poller(
                self.devices,
                collectors,
                policy_from_settings(self.settings),
                on_outcome=self._on_outcome,
            )
            if self._want_metrics:
                c = self.settings.collect
                self.metrics_server = MetricsServer(
                    self.latest, self.health, host=c.metrics_host, port=c.metrics_port
                ).start()
                stack.callback(self.metrics_server.stop)
                log.info("metrics_serving", url=self.metrics_server.url)
            writer_thread = self._start_writer()
            if self._want_traps:
                self.trap_receiver = TrapReceiver(
                    self.inventory,
                    self._on_alarms,
                    host=self.settings.collect.trap_host,
                    port=self.settings.collect.trap_port,
                    if_names=snmp.if_name,
                )
                await self.trap_receiver.start()
            background = [
                asyncio.create_task(self._flush_loop(stop)),
                asyncio.create_task(self._health_loop(stop, collectors)),
            ]
            try:
                log.info(
                    "collect_started",
                    devices=len(self.devices),
                    metrics=self.metrics_server.url if self.metrics_server else None,
                    traps=self.trap_receiver.port if self.trap_receiver else None,
                    history=self.history,
                )
                if ready is not None:
                    ready()
                await self.poller.run(stop)
            finally:
                if self.trap_receiver is not None:
                    await self.trap_receiver.stop()
                stop.set()
                await asyncio.gather(*background, return_exceptions=True)
                await self._flush()
                self._writer_stop.set()
                if writer_thread is not None:
                    await asyncio.to_thread(writer_thread.join, 30)

    # Outcomes and events --------------------------------------------------

    def _on_outcome(self, outcome: PollOutcome) -> None:
        result = outcome.result
        self.stats.polls += 1
        self.stats.by_protocol[outcome.protocol] = (
            self.stats.by_protocol.get(outcome.protocol, 0) + 1
        )
        if result.failed:
            self.stats.failed += 1
            log.info(
                "poll_failed",
                device=outcome.device.name,
                protocol=outcome.protocol,
                error=str(result.exception),
            )
        self.stats.samples += len(result.samples)
        self.latest.update(result.samples, outcome.device)
        self.health.observe_result(result, outcome.protocol, outcome.groups)
        if self.bus is not None:
            self._pending_samples.extend(result.samples)

    def _on_alarms(self, alarms: Sequence[Alarm]) -> None:
        self.stats.events += len(alarms)
        for alarm in alarms:
            log.info("trap_event", device=alarm.device, kind=alarm.kind, instance=alarm.instance)
        if self.bus is not None:
            self._pending_events.extend(alarms)

    async def _flush(self) -> None:
        if self.bus is None or not (self._pending_samples or self._pending_events):
            return
        samples, self._pending_samples = self._pending_samples, []
        events, self._pending_events = self._pending_events, []
        bus = self.bus
        try:
            await asyncio.to_thread(bus.publish_samples, samples)
            await asyncio.to_thread(bus.publish_events, events)
            self.stats.published += len(samples)
        except RedisUnavailable as exc:
            # The next flush tries again with what arrived meanwhile; these are lost
            # rather than held without bound while Redis is away.
            self.stats.publish_errors += 1
            log.warning("bus_publish_failed", error=str(exc), samples=len(samples))

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _FLUSH_EVERY_S)
            await self._flush()

    async def _health_loop(self, stop: asyncio.Event, collectors: dict[str, Collector]) -> None:
        snmp = collectors["snmp"]
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _HEALTH_EVERY_S)
            assert self.poller is not None
            now = time.monotonic()
            backing_off = self.poller.backoff.backing_off(now)
            self.health.set_lag(self.poller.take_max_lag())
            self.health.set_devices(
                {"polled": len(self.poller.devices) - backing_off, "backoff": backing_off}
            )
            if isinstance(snmp, SnmpCollector) and isinstance(snmp.client, SnmpClient):
                wire = asdict(snmp.client.stats())
                counts = {k: int(wire[k]) for k in _WIRE_COUNTERS}
                rcvbuf_errors = udp_rcvbuf_errors()
                if rcvbuf_errors is not None:
                    counts["rcvbuf_errors"] = rcvbuf_errors
                self.health.set_wire_stats(counts)
            if self.writer is not None:
                writer = self.writer
                try:
                    backlog = await asyncio.to_thread(writer.backlog)
                    self.health.set_bus_pending(sum(p for p, _ in backlog.values()))
                except AutonocError as exc:
                    log.debug("bus_backlog_unavailable", error=str(exc))

    # History --------------------------------------------------------------

    def _start_writer(self) -> threading.Thread | None:
        if not self.history or self.redis is None or self.store is None:
            return None
        self.writer = HistoryWriter.from_settings(self.redis, self.store, self.settings)
        thread = threading.Thread(
            target=self._writer_main, name="autonoc-history-writer", daemon=True
        )
        thread.start()
        return thread

    def _writer_main(self) -> None:
        assert self.writer is not None
        compact_at = time.monotonic() + 60.0  # not in the middle of start-up
        delay = 0.5
        while not self._writer_stop.is_set():
            try:
                self.writer.run_once(block_ms=500)
                delay = 0.5
            except (RedisUnavailable, DatabaseUnavailable) as exc:
                log.warning("history_writer_waiting", error=str(exc), retry_in_s=delay)
                self._writer_stop.wait(delay)
                delay = min(delay * 2, 30.0)
            if time.monotonic() >= compact_at:
                compact_at = time.monotonic() + _COMPACT_EVERY_S
                self._compact()
        # Store what the last flush published before stopping.
        for _ in range(100):
            try:
                if self.writer.run_once(block_ms=0) == 0:
                    break
            except (RedisUnavailable, DatabaseUnavailable) as exc:
                log.warning("history_writer_stopped_with_backlog", error=str(exc))
                break

    def _compact(self) -> None:
        assert self.store is not None
        h = self.settings.history
        try:
            done = self.store.compact(
                time.time(),
                h.raw_retention_days * 86400,
                h.rollup_resolution_s,
                h.rollup_retention_days * 86400,
            )
            log.info("history_compacted", **asdict(done))
        except AutonocError as exc:
            log.warning("history_compaction_failed", error=str(exc))
