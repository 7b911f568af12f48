"""The poll scheduler: protocol planning, sharding, phases, timeouts, backoff, schedule."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from pydantic import SecretStr

from autonoc.core.errors import DeviceUnreachable
from autonoc.core.inventory import Device, Mgmt, NetconfCredentials, Role
from autonoc.core.types import Sample
from collectors.base import CollectRequest, CollectResult
from collectors.scheduler import (
    Backoff,
    Poller,
    PollOutcome,
    PollPolicy,
    _unit_hash,
    plan_polls,
    shard_devices,
    shard_of,
)
from tests.unit.fakes import router


def _with_netconf(device: Device) -> Device:
    creds = NetconfCredentials(username="lab", password=SecretStr("pw"), hostkey_verify=False)
    return device.model_copy(update={"netconf": creds})


def _optical(name: str, *, snmp: bool = True, netconf: bool = True) -> Device:
    device = router(name, 16100, role=Role.TRANSPONDER)
    if netconf:
        device = _with_netconf(device)
    if not snmp:
        device = Device(
            name=name, role=Role.TRANSPONDER, mgmt=Mgmt(host="127.0.0.1"), netconf=device.netconf
        )
    return device


class FakeCollector:
    """Answers every request after ``delay`` seconds; devices in ``dead`` never answer."""

    def __init__(self, name: str, *, delay: float = 0.0, dead: frozenset[str] = frozenset()):
        self.name = name
        self.delay = delay
        self.dead = dead
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    async def collect(self, device: Device, request: CollectRequest) -> CollectResult:
        self.calls.append((device.name, request.groups))
        if device.name in self.dead:
            await asyncio.Event().wait()
        await asyncio.sleep(self.delay)
        samples = [Sample(device.name, f"{g}_ok", "", 0.0, 1.0) for g in request.groups]
        return CollectResult(device=device.name, samples=samples, varbinds=len(samples))


class FailingCollector(FakeCollector):
    """Devices in ``dead`` fail at once (an unreachable answer); the rest answer."""

    async def collect(self, device: Device, request: CollectRequest) -> CollectResult:
        if device.name not in self.dead:
            return await super().collect(device, request)
        self.calls.append((device.name, request.groups))
        return CollectResult(
            device=device.name, failed=True, exception=DeviceUnreachable(device.name, "no answer")
        )


def test_plan_prefers_netconf_for_optics_and_snmp_for_counters() -> None:
    both = _optical("xp-a1")
    assert plan_polls(both, {"snmp", "netconf"}) == {
        "netconf": ("optics",),
        "snmp": ("interfaces", "inventory"),
    }
    # Without a NETCONF collector (or section) optics fall back to SNMP.
    assert plan_polls(both, {"snmp"}) == {"snmp": ("optics", "interfaces", "inventory")}
    netconf_only = _optical("xp-a2", snmp=False)
    assert plan_polls(netconf_only, {"snmp", "netconf"}) == {
        "netconf": ("optics", "interfaces")  # inventory is SNMP-only
    }
    assert plan_polls(router("pe1", 1), {"snmp"}, only={"bgp"}) == {"snmp": ("bgp",)}
    assert plan_polls(router("pe1", 1), {"netconf"}) == {}


def test_shards_partition_the_fleet_stably() -> None:
    devices = [router(f"r{i}", 1000 + i) for i in range(300)]
    shards = [shard_devices(devices, k, 3) for k in range(3)]
    names = [d.name for shard in shards for d in shard]
    assert sorted(names) == sorted(d.name for d in devices)
    assert all(60 <= len(shard) <= 140 for shard in shards)
    # A device's shard does not depend on which other devices exist.
    assert shard_of("r7", 3) == shard_of("r7", 3)
    assert [d.name for d in shard_devices(devices[:10], 1, 3)] == [
        d.name for d in shards[1] if int(d.name[1:]) < 10
    ]
    with pytest.raises(ValueError, match="shard must be in"):
        shard_devices(devices, 3, 3)


def test_phases_spread_a_fleet_over_the_interval() -> None:
    phases = [_unit_hash("phase", f"r{i}") for i in range(1000)]
    buckets = Counter(int(p * 10) for p in phases)
    assert len(buckets) == 10
    assert max(buckets.values()) < 150  # about 100 per tenth, never a lockstep pile-up


def test_backoff_doubles_caps_and_clears() -> None:
    backoff = Backoff(base=10, maximum=60, rng=random.Random(1))
    delays = [backoff.failed("r1", 0.0) for _ in range(6)]
    assert 8 <= delays[0] <= 12
    assert 16 <= delays[1] <= 24
    assert all(d <= 72 for d in delays)
    assert delays[-1] >= 48
    assert backoff.backing_off(now=1.0) == 1
    backoff.succeeded("r1")
    assert backoff.until("r1") == 0.0
    assert backoff.backing_off(now=1.0) == 0


def test_a_dead_device_times_out_without_holding_up_the_others() -> None:
    asyncio.run(_a_dead_device_times_out_without_holding_up_the_others())


async def _a_dead_device_times_out_without_holding_up_the_others() -> None:
    devices = [router(f"r{i}", 1000 + i) for i in range(20)]
    collector = FakeCollector("snmp", dead=frozenset({"r3"}))
    poller = Poller(devices, {"snmp": collector}, PollPolicy(concurrency=4, device_timeout=0.3))
    outcomes = await poller.poll_once()
    assert [o.device.name for o in outcomes] == [d.name for d in devices]
    failed = [o for o in outcomes if o.result.failed]
    assert [o.device.name for o in failed] == ["r3"]
    assert "took longer than 0.3 s" in str(failed[0].result.exception)
    assert all(o.result.varbinds == 4 for o in outcomes if not o.result.failed)
    # One collection per device carries all the groups of its role.
    assert all(
        groups == ("interfaces", "system", "bgp", "inventory") for _, groups in collector.calls
    )
    assert poller.backoff.failures("r3") == 1


def test_concurrency_is_bounded() -> None:
    asyncio.run(_concurrency_is_bounded())


async def _concurrency_is_bounded() -> None:
    running = 0
    peak = 0

    class Counting(FakeCollector):
        async def collect(self, device: Device, request: CollectRequest) -> CollectResult:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                return await super().collect(device, request)
            finally:
                running -= 1

    devices = [router(f"r{i}", 1000 + i) for i in range(30)]
    poller = Poller(devices, {"snmp": Counting("snmp", delay=0.01)}, PollPolicy(concurrency=5))
    await poller.poll_once()
    assert peak == 5


def test_schedule_polls_fast_groups_more_often_and_respects_backoff() -> None:
    asyncio.run(_schedule_polls_fast_groups_more_often_and_respects_backoff())


async def _schedule_polls_fast_groups_more_often_and_respects_backoff() -> None:
    policy = PollPolicy(
        intervals={"optics": 0.02, "interfaces": 0.06, "inventory": 10.0},
        jitter=0.1,
        max_initial_spread=0.02,
    )
    healthy = [_optical(f"xp-{i}") for i in range(3)]
    netconf = FakeCollector("netconf")
    snmp = FakeCollector("snmp")
    stop = asyncio.Event()
    seen: list[PollOutcome] = []

    def record(outcome: PollOutcome) -> None:
        seen.append(outcome)
        optics = sum(1 for o in seen if "optics" in o.groups)
        if optics >= 30:
            stop.set()

    poller = Poller(
        healthy,
        {"snmp": snmp, "netconf": netconf},
        policy,
        on_outcome=record,
        rng=random.Random(7),
    )
    await asyncio.wait_for(poller.run(stop), timeout=30)
    per_group = Counter(g for o in seen for g in o.groups)
    assert per_group["optics"] >= 30
    assert per_group["inventory"] == 3  # once each: its interval is far longer than the run
    assert per_group["optics"] > per_group["interfaces"] >= 3
    assert {o.protocol for o in seen if "optics" in o.groups} == {"netconf"}

    # A failing device is asked once, then left alone while its backoff lasts.
    collector = FailingCollector("snmp", dead=frozenset({"dead"}))
    stop = asyncio.Event()

    def stop_later(outcome: PollOutcome) -> None:
        if sum(1 for name, _ in collector.calls if name == "ok0") >= 10:
            stop.set()

    poller = Poller(
        [router("dead", 1), router("ok0", 2)],
        {"snmp": collector},
        PollPolicy(intervals=dict.fromkeys(("interfaces", "system", "bgp", "inventory"), 0.01)),
        on_outcome=stop_later,
    )
    await asyncio.wait_for(poller.run(stop), timeout=30)
    calls = Counter(name for name, _ in collector.calls)
    assert calls["ok0"] >= 10
    assert calls["dead"] == 1
    assert poller.backoff.failures("dead") == 1
