"""SR Linux renderings: the edit XML the engine sends, and values read from a recorded reply."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from playbooks.platforms import NetconfLeaf, Platforms, PlatformSpec

REPLY = Path(__file__).parents[1] / "fixtures" / "containerlab" / "srl1-get-config.xml"


@pytest.fixture(scope="module")
def srl() -> PlatformSpec:
    return next(p for p in Platforms.load() if p.name == "srlinux")


def _leaf(srl: PlatformSpec, op: str) -> NetconfLeaf:
    rendering = srl.renderings(op)[0]
    assert isinstance(rendering, NetconfLeaf)
    return rendering


def test_interface_admin_state_edit(srl: PlatformSpec) -> None:
    leaf = _leaf(srl, "set_interface_enabled")
    where = {"target": "ethernet-1/2", "device": "srl1"}
    edit = srl.path(leaf.leaf).edit(where, leaf.values["true"])
    assert edit.tag == "{urn:ietf:params:xml:ns:netconf:base:1.0}config"
    (interface,) = edit
    assert interface.tag == "{urn:nokia.com:srlinux:chassis:interfaces}interface"
    assert [(etree.QName(c).localname, c.text) for c in interface] == [
        ("name", "ethernet-1/2"),
        ("admin-state", "enable"),
    ]
    assert {etree.QName(c).namespace for c in interface} == {
        "urn:nokia.com:srlinux:chassis:interfaces"
    }


def test_isis_metric_edit_names_subinterface_zero(srl: PlatformSpec) -> None:
    path = srl.path(_leaf(srl, "set_igp_metric").leaf)
    edit = path.edit({"target": "ethernet-1/1", "device": "srl1"}, "16777214")
    ns = {
        "i": "urn:nokia.com:srlinux:isis:isis",
        "n": "urn:nokia.com:srlinux:net-inst:network-instance",
    }
    assert edit.xpath("//n:network-instance/n:name/text()", namespaces=ns) == ["default"]
    assert edit.xpath("//i:instance/i:name/text()", namespaces=ns) == ["i1"]
    assert edit.xpath("//i:interface/i:interface-name/text()", namespaces=ns) == ["ethernet-1/1.0"]
    assert edit.xpath("//i:level/i:level-number/text()", namespaces=ns) == ["2"]
    assert edit.xpath("//i:level/i:metric/text()", namespaces=ns) == ["16777214"]


def test_a_target_with_markup_stays_text(srl: PlatformSpec) -> None:
    leaf = _leaf(srl, "set_interface_enabled")
    edit = srl.path(leaf.leaf).edit({"target": "e</name><x/>", "device": "srl1"}, "disable")
    names = edit.xpath("//*[local-name()='name']/text()")
    assert names == ["e</name><x/>"] and not edit.xpath("//*[local-name()='x']")


@pytest.mark.parametrize(
    ("op", "target", "expected"),
    [
        ("set_interface_enabled", "ethernet-1/1", "enable"),
        ("set_interface_enabled", "ethernet-1/2", "disable"),
        ("set_igp_metric", "ethernet-1/1", "10"),
        ("set_igp_metric", "ethernet-1/2", "16777214"),
        ("set_bgp_neighbor_enabled", "10.1.0.1", "enable"),
        ("set_bgp_neighbor_enabled", "10.1.3.0", "disable"),
        ("set_bgp_neighbor_enabled", "10.9.9.9", None),
    ],
)
def test_values_read_from_a_recorded_get_config_reply(
    srl: PlatformSpec, op: str, target: str, expected: str | None
) -> None:
    data = etree.parse(str(REPLY)).getroot()
    path = srl.path(_leaf(srl, op).leaf)
    assert path.read(data, {"target": target, "device": "srl1"}) == expected


def test_the_filter_selects_only_the_leaf(srl: PlatformSpec) -> None:
    path = srl.path(_leaf(srl, "set_bgp_neighbor_enabled").leaf)
    flt = path.filter({"target": "10.1.3.0", "device": "srl1"})
    assert flt.get("type") == "subtree"
    assert flt.xpath("//*[local-name()='peer-address']/text()") == ["10.1.3.0"]
    assert flt.xpath("//*[local-name()='admin-state']") and not flt.xpath(
        "//*[local-name()='admin-state']/text()"
    )
