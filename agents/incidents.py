"""Incidents and their timelines in the SQL database, plus the anomalies behind them.

Plain synchronous repository over SQLAlchemy Core; graph nodes and Celery
tasks call it with incident IDs, never with shared objects.
"""

from __future__ import annotations

import builtins
import json
from collections import defaultdict
from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from autonoc.core.db import anomalies, incident_events, incidents, inserted_id, map_db_errors
from autonoc.core.types import Anomaly, Incident, IncidentStatus, TimelineEvent, utcnow

__all__ = ["IncidentRepo"]


def _json_safe(value: dict[str, Any]) -> dict[str, Any]:
    # Event data may carry datetimes or enums; the JSON column would refuse them.
    result: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return result


def _event_row(incident_id: int, event: TimelineEvent) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "ts": event.ts,
        "kind": event.kind,
        "message": event.message,
        "data": _json_safe(event.data),
    }


class IncidentRepo:
    """Create, update and read incidents with their timelines.

    Args:
        engine: from :func:`autonoc.core.db.make_engine`, migrated with
            :func:`autonoc.core.db.upgrade`.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def create(self, incident: Incident) -> int:
        """Store ``incident`` and its timeline so far; returns the new id.

        ``incident.id`` is ignored: the database assigns ids.
        """
        row = {
            "status": incident.status.value,
            "title": incident.title,
            "device": incident.device,
            "instance": incident.instance,
            "fault_kind": incident.fault_kind,
            "severity": incident.severity.value,
            "opened_at": incident.opened_at,
            "closed_at": incident.closed_at,
            "updated_at": utcnow(),
        }
        with map_db_errors(self._engine, "write incidents to"), self._engine.begin() as conn:
            incident_id = inserted_id(conn.execute(sa.insert(incidents), row))
            if incident.timeline:
                conn.execute(
                    sa.insert(incident_events),
                    [_event_row(incident_id, e) for e in incident.timeline],
                )
        return incident_id

    def add_event(self, incident_id: int, event: TimelineEvent) -> None:
        """Append ``event`` to the incident's timeline.

        Raises:
            KeyError: no incident has ``incident_id``.
        """
        with map_db_errors(self._engine, "write incidents to"), self._engine.begin() as conn:
            self._touch(conn, incident_id, {})
            conn.execute(sa.insert(incident_events), _event_row(incident_id, event))

    def update(
        self,
        incident_id: int,
        *,
        status: IncidentStatus | None = None,
        fault_kind: str | None = None,
        title: str | None = None,
        device: str | None = None,
        instance: str | None = None,
        closed_at: datetime | None = None,
    ) -> None:
        """Change the given fields; ``None`` leaves a field as it is.

        Raises:
            KeyError: no incident has ``incident_id``.
        """
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status.value
        if fault_kind is not None:
            values["fault_kind"] = fault_kind
        if title is not None:
            values["title"] = title
        if device is not None:
            values["device"] = device
        if instance is not None:
            values["instance"] = instance
        if closed_at is not None:
            values["closed_at"] = closed_at
        with map_db_errors(self._engine, "write incidents to"), self._engine.begin() as conn:
            self._touch(conn, incident_id, values)

    @staticmethod
    def _touch(conn: sa.Connection, incident_id: int, values: dict[str, Any]) -> None:
        # Writing first takes SQLite's write lock before any read, so a busy
        # database makes us wait rather than fail on a lock upgrade.
        result = conn.execute(
            sa.update(incidents)
            .where(incidents.c.id == incident_id)
            .values(**values, updated_at=utcnow())
        )
        if result.rowcount == 0:
            raise KeyError(incident_id)

    def get(self, incident_id: int) -> Incident:
        """The incident with its timeline, oldest event first.

        Raises:
            KeyError: no incident has ``incident_id``.
        """
        found = self._load(sa.select(incidents).where(incidents.c.id == incident_id))
        if not found:
            raise KeyError(incident_id)
        return found[0]

    def list(
        self, limit: int = 50, status: IncidentStatus | None = None
    ) -> builtins.list[Incident]:
        """The newest ``limit`` incidents (by opening time), optionally with one ``status``."""
        query = (
            sa.select(incidents)
            .order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(incidents.c.status == status.value)
        return self._load(query)

    def _load(self, query: sa.Select[Any]) -> builtins.list[Incident]:
        with map_db_errors(self._engine, "read incidents from"), self._engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows:
                return []
            ids = [row.id for row in rows]
            events = conn.execute(
                sa.select(incident_events)
                .where(incident_events.c.incident_id.in_(ids))
                .order_by(incident_events.c.ts, incident_events.c.id)
            ).all()
        timelines: dict[int, builtins.list[TimelineEvent]] = defaultdict(builtins.list)
        for e in events:
            timelines[e.incident_id].append(
                TimelineEvent(ts=e.ts, kind=e.kind, message=e.message, data=e.data)
            )
        return [
            Incident(
                id=row.id,
                status=IncidentStatus(row.status),
                title=row.title,
                device=row.device,
                instance=row.instance,
                fault_kind=row.fault_kind,
                severity=row.severity,
                opened_at=row.opened_at,
                closed_at=row.closed_at,
                timeline=timelines.get(row.id, []),
            )
            for row in rows
        ]

    def record_anomaly(self, anomaly: Anomaly) -> int:
        """Store a detector's anomaly with its attributions; returns its id."""
        row = {
            "device": anomaly.device,
            "ts": anomaly.ts,
            "score": anomaly.score,
            "threshold": anomaly.threshold,
            "detector": anomaly.detector,
            "attributions": [asdict(a) for a in anomaly.attributions],
        }
        with map_db_errors(self._engine, "write anomalies to"), self._engine.begin() as conn:
            return inserted_id(conn.execute(sa.insert(anomalies), row))
