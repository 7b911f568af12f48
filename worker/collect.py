"""What the collect task does: poll one shard of the fleet once, publish to the bus.

Celery beat sends ``autonoc.collect`` per group interval and shard (see
:func:`worker.app.collect_beat_schedule`); any worker on the collect queue
may run any shard, so counter baselines live in Redis, not in the process:
each task loads its devices' baselines, polls, and saves them back, and a
device's rates come out right whichever worker polled it last time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import structlog

from autonoc.core.errors import ConfigError
from autonoc.core.settings import Settings
from collectors.base import Collector
from collectors.bus import TelemetryBus
from collectors.inventory import load_inventory
from collectors.netconf import NetconfCollector, NetconfSessionPool
from collectors.rates import RateTracker
from collectors.scheduler import Poller, shard_devices
from collectors.service import policy_from_settings
from collectors.snmp import SnmpClient
from collectors.snmp_groups import SnmpCollector

__all__ = ["RATES_KEY", "ShardCollector"]

log = structlog.get_logger(__name__)

#: Redis hash of one device's counter baselines for one protocol.
RATES_KEY = "autonoc:rates:{protocol}:{device}"
#: Baselines older than this are useless (the next rate would span too long).
_RATES_TTL_S = 3600


class ShardCollector:
    """Runs collect tasks in one worker process.

    The process keeps one event loop, so the SNMP socket and the NETCONF
    sessions live from one task to the next; the inventory is read per task.
    """

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=30)
        self.bus = TelemetryBus.from_settings(self.redis, settings)
        self._loop = asyncio.new_event_loop()
        self._snmp_client = SnmpClient(settings.snmp, max_in_flight=settings.snmp.max_in_flight)
        self._pool = NetconfSessionPool(workers=settings.collect.netconf_workers)

    def collect(self, groups: list[str], shard: int, shards: int) -> dict[str, Any]:
        """Poll shard ``shard`` of ``shards`` for ``groups``; returns a JSON summary."""
        if self.settings.inventory is None:
            raise ConfigError(
                "the worker has no inventory: set AUTONOC_INVENTORY=path/inventory.yaml"
            )
        devices = shard_devices(load_inventory(self.settings.inventory).devices, shard, shards)
        snmp = SnmpCollector(self._snmp_client)
        netconf = NetconfCollector(self._pool)
        collectors: dict[str, Collector] = {"snmp": snmp, "netconf": netconf}
        trackers = {"snmp": snmp.rates, "netconf": netconf.rates}
        names = [d.name for d in devices]
        self._load_rates(trackers, names)
        poller = Poller(devices, collectors, policy_from_settings(self.settings))
        outcomes = self._loop.run_until_complete(poller.poll_once(groups))
        self._save_rates(trackers, names)
        samples = [s for o in outcomes for s in o.result.samples]
        self.bus.publish_samples(samples)
        failed = {o.device.name: str(o.result.exception) for o in outcomes if o.result.failed}
        summary = {
            "groups": groups,
            "shard": f"{shard}/{shards}",
            "devices": len(devices),
            "polls": len(outcomes),
            "failed": failed,
            "samples": len(samples),
            "varbinds": sum(o.result.varbinds for o in outcomes),
        }
        log.info("collect_task_done", **{k: v for k, v in summary.items() if k != "failed"})
        return summary

    def _load_rates(self, trackers: dict[str, RateTracker], devices: list[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        keys = [(p, d) for p in trackers for d in devices]
        for protocol, device in keys:
            pipe.hgetall(RATES_KEY.format(protocol=protocol, device=device))
        for (protocol, device), state in zip(keys, pipe.execute(), strict=True):
            trackers[protocol].restore(device, state)

    def _save_rates(self, trackers: dict[str, RateTracker], devices: list[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for protocol, tracker in trackers.items():
            for device in devices:
                state = tracker.export(device)
                if state:
                    key = RATES_KEY.format(protocol=protocol, device=device)
                    pipe.hset(key, mapping=state)  # type: ignore[arg-type]
                    pipe.expire(key, _RATES_TTL_S)
        pipe.execute()

    def close(self) -> None:
        self._pool.close_all()
        self._snmp_client.close()
        self._loop.close()
        self.redis.close()
