"""The SQL history on SQLite and PostgreSQL: idempotent writes, compaction, queries, events."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from autonoc.core import db
from autonoc.core.settings import Settings
from autonoc.core.types import Alarm, Sample, Severity
from collectors.store import CompactStats, SampleStore

RES = 300  # rollup resolution, seconds
T0 = 1_700_000_100.0  # a bucket boundary: 1_700_000_100 / 300 = 5_666_667
DAY = 86_400.0


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _rollups(engine: sa.Engine) -> list[tuple[str, str, str, int, float, float, float, float, int]]:
    r = db.sample_rollups.c
    query = sa.select(
        r.device, r.metric, r.instance, r.resolution_s, r.bucket, r.avg, r.min, r.max, r.count
    ).order_by(r.device, r.metric, r.instance, r.bucket)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_writing_a_sample_twice_stores_it_once(engine: sa.Engine) -> None:
    store = SampleStore(engine)
    batch = [Sample("r1", "if_in_bps", "eth1", T0 + i, float(i)) for i in range(100)]
    assert store.write(batch) == 100
    assert store.write(batch) == 0
    # The first value stored for an instant wins; the rest of the batch still goes in.
    assert store.write([Sample("r1", "if_in_bps", "eth1", T0, 99.0), *batch[:3]]) == 0
    assert store.write([Sample("r1", "if_in_bps", "eth2", T0, 5.0), batch[0]]) == 1
    assert _count(engine, db.samples) == 101
    assert store.series("r1", "if_in_bps", "eth1")[0] == (T0, 0.0)

    alarm = Alarm(device="r1", instance="eth1", kind="link_down", ts=T0)
    assert store.write_batch([*batch, Sample("r2", "cpu_util_pct", "", T0, 1.0)], [alarm]) == (
        1,
        1,
    )
    assert store.write_batch(batch, [alarm, alarm]) == (0, 0)
    assert _count(engine, db.samples) == 102
    assert _count(engine, db.events) == 1


def test_write_batch_is_one_transaction(engine: sa.Engine) -> None:
    store = SampleStore(engine)
    bad = Alarm.model_construct(
        device="r1",
        instance="",
        kind=None,  # type: ignore[arg-type]  # what the database must refuse
        severity=Severity.MAJOR,
        ts=T0,
        text="",
    )
    with pytest.raises(sa.exc.IntegrityError):
        store.write_batch([Sample("r1", "m", "", T0, 1.0)], [bad])
    assert _count(engine, db.samples) == 0


def test_queries_snapshot_latest_and_devices(engine: sa.Engine) -> None:
    store = SampleStore(engine)
    store.write(
        [
            Sample("r1", "if_in_bps", "eth1", T0, 1.0),
            Sample("r1", "if_in_bps", "eth1", T0 + 30, 2.0),
            Sample("r1", "cpu_util_pct", "", T0 + 10, 40.0),
            Sample("r2", "bgp_peer_up", "10.0.0.10", T0, 1.0),
        ]
    )
    store.write_events([Alarm(device="r3", kind="link_down", ts=T0)])
    assert store.snapshot("r1") == {
        "if_in_bps@eth1": (T0 + 30, 2.0),
        "cpu_util_pct": (T0 + 10, 40.0),
    }
    assert store.latest("r2") == {("bgp_peer_up", "10.0.0.10"): (T0, 1.0)}
    assert store.snapshot("nope") == {}
    assert store.devices() == ["r1", "r2", "r3"]


def _fill(store: SampleStore, hours: int) -> list[Sample]:
    """A sample every 10 s on two series, values 0, 1, 2, ... (so averages are exact)."""
    samples = []
    for i in range(hours * 360):
        samples.append(Sample("amp-1", "amp_gain_db", "edfa", T0 + 10 * i, float(i)))
        samples.append(Sample("amp-1", "cpu_util_pct", "", T0 + 10 * i, float(i % 7)))
    assert store.write(samples) == len(samples)
    return samples


def test_compaction_rolls_old_samples_into_buckets(engine: sa.Engine) -> None:
    store = SampleStore(engine)
    _fill(store, hours=3)  # T0 .. T0 + 3 h, over several compaction chunks
    # The raw cutoff falls at T0 + 7900 s, inside the 27th bucket, which stays raw whole.
    now = T0 + 7900 + 3000
    stats = store.compact(
        now, raw_retention_s=3000, rollup_resolution_s=RES, rollup_retention_s=DAY
    )
    buckets = 26
    assert stats == CompactStats(rolled=2 * buckets * 30, buckets=2 * buckets, late=0)

    gain = [row for row in _rollups(engine) if row[1] == "amp_gain_db"]
    assert len(gain) == buckets
    for k, row in enumerate(gain):
        first, last = 30 * k, 30 * k + 29
        assert row == (
            "amp-1",
            "amp_gain_db",
            "edfa",
            RES,
            T0 + RES * k,
            (first + last) / 2,
            float(first),
            float(last),
            30,
        )
    cpu = [row for row in _rollups(engine) if row[1] == "cpu_util_pct"]
    assert sum(row[8] for row in cpu) == buckets * 30
    assert cpu[0][5:8] == (sum(i % 7 for i in range(30)) / 30, 0.0, 6.0)

    # Raw samples from the first bucket kept on.
    assert _count(engine, db.samples) == 2 * (3 * 360 - buckets * 30)
    series = store.series("amp-1", "amp_gain_db", "edfa")
    seam = T0 + RES * buckets
    assert series[:buckets] == [(T0 + RES * k, 30 * k + 14.5) for k in range(buckets)]
    assert series[buckets:] == [(T0 + 10 * i, float(i)) for i in range(30 * buckets, 3 * 360)]
    assert series[buckets][0] == seam
    timestamps = [ts for ts, _ in series]
    assert timestamps == sorted(set(timestamps))

    # Ranges: a bucket counts by its start.
    assert store.series("amp-1", "amp_gain_db", "edfa", start=T0 + 600, end=T0 + 900) == [
        (T0 + 600, 74.5),
        (T0 + 900, 104.5),
    ]
    assert store.series("amp-1", "amp_gain_db", "edfa", start=seam - 1, end=seam + 10) == [
        (seam, float(30 * buckets)),
        (seam + 10, float(30 * buckets + 1)),
    ]

    # Again: nothing left to fold, nothing counted twice.
    before = _rollups(engine)
    again = store.compact(
        now, raw_retention_s=3000, rollup_resolution_s=RES, rollup_retention_s=DAY
    )
    assert again == CompactStats()
    assert _rollups(engine) == before


def test_a_late_copy_of_compacted_data_is_not_counted_twice(engine: sa.Engine) -> None:
    store = SampleStore(engine)
    samples = _fill(store, hours=1)
    now = T0 + 2 * DAY
    stats = store.compact(
        now, raw_retention_s=DAY, rollup_resolution_s=RES, rollup_retention_s=7 * DAY
    )
    assert stats.rolled == len(samples) and _count(engine, db.samples) == 0
    before = _rollups(engine)
    series = store.series("amp-1", "amp_gain_db", "edfa")
    assert len(series) == 12

    # A redelivered batch of old samples lands after compaction: it is raw again...
    assert store.write(samples[:100]) == 100
    # ...but the seam hides it, and compaction drops it without counting it.
    assert store.series("amp-1", "amp_gain_db", "edfa") == series
    late = store.compact(
        now, raw_retention_s=DAY, rollup_resolution_s=RES, rollup_retention_s=7 * DAY
    )
    assert late == CompactStats(late=100)
    assert _rollups(engine) == before
    assert _count(engine, db.samples) == 0


def test_old_rollups_expire(engine: sa.Engine) -> None:
    store = SampleStore(engine)
    _fill(store, hours=1)
    store.compact(
        T0 + DAY, raw_retention_s=3600, rollup_resolution_s=RES, rollup_retention_s=7 * DAY
    )
    assert len(_rollups(engine)) == 24
    stats = store.compact(
        T0 + 1800 + 30 * DAY,
        raw_retention_s=3600,
        rollup_resolution_s=RES,
        rollup_retention_s=30 * DAY,
    )
    assert stats == CompactStats(expired_rollups=12)  # buckets starting before T0 + 1800
    assert min(row[4] for row in _rollups(engine)) == T0 + 1800
    assert store.compact(T0 + 60 * DAY, 3600, RES, 30 * DAY).expired_rollups == 12
    assert store.series("amp-1", "amp_gain_db", "edfa") == []
    assert "amp-1" not in store.devices()


def test_events_round_trip_with_filters(engine: sa.Engine) -> None:
    store = SampleStore(engine)
    alarms = [
        Alarm(device="r1", instance="eth1", kind="link_down", ts=T0, text="down"),
        Alarm(device="r1", instance="eth1", kind="link_up", severity=Severity.INFO, ts=T0 + 5),
        Alarm(device="r2", instance="10.0.0.1", kind="bgp_down", severity=Severity.CRITICAL, ts=T0),
        Alarm(device="r1", instance="eth2", kind="link_down", ts=T0 + 9),
    ]
    assert store.write_events(alarms) == 4
    assert store.write_events(alarms[:2]) == 0
    assert store.write_events([]) == 0

    got = store.events()
    assert sorted(got, key=lambda a: (a.ts, a.device, a.instance)) == got
    assert set(got) == set(alarms)
    assert store.events(device="r1") == [alarms[0], alarms[1], alarms[3]]
    assert store.events(device="r1", kinds=["link_down"]) == [alarms[0], alarms[3]]
    assert store.events(start=T0 + 1, end=T0 + 5) == [alarms[1]]
    assert store.events(kinds=[]) == []
    assert store.events(device="r1", limit=2) == [alarms[1], alarms[3]]


def test_migration_removes_duplicate_samples_keeping_the_newest(
    database_url: str, tmp_path: Path
) -> None:
    engine = db.make_engine(Settings.load(home=tmp_path, database_url=database_url))
    try:
        db.upgrade(engine, "0001")
        rows = [
            {"device": "r1", "metric": "m", "instance": "", "ts": 1.0, "value": 1.0},
            {"device": "r1", "metric": "m", "instance": "", "ts": 1.0, "value": 2.0},
            {"device": "r1", "metric": "m", "instance": "", "ts": 2.0, "value": 3.0},
            {"device": "r1", "metric": "m", "instance": "x", "ts": 1.0, "value": 4.0},
            {"device": "r1", "metric": "m", "instance": "", "ts": 1.0, "value": 5.0},
        ]
        with engine.begin() as conn:
            for row in rows:  # one by one, so ids follow the order
                conn.execute(sa.insert(db.samples), row)
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        store = SampleStore(engine)
        assert store.series("r1", "m") == [(1.0, 5.0), (2.0, 3.0)]
        assert store.series("r1", "m", "x") == [(1.0, 4.0)]
        assert store.write([Sample("r1", "m", "", 1.0, 6.0)]) == 0
    finally:
        engine.dispose()
