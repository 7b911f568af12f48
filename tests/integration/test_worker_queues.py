"""`autonoc worker --queues ...` and `autonoc beat` as processes on real Redis, and the
remediate task's retry policy in a real worker: what an operator running a fleet relies on.

Each test runs on the embedded Redis and on the external one (see conftest).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery, Task
from celery.contrib.testing.worker import start_worker
from celery.exceptions import TimeoutError as CeleryTimeoutError

from autonoc.core import procs
from autonoc.core.errors import DeviceLocked, PrecheckFailed, TransientError
from collectors.bus import SAMPLES_STREAM, decode_samples
from lab.network import LabNetwork
from lab.runner import LabRunner
from tests.integration.conftest import Backend
from worker.app import (
    PING,
    QUEUES,
    TRANSIENT_RETRY,
    RetryPolicy,
    make_celery,
    running_beats,
)

pytestmark = pytest.mark.timeout(240)


def _env(backend: Backend, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTONOC_")}
    return {**env, **backend.settings_env, "AUTONOC_HOME": str(home), **extra}


@contextmanager
def _autonoc(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = procs.spawn([sys.executable, "-m", "autonoc", *args], env=env, log_path=log)
    try:
        yield proc
    finally:
        procs.stop(proc, timeout=30.0)


def _log(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


@pytest.fixture
def client(backend: Backend) -> Iterator[redis.Redis]:
    """Redis, with the four queues empty before and after the test."""
    conn = redis.Redis.from_url(backend.redis_url)
    conn.delete(*QUEUES)
    try:
        yield conn
    finally:
        conn.delete(*QUEUES)
        conn.close()


def _get(result: Any, log: Path, timeout: float = 90.0) -> Any:
    try:
        return result.get(timeout=timeout)
    except CeleryTimeoutError as exc:
        raise AssertionError(f"{result.id}: no answer\n--- worker log ---\n{_log(log)}") from exc


def test_workers_serve_exactly_the_queues_they_are_given(
    backend: Backend, client: redis.Redis, tmp_path: Path
) -> None:
    settings = backend.settings()
    app = make_celery(settings, backend.redis_url)
    env = _env(backend, tmp_path)
    pings = {q: app.send_task(PING, queue=q) for q in QUEUES}
    first_log = tmp_path / "worker-default.log"
    with _autonoc(["worker"], env, first_log):
        for queue in ("remediate", "default"):
            reply = _get(pings[queue], first_log)
            assert reply["queue"] == queue
            assert reply["hostname"].startswith("autonoc-remediate-default@")
        # The default worker never takes from poll or detect: those pings still wait.
        assert client.llen("poll") == 1 and client.llen("detect") == 1
        assert not pings["poll"].ready() and not pings["detect"].ready()

        second_log = tmp_path / "worker-poll-detect.log"
        with _autonoc(["worker", "--queues", "poll,detect"], env, second_log):
            for queue in ("poll", "detect"):
                reply = _get(pings[queue], second_log)
                assert reply["queue"] == queue
                assert reply["hostname"].startswith("autonoc-poll-detect@")


def test_beat_schedules_sharded_polls_that_a_poll_worker_runs(
    backend: Backend, client: redis.Redis, tmp_path: Path
) -> None:
    with LabRunner(LabNetwork.preset("ring4")) as lab:
        inventory = tmp_path / "inventory.yaml"
        lab.write_inventory(inventory)
        env = _env(
            backend,
            tmp_path,
            AUTONOC_INVENTORY=str(inventory),
            AUTONOC_COLLECT__INTERVALS='{"interfaces": 1}',
            AUTONOC_COLLECT__SHARDS="2",
        )
        app = make_celery(backend.settings(), backend.redis_url)
        last_id = (client.xrevrange(SAMPLES_STREAM, count=1) or [(b"0-0", {})])[0][0]
        beat_log, worker_log = tmp_path / "beat.log", tmp_path / "worker.log"
        with (
            _autonoc(["beat"], env, beat_log),
            _autonoc(["worker", "--queues", "poll"], env, worker_log),
        ):
            # Two shards each poll half of ring4: all four devices on the bus means both ran.
            wanted = {d.name for d in lab.inventory.devices}
            seen: set[str] = set()
            deadline = time.monotonic() + 90
            while seen != wanted:
                assert time.monotonic() < deadline, (
                    f"polled only {sorted(seen)} of {sorted(wanted)}\n--- beat ---\n"
                    f"{_log(beat_log)}\n--- worker ---\n{_log(worker_log)}"
                )
                for _, entries in client.xread({SAMPLES_STREAM: last_id}, block=1000) or []:
                    for entry_id, fields in entries:
                        last_id = entry_id
                        seen |= {s.device for s in decode_samples(fields)}
            assert running_beats(app) != []

            again = subprocess.run(
                [sys.executable, "-m", "autonoc", "beat"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert again.returncode == 2, again.stderr
            assert "another beat is running" in " ".join(again.stderr.split())


# ---- retries, in a real worker on real Redis ------------------------------------------


@pytest.fixture
def retry_app(backend: Backend, client: redis.Redis) -> Iterator[tuple[Celery, redis.Redis]]:
    """The platform's app plus test tasks that fail as told, counting attempts in Redis."""
    app = make_celery(backend.settings(), backend.redis_url)

    def flaky(self: Task[Any, Any], key: str, failures: int, error: str) -> str:
        attempt = int(client.incr(key))
        client.expire(key, 600)
        if attempt <= failures:
            raise {"locked": DeviceLocked, "precheck": PrecheckFailed}[error](
                f"attempt {attempt} of task {self.request.id}"
            )
        return f"done on attempt {attempt} as {self.request.id}"

    app.task(name="test.flaky", bind=True, shared=False, **TRANSIENT_RETRY.options())(flaky)
    brief = RetryPolicy(on=(TransientError,), max_retries=2, backoff_max=60)
    app.task(name="test.flaky_brief", bind=True, shared=False, **brief.options())(flaky)
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=["default"]
    ):
        yield app, client


