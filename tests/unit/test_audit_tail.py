"""Reading the audit log: filters, newest last, following new entries, and the
``autonoc audit tail`` command, on a real SQLite file (no sockets).

The database-level guard (triggers refusing UPDATE and DELETE, on SQLite and
PostgreSQL) is exercised in tests/integration/test_db.py; PostgreSQL's
out-of-order commits in tests/integration/test_audit_tail.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from autonoc.cli import app as cli
from autonoc.core.audit import AuditFollower, AuditLog
from autonoc.core.db import audit_log, make_engine, upgrade
from autonoc.core.settings import Settings
from autonoc.core.types import utcnow

runner = CliRunner()


@pytest.fixture
def engine(autonoc_home: Path) -> Iterator[sa.Engine]:
    eng = make_engine(Settings.load())
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def log(engine: sa.Engine) -> AuditLog:
    return AuditLog(engine)


def _insert_with_id(engine: sa.Engine, entry_id: int, action: str = "late") -> None:
    """A row with a chosen id: how a PostgreSQL insert that commits late looks to a reader."""
    row = {"id": entry_id, "ts": utcnow(), "actor": "t", "action": action, "subject": "s"}
    with engine.begin() as conn:
        conn.execute(sa.insert(audit_log), {**row, "details": {}})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# ---- AuditLog ----------------------------------------------------------------------------


def test_the_class_offers_no_way_to_change_an_entry() -> None:
    public = {name for name in vars(AuditLog) if not name.startswith("_")}
    assert public == {"append", "entries", "after", "with_ids", "last_id"}
    with pytest.raises(TypeError, match="append-only"):
        type("Editable", (AuditLog,), {"update": lambda self: None})


def test_entries_filter_by_subject_and_action_newest_first(log: AuditLog) -> None:
    assert log.last_id() == 0
    a = log.append("agent", "plan_dispatched", "pe1:eth1", {"plan_hash": "h1"})
    b = log.append("worker", "playbook_started", "pe1:eth1", {})
    c = log.append("worker", "playbook_started", "p1:eth2", {})
    assert log.last_id() == c
    assert [e.id for e in log.entries()] == [c, b, a]
    assert [e.id for e in log.entries(subject="pe1:eth1")] == [b, a]
    assert [e.id for e in log.entries(action="playbook_started")] == [c, b]
    assert [e.id for e in log.entries(subject="pe1:eth1", action="playbook_started")] == [b]
    assert [e.id for e in log.entries(limit=1)] == [c]
    assert [e.id for e in log.entries(up_to=b)] == [b, a]
    assert [e.id for e in log.after(a)] == [b, c]
    assert [e.id for e in log.with_ids([c, a, 99])] == [a, c]


def test_follower_reports_new_entries_once_and_filters(log: AuditLog) -> None:
    log.append("agent", "plan_dispatched", "pe1:eth1", {})
    follower = AuditFollower(log, log.last_id(), subject="pe1:eth1")
    assert follower.poll() == []
    wanted = log.append("worker", "playbook_started", "pe1:eth1", {})
    log.append("worker", "playbook_started", "p1:eth2", {})
    assert [e.id for e in follower.poll()] == [wanted]
    assert follower.poll() == []


def test_follower_catches_an_entry_that_commits_after_a_newer_one(
    log: AuditLog, engine: sa.Engine
) -> None:
    clock = Clock()
    follower = AuditFollower(log, 0, clock=clock)
    _insert_with_id(engine, 1)
    _insert_with_id(engine, 3)  # id 2 was handed out but has not committed yet
    assert [e.id for e in follower.poll()] == [1, 3]
    clock.now = 10.0
    _insert_with_id(engine, 2)
    _insert_with_id(engine, 4)
    assert [e.id for e in follower.poll()] == [2, 4]  # late, but shown, in id order
    assert follower.poll() == []


def test_follower_gives_up_on_an_id_after_the_gap_wait(log: AuditLog, engine: sa.Engine) -> None:
    clock = Clock()
    follower = AuditFollower(log, 0, clock=clock, gap_wait_s=30.0)
    _insert_with_id(engine, 2)
    assert [e.id for e in follower.poll()] == [2]
    clock.now = 31.0
    assert follower.poll() == []  # id 1 is taken for a rolled-back insert now
    _insert_with_id(engine, 1)
    _insert_with_id(engine, 3)
    assert [e.id for e in follower.poll()] == [3]


def test_follower_rechecks_ids_in_flight_when_it_starts(log: AuditLog, engine: sa.Engine) -> None:
    _insert_with_id(engine, 1)
    _insert_with_id(engine, 3)
    follower = AuditFollower(log, log.last_id())
    _insert_with_id(engine, 2)
    assert [e.id for e in follower.poll()] == [2]


# ---- autonoc audit tail ------------------------------------------------------------------


def _seed(log: AuditLog) -> list[int]:
    return [
        log.append("agent", "plan_dispatched", "pe1:eth1", {"plan_hash": "h1", "community": "x"}),
        log.append("worker", "playbook_started", "pe1:eth1", {"run_id": "r1"}),
        log.append("worker", "playbook_finished", "pe1:eth1", {"ok": True}),
        log.append("worker", "playbook_started", "p1:eth2", {"run_id": "r2"}),
    ]


def _json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


def test_tail_prints_the_newest_entries_newest_last(log: AuditLog) -> None:
    ids = _seed(log)
    result = runner.invoke(cli, ["audit", "tail", "-n", "3", "--json"])
    assert result.exit_code == 0, result.output
    rows = _json_lines(result.stdout)
    assert [r["id"] for r in rows] == ids[1:]
    assert rows[-1]["subject"] == "p1:eth2" and rows[-1]["details"] == {"run_id": "r2"}
    assert rows[0]["ts"].endswith("+00:00")


def test_tail_filters_and_never_shows_secrets(log: AuditLog) -> None:
    ids = _seed(log)
    result = runner.invoke(cli, ["audit", "tail", "--subject", "pe1:eth1", "--json"])
    assert [r["id"] for r in _json_lines(result.stdout)] == ids[:3]
    result = runner.invoke(
        cli, ["audit", "tail", "--subject", "pe1:eth1", "--action", "plan_dispatched"]
    )
    assert result.exit_code == 0
    [line] = result.stdout.splitlines()
    assert f"#{ids[0]} agent plan_dispatched pe1:eth1" in line
    assert '"community": "***"' in line and '"x"' not in line


def test_tail_keeps_device_text_from_driving_the_terminal(log: AuditLog) -> None:
    log.append("worker", "snmp_set", "pe1:\x1b[2Jeth1", {"ifalias": "\x1b]0;owned\x07"})
    result = runner.invoke(cli, ["audit", "tail"])
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "pe1:?[2Jeth1" in result.stdout


def test_tail_on_an_empty_log_says_so(autonoc_home: Path) -> None:
    result = runner.invoke(cli, ["audit", "tail"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no audit entries yet" in result.stderr


def test_tail_names_the_database_it_cannot_read(
    autonoc_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTONOC_DATABASE_URL", "sqlite:////proc/autonoc-cannot-write-here.db")
    result = runner.invoke(cli, ["audit", "tail"])
    assert result.exit_code == 1
    assert "database" in result.stderr and "Traceback" not in result.output
