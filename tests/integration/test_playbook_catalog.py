"""Every catalog playbook against the simulator, over real NETCONF (SSH) and SNMP (UDP).

For each playbook: inject the fault it treats, dry-run (changes nothing, shows
the diff), apply (prechecks, a confirmed commit or SET, verification on fresh
telemetry, the confirming commit), check the device and the audit log, apply
the same plan again (changes nothing), then roll the run back and check the
device is as it was before the playbook.
"""

from __future__ import annotations

import asyncio
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


@dataclass(frozen=True)
class Case:
    playbook: str
    device: str
    target: str | None
    params: dict[str, Any]
    fault: tuple[str, str, dict[str, float]] | None
    state: Callable[[LabNetwork], object]
    """What the playbook changes on the device, read from the model."""


def _iface(dev: str, name: str) -> Callable[[LabNetwork], object]:
    return lambda n: (n.interface(dev, name).admin_up, n.interface(dev, name).igp_metric)


CASES = [
    Case(
        "drain-link",
        "pe1",
        "eth1",
        {"max_residual_bps": 1e8, "verify_within_s": 20},
        ("crc_errors", "pe1:eth1", {}),
        _iface("pe1", "eth1"),
    ),
    Case(
        "shut-flapping-interface",
        "pe1",
        "eth1",
        {"verify_within_s": 20},
        ("interface_flap", "pe1:eth1", {"period_s": 4.0}),
        _iface("pe1", "eth1"),
    ),
    Case(
        "bgp-neighbor-enable",
        "pe1",
        None,
        {},
        ("bgp_session_down", "bgp:pe1:{peer}", {}),
        lambda n: tuple(s.enabled for s in n.bgp_sessions("pe1")),
    ),
    Case(
        "raise-amplifier-gain",
        "{amp}",
        None,
        {"gain_change_db": 3.0, "min_output_dbm": "{min_out}"},
        ("span_loss", "{span}", {"extra_db": 6.0}),
        lambda n: None,
    ),
]


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
        import time

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
