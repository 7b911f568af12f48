"""`autonoc audit tail --follow` as an operator runs it, on SQLite and PostgreSQL, and
the follower on PostgreSQL, where ids are handed out at insert, not at commit."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from autonoc.core import db
from autonoc.core.audit import AuditFollower, AuditLog
from autonoc.core.settings import Settings
from autonoc.core.types import utcnow
from tests.integration.conftest import _fresh_postgres

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def postgres(postgres_admin_url: str, tmp_path: Path) -> Iterator[sa.Engine]:
    with _fresh_postgres(postgres_admin_url) as url:
        engine = db.make_engine(Settings.load(home=tmp_path, database_url=url))
        try:
            db.upgrade(engine)
            yield engine
        finally:
            engine.dispose()


def _row(action: str) -> dict[str, object]:
    return {"ts": utcnow(), "actor": "t", "action": action, "subject": "pe1", "details": {}}


def test_an_insert_that_commits_after_a_newer_one_is_still_followed(
    postgres: sa.Engine,
) -> None:
    log = AuditLog(postgres)
    follower = AuditFollower(log, log.last_id())
    with postgres.connect() as slow:
        transaction = slow.begin()
        slow.execute(sa.insert(db.audit_log), _row("slow"))  # takes an id, commits later
        fast = log.append("t", "fast", "pe1", {})
        assert [e.action for e in follower.poll()] == ["fast"]
        transaction.commit()
    late = follower.poll()
    assert [e.action for e in late] == ["slow"]
    assert late[0].id < fast
    assert follower.poll() == []


def _spawn_tail(env: dict[str, str]) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "autonoc", "audit", "tail", "-n", "1", "--follow", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT at its default, so Python turns it into KeyboardInterrupt as in a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def test_follow_prints_new_entries_until_ctrl_c(database_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(Settings.load(home=tmp_path, database_url=database_url))
    try:
        db.upgrade(engine)
        log = AuditLog(engine)
        log.append("agent", "older", "pe1:eth1", {})
        log.append("agent", "plan_dispatched", "pe1:eth1", {"plan_hash": "h1"})
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTONOC_")}
        env |= {"AUTONOC_HOME": str(tmp_path), "AUTONOC_DATABASE_URL": database_url}
        proc, lines = _spawn_tail(env)
        try:
            first = json.loads(lines.get(timeout=60))
            assert first["action"] == "plan_dispatched"  # -n 1: only the newest
            started = log.append("worker", "playbook_started", "pe1:eth1", {"run_id": "r1"})
            finished = log.append("worker", "playbook_finished", "pe1:eth1", {"ok": True})
            got = [json.loads(lines.get(timeout=30)) for _ in range(2)]
            assert [(e["id"], e["action"]) for e in got] == [
                (started, "playbook_started"),
                (finished, "playbook_finished"),
            ]
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
            assert proc.stderr is not None
            assert "Traceback" not in proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        engine.dispose()
