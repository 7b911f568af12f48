"""The namespace lab leaves nothing behind: after a failed start, and when killed mid-start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autonoc.core.errors import LabError
from lab.netns.lab import NetnsLab
from lab.netns.registry import Registry, ip, link_exists, netns_exists, registry_path
from lab.netns.topology import DEFAULT_TOPOLOGY
from tests.integration.test_netns_lab import require_netns_lab


def _leftovers(lab_id: str) -> list[str]:
    """Namespaces, host links and processes of lab ``lab_id`` that still exist."""
    left = [n for n in ip("netns", "list").stdout.split() if n.startswith(f"an-{lab_id}-")]
    left += [
        line.split(":")[1].strip().split("@")[0]
        for line in ip("-o", "link", "show").stdout.splitlines()
        if line.split(":")[1].strip().startswith(f"an{lab_id}")
    ]
    left += [str(p) for p in Path("/var/run/frr").glob(f"an-{lab_id}-*")]
    return left


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_failed_start_tears_down_what_it_built(tmp_path: Path) -> None:
    require_netns_lab()
    lab = NetnsLab(DEFAULT_TOPOLOGY, tmp_path, ready_timeout=0.0)
    with pytest.raises(LabError, match="did not come up"):
        lab.start()
    assert _leftovers(lab.lab_id) == []
    assert not registry_path(tmp_path).exists()


def test_lab_killed_mid_start_is_removed_by_lab_down(tmp_path: Path) -> None:
    require_netns_lab()
    env = {**os.environ, "AUTONOC_HOME": str(tmp_path)}
    up = subprocess.Popen(
        [sys.executable, "-m", "autonoc", "lab", "up", "--backend", "netns"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    path = registry_path(tmp_path)
    deadline = time.monotonic() + 60
    reg: Registry | None = None
    try:
        while time.monotonic() < deadline:
            reg = Registry.load(path) if path.exists() else None
            # Killed once routers exist and daemons run, before the lab is ready.
            if reg is not None and any(r["kind"] == "proc" for r in reg.data["created"]):
                break
            time.sleep(0.05)
        up.send_signal(signal.SIGKILL)
    finally:
        up.wait(10)
    reg = Registry.load(path)
    assert reg is not None, "lab up never recorded a daemon"
    lab_id = reg.data["lab"]
    assert _leftovers(lab_id), "the kill left nothing to clean: the test proves nothing"

    down = subprocess.run(
        [sys.executable, "-m", "autonoc", "lab", "down", "--backend", "netns"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert down.returncode == 0, down.stdout + down.stderr
    assert _leftovers(lab_id) == []
    assert not any(netns_exists(n) for n in reg.namespaces())
    assert not any(link_exists(n) for n in reg.links())
    assert not any(_alive(int(r["pid"])) for r in reg.resources("proc"))
    assert not path.exists()
