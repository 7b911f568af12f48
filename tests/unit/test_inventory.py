from __future__ import annotations

import json
import stat
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from autonoc.core.errors import InventoryError
from autonoc.core.inventory import NetconfCredentials, Role, SnmpV2c
from collectors.inventory import REDACTED, dump_inventory, import_containerlab, load_inventory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLAB = FIXTURES / "clab-topology-data.json"

GOOD = """\
devices:
  - name: pe1
    role: router
    vendor: autonoc-lab
    mgmt: {host: 127.0.0.1, snmp_port: 16101}
    snmp: {version: v2c, community: s3cret-ro, write_community: s3cret-rw}
    tags: [pe]
  - name: pe2
    role: router
    mgmt:
      host: 127.0.0.1
      snmp_port: 16102
    snmp:
      version: v3
      user: noc
      auth_protocol: sha256
      auth_key: auth-pass-phrase
      priv_protocol: aes
      priv_key: priv-pass-phrase
links:
  - kind: ip
    a: {device: pe1, port: eth1}
    b: {device: pe2, port: eth1}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _problems(path: Path) -> list[tuple[int | None, str, str]]:
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert info.value.path == path
    assert str(path) in str(info.value)
    return info.value.problems


# load_inventory ------------------------------------------------------------


def test_loads_a_valid_inventory(tmp_path: Path) -> None:
    inv = load_inventory(_write(tmp_path, GOOD))
    assert [d.name for d in inv.devices] == ["pe1", "pe2"]
    assert inv.device("pe1").mgmt.snmp_port == 16101
    assert inv.peer("pe1", "eth1") is not None


def test_empty_file_is_an_empty_inventory(tmp_path: Path) -> None:
    assert load_inventory(_write(tmp_path, "")).devices == ()


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "devices:\n  - name: pe1\n    role: [router\n    mgmt: {host: x}\n")
    [(line, field, message)] = _problems(path)
    assert line in (3, 4, 5)
    assert field == ""
    assert "YAML syntax error" in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    [(line, _, message)] = _problems(_write(tmp_path, "- name: pe1\n- name: pe2\n"))
    assert line == 1
    assert "mapping" in message and "list" in message


def test_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        devices:
          - name: pe1
            role: router
            mgmt: {host: 10.0.0.1}
          - name: pe2
            role: router
            mgmt:
              snmp_port: 161
        """,
    )
    [(line, field, message)] = _problems(path)
    assert field == "devices[1].mgmt.host"
    assert line == 7
    assert "missing" in message


def test_extra_field_and_bad_enum_are_both_reported_with_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        devices:
          - name: pe1
            role: routr
            mgmt: {host: 10.0.0.1}
            colour: blue
        """,
    )
    problems = _problems(path)
    assert [(p[0], p[1]) for p in problems] == [(3, "devices[0].role"), (5, "devices[0].colour")]
    assert "'router'" in problems[0][2] and "'routr'" in problems[0][2]
    assert "unknown field" in problems[1][2]


def test_duplicate_device_name_points_at_second_occurrence(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        devices:
          - name: pe1
            role: router
            mgmt: {host: 10.0.0.1}
          - name: pe1
            role: router
            mgmt: {host: 10.0.0.2}
        """,
    )
    [(line, field, message)] = _problems(path)
    assert (line, field) == (5, "devices[1].name")
    assert "appears twice" in message


def test_link_to_unknown_device(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        devices:
          - name: pe1
            role: router
            mgmt: {host: 10.0.0.1}
        links:
          - a: {device: pe1, port: eth1}
            b: {device: pe9, port: eth1}
        """,
    )
    [(line, field, message)] = _problems(path)
    assert (line, field) == (7, "links[0].b.device")
    assert "pe9" in message


def test_duplicate_mapping_key_is_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        devices:
          - name: pe1
            role: router
            role: switch
            mgmt: {host: 10.0.0.1}
        """,
    )
    [(line, field, _)] = _problems(path)
    assert (line, field) == (4, "devices[0].role")


