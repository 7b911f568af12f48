"""The namespace lab against real FRR and net-snmp: telemetry, faults, and playbooks that fix them.

Four FRR routers in a ring (lab.netns.topology.DEFAULT_TOPOLOGY), each in its
own network namespace with snmpd on a management veth; UDP demands r1<->r2 and
r3<->r4 move the kernel's counters. The collectors poll every router over SNMP
from the host; faults are made through the kernel (ip link, nftables/netem)
and the daemons (vtysh, killing bgpd); the playbook engine, in process as in
test_playbook_catalog.py, fixes them over SNMP SET and vtysh and verifies on
fresh telemetry. Needs root, iproute2, frr + frr-snmp, snmpd and nftables;
with CI=true a missing one fails the module instead of skipping it.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from autonoc.core.audit import AuditLog
from autonoc.core.db import make_engine, upgrade
from autonoc.core.errors import LabError
from autonoc.core.settings import Settings
from collectors.snmp import SnmpClient
from collectors.snmp_groups import SnmpCollector
from lab.netns.faults import NetnsFaults, netem_available
from lab.netns.lab import NetnsLab, missing_prerequisites
from lab.netns.topology import DEFAULT_TOPOLOGY
from playbooks.base import Catalog
from playbooks.engine import CollectorTelemetry, PlaybookEngine
from playbooks.journal import ConfigArchive, RunJournal, TicketBook
from playbooks.platforms import Platforms
from tests.integration.conftest import require_programs
from worker.locks import RedisDeviceLock

Values = dict[tuple[str, str], float]


def require_netns_lab() -> None:
    missing = missing_prerequisites()
    if shutil.which("nft") is None:
        missing.append("nft")
    require_programs(missing, "run as root; apt-get install iproute2 frr frr-snmp snmpd nftables")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsLab]:
    require_netns_lab()
    with NetnsLab(DEFAULT_TOPOLOGY, tmp_path_factory.mktemp("netns-home")) as running:
        yield running


@dataclass
class Rig:
    lab: NetnsLab
    engine: PlaybookEngine
    snmp: SnmpClient
    faults: NetnsFaults
    db: sa.Engine

    def run(self, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run a test body; the SNMP client closes inside the loop it was used on."""

        async def wrapped() -> None:
            try:
                await body()
            finally:
                self.snmp.close()

        asyncio.run(wrapped())

    def telemetry(self) -> CollectorTelemetry:
        return CollectorTelemetry({"snmp": SnmpCollector(self.snmp)})

    async def until(
        self, router: str, check: Callable[[Values], bool], within: float = 45.0
    ) -> Values:
        """Poll ``router`` (rates from the second poll on) until ``check`` holds."""
        tel = self.telemetry()
        device = self.lab.inventory.device(router)
        deadline = time.monotonic() + within
        values: Values = {}
        while time.monotonic() < deadline:
            values = await tel.read(device)
            if any(m == "if_out_bps" for m, _ in values) and check(values):
                return values
            await asyncio.sleep(1.0)
        raise AssertionError(f"{router}: condition not met within {within:g} s; last {values}")

    def cost(self, router: str, ifname: str) -> str | None:
        running = self.lab.vtysh(router, "show running-config")
        block = running.split(f"interface {ifname}\n", 1)[1].split("exit", 1)[0]
        for line in block.splitlines():
            if line.strip().startswith("ip ospf cost "):
                return line.split()[-1]
        return None


@pytest.fixture
def rig(lab: NetnsLab, tmp_path: Path, external_redis_url: str) -> Iterator[Rig]:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    db = make_engine(settings)
    upgrade(db)
    client = redis.Redis.from_url(external_redis_url)
    snmp = SnmpClient(settings.snmp)
    catalog = Catalog.load()
    engine = PlaybookEngine(
        catalog=catalog,
        platforms=Platforms.load(),
        inventory=lab.inventory,
        snmp=snmp,
        telemetry=lambda: CollectorTelemetry({"snmp": SnmpCollector(snmp)}),
        lock=RedisDeviceLock(client, ttl=catalog.longest_run_s(), wait=1.0),
        audit=AuditLog(db),
        journal=RunJournal(db),
        archive=ConfigArchive(db),
        tickets=TicketBook(db),
    )
    faults = NetnsFaults(lab.home)
    try:
        yield Rig(lab, engine, snmp, faults, db)
    finally:
        faults.clear()
        client.close()
        db.dispose()


