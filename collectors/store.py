"""Telemetry history: samples in the SQL database, for training and for people.

The live path is the Redis telemetry bus; this store keeps what models train
on and what the UI plots. Thin and synchronous: call it from a worker
thread, not from the poller's event loop.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from autonoc.core.db import map_db_errors
from autonoc.core.db import samples as samples_table
from autonoc.core.types import Sample

__all__ = ["SampleStore"]


class SampleStore:
    """Write and read metric samples.

    Args:
        engine: from :func:`autonoc.core.db.make_engine`, migrated with
            :func:`autonoc.core.db.upgrade`.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def write(self, samples: Iterable[Sample]) -> int:
        """Store ``samples`` in one transaction, as one batched insert; returns the count."""
        rows = [
            {
                "device": s.device,
                "metric": s.metric,
                "instance": s.instance,
                "ts": s.ts,
                "value": s.value,
            }
            for s in samples
        ]
        # An empty parameter list would insert one row of defaults.
        if not rows:
            return 0
        with map_db_errors(self._engine, "write samples to"), self._engine.begin() as conn:
            conn.execute(sa.insert(samples_table), rows)
        return len(rows)

    def series(
        self,
        device: str,
        metric: str,
        instance: str = "",
        start: float | None = None,
        end: float | None = None,
    ) -> list[tuple[float, float]]:
        """``(ts, value)`` pairs of one metric of one component, oldest first.

        ``start`` and ``end`` are inclusive epoch seconds; ``None`` leaves that side open.
        """
        c = samples_table.c
        query = (
            sa.select(c.ts, c.value)
            .where(c.device == device, c.metric == metric, c.instance == instance)
            .order_by(c.ts, c.id)
        )
        if start is not None:
            query = query.where(c.ts >= start)
        if end is not None:
            query = query.where(c.ts <= end)
        with map_db_errors(self._engine, "read samples from"), self._engine.connect() as conn:
            return [(float(ts), float(value)) for ts, value in conn.execute(query)]

    def latest(self, device: str) -> dict[tuple[str, str], tuple[float, float]]:
        """The newest ``(ts, value)`` of each ``(metric, instance)`` of ``device``."""
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
            # Two samples with the same newest ts: the one written last wins.
            .order_by(c.id)
        )
        with map_db_errors(self._engine, "read samples from"), self._engine.connect() as conn:
            return {
                (metric, instance): (float(ts), float(value))
                for metric, instance, ts, value in conn.execute(query)
            }