def test_errors_never_echo_secrets(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        devices:
          - name: pe1
            role: router
            mgmt: {host: 10.0.0.1}
            snmp: {version: v3, user: noc, auth_key: hunter2-auth}
          - name: pe2
            role: router
            mgmt: {host: 10.0.0.2}
            snmp: {version: v2c, community: 12345, extra: hunter2-extra}
        """,
    )
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    text = str(info.value)
    assert "hunter2" not in text and "12345" not in text
    # The v3 model check points at the snmp line; pydantic's "v3" tag is not in the path.
    assert info.value.problems[0][:2] == (5, "devices[0].snmp")
    assert [p[1] for p in info.value.problems[1:]] == [
        "devices[1].snmp.community",
        "devices[1].snmp.extra",
    ]


def test_yaml_syntax_error_does_not_quote_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "devices:\n  - snmp: {community: 'hunter2\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert "hunter2" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    [(line, _, message)] = _problems(tmp_path / "nope.yaml")
    assert line is None
    assert "no such file" in message


def test_unreadable_encoding(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_bytes(b"devices:\n  - name: \xff\xfe\n")
    [(_, _, message)] = _problems(path)
    assert "UTF-8" in message


# import_containerlab -------------------------------------------------------


def test_import_containerlab_fixture() -> None:
    creds = NetconfCredentials(username="admin", password="NokiaSrl1!", hostkey_verify=False)
    inv = import_containerlab(CLAB, snmp_community="lab-ro", netconf=creds)
    by_name = {d.name: d for d in inv.devices}
    assert set(by_name) == {"srl1", "srl2", "frr1"}
    srl1, srl2, frr1 = by_name["srl1"], by_name["srl2"], by_name["frr1"]
    assert (srl1.vendor, srl1.platform, srl1.role) == ("nokia", "srlinux", Role.ROUTER)
    assert srl2.role == Role.SWITCH  # from the autonoc-role label
    assert (frr1.vendor, frr1.platform) == ("frr", "frr")
    assert srl1.mgmt.host == "172.20.20.2"
    assert srl1.site == "autonoc-mini"
    assert isinstance(srl1.snmp, SnmpV2c)
    assert srl1.snmp.community.get_secret_value() == "lab-ro"
    assert srl1.netconf == creds
    ends = {(str(link.a), str(link.b)) for link in inv.links}
    assert ends == {
        ("srl1:ethernet-1/1", "srl2:ethernet-1/1"),
        ("srl2:ethernet-1/2", "frr1:eth1"),
    }
    assert all(link.kind == "ip" for link in inv.links)


def test_import_containerlab_without_credentials() -> None:
    inv = import_containerlab(CLAB)
    assert all(d.snmp is None and d.netconf is None for d in inv.devices)


def test_import_containerlab_old_link_format(tmp_path: Path) -> None:
    data = json.loads(CLAB.read_text())
    data["links"] = [link["endpoints"] for link in data["links"]]
    old = tmp_path / "topology-data.json"
    old.write_text(json.dumps(data))
    assert len(import_containerlab(old).links) == 2


def test_import_containerlab_bad_role_label(tmp_path: Path) -> None:
    data: dict[str, Any] = json.loads(CLAB.read_text())
    data["nodes"]["frr1"]["labels"]["autonoc-role"] = "toaster"
    bad = tmp_path / "topology-data.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(InventoryError) as info:
        import_containerlab(bad)
    [(_, field, message)] = info.value.problems
    assert field == "nodes.frr1.labels.autonoc-role"
    assert "toaster" in message


@pytest.mark.parametrize(
    ("content", "expect"),
    [(None, "no such file"), ("{\n  nope", "not valid JSON"), ("[]", "not containerlab")],
)
def test_import_containerlab_errors(tmp_path: Path, content: str | None, expect: str) -> None:
    path = tmp_path / "topology-data.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InventoryError) as info:
        import_containerlab(path)
    assert info.value.path == path
    assert expect in str(info.value)


# dump_inventory ------------------------------------------------------------


def test_dump_redacts_secrets_by_default(tmp_path: Path) -> None:
    inv = load_inventory(_write(tmp_path, GOOD))
    out = tmp_path / "out.yaml"
    dump_inventory(inv, out)
    text = out.read_text()
    for secret in ("s3cret", "auth-pass-phrase", "priv-pass-phrase"):
        assert secret not in text
    data = yaml.safe_load(text)
    assert data["devices"][0]["snmp"]["community"] == REDACTED
    assert data["devices"][1]["snmp"]["priv_key"] == REDACTED
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_dump_reveal_round_trips(tmp_path: Path) -> None:
    inv = load_inventory(_write(tmp_path, GOOD))
    out = tmp_path / "out.yaml"
    dump_inventory(inv, out, reveal_secrets=True)
    assert load_inventory(out) == inv
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_dump_clab_import_loads_back(tmp_path: Path) -> None:
    inv = import_containerlab(CLAB, snmp_community="lab-ro")
    out = tmp_path / "inventory.yaml"
    dump_inventory(inv, out, reveal_secrets=True)
    assert load_inventory(out) == inv
