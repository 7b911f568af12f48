"""Every catalog playbook against the simulator, over real NETCONF (SSH) and SNMP (UDP).

For each playbook: inject the fault it treats, dry-run (changes nothing, shows
the diff), apply (prechecks, a confirmed commit or SET, verification on fresh
telemetry, the confirming commit), check the device and the audit log, apply
the same plan again (changes nothing), then roll the run back and check the
device is as it was before the playbook.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from autonoc.core.audit import AuditLog
from autonoc.core.db import make_engine, upgrade
from autonoc.core.errors import PlaybookValidationError
from autonoc.core.settings import Settings
from collectors.netconf import NetconfCollector, NetconfSessionPool
from collectors.snmp import SnmpClient
from collectors.snmp_groups import SnmpCollector
from lab.faults import FaultInjector
from lab.network import LabNetwork
from lab.runner import LabRunner
from playbooks.base import Catalog
from playbooks.engine import CollectorTelemetry, PlaybookEngine
from playbooks.journal import ConfigArchive, RunJournal, TicketBook
from playbooks.netconf_session import ConfigSession, xml_text
from playbooks.platforms import Platforms
from worker.locks import RedisDeviceLock


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRunner]:
    with LabRunner(LabNetwork.preset("metro-ring"), netconf=True) as runner:
        yield runner


@dataclass
class Rig:
    lab: LabRunner
    engine: PlaybookEngine
    db: sa.Engine
    faults: FaultInjector

    def audit_actions(self, subject: str) -> list[str]:
        return [e.action for e in AuditLog(self.db).entries(limit=500, subject=subject)]


@pytest.fixture
def rig(lab: LabRunner, tmp_path: Path, external_redis_url: str) -> Iterator[Rig]:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    db = make_engine(settings)
    upgrade(db)
    client = redis.Redis.from_url(external_redis_url)
    snmp = SnmpClient(settings.snmp)
    pool = NetconfSessionPool(workers=2)
    catalog = Catalog.load()
    engine = PlaybookEngine(
        catalog=catalog,
        platforms=Platforms.load(),
        inventory=lab.inventory,
        snmp=snmp,
        telemetry=lambda: CollectorTelemetry(
            {"snmp": SnmpCollector(snmp), "netconf": NetconfCollector(pool)}
        ),
        lock=RedisDeviceLock(client, ttl=catalog.longest_run_s(), wait=1.0),
        audit=AuditLog(db),
        journal=RunJournal(db),
        archive=ConfigArchive(db),
        tickets=TicketBook(db),
    )
    faults = FaultInjector(lab.network)
    try:
        yield Rig(lab, engine, db, faults)
    finally:
        faults.clear()
        pool.close_all()
        snmp.close()
        client.close()
        db.dispose()


def _peer(net: LabNetwork) -> str:
    return net.bgp_sessions("pe1")[0].peer_address


def test_drain_link_dry_run_apply_idempotent_rollback(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        rig.faults.inject("crc_errors", "pe1:eth1")
        before = net.interface("pe1", "eth1").igp_metric
        plan = rig.engine.plan("drain-link", "pe1", "eth1", {"verify_within_s": 20})

        dry = await rig.engine.dry_run(plan)
        assert any("set" in s or "NETCONF" in s for s in dry.steps)
        assert dry.diff and "16777214" in dry.diff[0] and str(before) in dry.diff[0]
        assert net.interface("pe1", "eth1").igp_metric == before  # dry-run changed nothing

        result = await rig.engine.apply(plan, run_id="t-drain-1")
        assert result.ok and result.changed, result
        assert net.interface("pe1", "eth1").igp_metric == 16777214
        actions = rig.audit_actions("pe1:eth1")
        assert {
            "playbook_dry_run",
            "netconf_commit",
            "netconf_confirmed",
            "playbook_finished",
        } <= set(actions)

        again = await rig.engine.apply(plan, run_id="t-drain-2")
        assert again.ok and not again.changed

        steps = await rig.engine.rollback(plan, "t-drain-1")
        assert steps and all(s.ok for s in steps)
        assert net.interface("pe1", "eth1").igp_metric == before

    asyncio.run(body())


def test_precheck_failure_changes_nothing(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        rig.faults.inject("link_down", "pe1:eth2")
        before = net.interface("pe1", "eth2").igp_metric
        plan = rig.engine.plan("undrain-link", "pe1", "eth2", {"metric": 20, "verify_within_s": 5})
        result = await rig.engine.apply(plan, run_id="t-precheck")
        assert not result.ok and not result.changed
        assert result.error is not None and "precheck" in result.error
        assert net.interface("pe1", "eth2").igp_metric == before

    asyncio.run(body())


def test_out_of_bounds_parameters_are_refused(rig: Rig) -> None:
    with pytest.raises(PlaybookValidationError, match="above its maximum 3"):
        rig.engine.plan(
            "raise-amplifier-gain",
            _amp(rig.lab.network),
            None,
            {"gain_change_db": 6.0, "min_output_dbm": 0.0},
        )


def _amp(net: LabNetwork) -> str:
    snap = net.optical_snapshot()
    return sorted(snap.amplifiers)[0]


def test_failed_verification_rolls_back_by_cancel_commit(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        before = net.interface("pe1", "eth1").igp_metric
        # Nothing drains a link to zero outbound bits: verification must fail.
        plan = rig.engine.plan(
            "drain-link", "pe1", "eth1", {"max_residual_bps": 0.0, "verify_within_s": 5}
        )
        result = await rig.engine.apply(plan, run_id="t-verify-fail")
        assert not result.ok and result.rolled_back, result
        assert net.interface("pe1", "eth1").igp_metric == before
        assert "netconf_rolled_back" in rig.audit_actions("pe1:eth1")

    asyncio.run(body())


def test_lost_session_rolls_back_a_confirmed_commit(rig: Rig) -> None:
    async def body() -> None:
        """What a killed worker leaves: a confirmed commit and no session. The device reverts."""
        net = rig.lab.network
        device = rig.lab.inventory.device("pe1")
        platform = Platforms.load().for_device(device)
        path = platform.path(platform.ops["set_igp_metric"][0].leaf)  # type: ignore[union-attr]
        where = {"target": "eth1", "device": "pe1"}
        before = net.interface("pe1", "eth1").igp_metric
        session = ConfigSession(device)
        session.lock("candidate")
        session.edit_candidate(path.edit(where, "777"))
        session.commit_confirmed(120)
        assert net.interface("pe1", "eth1").igp_metric == 777
        session.drop()
        deadline = time.monotonic() + 10
        while net.interface("pe1", "eth1").igp_metric != before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert net.interface("pe1", "eth1").igp_metric == before

    asyncio.run(body())


def test_config_rollback_restores_last_known_good(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        device = rig.lab.inventory.device("pe1")
        session = ConfigSession(device)
        try:
            good = xml_text(session.get_config())
        finally:
            session.close()
        ConfigArchive(rig.db).save("pe1", good, good=True, source="test")
        mtu = net.interface("pe1", "eth1").mtu
        rig.faults.inject("config_drift", "pe1:eth1", {"mtu": 1500.0 if mtu != 1500 else 9000.0})
        plan = rig.engine.plan(
            "config-rollback", "pe1", None, {"interface": "eth1", "verify_within_s": 20}
        )
        dry = await rig.engine.dry_run(plan)
        assert any("mtu" in line for line in dry.diff), dry.diff
        result = await rig.engine.apply(plan, run_id="t-config")
        assert result.ok and result.changed, result
        assert net.interface("pe1", "eth1").mtu == mtu

    asyncio.run(body())


def test_bgp_neighbor_enable(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        peer = _peer(net)
        rig.faults.inject("bgp_session_down", f"bgp:pe1:{peer}")
        plan = rig.engine.plan("bgp-neighbor-enable", "pe1", peer, {"verify_within_s": 30})
        result = await rig.engine.apply(plan, run_id="t-bgp")
        assert result.ok and result.changed, result
        assert all(s.enabled for s in net.bgp_sessions("pe1"))

    asyncio.run(body())


def test_two_runs_on_one_device_serialise(rig: Rig) -> None:
    async def body() -> None:
        lock = rig.engine.lock
        with lock.hold("pe1", "someone-else"):
            plan = rig.engine.plan("drain-link", "pe1", "eth1", {"verify_within_s": 5})
            from autonoc.core.errors import DeviceLocked

            with pytest.raises(DeviceLocked):
                await rig.engine.apply(plan, run_id="t-locked")

    asyncio.run(body())


# ---- every other catalog playbook, against the fault it treats ----------------------


def _wait(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll the lab model until ``predicate`` holds (NETCONF commits apply asynchronously)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


async def _dry_apply(rig: Rig, plan: Any, run_id: str, unchanged: Callable[[], object]) -> Any:
    """Dry-run (the model must not move), then apply; the result must be ok and changed."""
    seen = unchanged()
    dry = await rig.engine.dry_run(plan)
    assert dry.steps and any(s.startswith("action:") for s in dry.steps), dry.steps
    assert unchanged() == seen, "dry-run changed the device"
    result = await rig.engine.apply(plan, run_id=run_id)
    assert result.ok and result.changed, result
    assert result.verdict is not None and result.verdict.passed, result.verdict
    return result


def test_interface_enable_brings_an_admin_down_interface_back(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        rig.lab.inject_admin_down("pe1", "eth1")
        try:
            assert _wait(lambda: not net.interface("pe1", "eth1").oper_up)
            plan = rig.engine.plan(
                "interface-enable", "pe1", "eth1", {"verify_within_s": 30, "min_traffic_bps": 1e6}
            )
            await _dry_apply(rig, plan, "t-enable", lambda: net.interface("pe1", "eth1").admin_up)
            state = net.interface("pe1", "eth1")
            assert (state.admin_up, state.oper_up) == (True, True)
            assert "netconf_confirmed" in rig.audit_actions("pe1:eth1")

            await rig.engine.rollback(plan, "t-enable")
            assert _wait(lambda: not net.interface("pe1", "eth1").admin_up)
        finally:
            rig.lab.clear_admin_down("pe1", "eth1")

    asyncio.run(body())


def test_undrain_link_puts_traffic_back(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        normal = net.interface("pe1", "eth1").igp_metric
        assert normal is not None
        net.set_igp_metric("pe1", "eth1", 16777214)  # drained by someone, earlier
        try:
            assert _wait(lambda: net.interface("pe1", "eth1").out_bps < 1e6)
            plan = rig.engine.plan(
                "undrain-link",
                "pe1",
                "eth1",
                {"metric": normal, "min_traffic_bps": 1e9, "verify_within_s": 30},
            )
            await _dry_apply(
                rig, plan, "t-undrain", lambda: net.interface("pe1", "eth1").igp_metric
            )
            assert net.interface("pe1", "eth1").igp_metric == normal
            assert net.interface("pe1", "eth1").out_bps >= 1e9

            await rig.engine.rollback(plan, "t-undrain")
            assert _wait(lambda: net.interface("pe1", "eth1").igp_metric == 16777214)
        finally:
            net.set_igp_metric("pe1", "eth1", normal)

    asyncio.run(body())


def test_interface_bounce_takes_the_port_down_and_up(rig: Rig) -> None:
    """The lab has no wedged-port fault: the test proves the bounce itself happened (the
    device announced link down, then up) and that the port is up and carrying traffic."""

    async def body() -> None:
        net = rig.lab.network
        events: list[tuple[str, str | None]] = []

        def listen(event: Any) -> None:
            if event.device == "pe1" and event.ifname == "eth1":
                events.append((event.kind, event.ifname))

        net.subscribe(listen)
        try:
            plan = rig.engine.plan(
                "interface-bounce", "pe1", "eth1", {"down_s": 2.0, "verify_within_s": 30}
            )
            result = await _dry_apply(
                rig, plan, "t-bounce", lambda: net.interface("pe1", "eth1").admin_up
            )
            assert ("link_down", "eth1") in events and events[-1] == ("link_up", "eth1"), events
            names = [s.name for s in result.steps]
            assert "commit confirmed enabled=false" in names
            assert "commit confirmed enabled=true" in names
            state = net.interface("pe1", "eth1")
            assert (state.admin_up, state.oper_up) == (True, True)

            await rig.engine.rollback(plan, "t-bounce")  # leaves it up: nothing to put back
            assert net.interface("pe1", "eth1").admin_up
        finally:
            net.unsubscribe(listen)

    asyncio.run(body())


def test_shut_flapping_interface_shuts_it_and_opens_one_field_ticket(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        rig.faults.inject("interface_flap", "pe1:eth1", {"period_s": 4.0})
        plan = rig.engine.plan("shut-flapping-interface", "pe1", "eth1", {"verify_within_s": 30})
        try:
            await _dry_apply(rig, plan, "t-shut", lambda: net.interface("pe1", "eth1").admin_up)
            state = net.interface("pe1", "eth1")
            assert (state.admin_up, state.oper_up) == (False, False)
            tickets = TicketBook(rig.db).list()
            assert [(t.queue, t.reason, t.device, t.component) for t in tickets] == [
                ("field", "interface_flapping", "pe1", "eth1")
            ]
            again = await rig.engine.apply(plan, run_id="t-shut-2")
            assert again.ok and not again.changed, again
            assert len(TicketBook(rig.db).list()) == 1  # a second run opens none

            await rig.engine.rollback(plan, "t-shut")
            assert _wait(lambda: net.interface("pe1", "eth1").admin_up)
        finally:
            net.set_admin_status("pe1", "eth1", up=True)

    asyncio.run(body())


def test_raise_amplifier_gain_compensates_span_loss(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        span = "span:roadm-a:roadm-b"
        amp = net.optical_snapshot(noise=False).spans[span].amplifier
        healthy = net.optical_snapshot(noise=False).amplifiers[amp]
        rig.faults.inject("span_loss", span, {"extra_db": 6.0})
        faulty = net.optical_snapshot(noise=False).amplifiers[amp]
        assert faulty.output_power_dbm < healthy.output_power_dbm - 5
        plan = rig.engine.plan(
            "raise-amplifier-gain",
            amp,
            None,
            {
                "gain_change_db": 3.0,
                "min_output_dbm": round(healthy.output_power_dbm - 3.5, 2),
                "verify_within_s": 30,
            },
        )

        def gain() -> float:
            return net.optical_snapshot(noise=False).amplifiers[amp].target_gain_db

        await _dry_apply(rig, plan, "t-gain", gain)
        fixed = net.optical_snapshot(noise=False).amplifiers[amp]
        assert abs(fixed.target_gain_db - (faulty.target_gain_db + 3.0)) < 0.01
        assert fixed.output_power_dbm >= healthy.output_power_dbm - 3.5

        await rig.engine.rollback(plan, "t-gain")
        assert _wait(lambda: abs(gain() - faulty.target_gain_db) < 0.01)

    asyncio.run(body())


def test_raise_launch_power_compensates_laser_degradation(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        port = "xp-a1:line1"
        healthy = net.optical_snapshot(noise=False).line_ports[port].tx_power_dbm
        rig.faults.inject("laser_degradation", port, {"drift": 0.6})
        faulty = net.optical_snapshot(noise=False).line_ports[port].tx_power_dbm
        assert faulty < healthy - 0.5
        plan = rig.engine.plan(
            "raise-launch-power",
            "xp-a1",
            "line1",
            {
                "power_change_db": 1.5,
                "min_tx_dbm": round(healthy - 0.5, 2),
                "verify_within_s": 30,
            },
        )

        def tx() -> float:
            return net.optical_snapshot(noise=False).line_ports[port].tx_power_dbm

        await _dry_apply(rig, plan, "t-launch", tx)
        assert tx() >= healthy - 0.5
        assert abs(tx() - (faulty + 1.5)) < 0.05

        await rig.engine.rollback(plan, "t-launch")
        assert _wait(lambda: abs(tx() - faulty) < 0.05)

    asyncio.run(body())


def test_rebalance_traffic_moves_demands_off_a_congested_link(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        normal = net.interface("pe1", "eth1").igp_metric
        speed = net.interface("pe1", "eth1").speed_bps
        rig.faults.inject("congestion", "pe1:eth1", {"extra_gbps": 100.0})
        assert _wait(lambda: net.interface("pe1", "eth1").out_bps / speed > 0.95)
        # pe1's other way round the ring costs 15: at 15 the demands split, part of them move.
        plan = rig.engine.plan(
            "rebalance-traffic",
            "pe1",
            "eth1",
            {"metric": 15, "max_util": 0.7, "verify_within_s": 30},
        )
        await _dry_apply(rig, plan, "t-rebalance", lambda: net.interface("pe1", "eth1").igp_metric)
        assert net.interface("pe1", "eth1").igp_metric == 15
        util = net.interface("pe1", "eth1").out_bps / speed
        assert 0.05 < util <= 0.7, util  # some demands moved, not all of them

        await rig.engine.rollback(plan, "t-rebalance")
        assert _wait(lambda: net.interface("pe1", "eth1").igp_metric == normal)
        assert _wait(lambda: net.interface("pe1", "eth1").out_bps / speed > 0.95)

    asyncio.run(body())


def test_restart_process_ends_a_cpu_runaway(rig: Rig) -> None:
    async def body() -> None:
        net = rig.lab.network
        rig.faults.inject("cpu_runaway", "pe1:telemetryd")
        pid = net.process("pe1", "telemetryd").pid
        assert net.system("pe1").cpu_pct > 90
        plan = rig.engine.plan(
            "restart-process", "pe1", "telemetryd", {"max_cpu_pct": 60, "verify_within_s": 30}
        )
        await _dry_apply(rig, plan, "t-restart", lambda: net.process("pe1", "telemetryd").pid)
        assert net.process("pe1", "telemetryd").pid != pid
        assert not net.process_runaway("pe1", "telemetryd")
        assert net.system("pe1").cpu_pct < 60
        assert "netconf_rpc" in rig.audit_actions("pe1:telemetryd")

        # An RPC changed no configuration: the rollback has nothing to put back.
        steps = await rig.engine.rollback(plan, "t-restart")
        assert [s.detail for s in steps] == ["the run changed no values"]
        assert net.process("pe1", "telemetryd").pid != pid  # a restart is not undone

    asyncio.run(body())


def test_protection_switch_restores_light_after_a_fibre_cut(rig: Rig) -> None:
    """The head end's receiver is dark after the cut, lit once on protection, dark again
    after the rollback puts the wavelength back on its (cut) working path."""

    async def body() -> None:
        net = rig.lab.network
        optical = net.optical
        assert optical is not None
        port = "xp-a1:line1"

        def head_end_dark() -> bool:
            return net.optical_snapshot(noise=False).line_ports[port].los

        rig.faults.inject("fiber_cut", "span:roadm-a:roadm-b")
        assert _wait(head_end_dark)
        assert optical.protection(port) == ("och-1", False)
        plan = rig.engine.plan(
            "protection-switch",
            "xp-a1",
            "line1",
            {"router": "pe1", "router_interface": "eth1", "verify_within_s": 30},
        )
        try:
            await _dry_apply(rig, plan, "t-protect", lambda: optical.protection(port))
            assert optical.protection(port) == ("och-1", True)
            assert not head_end_dark()

            await rig.engine.rollback(plan, "t-protect")
            assert _wait(lambda: optical.protection(port) == ("och-1", False))
            assert _wait(head_end_dark)
        finally:
            net.set_protection(port, secondary=False)

    asyncio.run(body())
