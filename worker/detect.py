"""Online detection composed with the telemetry bus: the adapters, and the detect task's body.

:class:`BusSampleFeed` and :class:`StreamAnomalyPublisher` connect
:class:`models.detect_service.DetectionService` to Redis: samples from
``autonoc:samples`` through the consumer group ``detect``, anomalies onto
``autonoc:anomalies``. ``autonoc detect run`` and the Celery task both build
the service with :func:`build_service`.

The task (:class:`DetectCycle`, behind ``autonoc.detect`` on a beat
schedule) runs scoring cycles until the bus has nothing new, in a worker
process that keeps the service between tasks: device frames, fallback
detectors and the loaded model version live in that process. Give the task
its own queue served by one worker process (``autonoc worker --queues detect``):
two processes would each see part of every device's samples. The consumer
name is fixed, so a replacement worker picks up what the last one left
unacknowledged. A newly promoted version is loaded at the next task.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import redis
import structlog

from autonoc.core.errors import RedisUnavailable
from autonoc.core.settings import Settings
from autonoc.core.types import Anomaly
from collectors.bus import SAMPLES_STREAM, BadEntry, StreamConsumer, decode_samples
from models.detect_service import ANOMALIES_STREAM, DetectionService, FeedEntry, encode_anomaly
from models.registry import ModelRegistry

__all__ = [
    "DETECT_GROUP",
    "BusSampleFeed",
    "DetectCycle",
    "StreamAnomalyPublisher",
    "build_service",
]

log = structlog.get_logger(__name__)

#: The consumer group detection reads ``autonoc:samples`` through.
DETECT_GROUP = "detect"
#: The consumer name the Celery task reads as (one detect worker process at a time).
TASK_CONSUMER = "detect-task"


@contextmanager
def _map_redis_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        raise RedisUnavailable(
            f"cannot {doing}: {reason}. Check that Redis runs "
            "(AUTONOC_REDIS_URL, or the embedded one under AUTONOC_HOME)"
        ) from exc


class BusSampleFeed:
    """A :class:`~models.detect_service.SampleFeed` over a consumer of ``autonoc:samples``.

    An entry that does not decode is logged and handed on with no samples, so
    it is acknowledged and never blocks the group.
    """

    def __init__(self, consumer: StreamConsumer) -> None:
        self.consumer = consumer
        self.rejected = 0

    def read(self, count: int, block_ms: int | None) -> list[FeedEntry]:
        out = []
        for entry in self.consumer.read(count, block_ms):
            try:
                samples = decode_samples(entry.fields) if entry.fields else []
            except BadEntry as exc:
                self.rejected += 1
                log.warning("detect_entry_rejected", id=entry.id, reason=str(exc))
                samples = []
            out.append(FeedEntry(entry.id, samples))
        return out

    def ack(self, ids: Sequence[str]) -> None:
        self.consumer.ack(ids)

    def retry_pending(self) -> None:
        self.consumer.retry_pending()


class StreamAnomalyPublisher:
    """An :class:`~models.detect_service.AnomalySink` onto a Redis stream, JSON entries.

    Args:
        client: a redis-py client.
        stream: the stream's key.
        maxlen: entries the stream keeps (trimmed approximately).
    """

    def __init__(
        self, client: redis.Redis, stream: str = ANOMALIES_STREAM, maxlen: int = 100_000
    ) -> None:
        self.client = client
        self.stream = stream
        self.maxlen = maxlen

    def publish(self, anomalies: Sequence[Anomaly]) -> None:
        """Add one entry per anomaly, in one round trip.

        Raises:
            RedisUnavailable: Redis did not take them.
        """
        if not anomalies:
            return
        with _map_redis_errors(f"publish to the Redis stream {self.stream!r}"):
            pipe = self.client.pipeline(transaction=False)
            for anomaly in anomalies:
                fields: Any = encode_anomaly(anomaly)
                pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
            pipe.execute()


def build_service(
    client: redis.Redis,
    settings: Settings,
    *,
    consumer: str,
    kinds: Mapping[str, str] | None = None,
    samples_stream: str = SAMPLES_STREAM,
    anomalies_stream: str = ANOMALIES_STREAM,
    **options: Any,
) -> DetectionService:
    """A detection service on ``client``'s bus with the promoted models of ``settings.home``.

    Args:
        consumer: this reader's name in the ``detect`` group.
        kinds: device to inventory role, where known.
        options: passed to :class:`DetectionService`.

    Raises:
        RedisUnavailable: the consumer group cannot be created.
        RegistryError: the promoted version cannot be loaded.
    """
    stream_consumer = StreamConsumer(
        client,
        samples_stream,
        DETECT_GROUP,
        consumer,
        claim_idle_ms=settings.bus.claim_idle_ms,
        # A new group starts at the stream's end: scoring a stale backlog helps nobody.
        start_id="$",
    )
    models = ModelRegistry.for_home(settings.home).load_promoted()
    return DetectionService(
        BusSampleFeed(stream_consumer),
        StreamAnomalyPublisher(client, anomalies_stream),
        models,
        kinds=kinds,
        **options,
    )


class DetectCycle:
    """Runs detect tasks in one worker process, keeping the service between them."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=30)
        self.registry = ModelRegistry.for_home(settings.home)
        self.service: DetectionService | None = None

    def cycle(self, max_cycles: int = 100) -> dict[str, Any]:
        """Score what the bus holds (up to ``max_cycles`` reads); returns a JSON summary.

        Raises:
            RedisUnavailable: Redis did not answer (unacknowledged entries come again).
        """
        started = time.perf_counter()
        if self.service is None:
            kinds = _inventory_kinds(self.settings)
            self.service = build_service(
                self.redis, self.settings, consumer=TASK_CONSUMER, kinds=kinds
            )
        promoted = self.registry.promoted()
        if promoted != self.service.version:
            self.service.load(self.registry.load_promoted())
            log.info("detect_models_loaded", version=promoted)
        entries = samples = scored = 0
        anomalies: list[Anomaly] = []
        for _ in range(max_cycles):
            result = self.service.run_once(block_ms=None)
            if not result.entries:
                break
            entries += result.entries
            samples += result.samples
            scored += result.scored
            anomalies += result.anomalies
        summary = {
            "version": self.service.version,
            "entries": entries,
            "samples": samples,
            "scored": scored,
            "anomalies": len(anomalies),
            "devices": sorted({a.device for a in anomalies}),
            "fallback_devices": len(self.service.stats.fallback_devices),
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        log.info("detect_task_done", **{k: v for k, v in summary.items() if k != "devices"})
        return summary

    def close(self) -> None:
        self.redis.close()


def _inventory_kinds(settings: Settings) -> dict[str, str]:
    """Device roles from the configured inventory; empty when there is none."""
    if settings.inventory is None:
        return {}
    from collectors.inventory import load_inventory

    return {d.name: str(d.role) for d in load_inventory(settings.inventory).devices}
