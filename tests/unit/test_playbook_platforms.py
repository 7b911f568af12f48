"""Platform data: leaf paths (edit, filter, read back), placeholders, and bad files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from lxml import etree
from pydantic import SecretStr

from autonoc.core.errors import PlaybookValidationError
from autonoc.core.inventory import Device, Mgmt, Role, SnmpV2c
from playbooks.platforms import NC_BASE, LeafPath, NetconfLeaf, Platforms, SnmpLeaf

NS = {"oc-if": "http://openconfig.net/yang/interfaces"}
OC_IF = NS["oc-if"]
ENABLED = "/oc-if:interfaces/oc-if:interface[oc-if:name={target}]/oc-if:config/oc-if:enabled"
WHERE = {"target": "eth1", "device": "pe1"}


def _data(*entries: tuple[str, str]) -> etree._Element:
    """A ``<data>`` reply holding interfaces with their enabled leaves."""
    data = etree.Element(f"{{{NC_BASE}}}data")
    interfaces = etree.SubElement(data, f"{{{OC_IF}}}interfaces")
    for name, enabled in entries:
        intf = etree.SubElement(interfaces, f"{{{OC_IF}}}interface")
        etree.SubElement(intf, f"{{{OC_IF}}}name").text = name
        config = etree.SubElement(intf, f"{{{OC_IF}}}config")
        etree.SubElement(config, f"{{{OC_IF}}}enabled").text = enabled
    return data


def test_edit_builds_the_keyed_path_with_the_value() -> None:
    path = LeafPath.parse(ENABLED, NS)
    config = path.edit(WHERE, "true")
    assert config.tag == f"{{{NC_BASE}}}config"
    intf = config.find(f"{{{OC_IF}}}interfaces/{{{OC_IF}}}interface")
    assert intf is not None
    assert intf.findtext(f"{{{OC_IF}}}name") == "eth1"
    assert intf.findtext(f"{{{OC_IF}}}config/{{{OC_IF}}}enabled") == "true"


def test_edit_with_remove_marks_the_leaf() -> None:
    config = LeafPath.parse(ENABLED, NS).edit(WHERE, None, operation="remove")
    leaf = config.find(f".//{{{OC_IF}}}enabled")
    assert leaf is not None and leaf.text is None
    assert leaf.get(f"{{{NC_BASE}}}operation") == "remove"


def test_filter_selects_the_leaf_and_read_finds_it_among_others() -> None:
    path = LeafPath.parse(ENABLED, NS)
    flt = path.filter(WHERE)
    assert flt.tag == f"{{{NC_BASE}}}filter" and flt.get("type") == "subtree"
    assert flt.find(f".//{{{OC_IF}}}enabled") is not None
    reply = _data(("eth0", "true"), ("eth1", "false"), ("eth2", "true"))
    assert path.read(reply, WHERE) == "false"
    assert path.read(reply, {"target": "eth2", "device": "pe1"}) == "true"
    assert path.read(reply, {"target": "eth9", "device": "pe1"}) is None


def test_edit_then_read_round_trips() -> None:
    path = LeafPath.parse(ENABLED, NS)
    edit = path.edit(WHERE, "false")
    data = etree.Element(f"{{{NC_BASE}}}data")
    for child in edit:
        data.append(child)
    assert path.read(data, WHERE) == "false"


def test_placeholders_become_xml_text_never_structure() -> None:
    path = LeafPath.parse(ENABLED, NS)
    nasty = {"target": "eth1]/oc-if:x[<evil/>", "device": "pe1"}
    config = path.edit(nasty, "true")
    names = [n.text for n in config.iter(f"{{{OC_IF}}}name")]
    assert names == ["eth1]/oc-if:x[<evil/>"]
    assert not list(config.iter("evil"))


def test_two_placeholders_in_one_key() -> None:
    ns = {"p": "urn:p"}
    path = LeafPath.parse("/p:components/p:component[p:name={device}:{target}]/p:power", ns)
    assert path.describe({"device": "xp-a1", "target": "line1"}) == (
        "/p:components/p:component[name=xp-a1:line1]/p:power"
    )


def test_an_unresolved_placeholder_is_refused() -> None:
    path = LeafPath.parse("/p:a[p:name={port}]/p:b", {"p": "urn:p"})
    with pytest.raises(PlaybookValidationError, match="unresolved placeholder"):
        path.edit(WHERE, "1")


def test_rpc_puts_the_text_on_the_last_step() -> None:
    ns = {"lab": "urn:lab"}
    rpc = LeafPath.parse("/lab:restart-process/lab:name", ns).rpc(WHERE, "bgpd")
    assert rpc.tag == "{urn:lab}restart-process"
    assert rpc.findtext("{urn:lab}name") == "bgpd"


def test_folded_yaml_whitespace_between_steps_is_ignored() -> None:
    folded = "/oc-if:interfaces\n  /oc-if:interface[oc-if:name={target}]\n  /oc-if:config"
    assert LeafPath.parse(folded, NS) == LeafPath.parse(
        "/oc-if:interfaces/oc-if:interface[oc-if:name={target}]/oc-if:config", NS
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty path"),
        ("/interfaces/interface", "bad step"),
        ("/oc-if:interfaces/x:interface", "prefix 'x'"),
        ("/oc-if:interfaces/oc-if:interface[name=eth1]", "bad predicate"),
        ("/oc-if:interfaces/oc-if:interface[oc-if:name=eth1][junk]", "bad predicate"),
    ],
)
def test_bad_paths_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LeafPath.parse(text, NS)


# ---- platform files ---------------------------------------------------------------------


def _device(platform: str) -> Device:
    return Device(
        name="pe1",
        role=Role.ROUTER,
        platform=platform,
        mgmt=Mgmt(host="127.0.0.1"),
        snmp=SnmpV2c(community=SecretStr("public")),
    )


def test_the_shipped_platform_serves_the_lab_and_renders_interface_enable() -> None:
    platforms = Platforms.load()
    spec = platforms.for_device(_device("lab-router"))
    first, second = spec.renderings("set_interface_enabled")
    assert isinstance(first, NetconfLeaf) and isinstance(second, SnmpLeaf)
    assert second.values == {"true": 1, "false": 2}


def test_an_unknown_platform_says_how_to_add_it() -> None:
    with pytest.raises(PlaybookValidationError, match="no platform data for platform 'vendor-x'"):
        Platforms.load().for_device(_device("vendor-x"))


def _platform_file(directory: Path, text: str, name: str = "p.yaml") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(textwrap.dedent(text), encoding="utf-8")


def test_a_platform_file_with_a_bad_path_names_the_file_and_op(tmp_path: Path) -> None:
    _platform_file(
        tmp_path,
        """\
        name: broken
        matches: [broken]
        namespaces: {t: "urn:t"}
        ops:
          set_interface_enabled:
            - {protocol: netconf, leaf: "/t:a/u:b"}
        """,
    )
    with pytest.raises(PlaybookValidationError, match=r"p\.yaml.*set_interface_enabled"):
        Platforms.load(tmp_path)


def test_a_platform_value_claimed_twice_is_refused(tmp_path: Path) -> None:
    for name in ("one", "two"):
        _platform_file(tmp_path, f"name: {name}\nmatches: [same]\n", f"{name}.yaml")
    with pytest.raises(PlaybookValidationError, match="claimed by both one and two"):
        Platforms.load(tmp_path)


def test_an_extra_directory_adds_platforms(tmp_path: Path) -> None:
    _platform_file(tmp_path, "name: extra\nmatches: [extra-box]\n")
    platforms = Platforms.load(Path(__file__).parents[2] / "playbooks" / "platforms", tmp_path)
    assert platforms.for_device(_device("extra-box")).name == "extra"
    assert platforms.for_device(_device("lab-router")).name == "openconfig"
