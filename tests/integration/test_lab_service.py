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
    return subprocess.run(
        [sys.executable, "-m", "autonoc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def lab_up(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTONOC_")}
    env["AUTONOC_HOME"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "autonoc", "lab", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
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
    assert len(devices) == 34  # metro-ring: 6 routers, 4 ROADMs, 8 EDFAs, 16 transponders
    assert {"pe1", "p2", "roadm-a", "amp-a-b", "xp-a1"} <= set(devices)
    assert devices["xp-a1"]["role"] == "transponder"
    assert all(d["netconf"] and d["snmp"]["community"] for d in devices.values())
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
    with manager.connect(
        host=nc["host"],
        port=nc["port"],
        username=nc["username"],
        password=nc["password"],
        hostkey_verify=False,
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    ) as session:
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


def _snmp_get(status: dict, device: str, oid: str) -> str:  # type: ignore[type-arg]
    inventory = load_inventory(Path(status["inventory"]))

    async def get() -> str:
        client = SnmpClient(SnmpSettings(timeout=1.0, retries=1))
        try:
            values = await client.get(inventory.device(device), [oid])
            return str(next(iter(values.values())))
        finally:
            client.close()

    return asyncio.run(get())


def test_detached_lab_takes_faults_from_the_cli(tmp_path: Path) -> None:
    up = _autonoc(["lab", "up", "--detach", "--topology", "ring4", "--speed", "5"], tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        assert "background" in up.stdout
        status = json.loads(_autonoc(["lab", "status", "--json"], tmp_path).stdout)
        assert status["speed"] == 5.0 and status["topology"] == "ring4"
        pe1 = {d["name"]: d for d in status["devices"]}["pe1"]
        assert pe1["netconf"]["port"] and pe1["snmp"]["port"]
        oper = "1.3.6.1.2.1.2.2.1.8.2"  # ifOperStatus of pe1's eth1 (ifIndex 2; lo0 is 1)
        assert _snmp_get(status, "pe1", oper) == "1"

        run = _autonoc(
            ["lab", "fault", "inject", "link_down", "--target", "pe1:eth1", "--json"], tmp_path
        )
        assert run.returncode == 0, run.stderr
        fault = json.loads(run.stdout)
        assert fault["kind"] == "link_down" and fault["present"] is True
        assert _snmp_get(status, "pe1", oper) == "2"
        listed = json.loads(_autonoc(["lab", "fault", "list", "--json"], tmp_path).stdout)
        assert [f["id"] for f in listed] == [fault["id"]]

        bad = _autonoc(["lab", "fault", "inject", "link_down", "--target", "pe1:eth9"], tmp_path)
        assert bad.returncode == 1 and "has no interface 'eth9'" in bad.stderr
        bad = _autonoc(
            ["lab", "fault", "inject", "span_loss", "--target", "x", "--param", "db"], tmp_path
        )
        assert bad.returncode == 1 and "key=number" in bad.stderr

        cleared = _autonoc(["lab", "fault", "clear", "--json"], tmp_path)
        assert [f["id"] for f in json.loads(cleared.stdout)] == [fault["id"]]
        assert _snmp_get(status, "pe1", oper) == "1"
    finally:
        down = _autonoc(["lab", "down"], tmp_path)
    assert down.returncode == 0 and "lab stopped" in down.stdout
    assert not (tmp_path / "lab" / "control.sock").exists()
