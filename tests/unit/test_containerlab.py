"""The containerlab topology, its import from a recorded topology-data.json, and the wrapper."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from autonoc.core.errors import LabError
from collectors.inventory import import_containerlab
from lab import containerlab
from lab.containerlab import DEFAULT_TOPOLOGY, lab_name, topology_data_path

DATA = Path(__file__).parents[1] / "fixtures" / "containerlab" / "topology-data.json"


def test_topology_file_is_consistent() -> None:
    topo = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
    nodes = topo["topology"]["nodes"]
    assert {n: v["kind"] for n, v in nodes.items()} == {
        "srl1": "nokia_srlinux",
        "srl2": "nokia_srlinux",
        "frr1": "linux",
        "frr2": "linux",
    }
    for node in nodes.values():
        files = [node.get("startup-config")] + [b.split(":")[0] for b in node.get("binds", [])]
        for f in filter(None, files):
            assert (DEFAULT_TOPOLOGY.parent / f).is_file(), f
    for link in topo["topology"]["links"]:
        for end in link["endpoints"]:
            assert end.split(":")[0] in nodes
    srl = (DEFAULT_TOPOLOGY.parent / "configs" / "srl1.cfg").read_text()
    assert "community autonoc-lab" in srl and "netconf-server instance mgmt" in srl
    assert lab_name(DEFAULT_TOPOLOGY) == "autonoc"
    assert topology_data_path(DEFAULT_TOPOLOGY).parts[-2:] == ("clab-autonoc", "topology-data.json")


def test_import_of_the_recorded_topology_data() -> None:
    inv = import_containerlab(DATA, snmp_community="autonoc-lab")
    assert [(d.name, d.platform, d.mgmt.host) for d in inv.devices] == [
        ("srl1", "srlinux", "172.20.30.2"),
        ("srl2", "srlinux", "172.20.30.3"),
        ("frr1", "frr", "172.20.30.4"),
        ("frr2", "frr", "172.20.30.5"),
    ]
    assert {d.site for d in inv.devices} == {"autonoc"}
    ends = [(str(link.a), str(link.b)) for link in inv.links]
    assert ends[0] == ("srl1:ethernet-1/1", "srl2:ethernet-1/1")  # SR Linux port names
    assert ends[2] == ("frr1:eth2", "frr2:eth1")


def test_deploy_without_containerlab_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(LabError, match=r"missing containerlab .*Docker engine"):
        containerlab.deploy(DEFAULT_TOPOLOGY, tmp_path / "inventory.yaml")
    with pytest.raises(LabError, match="--backend netns"):
        containerlab.destroy(DEFAULT_TOPOLOGY)
