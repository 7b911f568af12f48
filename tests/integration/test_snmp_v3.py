"""SNMPv3 authPriv (HMAC-SHA + AES-128) end to end: the lab's agents and autonoc's client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from autonoc.core.errors import DeviceError
from autonoc.core.inventory import Device, SnmpV3
from autonoc.core.settings import SnmpSettings
from collectors.base import CollectRequest
from collectors.snmp import SnmpClient
from collectors.snmp_groups import SnmpCollector
from lab.network import LabNetwork
from lab.runner import LabRunner

IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7"


@pytest.fixture
def lab() -> Iterator[LabRunner]:
    with LabRunner(LabNetwork.preset("ring4"), snmp_version="v3") as runner:
        yield runner


def _device(lab: LabRunner, name: str = "pe1") -> Device:
    device = lab.inventory.device(name)
    assert isinstance(device.snmp, SnmpV3)
    return device


def test_inventory_carries_v3_credentials(lab: LabRunner) -> None:
    snmp = _device(lab).snmp
    assert isinstance(snmp, SnmpV3)
    assert (snmp.auth_protocol, snmp.priv_protocol) == ("sha", "aes")


def test_v3_poll_gives_rates_and_set_works(lab: LabRunner) -> None:
    device = _device(lab)

    async def scenario() -> tuple[float, float]:
        client = SnmpClient(SnmpSettings(timeout=1.0, retries=1))
        try:
            collector = SnmpCollector(client)
            (await collector.collect(device, CollectRequest())).raise_for_status()
            await asyncio.sleep(1.0)
            second = (await collector.collect(device, CollectRequest())).raise_for_status()
            rate = next(
                s.value for s in second.samples if (s.metric, s.instance) == ("if_in_bps", "eth1")
            )
            names = await client.walk(device, ["1.3.6.1.2.1.31.1.1.1.1"])
            index = next(oid.rsplit(".", 1)[1] for oid, v in names.items() if str(v) == "eth1")
            await client.set(device, f"{IF_ADMIN_STATUS}.{index}", 2)
            after = await client.get(device, [f"{IF_ADMIN_STATUS}.{index}"])
            return rate, float(next(iter(after.values())))
        finally:
            client.close()

    rate, admin = asyncio.run(scenario())
    assert rate > 1e6  # hundreds of Mb/s in the lab
    assert admin == 2.0
    assert not lab.network.interface("pe1", "eth1").admin_up


@pytest.mark.parametrize("field", ["auth_key", "priv_key"])
def test_wrong_v3_key_is_an_error_result_not_data(lab: LabRunner, field: str) -> None:
    device = _device(lab)
    assert isinstance(device.snmp, SnmpV3)
    bad = device.snmp.model_copy(update={field: SecretStr("wrong-key-123")})
    device = device.model_copy(update={"snmp": bad})

    async def poll() -> object:
        client = SnmpClient(SnmpSettings(timeout=0.5, retries=0))
        try:
            return await SnmpCollector(client).collect(device, CollectRequest())
        finally:
            client.close()

    result = asyncio.run(poll())
    assert getattr(result, "failed", False)
    assert isinstance(getattr(result, "exception", None), DeviceError)
    assert "wrong-key-123" not in str(getattr(result, "exception", ""))


def test_v3_without_privacy_is_refused(lab: LabRunner) -> None:
    device = _device(lab)
    assert isinstance(device.snmp, SnmpV3)
    auth_only = device.snmp.model_copy(update={"priv_protocol": None, "priv_key": None})
    device = device.model_copy(update={"snmp": auth_only})

    async def get() -> None:
        client = SnmpClient(SnmpSettings(timeout=0.5, retries=0))
        try:
            await client.get(device, ["1.3.6.1.2.1.1.5.0"])
        finally:
            client.close()

    with pytest.raises(DeviceError):
        asyncio.run(get())
