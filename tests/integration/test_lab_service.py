"""`autonoc lab up | status | down` as an external tool uses it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ncclient import manager

from autonoc.core.settings import SnmpSettings
from collectors.inventory import load_inventory
from collectors.snmp import SnmpClient


def _autonoc(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTONOC_")}
    env["AUTONOC_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "autonoc", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture
def lab_up(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTONOC_")}
    env["AUTONOC_HOME"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "autonoc", "lab", "up"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    status_file = tmp_path / "lab" / "status.json"
    deadline = time.monotonic() + 60
    while not status_file.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "lab up never wrote its status"
        time.sleep(0.2)
    try:
        yield tmp_path, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_status_lists_endpoints_that_answer(lab_up) -> None:  # type: ignore[no-untyped-def]
    home, proc = lab_up
    run = _autonoc(["lab", "status", "--json"], home)
    assert run.returncode == 0, run.stderr
    status = json.loads(run.stdout)
    assert status["running"] is True and status["pid"] == proc.pid
    devices = {d["name"]: d for d in status["devices"]}
    assert set(devices) == {"pe1", "pe2", "p1", "p2"}
    assert (home / "lab" / "status.json").stat().st_mode & 0o777 == 0o600

    inventory = load_inventory(Path(status["inventory"]))
    pe1 = inventory.device("pe1")

    async def sysname() -> str:
        client = SnmpClient(SnmpSettings(timeout=1.0, retries=1))
        try:
            values = await client.get(pe1, ["1.3.6.1.2.1.1.5.0"])
            return str(next(iter(values.values())))
        finally:
            client.close()

    assert asyncio.run(sysname()) == "pe1"

    nc = devices["pe1"]["netconf"]
    with manager.connect(host=nc["host"], port=nc["port"], username=nc["username"],
                         password=nc["password"], hostkey_verify=False, allow_agent=False,
                         look_for_keys=False, timeout=10) as session:
        config = session.get_config(source="running").data_xml
    assert "eth1" in config


def test_down_stops_the_lab_and_removes_its_files(lab_up) -> None:  # type: ignore[no-untyped-def]
    home, proc = lab_up
    run = _autonoc(["lab", "down"], home)
    assert run.returncode == 0, run.stderr
    assert "lab stopped" in run.stdout
    assert proc.wait(timeout=20) == 0
    assert not (home / "lab" / "status.json").exists()
    assert not (home / "lab" / "inventory.yaml").exists()
    after = _autonoc(["lab", "status", "--json"], home)
    assert after.returncode == 1
    assert json.loads(after.stdout) == {"running": False}


def test_a_second_lab_for_the_same_home_is_refused(lab_up) -> None:  # type: ignore[no-untyped-def]
    home, _ = lab_up
    run = _autonoc(["lab", "up"], home)
    assert run.returncode == 1
    assert "already running" in run.stderr
