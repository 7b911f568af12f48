"""The CLI against real backends: doctor's report, and a dead Redis failing fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.conftest import Backend


def _autonoc(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTONOC_")}
    return subprocess.run(
        [sys.executable, "-m", "autonoc", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unreachable_redis_fails_within_seconds_naming_the_masked_url(tmp_path: Path) -> None:
    env = {"AUTONOC_HOME": str(tmp_path), "AUTONOC_REDIS_URL": "redis://:hunter2@127.0.0.1:9/0"}
    started = time.monotonic()
    run = _autonoc(["demo"], env)
    elapsed = time.monotonic() - started
    assert run.returncode == 1
    assert "redis://:***@127.0.0.1:9/0" in run.stderr
    assert "hunter2" not in run.stderr + run.stdout
    assert elapsed < 20  # interpreter start included; the Redis check itself is bounded by 5 s
    assert not (tmp_path / "lab").exists()  # nothing started past the failed check


def test_doctor_reports_each_backend(backend: Backend) -> None:
    run = _autonoc(["doctor", "--json"], backend.settings_env)
    assert run.returncode == 0, run.stdout + run.stderr
    checks = {c["name"]: c for c in json.loads(run.stdout)}
    assert set(checks) >= {"python", "torch", "redis", "database", "lab ports", "home"}
    assert all(c["ok"] for c in checks.values()), checks
    assert "schema at head" in checks["database"]["detail"]


def test_doctor_fails_on_a_dead_database(tmp_path: Path) -> None:
    env = {
        "AUTONOC_HOME": str(tmp_path),
        "AUTONOC_DATABASE_URL": "postgresql://nobody:pw@127.0.0.1:9/none",
    }
    run = _autonoc(["doctor", "--json"], env)
    assert run.returncode == 1
    checks = {c["name"]: c for c in json.loads(run.stdout)}
    assert not checks["database"]["ok"]
    assert ":pw@" not in run.stdout
