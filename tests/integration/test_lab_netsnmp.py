"""net-snmp's command-line tools against the lab: v2c and v3 walks, SETs that change the network."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from lab.network import LabNetwork
from lab.runner import LabRunner
from tests.integration.conftest import require_programs

IF_X_TABLE = "1.3.6.1.2.1.31.1.1"
IF_ADMIN = "1.3.6.1.2.1.2.2.1.7"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRunner]:
    require_programs([t for t in ("snmpset",) if shutil.which(t) is None], "apt-get install snmp")
    with LabRunner(LabNetwork.preset("metro-ring")) as runner:
        yield runner


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


def test_v2c_and_v3_walks_return_the_same_interfaces(lab: LabRunner) -> None:
    target = f"{lab.host}:{lab.ports['pe1']}"
    v2c = _run("snmpbulkwalk", "-v2c", "-c", lab.community, "-On", target, f"{IF_X_TABLE}.1.1")
    v3 = _run(
        "snmpbulkwalk", "-v3", "-l", "authPriv", "-u", lab.v3_user.user,
        "-a", "SHA", "-A", lab.v3_user.auth_key, "-x", "AES", "-X", lab.v3_user.priv_key,
        "-On", target, f"{IF_X_TABLE}.1.1",
    )  # fmt: skip
    assert v2c.returncode == 0 and v3.returncode == 0, (v2c.stderr, v3.stderr)
    names = [line.split('"')[1] for line in v2c.stdout.splitlines()]
    assert names == ["lo0", "eth1", "eth2", "eth3"]
    assert v3.stdout == v2c.stdout
    wrong = _run(
        "snmpget", "-v3", "-l", "authPriv", "-u", lab.v3_user.user, "-a", "SHA",
        "-A", "not-the-key", "-x", "AES", "-X", lab.v3_user.priv_key, "-r", "0", target,
        "1.3.6.1.2.1.1.5.0",
    )  # fmt: skip
    assert wrong.returncode != 0 and "Authentication failure" in wrong.stderr


def test_snmpset_shuts_a_port_and_the_network_follows(lab: LabRunner) -> None:
    target = f"{lab.host}:{lab.ports['pe2']}"
    ro = _run("snmpset", "-v2c", "-c", lab.community, target, f"{IF_ADMIN}.2", "i", "2")
    assert ro.returncode != 0 and lab.network.interface("pe2", "eth1").admin_up
    rw = _run("snmpset", "-v2c", "-c", lab.write_community, target, f"{IF_ADMIN}.2", "i", "2")
    try:
        assert rw.returncode == 0, rw.stderr
        assert not lab.network.interface("pe2", "eth1").admin_up
        far, far_if = lab.network.peer("pe2", "eth1") or ("", "")
        assert not lab.network.interface(far, far_if).oper_up
        bad = _run("snmpset", "-v2c", "-c", lab.write_community, target, f"{IF_ADMIN}.2", "i", "7")
        assert bad.returncode != 0 and "wrongValue" in bad.stderr
    finally:
        _run("snmpset", "-v2c", "-c", lab.write_community, target, f"{IF_ADMIN}.2", "i", "1")
    assert lab.network.interface("pe2", "eth1").oper_up
