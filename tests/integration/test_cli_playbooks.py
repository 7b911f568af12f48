"""``autonoc playbooks|config|tickets`` against the simulator over real NETCONF and SNMP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from autonoc.cli import app
from lab.faults import FaultInjector
from lab.network import LabNetwork
from lab.runner import LabRunner

runner = CliRunner()


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRunner]:
    with LabRunner(LabNetwork.preset("metro-ring"), netconf=True) as r:
        yield r


@pytest.fixture
def env(
    lab: LabRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, external_redis_url: str
) -> Path:
    inventory = tmp_path / "inventory.yaml"
    lab.write_inventory(inventory)
    monkeypatch.setenv("AUTONOC_HOME", str(tmp_path))
    monkeypatch.setenv("AUTONOC_INVENTORY", str(inventory))
    monkeypatch.setenv("AUTONOC_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("AUTONOC_REDIS_URL", external_redis_url)
    return inventory


def _json(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_and_show(env: Path) -> None:
    names = {p["name"] for p in _json(["playbooks", "list", "--json"])}
    assert {"drain-link", "config-rollback", "protection-switch", "restart-process"} <= names
    shown = _json(["playbooks", "show", "raise-amplifier-gain", "--json"])
    assert shown["params"]["gain_change_db"]["maximum"] == 3


def test_dry_run_then_apply_needs_yes_then_runs(env: Path, lab: LabRunner) -> None:
    net = lab.network
    before = net.interface("pe1", "eth1").igp_metric
    args = ["playbooks", "run", "drain-link", "-d", "pe1", "-t", "eth1"]
    dry = _json([*args, "--dry-run", "--json"])
    assert any("16777214" in line for line in dry["diff"])
    assert net.interface("pe1", "eth1").igp_metric == before

    refused = runner.invoke(app, [*args, "--apply"])
    assert refused.exit_code != 0 and "--yes" in refused.output
    assert net.interface("pe1", "eth1").igp_metric == before

    done = _json([*args, "-p", "verify_within_s=20", "--apply", "--yes", "--json"])
    assert done["ok"] and done["changed"]
    assert net.interface("pe1", "eth1").igp_metric == 16777214

    undo = _json(
        [
            *["playbooks", "run", "undrain-link", "-d", "pe1", "-t", "eth1"],
            *f"-p metric={before} -p min_traffic_bps=0 --apply --yes --json".split(),
        ]
    )
    assert undo["ok"]
    assert net.interface("pe1", "eth1").igp_metric == before

    tail = runner.invoke(app, ["audit", "tail", "-n", "200", "--json"])
    actions = {json.loads(line)["action"] for line in tail.stdout.splitlines() if line.strip()}
    assert {"policy_decision", "approved", "netconf_commit", "playbook_finished"} <= actions


def test_out_of_bounds_parameter_is_refused_with_a_clear_error(env: Path) -> None:
    result = runner.invoke(
        app,
        [
            "playbooks",
            "run",
            "raise-amplifier-gain",
            "-d",
            "amp-a-b",
            "-p",
            "gain_change_db=6",
            "-p",
            "min_output_dbm=0",
            "--dry-run",
        ],
    )
    assert result.exit_code != 0
    assert "gain_change_db" in result.output and "maximum 3" in result.output


def test_config_backup_and_rollback_of_drift(env: Path, lab: LabRunner) -> None:
    net = lab.network
    rows = _json(["config", "backup", "-d", "pe1", "--good", "--json"])
    assert rows == [{"device": "pe1", "ok": True, "snapshot": 1, "good": True}]
    mtu = net.interface("pe1", "eth1").mtu
    faults = FaultInjector(net)
    faults.inject("config_drift", "pe1:eth1", {"mtu": 1400.0})
    try:
        done = _json(
            [
                "playbooks",
                "run",
                "config-rollback",
                "-d",
                "pe1",
                "-p",
                "interface=eth1",
                "-p",
                "verify_within_s=20",
                "--apply",
                "--yes",
                "--json",
            ]
        )
        assert done["ok"], done
        assert net.interface("pe1", "eth1").mtu == mtu
    finally:
        faults.clear()
