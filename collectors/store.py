"""Telemetry history: samples and events in the SQL database, for models, agents and people.

The live path is the Redis telemetry bus (:mod:`collectors.bus`); this store
keeps what models train on, what agents look back at and what the UI plots.
Thin and synchronous: call it from a worker thread, not from the poller's
event loop.

Storage is idempotent: a sample is unique per ``(device, metric, instance,
ts)`` and an event per ``(device, instance, kind, ts)``, and inserts skip
what is already there, so a batch delivered twice is stored once.

Old raw samples are downsampled by :meth:`SampleStore.compact` into
fixed buckets (average, minimum, maximum, count) and then deleted;
:meth:`SampleStore.series` reads raw samples where they are kept and bucket
averages where they were compacted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from autonoc.core.db import events as events_table
from autonoc.core.db import map_db_errors
from autonoc.core.db import sample_rollups as rollups_table
from autonoc.core.db import samples as samples_table
from autonoc.core.errors import ConfigError
from autonoc.core.types import Alarm, Sample, Severity

__all__ = ["CompactStats", "SampleStore"]

_SERIES = ("device", "metric", "instance")

_SQLITE_INSERT_SAMPLES = (
    "INSERT INTO samples (device, metric, instance, ts, value) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (device, metric, instance, ts) DO NOTHING"
)
_POSTGRES_INSERT_SAMPLES = (
    "INSERT INTO samples (device, metric, instance, ts, value) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::float8[]) "
    "ON CONFLICT (device, metric, instance, ts) DO NOTHING"
)

# Compaction works through the table this many seconds of raw samples at a time.
_COMPACT_CHUNK_S = 3600


@dataclass(frozen=True, slots=True)
class CompactStats:
    """What one :meth:`SampleStore.compact` did.

    Attributes:
        rolled: raw samples folded into new rollup buckets (and deleted).
        buckets: rollup rows written.
        late: raw samples deleted without being counted, because their bucket had
            already been rolled up (a copy of data compacted before: counting it
            again would double-count).
        expired_rollups: rollup rows dropped for being older than their retention.
    """

    rolled: int = 0
    buckets: int = 0
    late: int = 0
    expired_rollups: int = 0


def _event_rows(alarms: Iterable[Alarm]) -> list[dict[str, Any]]:
    return [
        {
            "device": a.device,
            "instance": a.instance,
            "kind": a.kind,
            "severity": str(a.severity),
            "ts": a.ts,
            "text": a.text,
        }
        for a in alarms
    ]


class SampleStore:
    """Write and read the telemetry history: samples, their rollups, and events.

    Args:
        engine: from :func:`autonoc.core.db.make_engine`, migrated with
            :func:`autonoc.core.db.upgrade`; SQLite or PostgreSQL.

    Raises:
        ConfigError: the engine is neither SQLite nor PostgreSQL.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        if self._dialect not in {"sqlite", "postgresql"}:
            raise ConfigError(
                f"the telemetry history needs SQLite or PostgreSQL, not {self._dialect}"
            )

    # -- writing -----------------------------------------------------------------

    def _insert_ignoring(
        self, conn: sa.Connection, table: sa.Table, keys: Sequence[str], rows: list[dict[str, Any]]
    ) -> int:
        # An empty parameter list would insert one row of defaults.
        if not rows:
            return 0
        dialect_insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        statement = (
            dialect_insert(table)
            .on_conflict_do_nothing(index_elements=list(keys))
            # RETURNING counts what was new on both dialects; psycopg's executemany
            # reports no rowcount.
            .returning(table.c.id)
        )
        return len(conn.execute(statement, rows).all())

    def _insert_samples(self, conn: sa.Connection, samples: Iterable[Sample]) -> int:
        # The hot path, in each dialect's fastest bulk form (about twice the rate of
        # SQLAlchemy's executemany): SQLite's executemany reports the rows it
        # inserted; PostgreSQL takes one statement over five arrays.
        if self._dialect == "sqlite":
            rows = [(s.device, s.metric, s.instance, s.ts, s.value) for s in samples]
            if not rows:
                return 0
            return int(conn.exec_driver_sql(_SQLITE_INSERT_SAMPLES, rows).rowcount)
        batch = list(samples)
        if not batch:
            return 0
        columns = (
            [s.device for s in batch],
            [s.metric for s in batch],
            [s.instance for s in batch],
            [s.ts for s in batch],
            [s.value for s in batch],
        )
        return int(conn.exec_driver_sql(_POSTGRES_INSERT_SAMPLES, columns).rowcount)

    def _insert_events(self, conn: sa.Connection, alarms: Iterable[Alarm]) -> int:
        keys = ("device", "instance", "kind", "ts")
        return self._insert_ignoring(conn, events_table, keys, _event_rows(alarms))

    def write(self, samples: Iterable[Sample]) -> int:
        """Store ``samples`` in one transaction, as one batched insert.

        Returns:
            How many were new: a sample whose series already has a value at its
            ``ts`` is skipped (the first one stored wins).
        """
        with map_db_errors(self._engine, "write samples to"), self._engine.begin() as conn:
            return self._insert_samples(conn, samples)

    def write_events(self, alarms: Iterable[Alarm]) -> int:
        """Store ``alarms`` in one transaction; returns how many were new."""
        with map_db_errors(self._engine, "write events to"), self._engine.begin() as conn:
            return self._insert_events(conn, alarms)

    def write_batch(self, samples: Iterable[Sample], alarms: Iterable[Alarm]) -> tuple[int, int]:
        """Store samples and events in one transaction: all of them, or none.

        Returns:
            ``(new samples, new events)``; copies of stored ones are skipped.
        """
        with map_db_errors(self._engine, "write history to"), self._engine.begin() as conn:
            return self._insert_samples(conn, samples), self._insert_events(conn, alarms)

    # -- reading -----------------------------------------------------------------

    def series(
        self,
        device: str,
        metric: str,
        instance: str = "",
        start: float | None = None,
        end: float | None = None,
    ) -> list[tuple[float, float]]:
        """``(ts, value)`` pairs of one metric of one component, oldest first.

        Where raw samples were compacted, each rollup bucket gives one pair: the
        bucket's start and its average. Raw samples that fall in a compacted
        period are not returned, so no instant shows twice at the seam.

        ``start`` and ``end`` are inclusive epoch seconds (a bucket counts by its
        start); ``None`` leaves that side open.
        """
        r = rollups_table.c
        c = samples_table.c
        in_series = (r.device == device, r.metric == metric, r.instance == instance)
        seam_query = sa.select(sa.func.max(r.bucket + r.resolution_s)).where(*in_series)
        rolled = sa.select(r.bucket, r.avg).where(*in_series).order_by(r.bucket, r.resolution_s)
        if start is not None:
            rolled = rolled.where(r.bucket >= start)
        if end is not None:
            rolled = rolled.where(r.bucket <= end)
        raw = (
            sa.select(c.ts, c.value)
            .where(c.device == device, c.metric == metric, c.instance == instance)
            .order_by(c.ts)
        )
        if start is not None:
            raw = raw.where(c.ts >= start)
        if end is not None:
            raw = raw.where(c.ts <= end)
        with map_db_errors(self._engine, "read samples from"), self._engine.connect() as conn:
            seam = conn.execute(seam_query).scalar()
            points: list[tuple[float, float]] = []
            if seam is not None:
                points = [(float(ts), float(value)) for ts, value in conn.execute(rolled)]
                raw = raw.where(c.ts >= seam)
            points.extend((float(ts), float(value)) for ts, value in conn.execute(raw))
        return points

    def latest(self, device: str) -> dict[tuple[str, str], tuple[float, float]]:
        """The newest raw ``(ts, value)`` of each ``(metric, instance)`` of ``device``."""
        c = samples_table.c
        newest = (
            sa.select(c.metric, c.instance, sa.func.max(c.ts).label("ts"))
            .where(c.device == device)
            .group_by(c.metric, c.instance)
            .subquery()
        )
        query = (
            sa.select(c.metric, c.instance, c.ts, c.value)
            .join(
                newest,
                sa.and_(
                    c.metric == newest.c.metric,
                    c.instance == newest.c.instance,
                    c.ts == newest.c.ts,
                ),
            )
            .where(c.device == device)
        )
        with map_db_errors(self._engine, "read samples from"), self._engine.connect() as conn:
            return {
                (metric, instance): (float(ts), float(value))
                for metric, instance, ts, value in conn.execute(query)
            }

    def snapshot(self, device: str) -> dict[str, tuple[float, float]]:
        """:meth:`latest` keyed as :attr:`Sample.key` (``metric`` or ``metric@instance``)."""
        return {
            (f"{metric}@{instance}" if instance else metric): point
            for (metric, instance), point in self.latest(device).items()
        }

    def devices(self) -> list[str]:
        """Every device the history holds samples, rollups or events of, sorted."""
        query = sa.union(
            sa.select(samples_table.c.device).distinct(),
            sa.select(rollups_table.c.device).distinct(),
            sa.select(events_table.c.device).distinct(),
        )
        with map_db_errors(self._engine, "read devices from"), self._engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    def events(
        self,
        device: str | None = None,
        start: float | None = None,
        end: float | None = None,
        kinds: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Alarm]:
        """Stored events, oldest first.

        Args:
            device: only this device's; ``None`` for all.
            start: inclusive epoch seconds; ``None`` leaves it open.
            end: inclusive epoch seconds; ``None`` leaves it open.
            kinds: only these kinds (``link_down``, ...); ``None`` for all.
            limit: at most this many, the newest of those that match.
        """
        e = events_table.c
        query = sa.select(e.device, e.instance, e.kind, e.severity, e.ts, e.text)
        if device is not None:
            query = query.where(e.device == device)
        if start is not None:
            query = query.where(e.ts >= start)
        if end is not None:
            query = query.where(e.ts <= end)
        if kinds is not None:
            query = query.where(e.kind.in_(list(kinds)))
        if limit is not None:
            query = query.order_by(e.ts.desc(), e.id.desc()).limit(limit)
        else:
            query = query.order_by(e.ts, e.id)
        with map_db_errors(self._engine, "read events from"), self._engine.connect() as conn:
            rows = conn.execute(query).all()
        alarms = [
            Alarm(
                device=row.device,
                instance=row.instance,
                kind=row.kind,
                severity=Severity(row.severity),
                ts=float(row.ts),
                text=row.text,
            )
            for row in rows
        ]
        return alarms[::-1] if limit is not None else alarms

    # -- retention -----------------------------------------------------------------

    def _bucket_index(self, resolution_s: int) -> sa.ColumnElement[Any]:
        ratio = samples_table.c.ts / float(resolution_s)
        if self._dialect == "postgresql":
            return sa.func.floor(ratio)
        # SQLite builds need not have floor(); the cast truncates, which is
        # floor for the non-negative epoch seconds samples carry.
        return sa.cast(ratio, sa.BigInteger())

    def compact(
        self,
        now: float,
        raw_retention_s: float,
        rollup_resolution_s: int,
        rollup_retention_s: float,
    ) -> CompactStats:
        """Downsample old raw samples and drop expired rollups.

        Raw samples in buckets that ended before ``now - raw_retention_s`` are
        folded into ``rollup_resolution_s`` buckets (average, minimum, maximum,
        count) and deleted, a chunk of time per transaction, so a crash leaves
        every bucket either whole or untouched. Rollups whose bucket starts
        before ``now - rollup_retention_s`` are deleted.

        Idempotent: running it again finds nothing left to fold. A raw sample
        arriving for a bucket that was already folded is deleted uncounted
        (``late`` in the result), never added a second time.
        """
        if rollup_resolution_s < 1:
            raise ValueError(f"rollup_resolution_s must be at least 1, not {rollup_resolution_s}")
        res = rollup_resolution_s
        c = samples_table.c
        r = rollups_table.c
        index = self._bucket_index(res)
        cutoff = math.floor((now - raw_retention_s) / res)  # first bucket index kept raw
        chunk = max(1, _COMPACT_CHUNK_S // res)
        rolled = buckets = late = 0
        with map_db_errors(self._engine, "compact samples in"):
            while True:
                with self._engine.connect() as conn:
                    oldest = conn.execute(
                        sa.select(sa.func.min(c.ts)).where(c.ts < cutoff * res + res)
                    ).scalar()
                if oldest is None:
                    break
                first = math.floor(float(oldest) / res)
                if first >= cutoff:
                    break
                last = min(cutoff, first + chunk)
                # The ts range lets the index narrow the scan; the bucket index decides.
                in_chunk = (
                    c.ts >= (first - 1) * res,
                    c.ts < (last + 1) * res,
                    index >= first,
                    index < last,
                )
                grouped = (
                    sa.select(c.device, c.metric, c.instance, c.value, index.label("idx"))
                    .where(*in_chunk)
                    .subquery()
                )
                g = grouped.c
                select_buckets = sa.select(
                    g.device,
                    g.metric,
                    g.instance,
                    sa.literal(res, sa.Integer()),
                    sa.cast(g.idx * res, sa.Double()),
                    sa.func.avg(g.value),
                    sa.func.min(g.value),
                    sa.func.max(g.value),
                    sa.func.count(),
                ).group_by(g.device, g.metric, g.instance, g.idx)
                dialect_insert = (
                    postgresql.insert if self._dialect == "postgresql" else sqlite.insert
                )
                insert = (
                    dialect_insert(rollups_table)
                    .from_select(
                        [*_SERIES, "resolution_s", "bucket", "avg", "min", "max", "count"],
                        select_buckets,
                    )
                    .on_conflict_do_nothing(index_elements=[*_SERIES, "resolution_s", "bucket"])
                    .returning(r.count)
                )
                with self._engine.begin() as conn:
                    counts = conn.execute(insert).scalars().all()
                    deleted = conn.execute(sa.delete(samples_table).where(*in_chunk)).rowcount
                folded = sum(int(n) for n in counts)
                rolled += folded
                buckets += len(counts)
                late += deleted - folded
            with self._engine.begin() as conn:
                expired = conn.execute(
                    sa.delete(rollups_table).where(r.bucket < now - rollup_retention_s)
                ).rowcount
        return CompactStats(rolled=rolled, buckets=buckets, late=late, expired_rollups=expired)
