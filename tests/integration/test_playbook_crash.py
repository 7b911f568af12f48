"""kill -9 of a real Celery worker at each step of a playbook, then a fresh worker.

The worker is a subprocess (``celery -A tests.integration.crash_app worker
-Q remediate --pool solo``) on a private real Redis server (the embedded
``redis-server``, so workers of other test runs on a shared Redis cannot take
the task), a SQLite database and the lab (in this process) over NETCONF/SSH.
The plan is ``drain-link`` on pe1:eth1, dispatched under its deterministic task
id. At each step the worker pauses (a test-only hook in ``crash_app``; the
journal's state is checked too), the test kills it with SIGKILL and starts a
worker without the pause. The broker redelivers the unacknowledged task after
its (test-shortened) visibility timeout, and the run must end applied and
verified or rolled back: never half-applied, never applied twice, on the
device model, in the journal and in the audit log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from celery.result import AsyncResult

from autonoc.core.audit import AuditLog
from autonoc.core.db import make_engine, upgrade
from autonoc.core.redis import RedisEndpoint, redis_endpoint
from autonoc.core.settings import Settings
from autonoc.core.types import ActionPlan, ActionResult
from lab.network import LabNetwork
from lab.runner import LabRunner
from playbooks.base import Catalog
from playbooks.journal import RunJournal, RunState
from worker.app import dispatch_plan, make_celery

REPO = Path(__file__).resolve().parents[2]
DRAINED = 16777214
VISIBILITY_S = 12

# Must match tests/integration/crash_app.py (not imported here: importing it
# installs its pause points in this process).
PAUSE_ENV = "AUTONOC_TEST_PAUSE_AT"
VISIBILITY_ENV = "AUTONOC_TEST_VISIBILITY_TIMEOUT"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRunner]:
    with LabRunner(LabNetwork.preset("metro-ring"), netconf=True) as runner:
        yield runner


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisEndpoint]:
    home = tmp_path_factory.mktemp("crash-redis")
    with redis_endpoint(Settings.load(home=home, redis_url=None)) as endpoint:
        yield endpoint


@dataclass
class Site:
    home: Path
    env: dict[str, str]
    db: sa.Engine
    logs: list[Path]

    def start_worker(self, pause_at: str | None) -> subprocess.Popen[bytes]:
        env = dict(self.env)
        if pause_at is not None:
            env[PAUSE_ENV] = pause_at
        log = self.home / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tests.integration.crash_app",
                    "worker",
                    "-Q",
                    "remediate",
                    "--pool",
                    "solo",
                    "-n",
                    f"crash{len(self.logs)}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel",
                    "INFO",
                ],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs
        )


@pytest.fixture
def site(lab: LabRunner, broker: RedisEndpoint, tmp_path: Path) -> Iterator[Site]:
    inventory = tmp_path / "inventory.yaml"
    lab.write_inventory(inventory)
    url = f"sqlite:///{tmp_path / 'autonoc.sqlite3'}"
    db = make_engine(Settings.load(home=tmp_path, database_url=url))
    upgrade(db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTONOC_") and k != PAUSE_ENV}
    env.update(
        {
            "AUTONOC_HOME": str(tmp_path),
            "AUTONOC_DATABASE_URL": url,
            "AUTONOC_INVENTORY": str(inventory),
            "AUTONOC_REDIS_URL": broker.url,
            VISIBILITY_ENV: str(VISIBILITY_S),
            "PYTHONPATH": str(REPO),
        }
    )
    try:
        yield Site(tmp_path, env, db, [])
    finally:
        db.dispose()


def _wait_for(path: Path, worker: subprocess.Popen[bytes], site: Site, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert worker.poll() is None, f"worker exited early\n{site.tail()}"
        assert time.monotonic() < deadline, f"the worker never reached {path.name}\n{site.tail()}"
        time.sleep(0.1)


def _kill(worker: subprocess.Popen[bytes]) -> None:
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _kill(worker)


# (step, journal state when the worker dies there, how the run must end)
CASES = [
    ("prechecks", RunState.STARTED, RunState.DONE),
    ("committed", RunState.COMMITTED, RunState.ROLLED_BACK),
    ("verifying", RunState.COMMITTED, RunState.ROLLED_BACK),
    ("verified", RunState.VERIFIED, RunState.ROLLED_BACK),
    ("confirmed", RunState.VERIFIED, RunState.DONE),
]


@pytest.mark.parametrize(("step", "at_kill", "final"), CASES, ids=[c[0] for c in CASES])
def test_worker_killed_mid_playbook_ends_applied_or_rolled_back(
    lab: LabRunner, site: Site, step: str, at_kill: RunState, final: RunState
) -> None:
    net = lab.network
    normal = net.interface("pe1", "eth1").igp_metric
    assert normal is not None and normal != DRAINED
    settings = Settings.load(home=site.home, database_url=site.env["AUTONOC_DATABASE_URL"])
    producer = make_celery(
        settings, site.env["AUTONOC_REDIS_URL"], longest_playbook=Catalog.load().longest_run_s()
    )
    spec = Catalog.load().get("drain-link")
    plan = ActionPlan(
        playbook="drain-link",
        device="pe1",
        target="eth1",
        params=spec.validate_params({"interface": "eth1", "verify_within_s": 20}),
    )
    first = site.start_worker(pause_at=step)
    second: subprocess.Popen[bytes] | None = None
    try:
        task_id = dispatch_plan(producer, plan, approval=f"crash-{step}")
        _wait_for(site.home / f"paused-{step}", first, site, timeout=90)
        record = RunJournal(site.db).get(task_id)
        assert record is not None and record.state is at_kill, record
        applied_at_kill = net.interface("pe1", "eth1").igp_metric
        _kill(first)

        # The confirmed commit's session died with the worker: the device reverts
        # whatever was not confirmed (a confirmed change stays).
        expect_now = DRAINED if step == "confirmed" else normal
        deadline = time.monotonic() + 15
        while net.interface("pe1", "eth1").igp_metric != expect_now:
            assert time.monotonic() < deadline, (
                f"device at {net.interface('pe1', 'eth1').igp_metric} after the kill "
                f"(at kill: {applied_at_kill}), expected {expect_now}"
            )
            time.sleep(0.1)

        second = site.start_worker(pause_at=None)
        raw: dict[str, Any] = AsyncResult(task_id, app=producer).get(timeout=VISIBILITY_S + 90)
        result = ActionResult.model_validate(raw)
        metric_final = net.interface("pe1", "eth1").igp_metric
    finally:
        _stop(first)
        if second is not None:
            _stop(second)
        net.set_igp_metric("pe1", "eth1", normal)

    record = RunJournal(site.db).get(task_id)
    assert record is not None and record.attempts == 2, (record, site.tail())
    assert record.state is final, (record.state, result, site.tail())
    assert result.ok is (final is RunState.DONE), result
    assert result.rolled_back is (final is RunState.ROLLED_BACK), result
    assert metric_final == (DRAINED if final is RunState.DONE else normal), metric_final

    audit = AuditLog(site.db)
    actions = [e.action for e in audit.entries(limit=500, subject="pe1:eth1")]
    assert actions.count("netconf_commit") == 1, actions  # one change, never two
    assert actions.count("playbook_finished") == 1, actions
    assert actions.count("netconf_confirmed") == (1 if final is RunState.DONE else 0), actions
    if step != "prechecks":
        assert "playbook_recovering" in actions, actions
