"""`autonoc demo`, headless, as a user runs it: the fault must end resolved and verified.

Runs once on the embedded defaults (a fresh AUTONOC_HOME, no URLs: the demo
starts its own Redis and SQLite) and once against the external Redis and
PostgreSQL. Afterwards nothing the demo started may still be running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import redis

from tests.integration.conftest import _fresh_postgres

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

EXPECTED_STEPS = [
    "detected",
    "triaged",
    "diagnosed",
    "planned",
    "policy",
    "dispatched",
    "acted",
    "verified",
    "resolved",
]


def _autonoc(
    args: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autonoc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _leftovers(home: Path) -> list[str]:
    """Processes whose environment or command line mentions this demo's home."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid == os.getpid():
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if str(home) in cmdline or env.get("AUTONOC_HOME") == str(home):
            found.append(f"{proc.pid}: {cmdline}")
    return found


@pytest.mark.parametrize("mode", ["embedded", "external"])
def test_demo_resolves_and_verifies_the_fault(
    mode: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTONOC_")}
    env["AUTONOC_HOME"] = str(home)
    with_external = mode == "external"
    if with_external:
        redis_url = request.getfixturevalue("external_redis_url")
        redis.Redis.from_url(redis_url).flushdb()  # no stale tasks from an earlier run
        admin = request.getfixturevalue("postgres_admin_url")
        db_context = _fresh_postgres(admin)
        env["AUTONOC_REDIS_URL"] = redis_url
        env["AUTONOC_DATABASE_URL"] = db_context.__enter__()
    try:
        run = _autonoc(["demo", "--json"], env, timeout=240)
        assert run.returncode == 0, f"demo failed:\n{run.stdout}\n{run.stderr[-4000:]}"
        report = json.loads(run.stdout)
        assert report["resolved"] is True
        incident = report["incident"]
        assert incident["status"] == "resolved"
        assert incident["fault_kind"] == "interface_admin_down"
        assert (incident["device"], incident["instance"]) == ("pe1", "eth1")
        kinds = [e["kind"] for e in incident["timeline"]]
        positions = [kinds.index(step) for step in EXPECTED_STEPS]
        assert positions == sorted(positions), kinds
        verified = next(e for e in incident["timeline"] if e["kind"] == "verified")
        assert all(check["passed"] for check in verified["data"]["checks"])

        listed = _autonoc(["incidents", "list", "--json"], env, timeout=60)
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        assert [r["status"] for r in rows] == ["resolved"]
        assert _leftovers(home) == []
        if not with_external:
            assert not list((home / "run").glob("*.sock"))
    finally:
        if with_external:
            db_context.__exit__(None, None, None)