def test_collectors_poll_every_router_with_moving_counters(rig: Rig) -> None:
    async def body() -> None:
        for router in ("r1", "r2", "r3", "r4"):
            values = await rig.until(
                router,
                lambda v: max(x for (m, _), x in v.items() if m == "if_out_bps") > 50_000,
            )
            assert values[("sys_uptime_s", "")] > 0
            for port in DEFAULT_TOPOLOGY.ports(router):
                assert values[("if_oper_up", port.ifname)] == 1
                assert values[("bgp_peer_up", port.peer_address)] == 1  # BGP4-MIB over AgentX

    rig.run(body)


def test_admin_down_is_fixed_by_interface_enable_over_snmp(rig: Rig) -> None:
    async def body() -> None:
        rig.faults.inject("interface_admin_down", "r1:eth1")
        await rig.until("r1", lambda v: v.get(("if_admin_up", "eth1")) == 0)
        plan = rig.engine.plan(
            "interface-enable", "r1", "eth1", {"min_traffic_bps": 50_000, "verify_within_s": 60}
        )
        result = await rig.engine.apply(plan, run_id="netns-enable-1")
        assert result.ok and result.changed, result
        assert any(s.name.startswith("SET") for s in result.steps)  # ifAdminStatus over SNMP
        out = rig.lab.netns_exec("r1", "ip", "-o", "link", "show", "dev", "eth1").stdout
        assert ",UP," in out or "<UP," in out  # snmpd brought the kernel link up
        assert [f["present"] for f in rig.faults.active()] == [False]

    rig.run(body)


def test_link_down_shows_as_oper_down_with_admin_up(rig: Rig) -> None:
    async def body() -> None:
        rig.faults.inject("link_down", "r1:eth1")
        values = await rig.until("r1", lambda v: v.get(("if_oper_up", "eth1")) == 0)
        assert values[("if_admin_up", "eth1")] == 1  # carrier lost, not shut: not ours to fix
        rig.faults.clear()
        await rig.until("r1", lambda v: v.get(("if_oper_up", "eth1")) == 1)

    rig.run(body)


def test_bgp_neighbor_shut_is_fixed_through_vtysh(rig: Rig) -> None:
    async def body() -> None:
        rig.faults.inject("bgp_session_down", "bgp:r1:10.0.0.2")
        await rig.until("r1", lambda v: v.get(("bgp_peer_up", "10.0.0.2")) == 0)
        plan = rig.engine.plan("bgp-neighbor-enable", "r1", "10.0.0.2", {"verify_within_s": 60})
        dry = await rig.engine.dry_run(plan)
        assert dry.diff == ["frr:router bgp / neighbor 10.0.0.2 shutdown: false → true"]
        result = await rig.engine.apply(plan, run_id="netns-bgp-1")
        assert result.ok and result.changed, result
        assert "no neighbor 10.0.0.2 shutdown" in result.steps[-1].detail
        assert "neighbor 10.0.0.2 shutdown" not in rig.lab.vtysh("r1", "show running-config")
        assert [f["present"] for f in rig.faults.active()] == [False]

    rig.run(body)


def test_bgpd_stop_shows_on_the_peer(rig: Rig) -> None:
    async def body() -> None:
        rig.faults.inject("bgpd_stop", "r2")
        await rig.until("r1", lambda v: v.get(("bgp_peer_up", "10.0.0.2")) == 0)
        rig.faults.clear()  # starts bgpd again
        await rig.until("r1", lambda v: v.get(("bgp_peer_up", "10.0.0.2")) == 1, within=60)

    rig.run(body)


