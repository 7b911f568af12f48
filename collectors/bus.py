"""The telemetry bus: samples and events on Redis Streams, and the writer that stores them.

Collectors publish with :class:`TelemetryBus`; each stream entry carries up
to ``batch`` samples as one JSON array of rows, or one event, beside a format
version (never pickle: anything that can write to Redis must not be able to
run code in a consumer). Streams are trimmed approximately (``MAXLEN ~``) so
Redis memory stays bounded when nobody reads.

Consumers read through consumer groups (:class:`StreamConsumer`): at-least-once
delivery, an entry is pending until acknowledged, and entries left pending by
a consumer that died are claimed by another after ``claim_idle_ms``
(``XAUTOCLAIM``). :class:`HistoryWriter` stores what it reads in SQL, one
transaction per batch, before acknowledging; storage skips rows it already
has, so a batch delivered twice is stored once. An entry that cannot be
decoded is logged, counted and acknowledged, so it never blocks a group.

Entry format, version 1 (all field values are text)::

    autonoc:samples  v=1 kind=samples n=<rows> d=[[device, metric, instance, ts, value], ...]
    autonoc:events   v=1 kind=event d={"device": ..., "instance": ..., "kind": ...,
                                       "severity": ..., "ts": ..., "text": ...}
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pydantic
import redis
import sqlalchemy as sa
import structlog

from autonoc.core.errors import DatabaseUnavailable, RedisUnavailable
from autonoc.core.settings import Settings
from autonoc.core.types import Alarm, Sample
from collectors.store import SampleStore

__all__ = [
    "EVENTS_STREAM",
    "FORMAT_VERSION",
    "SAMPLES_STREAM",
    "BadEntry",
    "HistoryWriter",
    "StreamConsumer",
    "StreamEntry",
    "TelemetryBus",
    "WriterStats",
    "decode_event",
    "decode_samples",
    "encode_event",
    "encode_samples",
    "read_streams",
]

log = structlog.get_logger(__name__)

SAMPLES_STREAM = "autonoc:samples"
EVENTS_STREAM = "autonoc:events"
FORMAT_VERSION = "1"

# One entry's payload at most; a batch of 500 samples is about 40 KiB.
_MAX_PAYLOAD = 16 * 1024 * 1024

#: A stream entry's fields as redis-py hands them over: bytes, or text with decode_responses.
Fields = Mapping[bytes, bytes] | Mapping[str, str] | Mapping[bytes | str, bytes | str]


# -- the entry codec ------------------------------------------------------------------


class BadEntry(ValueError):
    """A stream entry that cannot be decoded; the message says why."""


def encode_samples(samples: Sequence[Sample]) -> dict[str, str]:
    """One stream entry's fields for ``samples``.

    Raises:
        ValueError: a timestamp or value is NaN or infinite (filter them first).
    """
    rows = [[s.device, s.metric, s.instance, s.ts, s.value] for s in samples]
    return {
        "v": FORMAT_VERSION,
        "kind": "samples",
        "n": str(len(rows)),
        "d": json.dumps(rows, separators=(",", ":"), allow_nan=False),
    }


def encode_event(alarm: Alarm) -> dict[str, str]:
    """One stream entry's fields for ``alarm``."""
    return {"v": FORMAT_VERSION, "kind": "event", "d": alarm.model_dump_json()}


