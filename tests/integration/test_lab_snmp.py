"""The lab's agents answer real SNMP v2c over UDP on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    Integer32,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    bulk_walk_cmd,
    get_cmd,
    set_cmd,
)

from autonoc.core.errors import LabError
from autonoc.core.inventory import Inventory
from lab.network import LabNetwork
from lab.runner import LabRunner

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
IF_TABLE = "1.3.6.1.2.1.2.2"
IFX_TABLE = "1.3.6.1.2.1.31.1.1"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"


@pytest.fixture
def lab() -> Iterator[LabRunner]:
    runner = LabRunner(LabNetwork.preset("ring4"), host=HOST)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


async def _get(port: int, community: str, *oids: str) -> tuple[Any, Any, list[tuple[str, Any]]]:
    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create((HOST, port), timeout=1, retries=1)
        err_ind, err_status, _, var_binds = await get_cmd(
            engine,
            CommunityData(community),
            target,
            ContextData(),
            *(ObjectType(ObjectIdentity(oid)) for oid in oids),
            lookupMib=False,
        )
        return err_ind, err_status, [(str(name), value) for name, value in var_binds]
    finally:
        engine.close_dispatcher()


async def _set(port: int, community: str, oid: str, value: int) -> tuple[Any, Any]:
    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create((HOST, port), timeout=1, retries=1)
        err_ind, err_status, _, _ = await set_cmd(
            engine,
            CommunityData(community),
            target,
            ContextData(),
            ObjectType(ObjectIdentity(oid), Integer32(value)),
            lookupMib=False,
        )
        return err_ind, err_status
    finally:
        engine.close_dispatcher()


async def _walk(port: int, community: str, oid: str) -> list[tuple[str, Any]]:
    engine = SnmpEngine()
    rows: list[tuple[str, Any]] = []
    try:
        target = await UdpTransportTarget.create((HOST, port), timeout=1, retries=1)
        async for err_ind, err_status, _, var_binds in bulk_walk_cmd(
            engine,
            CommunityData(community),
            target,
            ContextData(),
            0,
            25,
            ObjectType(ObjectIdentity(oid)),
            lexicographicMode=False,
            lookupMib=False,
        ):
            assert err_ind is None and not err_status, (err_ind, err_status)
            rows.extend((str(name), value) for name, value in var_binds)
    finally:
        engine.close_dispatcher()
    return rows


def _if_index(lab: LabRunner, device: str, ifname: str) -> int:
    return lab.network.interface(device, ifname).if_index


def test_get_sys_name(lab: LabRunner) -> None:
    err_ind, err_status, var_binds = asyncio.run(_get(lab.ports["p1"], lab.community, SYS_NAME))
    assert err_ind is None and not err_status
    assert var_binds == [(SYS_NAME, var_binds[0][1])]
    assert str(var_binds[0][1]) == "p1"


def test_unknown_oids_answer_no_such_object_or_instance(lab: LabRunner) -> None:
    _, err_status, var_binds = asyncio.run(
        _get(lab.ports["pe1"], lab.community, "1.3.6.1.2.1.2.2.1.2.999", "1.3.6.1.4.1.9.9.9.0")
    )
    assert not err_status
    assert [type(v).__name__ for _, v in var_binds] == ["NoSuchInstance", "NoSuchObject"]


def test_bulk_walk_of_if_name_gets_every_interface(lab: LabRunner) -> None:
    for device in lab.network.device_names:
        rows = asyncio.run(_walk(lab.ports[device], lab.community, IF_NAME))
        expected = {s.name for s in lab.network.interfaces(device)}
        assert {str(value) for _, value in rows} == expected
        assert all(name.startswith(IF_NAME + ".") for name, _ in rows)


def test_bulk_walks_of_whole_tables_end_in_order(lab: LabRunner) -> None:
    for table in (IF_TABLE, IFX_TABLE):
        rows = asyncio.run(_walk(lab.ports["pe1"], lab.community, table))
        oids = [tuple(int(x) for x in name.split(".")) for name, _ in rows]
        assert oids == sorted(oids) and len(set(oids)) == len(oids)
        assert all(name.startswith(table + ".") for name, _ in rows)
    assert len(rows) == 8 * 4  # ifXTable: 8 columns x 4 interfaces


def test_hc_in_octets_grow_between_reads(lab: LabRunner) -> None:
    oid = f"{IF_HC_IN_OCTETS}.{_if_index(lab, 'pe1', 'eth1')}"
    _, _, first = asyncio.run(_get(lab.ports["pe1"], lab.community, oid))
    time.sleep(1.0)
    _, _, second = asyncio.run(_get(lab.ports["pe1"], lab.community, oid))
    assert type(first[0][1]).__name__ == "Counter64"
    delta_bits = (int(second[0][1]) - int(first[0][1])) * 8
    # pe1 offers 6-8 Gb/s at peak, a third of it at night; half rides eth1 (ECMP).
    assert 500e6 < delta_bits < 20e9


def test_set_admin_down_with_the_write_community(lab: LabRunner) -> None:
    idx = _if_index(lab, "pe1", "eth1")
    peer_idx = _if_index(lab, "p1", "eth1")
    err_ind, err_status = asyncio.run(
        _set(lab.ports["pe1"], lab.write_community, f"{IF_ADMIN_STATUS}.{idx}", 2)
    )
    assert err_ind is None and not err_status

    _, _, near = asyncio.run(
        _get(
            lab.ports["pe1"],
            lab.community,
            f"{IF_ADMIN_STATUS}.{idx}",
            f"{IF_OPER_STATUS}.{idx}",
        )
    )
    assert [int(v) for _, v in near] == [2, 2]
    _, _, far = asyncio.run(
        _get(
            lab.ports["p1"],
            lab.community,
            f"{IF_ADMIN_STATUS}.{peer_idx}",
            f"{IF_OPER_STATUS}.{peer_idx}",
        )
    )
    assert [int(v) for _, v in far] == [1, 2]

    err_ind, err_status = asyncio.run(
        _set(lab.ports["pe1"], lab.write_community, f"{IF_ADMIN_STATUS}.{idx}", 1)
    )
    assert err_ind is None and not err_status
    assert lab.network.interface("p1", "eth1").oper_up


def test_set_with_the_read_community_is_refused(lab: LabRunner) -> None:
    idx = _if_index(lab, "pe2", "eth1")
    err_ind, err_status = asyncio.run(
        _set(lab.ports["pe2"], lab.community, f"{IF_ADMIN_STATUS}.{idx}", 2)
    )
    assert err_ind is None and err_status
    assert lab.network.interface("pe2", "eth1").admin_up


def test_set_to_a_bad_value_is_refused(lab: LabRunner) -> None:
    idx = _if_index(lab, "pe2", "eth1")
    err_ind, err_status = asyncio.run(
        _set(lab.ports["pe2"], lab.write_community, f"{IF_ADMIN_STATUS}.{idx}", 3)
    )
    assert err_ind is None and str(err_status) == "wrongValue"
    assert lab.network.interface("pe2", "eth1").admin_up


def test_a_wrong_community_gets_no_answer(lab: LabRunner) -> None:
    err_ind, _, _ = asyncio.run(_get(lab.ports["pe1"], "not-the-community", SYS_NAME))
    assert err_ind is not None and "timeout" in str(err_ind).lower()


def test_injected_fault_shows_over_snmp(lab: LabRunner) -> None:
    lab.inject_admin_down("p2", "eth2")
    idx = _if_index(lab, "pe2", "eth1")
    _, _, var_binds = asyncio.run(_get(lab.ports["pe2"], lab.community, f"{IF_OPER_STATUS}.{idx}"))
    assert int(var_binds[0][1]) == 2
    lab.clear_admin_down("p2", "eth2")
    _, _, var_binds = asyncio.run(_get(lab.ports["pe2"], lab.community, f"{IF_OPER_STATUS}.{idx}"))
    assert int(var_binds[0][1]) == 1


def test_inventory_file_reaches_the_agents(lab: LabRunner, tmp_path: Path) -> None:
    path = tmp_path / "lab" / "inventory.yaml"
    lab.write_inventory(path)
    inventory = Inventory.model_validate(yaml.safe_load(path.read_text()))
    assert list(tmp_path.joinpath("lab").iterdir()) == [path]  # no temp file left behind
    device = inventory.device("pe2")
    assert device.snmp is not None and device.snmp.version == "v2c"
    assert device.snmp.write_community is not None
    assert device.snmp.write_community.get_secret_value() == lab.write_community
    community = device.snmp.community.get_secret_value()
    assert community == lab.community
    _, _, var_binds = asyncio.run(_get(device.mgmt.snmp_port, community, SYS_NAME))
    assert str(var_binds[0][1]) == "pe2"


def test_a_port_in_use_fails_start_clearly() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((HOST, 0))
        port = taken.getsockname()[1]
        runner = LabRunner(LabNetwork.preset("ring4"), host=HOST, base_port=port)
        with pytest.raises(LabError, match=f"{port}"):
            runner.start()
        runner.stop()
    assert not runner.running


def test_stop_is_idempotent_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    runner = LabRunner(LabNetwork.preset("ring4"), host=HOST)
    with runner:
        assert runner.running and len(runner.ports) == 4
        port = runner.ports["pe1"]
    runner.stop()
    assert set(threading.enumerate()) == before
    # the port is free again
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, port))


def test_walk_of_forty_interfaces_is_quick() -> None:
    with LabRunner(LabNetwork.preset("ring4-wide"), host=HOST) as lab:
        assert len(lab.network.interfaces("pe1")) == 40
        started = time.perf_counter()
        rows = asyncio.run(_walk(lab.ports["pe1"], lab.community, IF_TABLE))
        rows += asyncio.run(_walk(lab.ports["pe1"], lab.community, IFX_TABLE))
        elapsed = time.perf_counter() - started
    assert len(rows) == 40 * (17 + 8)
    # generous: a sanity check that walks do not crawl, not a benchmark
    assert elapsed < 5.0