def test_ospf_cost_change_moves_traffic_and_undrain_brings_it_back(rig: Rig) -> None:
    async def body() -> None:
        rig.faults.inject("ospf_cost", "r1:eth1", {"cost": 1000})
        # r1->r2 now goes round the ring: out of eth2, no longer out of eth1.
        await rig.until(
            "r1", lambda v: v[("if_out_bps", "eth1")] < 30_000 < 150_000 < v[("if_out_bps", "eth2")]
        )
        plan = rig.engine.plan(
            "undrain-link", "r1", "eth1", {"metric": 10, "min_traffic_bps": 150_000}
        )
        dry = await rig.engine.dry_run(plan)
        assert dry.diff == ["frr:interface eth1 / ip ospf cost: 1000 → 10"]
        assert rig.cost("r1", "eth1") == "1000"  # dry-run changed nothing
        result = await rig.engine.apply(plan, run_id="netns-undrain-1")
        assert result.ok and result.changed, result
        assert rig.cost("r1", "eth1") == "10"
        again = await rig.engine.apply(plan, run_id="netns-undrain-2")
        assert again.ok and not again.changed

    rig.run(body)


def test_failed_verification_rolls_the_vtysh_change_back(rig: Rig) -> None:
    async def body() -> None:
        # Ask for the impossible: 1 Gbit/s on a link the demands send 200 kbit/s over.
        plan = rig.engine.plan(
            "undrain-link",
            "r1",
            "eth2",
            {"metric": 40, "min_traffic_bps": 1e9, "verify_within_s": 5},
        )
        result = await rig.engine.apply(plan, run_id="netns-rollback-1")
        assert not result.ok and result.rolled_back, result
        assert any(s.name == "rollback vtysh" for s in result.steps)
        assert rig.cost("r1", "eth2") == "10"

    rig.run(body)


def test_packet_loss_is_drained_and_traffic_moves(rig: Rig) -> None:
    async def body() -> None:
        before = await rig.until("r2", lambda v: v[("if_in_bps", "eth1")] > 150_000)
        rig.faults.inject("packet_loss", "r1:eth1", {"percent": 40})
        # What r2 receives from r1 falls by the share r1's egress loses.
        await rig.until(
            "r2", lambda v: v[("if_in_bps", "eth1")] < 0.8 * before[("if_in_bps", "eth1")]
        )
        # The catalog's default drain metric is IS-IS's; OSPF stops at 65535: refused, unchanged.
        bad = await rig.engine.apply(
            rig.engine.plan("drain-link", "r1", "eth1", {}), run_id="netns-drain-bad"
        )
        assert not bad.ok and not bad.changed and "65535" in (bad.error or "")
        assert rig.cost("r1", "eth1") == "10"
        plan = rig.engine.plan(
            "drain-link",
            "r1",
            "eth1",
            {"metric": 65535, "max_residual_bps": 30_000, "verify_within_s": 60},
        )
        result = await rig.engine.apply(plan, run_id="netns-drain-1")
        assert result.ok and result.changed, result
        moved = await rig.until("r1", lambda v: v[("if_out_bps", "eth2")] > 150_000)
        assert moved[("if_out_bps", "eth1")] < 30_000  # the traffic left the lossy link
        steps = await rig.engine.rollback(plan, "netns-drain-1")
        assert steps and all(s.ok for s in steps)
        assert rig.cost("r1", "eth1") == "10"

    rig.run(body)


def test_mtu_change_shows_in_if_mib(rig: Rig) -> None:
    async def body() -> None:
        device = rig.lab.inventory.device("r1")
        names = await rig.snmp.walk(device, ["1.3.6.1.2.1.31.1.1.1.1"])
        index = next(oid.rsplit(".", 1)[1] for oid, v in names.items() if str(v) == "eth1")
        rig.faults.inject("mtu", "r1:eth1", {"mtu": 1000})
        deadline = time.monotonic() + 30
        mtu = 0
        while time.monotonic() < deadline:
            got = await rig.snmp.get(device, [f"1.3.6.1.2.1.2.2.1.4.{index}"])
            mtu = int(next(iter(got.values())))
            if mtu == 1000:
                break
            await asyncio.sleep(1)
        assert mtu == 1000

    rig.run(body)


def test_delay_and_corruption_need_netem(rig: Rig) -> None:
    ns = rig.lab.namespace("r3")
    if netem_available(ns):
        rig.faults.inject("delay", "r3:eth1", {"ms": 20})
        qdisc = rig.lab.netns_exec("r3", "tc", "qdisc", "show", "dev", "eth1").stdout
        assert "netem" in qdisc and "delay 20" in qdisc
    else:
        with pytest.raises(LabError, match="sch_netem"):
            rig.faults.inject("corruption", "r3:eth1")
        assert rig.faults.active() == []
