"""containerlab topologies and the ``--backend containerlab`` wrapper.

``autonoc lab up --backend containerlab --topology FILE.clab.yml`` runs
``containerlab deploy -t FILE`` and then imports the ``topology-data.json``
that containerlab writes into ``clab-<lab>/`` (next to the topology file) as
autonoc's inventory, with the SNMP community and NETCONF credentials the
startup configs in this directory set (``lab/containerlab/autonoc.clab.yml``).
``lab down --backend containerlab --topology FILE`` runs ``containerlab
destroy -t FILE --cleanup``. Both need the ``containerlab`` binary and a
running Docker engine, and say so when either is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import SecretStr

from autonoc.core.errors import LabError
from autonoc.core.inventory import NetconfCredentials
from collectors.inventory import dump_inventory, import_containerlab

__all__ = [
    "DEFAULT_TOPOLOGY",
    "LAB_COMMUNITY",
    "LAB_NETCONF_USER",
    "Deployed",
    "deploy",
    "destroy",
    "lab_name",
    "missing_tools",
    "topology_data_path",
]

DEFAULT_TOPOLOGY = Path(__file__).with_name("autonoc.clab.yml")
#: The SNMPv2c community the startup configs here enable (a lab, not a secret).
LAB_COMMUNITY = "autonoc-lab"
#: SR Linux's default admin account, which its NETCONF server (port 830) accepts.
LAB_NETCONF_USER = ("admin", "NokiaSrl1!")


@dataclass(frozen=True)
class Deployed:
    lab: str
    devices: int
    inventory: Path


def missing_tools() -> list[str]:
    """What is missing to run containerlab here (empty: nothing)."""
    missing = []
    if shutil.which("containerlab") is None:
        missing.append('containerlab (install: bash -c "$(curl -sL https://get.containerlab.dev)")')
    docker_sock = Path(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")[7:])
    if shutil.which("docker") is None or not docker_sock.exists():
        missing.append("a running Docker engine (containerlab runs every node as a container)")
    return missing


def lab_name(topology: Path) -> str:
    """The ``name:`` of a containerlab topology file."""
    try:
        data = yaml.safe_load(Path(topology).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{topology}: cannot read the containerlab topology ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise LabError(f"{topology}: a containerlab topology needs a top-level 'name:'")
    return str(data["name"])


def topology_data_path(topology: Path) -> Path:
    """Where ``containerlab deploy`` writes topology-data.json for ``topology``."""
    return Path(topology).resolve().parent / f"clab-{lab_name(topology)}" / "topology-data.json"


def _run(args: list[str]) -> None:
    missing = missing_tools()
    if missing:
        raise LabError(
            "the containerlab backend cannot run here: missing " + "; ".join(missing)
            + ". Use --backend netns (FRR in namespaces, root) or the simulator instead"
        )  # fmt: skip
    proc = subprocess.run(["containerlab", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise LabError(f"containerlab {' '.join(args)} failed: " + " | ".join(tail))


def deploy(topology: Path, inventory: Path) -> Deployed:
    """``containerlab deploy -t TOPOLOGY``, then write the inventory from its topology-data.

    Raises:
        LabError: containerlab or Docker is missing, or the deploy failed.
        InventoryError: the topology-data.json it wrote cannot be imported.
    """
    name = lab_name(topology)
    _run(["deploy", "-t", str(topology), "--reconfigure"])
    user, password = LAB_NETCONF_USER
    inv = import_containerlab(
        topology_data_path(topology),
        snmp_community=LAB_COMMUNITY,
        netconf=NetconfCredentials(
            username=user, password=SecretStr(password), hostkey_verify=False
        ),
    )
    inventory.parent.mkdir(parents=True, exist_ok=True)
    dump_inventory(inv, inventory, reveal_secrets=True)
    return Deployed(lab=name, devices=len(inv.devices), inventory=inventory)


def destroy(topology: Path) -> None:
    """``containerlab destroy -t TOPOLOGY --cleanup``."""
    lab_name(topology)
    _run(["destroy", "-t", str(topology), "--cleanup"])
