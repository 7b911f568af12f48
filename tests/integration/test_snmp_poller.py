"""The SNMP poller against the lab simulator's agents on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from autonoc.core.errors import DeviceRejected, DeviceUnreachable
from autonoc.core.inventory import Device, Mgmt, Role, SnmpV2c
from autonoc.core.settings import SnmpSettings
from collectors.base import CollectRequest, CollectResult
from collectors.snmp import SnmpClient, poll_many
from collectors.snmp_groups import IF_NAME, SnmpCollector
from lab.network import LabNetwork
from lab.runner import LabRunner

pytestmark = pytest.mark.integration

IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7"
SETTINGS = SnmpSettings(timeout=1.0, retries=1)


@pytest.fixture
def lab() -> Iterator[LabRunner]:
    with LabRunner(LabNetwork.preset("ring4")) as runner:
        yield runner


def _value(result: CollectResult, metric: str, instance: str) -> float | None:
    for sample in result.samples:
        if sample.metric == metric and sample.instance == instance:
            return sample.value
    return None


async def _poll(collector: SnmpCollector, devices: tuple[Device, ...]) -> dict[str, CollectResult]:
    results = await poll_many(collector, devices, CollectRequest(), SETTINGS.concurrency)
    for result in results:
        result.raise_for_status()
    return {r.device: r for r in results}


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_two_polls_give_traffic_rates(lab: LabRunner) -> None:
    devices = lab.inventory.devices

    async def run() -> tuple[dict[str, CollectResult], dict[str, CollectResult]]:
        async with SnmpClient(SETTINGS) as client:
            collector = SnmpCollector(client)
            first = await _poll(collector, devices)
            await asyncio.sleep(1.0)
            return first, await _poll(collector, devices)

    first, second = asyncio.run(run())
    assert _value(first["pe1"], "if_in_bps", "eth1") is None  # no baseline yet
    assert _value(first["pe1"], "if_oper_up", "eth1") == 1.0
    in_bps = _value(second["pe1"], "if_in_bps", "eth1")
    assert in_bps is not None and in_bps > 0
    assert (_value(second["pe1"], "sys_uptime_s", "") or 0) > 0
    assert all(r.elapsed_ms > 0 for r in second.values())


def test_admin_down_shows_on_both_ends_and_set_brings_it_back(lab: LabRunner) -> None:
    inventory = lab.inventory
    pe1 = inventory.device("pe1")

    async def run() -> tuple[dict[str, CollectResult], dict[str, CollectResult]]:
        async with SnmpClient(SETTINGS) as client:
            collector = SnmpCollector(client)
            await _poll(collector, inventory.devices)
            lab.inject_admin_down("pe1", "eth1")
            down = await _poll(collector, inventory.devices)

            names = await client.walk(pe1, [IF_NAME.oid])
            [if_index] = [oid.rsplit(".", 1)[1] for oid, name in names.items() if name == "eth1"]
            with pytest.raises(DeviceRejected, match="noAccess"):
                await client.set(pe1, f"{IF_ADMIN_STATUS}.{if_index}", 1, write=False)
            await client.set(pe1, f"{IF_ADMIN_STATUS}.{if_index}", 1)
            return down, await _poll(collector, inventory.devices)

    down, up = asyncio.run(run())
    assert _value(down["pe1"], "if_admin_up", "eth1") == 0.0
    assert _value(down["pe1"], "if_oper_up", "eth1") == 0.0
    assert _value(down["p1"], "if_oper_up", "eth1") == 0.0
    assert _value(down["pe1"], "if_oper_up", "eth2") == 1.0  # the rest is untouched
    assert _value(up["pe1"], "if_admin_up", "eth1") == 1.0
    assert _value(up["pe1"], "if_oper_up", "eth1") == 1.0
    assert _value(up["p1"], "if_oper_up", "eth1") == 1.0


def test_walk_spans_many_getbulk_requests() -> None:
    with LabRunner(LabNetwork.preset("ring4-wide")) as wide:
        pe1 = wide.inventory.device("pe1")
        expected = sorted(s.name for s in wide.network.interfaces("pe1"))
        settings = SnmpSettings(max_repetitions=7)

        async def run() -> dict[str, object]:
            async with SnmpClient(settings) as client:
                return await client.walk(pe1, [IF_NAME.oid])

        names = asyncio.run(run())
    assert len(expected) == 40  # enough for six requests of seven
    assert sorted(str(n) for n in names.values()) == expected  # all, and nothing past the column
    assert all(oid.startswith(IF_NAME.oid + ".") for oid in names)


def test_unreachable_device_is_a_failed_result_fast() -> None:
    dead = Device(
        name="dead",
        role=Role.ROUTER,
        mgmt=Mgmt(host="127.0.0.1", snmp_port=_closed_udp_port()),
        snmp=SnmpV2c(community="never-shown"),
    )
    no_snmp = Device(name="bare", role=Role.ROUTER, mgmt=Mgmt(host="127.0.0.1"))

    async def run() -> list[CollectResult]:
        async with SnmpClient(SnmpSettings(timeout=0.2, retries=0)) as client:
            collector = SnmpCollector(client)
            return await poll_many(collector, [dead, no_snmp], CollectRequest(), 8)

    started = time.perf_counter()
    results = asyncio.run(run())
    assert time.perf_counter() - started < 2.0
    by_name = {r.device: r for r in results}
    assert by_name["dead"].failed
    assert isinstance(by_name["dead"].exception, DeviceUnreachable)
    message = str(by_name["dead"].exception)
    assert "no SNMP response from 127.0.0.1:" in message and "after 1 attempt" in message
    assert "never-shown" not in message
    assert by_name["bare"].failed and "no snmp section" in str(by_name["bare"].exception)
    with pytest.raises(DeviceUnreachable):
        by_name["dead"].raise_for_status()
