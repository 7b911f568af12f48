"""``autonoc lab up|status|down``: the lab as a long-running service.

``up`` serves every simulated device over SNMP and NETCONF on loopback,
writes the platform's ``inventory.yaml`` and a ``status.json`` that tells any
external tool how to reach each device, opens the control socket (faults and
ground truth), and runs until SIGINT or SIGTERM. ``up --detach`` does the same
in a daemon process and returns once it is serving. Both files hold
credentials, so they are written atomically with mode 0600 and removed on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from autonoc.core.errors import LabError
from autonoc.core.inventory import Inventory, SnmpV2c
from lab.control import ControlServer
from lab.faults import FaultInjector
from lab.network import LabNetwork, SimClock
from lab.runner import LabRunner
from lab.topology import resolve_topology

__all__ = [
    "control_path",
    "lab_dir",
    "read_status",
    "run_lab",
    "start_detached",
    "stop_lab",
]


def lab_dir(home: Path) -> Path:
    return home / "lab"


def control_path(home: Path) -> Path:
    return lab_dir(home) / "control.sock"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 (it holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _status(
    inventory: Inventory, inventory_path: Path, topology: str, speed: float, home: Path
) -> dict[str, Any]:
    devices = []
    for d in inventory.devices:
        snmp: dict[str, Any] = {"host": d.mgmt.host, "port": d.mgmt.snmp_port}
        if isinstance(d.snmp, SnmpV2c):
            snmp |= {"version": d.snmp.version, "community": d.snmp.community.get_secret_value()}
            if d.snmp.write_community is not None:
                snmp["write_community"] = d.snmp.write_community.get_secret_value()
        elif d.snmp is not None:
            snmp |= {
                "version": "v3",
                "user": d.snmp.user,
                "auth_protocol": d.snmp.auth_protocol,
                "auth_key": d.snmp.auth_key.get_secret_value() if d.snmp.auth_key else None,
                "priv_protocol": d.snmp.priv_protocol,
                "priv_key": d.snmp.priv_key.get_secret_value() if d.snmp.priv_key else None,
            }
        netconf = None
        if d.netconf is not None and d.netconf.password is not None:
            netconf = {
                "host": d.mgmt.host,
                "port": d.mgmt.netconf_port,
                "username": d.netconf.username,
                "password": d.netconf.password.get_secret_value(),
            }
        devices.append(
            {
                "name": d.name,
                "role": d.role.value,
                "site": d.site,
                "inventory": str(inventory_path),
                "snmp": snmp,
                "netconf": netconf,
            }
        )
    return {
        "pid": os.getpid(),
        "topology": topology,
        "preset": topology,
        "speed": speed,
        "started_at": time.time(),
        "inventory": str(inventory_path),
        "control": str(control_path(home)),
        "devices": devices,
    }


def run_lab(
    home: Path,
    *,
    topology: str | None = "metro-ring",
    devices: int | None = None,
    speed: float = 1.0,
    host: str = "127.0.0.1",
    snmp_version: Literal["v2c", "v3"] = "v2c",
    netconf: bool = True,
    trap_target: tuple[str, int] | None = None,
    seed: int = 7,
    on_ready: Callable[[dict[str, Any]], None] = lambda status: None,
) -> None:
    """Serve the lab until SIGINT or SIGTERM; files are removed on the way out.

    Raises:
        LabError: another lab is already running for this home, a bad
            topology, or a server cannot start.
    """
    existing = read_status(home)
    if existing is not None:
        raise LabError(
            f"a lab is already running for {home} (pid {existing['pid']}); "
            "stop it with `autonoc lab down`"
        )
    topo = resolve_topology(topology, devices, seed)
    directory = lab_dir(home)
    inventory_path = directory / "inventory.yaml"
    status_path = directory / "status.json"
    clock = SimClock(speed=speed)
    network = LabNetwork(topo, clock=clock)
    faults = FaultInjector(network)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    control: ControlServer | None = None
    try:
        with LabRunner(
            network,
            host=host,
            snmp_version=snmp_version,
            netconf=netconf,
            trap_target=trap_target,
        ) as lab:
            inventory = lab.inventory
            lab.write_inventory(inventory_path)
            control = ControlServer(control_path(home), network, faults, clock)
            status = _status(inventory, inventory_path, topo.name, speed, home)
            _write_private(status_path, json.dumps(status, indent=2))
            on_ready(status)
            while not stop.wait(0.5):
                pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if control is not None:
            control.close()
        status_path.unlink(missing_ok=True)
        inventory_path.unlink(missing_ok=True)


def start_detached(home: Path, args: list[str], timeout: float = 120.0) -> dict[str, Any]:
    """Run ``autonoc lab up ARGS`` as a daemon and return its status once it serves.

    Its output goes to ``AUTONOC_HOME/lab/lab.log``.

    Raises:
        LabError: it exited or did not come up within ``timeout`` seconds.
    """
    existing = read_status(home)
    if existing is not None:
        raise LabError(
            f"a lab is already running for {home} (pid {existing['pid']}); "
            "stop it with `autonoc lab down`"
        )
    directory = lab_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "lab.log"
    env = {**os.environ, "AUTONOC_HOME": str(home)}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "autonoc", "lab", "up", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the shell that started it
            env=env,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_status(home)
        if status is not None and int(status["pid"]) == proc.pid:
            return status
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise LabError(
                f"the lab exited with status {proc.returncode}: " + " | ".join(tail)
                if tail
                else f"the lab exited with status {proc.returncode}; see {log_path}"
            )
        time.sleep(0.2)
    proc.terminate()
    raise LabError(f"the lab did not come up within {timeout:.0f} s; see {log_path}")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; an exited child its parent has not reaped (zombie) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rpartition(")")[2].split()[0] != "Z"


def read_status(home: Path) -> dict[str, Any] | None:
    """The running lab's status, or None when none runs (a stale file is removed)."""
    path = lab_dir(home) / "status.json"
    try:
        status: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabError(f"{path}: unreadable lab status ({exc}); remove it if no lab runs") from exc
    if not _alive(int(status["pid"])):
        path.unlink(missing_ok=True)  # left by a lab that was killed hard
        return None
    return status


def stop_lab(home: Path, timeout: float = 15.0) -> bool:
    """Ask the running lab to stop and wait for it; False when none was running."""
    status = read_status(home)
    if status is None:
        return False
    pid = int(status["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    raise LabError(f"the lab (pid {pid}) did not stop within {timeout:.0f} s")
