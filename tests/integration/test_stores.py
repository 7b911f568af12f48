"""Round trips through the stores on SQLite and PostgreSQL, and the shared backends."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
import redis
import sqlalchemy as sa

from agents.incidents import IncidentRepo
from autonoc.core import db
from autonoc.core.audit import AuditLog
from autonoc.core.types import (
    Anomaly,
    Attribution,
    Incident,
    IncidentStatus,
    Sample,
    Severity,
    TimelineEvent,
)
from collectors.store import SampleStore
from tests.integration.conftest import Backend

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_samples_round_trip(engine: sa.Engine) -> None:
    store = SampleStore(engine)
    assert store.write([]) == 0
    batch = [Sample("r1", "if_in_bps", "eth0", 100.0 + i, float(i)) for i in range(10)] + [
        Sample("r1", "if_in_bps", "eth1", 105.0, 50.0),
        Sample("r1", "cpu_util", "", 103.0, 0.25),
        Sample("r2", "cpu_util", "", 999.0, 0.99),
    ]
    assert store.write(iter(batch)) == 13

    assert store.series("r1", "if_in_bps", "eth0") == [(100.0 + i, float(i)) for i in range(10)]
    assert store.series("r1", "if_in_bps", "eth0", start=103.0, end=105.0) == [
        (103.0, 3.0),
        (104.0, 4.0),
        (105.0, 5.0),
    ]
    assert store.series("r1", "cpu_util") == [(103.0, 0.25)]
    assert store.series("r1", "nope") == []
    assert store.latest("r1") == {
        ("if_in_bps", "eth0"): (109.0, 9.0),
        ("if_in_bps", "eth1"): (105.0, 50.0),
        ("cpu_util", ""): (103.0, 0.25),
    }
    assert store.latest("r9") == {}


def test_audit_log_appends_redacted_entries_newest_first(engine: sa.Engine) -> None:
    audit = AuditLog(engine)
    first = audit.append("agent", "plan", "incident:1", {"playbook": "raise-amplifier-gain"})
    second = audit.append(
        "worker",
        "apply",
        "device:roadm-1",
        {
            "password": "hunter2",
            "snmp": {"Community": "public-ro", "version": "2c"},
            "hosts": [{"ssh_key": "-----BEGIN", "name": "r1"}],
            "url": "redis://:hunter2@cache:6379/0",
            "at": T0,
        },
    )
    assert second > first

    entries = audit.entries()
    assert [e.id for e in entries] == [second, first]
    latest = entries[0]
    assert (latest.actor, latest.action, latest.subject) == ("worker", "apply", "device:roadm-1")
    assert latest.details == {
        "password": "***",
        "snmp": {"Community": "***", "version": "2c"},
        "hosts": [{"ssh_key": "***", "name": "r1"}],
        "url": "redis://:***@cache:6379/0",
        "at": str(T0),
    }
    assert "hunter2" not in json.dumps(latest.details)
    assert latest.ts.tzinfo is not None and latest.ts.utcoffset() == timedelta(0)

    assert [e.id for e in audit.entries(subject="incident:1")] == [first]
    assert [e.id for e in audit.entries(limit=1)] == [second]
    assert not hasattr(audit, "update") and not hasattr(audit, "delete")


def _incident(title: str, opened_at: datetime) -> Incident:
    return Incident(
        title=title,
        device="roadm-1",
        instance="line-1",
        fault_kind="span_loss",
        severity=Severity.CRITICAL,
        opened_at=opened_at,
        timeline=[
            TimelineEvent(ts=opened_at, kind="detected", message="OSNR fell", data={"db": 6.0}),
        ],
    )


def test_incidents_round_trip_with_their_timelines(engine: sa.Engine) -> None:
    repo = IncidentRepo(engine)
    # Offsets other than UTC come back as the same instant, in UTC.
    cet = timezone(timedelta(hours=1))
    first = repo.create(_incident("span loss A", T0.astimezone(cet)))
    second = repo.create(_incident("span loss B", T0 + timedelta(minutes=5)))

    got = repo.get(first)
    assert got.id == first
    assert (got.title, got.device, got.instance) == ("span loss A", "roadm-1", "line-1")
    assert (got.status, got.fault_kind, got.severity) == (
        IncidentStatus.OPEN,
        "span_loss",
        Severity.CRITICAL,
    )
    assert got.opened_at == T0 and got.opened_at.tzinfo == UTC
    assert got.closed_at is None
    assert [(e.kind, e.message, e.data) for e in got.timeline] == [
        ("detected", "OSNR fell", {"db": 6.0})
    ]

    repo.add_event(first, TimelineEvent(ts=T0 + timedelta(seconds=30), kind="planned", message="p"))
    repo.add_event(
        first, TimelineEvent(ts=T0 + timedelta(seconds=20), kind="diagnosed", message="d")
    )
    closed = T0 + timedelta(minutes=2)
    repo.update(
        first, status=IncidentStatus.RESOLVED, title="span loss A (fixed)", closed_at=closed
    )

    got = repo.get(first)
    assert [e.kind for e in got.timeline] == ["detected", "diagnosed", "planned"]
    assert all(e.ts.tzinfo == UTC for e in got.timeline)
    assert got.status is IncidentStatus.RESOLVED
    assert got.title == "span loss A (fixed)"
    assert got.fault_kind == "span_loss"
    assert got.closed_at == closed and got.closed_at.tzinfo == UTC

    listed = repo.list()
    assert [i.id for i in listed] == [second, first]
    assert [e.kind for e in listed[1].timeline] == ["detected", "diagnosed", "planned"]
    assert [i.id for i in repo.list(status=IncidentStatus.OPEN)] == [second]
    assert [i.id for i in repo.list(limit=1)] == [second]


def test_unknown_incidents_raise_key_error(engine: sa.Engine) -> None:
    repo = IncidentRepo(engine)
    with pytest.raises(KeyError):
        repo.get(404)
    with pytest.raises(KeyError):
        repo.update(404, status=IncidentStatus.DISMISSED)
    with pytest.raises(KeyError):
        repo.add_event(404, TimelineEvent(kind="note", message="x"))


def test_naive_datetimes_are_refused(engine: sa.Engine) -> None:
    repo = IncidentRepo(engine)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        repo.create(_incident("naive", datetime(2026, 3, 1, 12, 0)))
    assert repo.list() == []


def test_anomalies_are_recorded_with_attributions(engine: sa.Engine) -> None:
    repo = IncidentRepo(engine)
    anomaly = Anomaly(
        device="amp-1",
        ts=1_700_000_000.5,
        score=0.97,
        threshold=0.8,
        detector="iforest",
        attributions=(Attribution("input_power", "in", 0.9, -24.0, -18.0),),
    )
    first = repo.record_anomaly(anomaly)
    assert repo.record_anomaly(anomaly) > first
    with engine.connect() as conn:
        row = conn.execute(sa.select(db.anomalies).where(db.anomalies.c.id == first)).one()
    assert (row.device, row.ts, row.score, row.threshold, row.detector) == (
        "amp-1",
        1_700_000_000.5,
        0.97,
        0.8,
        "iforest",
    )
    assert row.attributions == [
        {"metric": "input_power", "instance": "in", "score": 0.9, "value": -24.0, "expected": -18.0}
    ]


_CHILD = """
import json
import redis
from autonoc.core.db import check_database, current_revision, make_engine
from autonoc.core.settings import Settings

settings = Settings.load()
client = redis.Redis.from_url(settings.redis_url)
engine = make_engine(settings)
check_database(engine)
print(json.dumps({
    "redis": client.get("autonoc:test:backend").decode(),
    "home": str(settings.home),
    "revision": current_revision(engine),
}))
"""


def test_backend_is_shared_with_child_processes(backend: Backend) -> None:
    client = redis.Redis.from_url(backend.redis_url)
    client.set("autonoc:test:backend", backend.name, ex=60)
    engine = db.make_engine(backend.settings())
    try:
        assert SampleStore(engine).write([Sample("r1", "cpu_util", "", 1.0, 0.5)]) == 1
    finally:
        engine.dispose()

    out = subprocess.run(
        [sys.executable, "-c", _CHILD],
        env={"PATH": "/usr/bin:/bin", **backend.settings_env},
        capture_output=True,
        check=True,
        timeout=60,
    )
    seen = json.loads(out.stdout)
    assert seen == {
        "redis": backend.name,
        "home": str(backend.home),
        "revision": db.head_revision(),
    }
    client.delete("autonoc:test:backend")
