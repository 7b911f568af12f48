"""Ctrl-C during `autonoc demo` stops everything it started: worker, Redis, lab."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.test_demo_loop import _leftovers

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_ctrl_c_mid_demo_leaves_nothing_running(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTONOC_")}
    env["AUTONOC_HOME"] = str(home)
    # Its own session and process group, as a terminal gives a foreground job;
    # SIGINT is left at its default so Python turns it into KeyboardInterrupt.
    proc = subprocess.Popen(
        [sys.executable, "-m", "autonoc", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 90
    try:
        while not any("poll 3" in line for line in seen):
            assert time.monotonic() < deadline, "no third poll:\n" + "".join(seen)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                assert proc.poll() is None, "demo exited early:\n" + "".join(seen)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    time.sleep(0.5)
    assert _leftovers(home) == []
    assert not list(home.glob("run/*.sock"))
    while not lines.empty():
        seen.append(lines.get())
    assert "interrupted" in "".join(seen)
