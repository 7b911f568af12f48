"""The command line as a person uses it: help, exit codes, messages, --json."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from autonoc.cli import app

runner = CliRunner()

GOOD = """\
devices:
  - name: pe1
    role: router
    mgmt: {host: 127.0.0.1, snmp_port: 16101}
    snmp: {version: v2c, community: hunter2}
  - name: p1
    role: router
    mgmt: {host: 127.0.0.1, snmp_port: 16102}
links:
  - a: {device: pe1, port: eth1}
    b: {device: p1, port: eth1}
"""

BAD_ROLE = GOOD.replace(
    "role: router\n    mgmt: {host: 127.0.0.1, snmp_port: 16102}",
    "role: toaster\n    mgmt: {host: 127.0.0.1, snmp_port: 16102}",
)


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "doctor", "inventory", "incidents", "worker"):
        assert command in result.output


def test_validate_accepts_a_good_inventory(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(GOOD)
    result = runner.invoke(app, ["inventory", "validate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "valid": True,
        "path": str(path),
        "devices": 2,
        "links": 1,
        "roles": ["router"],
    }


def test_validate_names_file_line_and_field_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(BAD_ROLE)
    result = runner.invoke(app, ["inventory", "validate", str(path)])
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert f"{path} line 7" in message
    assert "devices[1].role" in message


def test_validate_json_reports_problems_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(GOOD.replace("community: hunter2", "community: hunter2, extra: 1"))
    result = runner.invoke(app, ["inventory", "validate", str(path), "--json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["problems"][0]["line"] == 5
    assert "hunter2" not in result.output


def test_missing_inventory_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["inventory", "validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.stderr


def test_bad_setting_names_the_variable(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AUTONOC_SNMP__TIMEOUT", "-1")
    result = runner.invoke(app, ["incidents", "list"])
    assert result.exit_code == 2
    assert "AUTONOC_SNMP__TIMEOUT" in result.stderr