def _text(value: bytes | str, name: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise BadEntry(f"field {name!r} is not UTF-8") from None


def _fields(fields: Fields, kind: str) -> dict[str, str]:
    text = {_text(k, "name"): _text(v, str(k)) for k, v in fields.items()}
    version = text.get("v")
    if version != FORMAT_VERSION:
        raise BadEntry(f"format version {version!r} is not {FORMAT_VERSION!r}")
    if text.get("kind") != kind:
        raise BadEntry(f"kind {text.get('kind')!r} is not {kind!r}")
    if "d" not in text:
        raise BadEntry("no payload field 'd'")
    if len(text["d"]) > _MAX_PAYLOAD:
        raise BadEntry(f"payload of {len(text['d'])} characters exceeds {_MAX_PAYLOAD}")
    return text


def _refuse_constant(name: str) -> float:
    raise BadEntry(f"{name} is not a number a sample may carry")


def _name(value: object, what: str, *, empty: bool) -> str:
    if not isinstance(value, str):
        raise BadEntry(f"{what} is {type(value).__name__}, not text")
    if "\x00" in value:
        raise BadEntry(f"{what} contains a NUL character")
    if not value and not empty:
        raise BadEntry(f"{what} is empty")
    return value


_NUMBER = (float, int)


def _number(value: object, what: str) -> float:
    # bool is an int in Python, but true/false in JSON is no measurement.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadEntry(f"{what} is {type(value).__name__}, not a number")
    number = float(value)
    if not math.isfinite(number):
        raise BadEntry(f"{what} is not finite")
    return number


def _row(i: int, row: object) -> Sample:
    """One row, checked field by field for a message that says what is wrong."""
    if not isinstance(row, list) or len(row) != 5:
        raise BadEntry(f"row {i} is not [device, metric, instance, ts, value]")
    device, metric, instance, ts, value = row
    return Sample(
        _name(device, f"row {i} device", empty=False),
        _name(metric, f"row {i} metric", empty=False),
        _name(instance, f"row {i} instance", empty=True),
        _number(ts, f"row {i} ts"),
        _number(value, f"row {i} value"),
    )


def decode_samples(fields: Fields) -> list[Sample]:
    """The samples of one ``autonoc:samples`` entry.

    Raises:
        BadEntry: the entry is not a well-formed version-1 samples entry; nothing
            of it should be stored.
    """
    text = _fields(fields, "samples")
    payload = text["d"]
    # JSON escapes a NUL in a string as \u0000 (a raw one is invalid JSON): only
    # then must each name be searched for one.
    fast = "\\u0000" not in payload
    try:
        rows = json.loads(payload, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise BadEntry(f"payload is not JSON: {exc}") from None
    if not isinstance(rows, list):
        raise BadEntry(f"payload is {type(rows).__name__}, not a list of rows")
    if "n" in text and text["n"] != str(len(rows)):
        raise BadEntry(f"entry says {text['n']!r} rows but carries {len(rows)}")
    samples = []
    isfinite = math.isfinite
    for i, row in enumerate(rows):
        # The fast path checks exact types (bool is no number here); anything
        # else goes through _row, which names the problem.
        if fast and type(row) is list and len(row) == 5:
            device, metric, instance, ts, value = row
            if (
                type(device) is str
                and type(metric) is str
                and type(instance) is str
                and device
                and metric
                and type(ts) in _NUMBER
                and type(value) in _NUMBER
                and isfinite(ts)
                and isfinite(value)
            ):
                samples.append(Sample(device, metric, instance, float(ts), float(value)))
                continue
        samples.append(_row(i, row))
    return samples


def decode_event(fields: Fields) -> Alarm:
    """The event of one ``autonoc:events`` entry.

    Raises:
        BadEntry: the entry is not a well-formed version-1 event entry.
    """
    text = _fields(fields, "event")
    try:
        alarm = Alarm.model_validate_json(text["d"])
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise BadEntry(f"event {where}: {first['msg']}") from None
    _name(alarm.device, "event device", empty=False)
    _name(alarm.kind, "event kind", empty=False)
    _name(alarm.instance, "event instance", empty=True)
    _name(alarm.text, "event text", empty=True)
    _number(alarm.ts, "event ts")
    return alarm


# -- Redis -------------------------------------------------------------------------


@contextmanager
def _map_redis_errors(doing: str, stream: str) -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        raise RedisUnavailable(
            f"cannot {doing} the Redis stream {stream!r}: {reason}. "
            "Check that Redis runs (AUTONOC_REDIS_URL, or the embedded one under AUTONOC_HOME)"
        ) from exc


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class TelemetryBus:
    """Publishes samples and events onto the telemetry streams.

    Args:
        client: a redis-py client (bytes or decoded responses both work).
        maxlen: entries each stream keeps, trimmed approximately on every add.
        batch: samples per stream entry.
        samples_stream: stream name for samples (tests give their own).
        events_stream: stream name for events.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        maxlen: int = 1_000_000,
        batch: int = 500,
        samples_stream: str = SAMPLES_STREAM,
        events_stream: str = EVENTS_STREAM,
    ) -> None:
        if maxlen < 1 or batch < 1:
            raise ValueError(f"maxlen and batch must be at least 1, not {maxlen} and {batch}")
        self._client = client
        self.maxlen = maxlen
        self.batch = batch
        self.samples_stream = samples_stream
        self.events_stream = events_stream
        #: Samples refused for a NaN or infinite timestamp or value.
        self.dropped = 0

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> TelemetryBus:
        """A bus as ``settings.bus`` says."""
        return cls(client, maxlen=settings.bus.maxlen, batch=settings.bus.batch)

    def _add(self, stream: str, entries: list[dict[str, str]]) -> None:
        if not entries:
            return
        with _map_redis_errors("publish to", stream):
            pipe = self._client.pipeline(transaction=False)
            for fields in entries:
                pipe.xadd(stream, fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
            pipe.execute()

    def publish_samples(self, samples: Iterable[Sample]) -> int:
        """Publish ``samples`` in entries of up to ``batch``, in one round trip.

        A sample with a NaN or infinite timestamp or value is left out, logged and
        counted in :attr:`dropped`.

        Returns:
            How many samples were published.

        Raises:
            RedisUnavailable: Redis did not take them (none or some may be published;
                publishing again is safe, the history stores each sample once).
        """
        given = list(samples)
        good = [s for s in given if math.isfinite(s.ts) and math.isfinite(s.value)]
        if len(good) < len(given):
            self._drop(len(given) - len(good), "sample ts or value is not finite")
        entries = [
            encode_samples(good[i : i + self.batch]) for i in range(0, len(good), self.batch)
        ]
        self._add(self.samples_stream, entries)
        return len(good)

    def publish_events(self, alarms: Iterable[Alarm]) -> int:
        """Publish one entry per event, in one round trip; returns how many.

        Raises:
            RedisUnavailable: Redis did not take them.
        """
        entries = []
        for alarm in alarms:
            if math.isfinite(alarm.ts):
                entries.append(encode_event(alarm))
            else:
                self._drop(1, "event ts is not finite")
        self._add(self.events_stream, entries)
        return len(entries)

    def _drop(self, count: int, reason: str) -> None:
        self.dropped += count
        log.warning("bus_publish_dropped", count=count, reason=reason)


# -- consuming ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One delivered stream entry; ``fields`` is empty when the entry was trimmed away."""

    stream: str
    id: str
    fields: Fields


def _block_limit(client: redis.Redis, block_ms: int | None) -> int | None:
    # A BLOCK longer than the client's socket timeout would end in a TimeoutError;
    # BLOCK 0 would wait forever. None: return at once.
    if not block_ms or block_ms <= 0:
        return None
    timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    if timeout:
        block_ms = min(block_ms, int(float(timeout) * 1000) - 200)
    return block_ms if block_ms > 0 else None


def _xreadgroup(
    client: redis.Redis,
    group: str,
    consumer: str,
    streams: dict[str, str],
    count: int,
    block_ms: int | None = None,
) -> list[tuple[str, list[tuple[Any, Any]]]]:
    """``XREADGROUP`` as ``[(stream, [(id, fields), ...]), ...]`` over RESP2 and RESP3."""
    reply: Any = client.xreadgroup(group, consumer, dict(streams), count, block_ms)  # type: ignore[arg-type]
    if not reply:
        return []
    # RESP3 answers a map of stream to a list of one list of entries.
    if isinstance(reply, dict):
        return [(_str(k), v[0] if v else []) for k, v in reply.items()]
    return [(_str(stream), raw) for stream, raw in reply]


def _is_nogroup(exc: redis.ResponseError) -> bool:
    return str(exc).startswith("NOGROUP")


class StreamConsumer:
    """One consumer of one consumer group on one stream.

    Creates the group (and the stream) when missing. :meth:`read` hands out this
    consumer's own unacknowledged entries first (after a restart or a failed
    batch), then entries pending on other consumers for longer than
    ``claim_idle_ms`` (those consumers are taken for dead), then new entries.

    Args:
        client: a redis-py client.
        stream: the stream's key.
        group: the consumer group; every group gets every entry.
        consumer: this consumer's name, unique among live consumers of the group.
        claim_idle_ms: how long an entry stays pending on another consumer before
            this one takes it over.
        start_id: where a newly created group starts: ``"0"`` reads what the
            stream still holds, ``"$"`` only what comes next.

    Raises:
        RedisUnavailable: the group cannot be created.
    """

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        consumer: str,
        *,
        claim_idle_ms: int = 30_000,
        start_id: str = "0",
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self._start_id = start_id
        self._cursor: bytes | str = "0-0"
        # Read our own pending entries first: a consumer restarted under the same
        # name, or one whose batch failed, must not wait for claim_idle_ms.
        self._recover = True
        self.ensure_group()

    def ensure_group(self) -> None:
        """Create the group (and the stream) unless it exists."""
        with _map_redis_errors("create a consumer group on", self.stream):
            try:
                self.client.xgroup_create(self.stream, self.group, id=self._start_id, mkstream=True)
            except redis.ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise
                return
        log.info("bus_group_created", stream=self.stream, group=self.group)

    def retry_pending(self) -> None:
        """Hand out this consumer's unacknowledged entries again on the next :meth:`read`."""
        self._recover = True

    def _entries(self, raw: Iterable[tuple[Any, Any]]) -> list[StreamEntry]:
        return [StreamEntry(self.stream, _str(i), fields or {}) for i, fields in raw]

    def _own(self, count: int) -> list[StreamEntry]:
        if not self._recover:
            return []
        with _map_redis_errors("read pending entries of", self.stream):
            reply = _xreadgroup(self.client, self.group, self.consumer, {self.stream: "0"}, count)
        entries = self._entries(reply[0][1]) if reply else []
        if not entries:
            self._recover = False
        return entries

    def claim(self, count: int) -> list[StreamEntry]:
        """Take over up to ``count`` entries idle longer than ``claim_idle_ms`` on any consumer."""
        with _map_redis_errors("claim entries of", self.stream):
            reply = self.client.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                self.claim_idle_ms,
                start_id=self._cursor,
                count=count,
            )
        self._cursor = reply[0]
        claimed = [(i, f) for i, f in reply[1] if i is not None]
        if len(claimed) < len(reply[1]):
            # Redis 6.2 claims entries trimmed away as nil, without their IDs; our own
            # pending list shows them by ID with no fields, to acknowledge away.
            self._recover = True
        entries = self._entries(claimed)
        if entries:
            log.info(
                "bus_entries_claimed",
                stream=self.stream,
                group=self.group,
                consumer=self.consumer,
                entries=len(entries),
            )
        return entries

    def read(self, count: int, block_ms: int | None = None) -> list[StreamEntry]:
        """Up to ``count`` entries: own pending, claimed, else new ones.

        Waits up to ``block_ms`` for new entries (capped below the client's socket
        timeout; ``None`` or 0 returns at once).

        Raises:
            RedisUnavailable: Redis did not answer.
        """
        return read_streams([self], count, block_ms)

    def ack(self, ids: Iterable[str]) -> int:
        """Acknowledge entries as done; returns how many were pending."""
        ids = list(ids)
        if not ids:
            return 0
        with _map_redis_errors("acknowledge entries of", self.stream):
            return int(self.client.xack(self.stream, self.group, *ids))

    def pending(self) -> int:
        """Entries delivered to the group's consumers and not yet acknowledged."""
        with _map_redis_errors("read the pending entries of", self.stream):
            return int(self.client.xpending(self.stream, self.group)["pending"])

    def lag(self) -> int | None:
        """Entries not yet delivered to the group; ``None`` where the server cannot tell.

        Redis 7 reports it (``XINFO GROUPS``); Redis 6.2 does not, nor does Redis 7
        after entries were deleted from the middle of the stream.
        """
        with _map_redis_errors("read the groups of", self.stream):
            groups = self.client.xinfo_groups(self.stream)
        for info in groups:
            if _str(info["name"]) == self.group:
                lag = info.get("lag")
                return None if lag is None else int(lag)
        return None


def read_streams(
    consumers: Sequence[StreamConsumer], count: int, block_ms: int | None = None
) -> list[StreamEntry]:
    """Read several streams for one consumer of one group, in one blocking call.

    Own pending entries and claimable ones come first, without waiting; with none,
    one ``XREADGROUP`` waits up to ``block_ms`` for new entries on any stream.
    ``count`` applies per stream. The consumers must share client, group and name.

    Raises:
        RedisUnavailable: Redis did not answer.
    """
    if not consumers:
        return []
    first = consumers[0]
    if any(
        (c.client, c.group, c.consumer) != (first.client, first.group, first.consumer)
        for c in consumers
    ):
        raise ValueError("read_streams needs consumers of one client, group and name")
    entries: list[StreamEntry] = []
    for consumer in consumers:
        try:
            entries += consumer._own(count) or consumer.claim(count)
        except RedisUnavailable as exc:
            if not _nogroup(exc, consumer):
                raise
    if entries:
        return entries
    streams = {c.stream: ">" for c in consumers}
    by_name = {c.stream: c for c in consumers}
    try:
        with _map_redis_errors("read", ", ".join(streams)):
            reply = _xreadgroup(
                first.client,
                first.group,
                first.consumer,
                streams,
                count,
                _block_limit(first.client, block_ms),
            )
    except RedisUnavailable as exc:
        # Every group that vanished is created again, not just the first found.
        if any([_nogroup(exc, c) for c in consumers]):
            return []
        raise
    for stream, raw in reply:
        entries += by_name[stream]._entries(raw)
    return entries


def _nogroup(exc: RedisUnavailable, consumer: StreamConsumer) -> bool:
    """Recreate a group that vanished (a Redis restarted empty); True when it did."""
    cause = exc.__cause__
    if not isinstance(cause, redis.ResponseError) or not _is_nogroup(cause):
        return False
    log.warning("bus_group_missing", stream=consumer.stream, group=consumer.group)
    consumer.ensure_group()
    return True


# -- the history writer --------------------------------------------------------------


@dataclass(slots=True)
class WriterStats:
    """What a :class:`HistoryWriter` has done since it started (for health metrics)."""

    entries: int = 0
    samples: int = 0
    events: int = 0
    stored_samples: int = 0
    stored_events: int = 0
    rejected: int = 0
    failures: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        """Samples and events read that the history already had."""
        return self.samples + self.events - self.stored_samples - self.stored_events


def default_consumer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(slots=True)
class _Decoded:
    samples: list[Sample] = field(default_factory=list)
    events: list[Alarm] = field(default_factory=list)


class HistoryWriter:
    """Moves samples and events from the bus into the SQL history.

    Each :meth:`run_once` reads a batch from both streams, stores it in one
    transaction, then acknowledges it: at-least-once delivery onto idempotent
    storage, so a batch delivered again (this writer failed before its XACK, or
    died and another claimed its entries) is stored once.

    Args:
        client: a redis-py client.
        store: the history.
        group: the consumer group; writers sharing a group share the work.
        consumer: this writer's name; by default ``host:pid``.
        batch: stream entries per stream per read (a samples entry carries up to
            the bus's ``batch`` samples).
        claim_idle_ms: after this long pending on another writer, entries are taken over.
    """

    def __init__(
        self,
        client: redis.Redis,
        store: SampleStore,
        *,
        group: str = "history",
        consumer: str | None = None,
        batch: int = 10,
        claim_idle_ms: int = 30_000,
        samples_stream: str = SAMPLES_STREAM,
        events_stream: str = EVENTS_STREAM,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self._client = client
        self._store = store
        self.group = group
        self.consumer = consumer or default_consumer_name()
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        self._streams = (samples_stream, events_stream)
        self._consumers: list[StreamConsumer] = []
        self.stats = WriterStats()

    @classmethod
    def from_settings(
        cls, client: redis.Redis, store: SampleStore, settings: Settings, **kwargs: Any
    ) -> HistoryWriter:
        """A writer as ``settings`` say: up to ``history.write_batch`` samples per
        transaction, read as entries of ``bus.batch`` samples.
        """
        return cls(
            client,
            store,
            batch=max(1, settings.history.write_batch // settings.bus.batch),
            claim_idle_ms=settings.bus.claim_idle_ms,
            **kwargs,
        )

    @property
    def consumers(self) -> list[StreamConsumer]:
        """The stream consumers (groups are created on first use).

        Raises:
            RedisUnavailable: a group cannot be created.
        """
        if not self._consumers:
            self._consumers = [
                StreamConsumer(
                    self._client,
                    stream,
                    self.group,
                    self.consumer,
                    claim_idle_ms=self.claim_idle_ms,
                )
                for stream in self._streams
            ]
        return self._consumers

    def _reject(self, entry: StreamEntry, reason: str) -> None:
        self.stats.rejected += 1
        key = reason.split(":", 1)[0][:80]
        self.stats.rejected_reasons[key] = self.stats.rejected_reasons.get(key, 0) + 1
        log.warning("bus_entry_rejected", stream=entry.stream, id=entry.id, reason=reason)

    def _decode(self, entry: StreamEntry, into: _Decoded, *, quiet: bool = False) -> bool:
        try:
            if not entry.fields:
                raise BadEntry("entry was trimmed from the stream before it was stored")
            if entry.stream == self._streams[0]:
                into.samples += decode_samples(entry.fields)
            else:
                into.events.append(decode_event(entry.fields))
        except BadEntry as exc:
            if not quiet:
                self._reject(entry, str(exc))
            return False
        return True

    def _write(self, batch: _Decoded) -> None:
        stored = (0, 0)
        if batch.samples or batch.events:
            stored = self._store.write_batch(batch.samples, batch.events)
        self.stats.samples += len(batch.samples)
        self.stats.events += len(batch.events)
        self.stats.stored_samples += stored[0]
        self.stats.stored_events += stored[1]

    def _store_entries(self, entries: list[StreamEntry]) -> None:
        """Store what decodes in one transaction; reject the rest."""
        batch = _Decoded()
        for entry in entries:
            self._decode(entry, batch)
        try:
            self._write(batch)
        except DatabaseUnavailable:
            raise
        except sa.exc.DBAPIError as exc:
            # A row the database refuses spoils the transaction: store entry by entry
            # so that only the entry carrying it is rejected.
            log.warning("history_batch_refused", entries=len(entries), error=str(exc.orig))
            for entry in entries:
                one = _Decoded()
                # Entries that do not decode were rejected (and counted) above.
                if not self._decode(entry, one, quiet=True):
                    continue
                try:
                    self._write(one)
                except DatabaseUnavailable:
                    raise
                except sa.exc.DBAPIError as one_exc:
                    self._reject(entry, f"the database refused it: {one_exc.orig}")

    def run_once(self, block_ms: int | None = 1000) -> int:
        """Read one batch, store it, acknowledge it; returns the entries handled.

        Entries that cannot be decoded count as handled: logged, counted in
        :attr:`stats` and acknowledged.

        Raises:
            RedisUnavailable: Redis did not answer (nothing is lost: unacknowledged
                entries are read again).
            DatabaseUnavailable: the database did not answer (likewise).
        """
        consumers = self.consumers
        by_stream = {c.stream: c for c in consumers}
        try:
            entries = read_streams(consumers, self.batch, block_ms)
            if not entries:
                return 0
            self._store_entries(entries)
            for stream, consumer in by_stream.items():
                consumer.ack(e.id for e in entries if e.stream == stream)
        except (RedisUnavailable, DatabaseUnavailable):
            self.stats.failures += 1
            for consumer in consumers:
                consumer.retry_pending()
            raise
        self.stats.entries += len(entries)
        return len(entries)

    def backlog(self) -> dict[str, tuple[int, int | None]]:
        """``stream: (pending, lag)`` for health metrics; lag is ``None`` on Redis 6.2.

        Raises:
            RedisUnavailable: Redis did not answer.
        """
        return {c.stream: (c.pending(), c.lag()) for c in self.consumers}

    def run(
        self,
        stop: threading.Event,
        *,
        block_ms: int = 1000,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        """Call :meth:`run_once` until ``stop`` is set.

        Redis or the database being away is logged and retried with exponential
        backoff, never raised: the writer outlives restarts of either.
        """
        delay = min_backoff_s
        while not stop.is_set():
            try:
                self.run_once(block_ms)
            except (RedisUnavailable, DatabaseUnavailable) as exc:
                log.warning("history_writer_waiting", error=str(exc), retry_in_s=delay)
                stop.wait(delay)
                delay = min(delay * 2, max_backoff_s)
                continue
            delay = min_backoff_s
