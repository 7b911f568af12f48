"""What a namespace lab created, written down before it is created, and its teardown.

The registry is ``AUTONOC_HOME/lab/netns/registry.json`` (mode 0600: it holds
the lab's SNMP communities). Every namespace, host-side link and directory is
recorded *before* it is made, so a lab killed at any point (even SIGKILL
halfway through ``lab up``) leaves a registry that :func:`teardown` can undo:
processes inside each namespace are ended (``ip netns pids``), the namespaces
deleted (their veths go with them), host links and directories removed.
Teardown tolerates things that were recorded but never made.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from autonoc.core.errors import LabError

__all__ = [
    "Registry",
    "ip",
    "link_exists",
    "netns_exists",
    "registry_path",
    "teardown",
]

log = structlog.get_logger(__name__)


def registry_path(home: Path) -> Path:
    return home / "lab" / "netns" / "registry.json"


def ip(*args: str, check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; with ``check``, a failure is a LabError quoting ip's complaint."""
    try:
        proc = subprocess.run(
            ["ip", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise LabError("the 'ip' command is missing (apt-get install iproute2)") from None
    if check and proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def netns_exists(name: str) -> bool:
    return Path("/var/run/netns", name).exists() or Path("/run/netns", name).exists()


def link_exists(name: str) -> bool:
    return ip("link", "show", "dev", name, check=False).returncode == 0


class Registry:
    """The lab's record: metadata, created resources (in order) and active faults."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def create(cls, path: Path, meta: dict[str, Any]) -> Registry:
        if path.exists():
            raise LabError(
                f"a namespace lab is already recorded in {path}; "
                "stop it with `autonoc lab down --backend netns`"
            )
        reg = cls(path, {**meta, "owner_pid": os.getpid(), "created": [], "faults": []})
        reg.save()
        return reg

    @classmethod
    def load(cls, path: Path) -> Registry | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LabError(f"{path}: unreadable namespace-lab registry ({exc})") from exc
        return cls(path, data)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".registry.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.data, f, indent=1)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def record(self, kind: str, **fields: Any) -> None:
        """Write down a resource about to be created (netns, link, dir, proc)."""
        self.data["created"].append({"kind": kind, **fields})
        self.save()

    def resources(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.data["created"] if r["kind"] == kind]

    def namespaces(self) -> list[str]:
        return [r["name"] for r in self.resources("netns")]

    def links(self) -> list[str]:
        return [r["name"] for r in self.resources("link")]


def _netns_pids(name: str) -> list[int]:
    proc = ip("netns", "pids", name, check=False)
    return [int(x) for x in proc.stdout.split() if x.isdigit()]


def _end_processes(pids: Sequence[int], grace: float = 3.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _alive(p)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our own child: reap it
        return False
    return True


def teardown(reg: Registry) -> list[str]:
    """Undo everything ``reg`` records, newest first; returns what could not be removed.

    The registry file is removed only when nothing is left.
    """
    left: list[str] = []
    for name in reversed(reg.namespaces()):
        if netns_exists(name):
            _end_processes(_netns_pids(name))
    procs = [int(r["pid"]) for r in reg.resources("proc") if _alive(int(r["pid"]))]
    _end_processes([p for p in procs if _same_process(p, reg)])
    for name in reversed(reg.namespaces()):
        if netns_exists(name):
            done = ip("netns", "del", name, check=False)
            if done.returncode != 0 and netns_exists(name):
                left.append(f"namespace {name}: {done.stderr.strip()}")
    for name in reversed(reg.links()):
        if link_exists(name):
            ip("link", "del", "dev", name, check=False)
            if link_exists(name):
                left.append(f"link {name}")
    for r in reg.resources("file"):
        Path(r["path"]).unlink(missing_ok=True)
    for r in reversed(reg.resources("dir")):
        shutil.rmtree(r["path"], ignore_errors=True)
        if Path(r["path"]).exists():
            left.append(f"directory {r['path']}")
    if left:
        log.warning("netns_teardown_incomplete", left=left)
        return left
    reg.path.unlink(missing_ok=True)
    log.info("netns_lab_removed", lab=reg.data.get("lab"))
    return left


def _same_process(pid: int, reg: Registry) -> bool:
    """The recorded pid still runs what we started (not a reused pid)."""
    for r in reg.resources("proc"):
        if int(r["pid"]) == pid:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                return False
            return os.path.basename(cmd) == os.path.basename(str(r.get("argv0", "")))
    return False
