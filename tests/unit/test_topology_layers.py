"""The layered topology: what rides on what, blast radius, and the lab's inventory layers."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agents.topology import Kind, Layer, Topology
from autonoc.core.inventory import Endpoint, Inventory, Link, Wavelength
from collectors.inventory import dump_inventory, load_inventory
from lab.network import LabNetwork
from tests.unit import rca_world as w


@pytest.fixture(scope="module")
def topo() -> Topology:
    return Topology.from_inventory(w.inventory())


def test_components_are_typed_by_layer(topo: Topology) -> None:
    expected = {
        "fibre:roadm-a:roadm-b": (Kind.FIBRE_PAIR, Layer.FIBRE),
        "span:roadm-a:roadm-b": (Kind.SPAN, Layer.FIBRE),
        "amp-a-b": (Kind.AMPLIFIER, Layer.AMPLIFIER),
        "roadm-b:deg-1": (Kind.DEGREE, Layer.AMPLIFIER),
        "xp-a1:line1": (Kind.LINE_PORT, Layer.LINE_PORT),
        "och-1": (Kind.CHANNEL, Layer.CHANNEL),
        "pe1:eth1": (Kind.INTERFACE, Layer.INTERFACE),
        "bgp:pe1:10.0.0.2": (Kind.BGP_SESSION, Layer.BGP),
        "svc:pe1->pe2": (Kind.SERVICE, Layer.SERVICE),
        "p1": (Kind.DEVICE, Layer.DEVICE),
    }
    for cid, (kind, layer) in expected.items():
        component = topo.component(cid)
        assert (component.kind, component.layer) == (kind, layer), cid
    assert [c.id for c in topo.components(Layer.CHANNEL)] == ["och-1", "och-2", "och-3"]


def test_parents_are_what_a_component_rides_on(topo: Topology) -> None:
    assert topo.parents("span:roadm-a:roadm-b") == ("fibre:roadm-a:roadm-b",)
    assert topo.parents("amp-a-b") == ("span:roadm-a:roadm-b",)
    assert topo.parents("roadm-b:deg-1") == ("amp-a-b",)
    assert set(topo.parents("och-3")) == {
        "xp-a2:line1", "xp-c2:line1",
        "span:roadm-a:roadm-b", "amp-a-b", "span:roadm-b:roadm-c", "amp-b-c",
        "span:roadm-c:roadm-b", "amp-c-b", "span:roadm-b:roadm-a", "amp-b-a",
    }  # fmt: skip
    assert topo.parents("pe1:eth2") == ("och-3",)
    assert topo.parents("pe1:eth3") == ()  # a patch cord rides nothing
    assert topo.parents("bgp:pe1:10.0.0.14") == ("pe1:eth3", "p1:eth3")


def test_children_are_what_rides_on_a_component(topo: Topology) -> None:
    assert topo.children("fibre:roadm-b:roadm-c") == (
        "span:roadm-b:roadm-c",
        "span:roadm-c:roadm-b",
    )
    assert set(topo.children("span:roadm-b:roadm-c")) == {"amp-b-c", "och-2", "och-3"}
    assert topo.children("och-2") == ("p1:eth2", "pe2:eth1")
    assert set(topo.children("pe1:eth3")) == {"bgp:pe1:10.0.0.14", "bgp:p1:10.0.0.13"}
    # Services ride the sessions of their shortest paths: pe1->p1 over the two direct links.
    assert "svc:pe1->p1" in topo.children("bgp:pe1:10.0.0.14")
    assert "svc:pe1->p1" in topo.children("bgp:pe1:10.0.0.2")
    assert "svc:pe1->p1" not in topo.children("bgp:pe1:10.0.0.10")


def test_blast_radius_of_a_span_and_of_a_port(topo: Topology) -> None:
    assert topo.devices_touched("span:roadm-a:roadm-b") == (
        "amp-a-b", "p1", "pe1", "pe2", "roadm-a", "roadm-b", "xp-a1", "xp-a2", "xp-b1", "xp-c2",
    )  # fmt: skip
    assert topo.services_over("span:roadm-a:roadm-b") == (
        "svc:pe1->p1",
        "svc:pe1->pe2",
        "svc:pe2->pe1",
    )
    assert topo.devices_touched("pe1:eth3") == ("p1", "pe1")
    assert topo.services_over("pe1:eth3") == ("svc:pe1->p1",)
    assert topo.services_over("p1:eth2") == ()  # pe1->pe2 goes direct, not via p1


def test_causes_follow_the_light_into_a_receiver(topo: Topology) -> None:
    # xp-c2 receives och-3 from xp-a2 over a->b->c; the way back is not its problem.
    assert topo.feeds("xp-c2:line1") == (
        "xp-a2:line1", "span:roadm-a:roadm-b", "amp-a-b", "span:roadm-b:roadm-c", "amp-b-c",
    )  # fmt: skip
    causes = topo.causes("xp-c2:line1")
    assert {"span:roadm-a:roadm-b", "fibre:roadm-a:roadm-b", "amp-b-c", "xp-a2:line1"} <= causes
    assert "span:roadm-b:roadm-a" not in causes and "amp-c-b" not in causes
    assert "och-1" in topo.causes("bgp:p1:10.0.0.1")  # a session rides its link's wavelength
    assert "span:roadm-a:roadm-b" in topo.effects("fibre:roadm-a:roadm-b")
    assert "svc:pe1->pe2" in topo.effects("amp-b-c")


def test_telemetry_keys_name_components(topo: Topology) -> None:
    assert topo.component_for("pe1", "eth1").id == "pe1:eth1"
    assert topo.component_for("pe1", "10.0.0.2").id == "bgp:pe1:10.0.0.2"
    assert topo.component_for("pe1", "").id == "pe1"
    assert topo.component_for("xp-a1", "line1").id == "xp-a1:line1"
    assert topo.component_for("xp-a1", "client1").id == "xp-a1:line1"
    assert topo.component_for("amp-a-b", "edfa").id == "amp-a-b"
    assert topo.component_for("roadm-b", "deg-1").id == "roadm-b:deg-1"
    access = topo.component_for("pe1", "eth9")  # a port no link names
    assert (access.id, access.kind, topo.parents(access.id)) == ("pe1:eth9", Kind.INTERFACE, ())
    assert topo.peer("pe1:eth1") == "p1:eth1" and topo.peer("bgp:pe1:10.0.0.2") == "bgp:p1:10.0.0.1"
    assert topo.is_a_end("pe1:eth1") and not topo.is_a_end("p1:eth1")
    with pytest.raises(KeyError):
        topo.component_for("nope", "eth1")
    with pytest.raises(KeyError):
        topo.parents("span:roadm-x:roadm-y")


def test_an_inventory_without_layers_still_gives_interfaces() -> None:
    base = w.inventory()
    plain = Inventory(
        devices=base.devices,
        links=tuple(link.model_copy(update={"wavelength": None}) for link in base.links),
    )
    topo = Topology.from_inventory(plain)
    assert topo.parents("pe1:eth1") == ()
    assert topo.peer("pe1:eth1") == "p1:eth1"
    assert topo.components(Layer.CHANNEL) == ()


def test_the_inventory_refuses_layers_that_do_not_add_up() -> None:
    base = w.inventory()
    bad_wave = Wavelength(
        name="och-9",
        a=Endpoint(device="xp-a1", port="line1"),
        b=Endpoint(device="xp-b1", port="line1"),
        path=("span:roadm-a:roadm-z",),
    )
    with pytest.raises(ValidationError, match="roadm-z"):
        base.model_copy(update={"wavelengths": (*base.wavelengths, bad_wave)}).model_validate(
            base.model_copy(update={"wavelengths": (*base.wavelengths, bad_wave)}).model_dump()
        )
    bad_link = Link(
        a=Endpoint(device="pe1", port="eth7"),
        b=Endpoint(device="p1", port="eth7"),
        wavelength="och-9",
    )
    with pytest.raises(ValidationError, match="och-9"):
        Inventory.model_validate(
            base.model_copy(update={"links": (*base.links, bad_link)}).model_dump()
        )


def test_the_lab_writes_every_layer_and_it_round_trips(tmp_path: Path) -> None:
    metro = LabNetwork.preset("metro-ring")
    inventory = metro.to_inventory("127.0.0.1", dict.fromkeys(metro.device_names, 161), "c")
    assert (len(inventory.spans), len(inventory.wavelengths)) == (8, 8)
    assert len(inventory.bgp_sessions) == 20 and len(inventory.services) == 12
    path = tmp_path / "inventory.yaml"
    dump_inventory(inventory, path, reveal_secrets=True)
    loaded = load_inventory(path)
    assert loaded.spans == inventory.spans and loaded.wavelengths == inventory.wavelengths
    topo = Topology.from_inventory(loaded)
    # The lab's own ground truth agrees: which wavelength each link rides, which spans it crosses.
    for a, _b in metro.links:
        assert topo.parents(f"{a[0]}:{a[1]}") == tuple(
            [metro.link_wavelength(*a)] if metro.link_wavelength(*a) else []
        )
    crossing = {"och-1", "och-4", "och-6"}
    assert set(metro.optical.channels_on_span("span:roadm-a:roadm-b")) == crossing
    assert {c for c in topo.children("span:roadm-a:roadm-b") if c.startswith("och")} == crossing
    assert {"p1", "p2", "pe2", "pe3", "xp-a1", "xp-c1"} <= set(
        topo.devices_touched("span:roadm-a:roadm-b")
    )
    assert topo.component_for("pe1", "10.0.0.10").id == "bgp:pe1:10.0.0.10"
    assert topo.parents("bgp:pe1:10.0.0.10") == ("pe1:eth1", "p1:eth3")