def test_a_locked_device_is_retried_under_the_same_task_id_and_then_succeeds(
    retry_app: tuple[Celery, redis.Redis], tmp_path: Path
) -> None:
    app, client = retry_app
    key = f"autonoc:test:attempts:{tmp_path.name}"
    client.delete(key)
    # Fresh per run: the result backend keeps an id's outcome for days (that is the point).
    task_id = f"playbook-{uuid.uuid4().hex[:16]}-auto"
    result = app.send_task("test.flaky", args=[key, 2, "locked"], task_id=task_id, queue="default")
    assert result.get(timeout=60) == f"done on attempt 3 as {task_id}"
    assert int(client.get(key) or 0) == 3


def test_a_failed_precheck_is_not_retried(
    retry_app: tuple[Celery, redis.Redis], tmp_path: Path
) -> None:
    app, client = retry_app
    key = f"autonoc:test:attempts:{tmp_path.name}"
    client.delete(key)
    result = app.send_task("test.flaky", args=[key, 5, "precheck"], queue="default")
    with pytest.raises(PrecheckFailed, match="attempt 1"):
        result.get(timeout=60)
    assert int(client.get(key) or 0) == 1


def test_retries_end_after_max_retries_with_the_transient_error(
    retry_app: tuple[Celery, redis.Redis], tmp_path: Path
) -> None:
    app, client = retry_app
    key = f"autonoc:test:attempts:{tmp_path.name}"
    client.delete(key)
    result = app.send_task("test.flaky_brief", args=[key, 99, "locked"], queue="default")
    with pytest.raises(DeviceLocked, match="attempt 3"):
        result.get(timeout=60)
    assert int(client.get(key) or 0) == 3  # the first try and max_retries=2 retries
