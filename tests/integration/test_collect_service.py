"""``autonoc collect``: continuous collection against the lab fills the history over SNMP and
NETCONF, traps arrive as events, /metrics serves the latest values; ``collect once`` reports
per device and fails on dead ones."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from autonoc.core.db import make_engine, upgrade
from autonoc.core.redis import redis_endpoint
from autonoc.core.settings import CollectSettings, Settings
from collectors.service import CollectService
from collectors.store import SampleStore
from lab.faults import FaultInjector
from lab.network import LabNetwork
from lab.runner import LabRunner

pytestmark = pytest.mark.timeout(240)

FAST = {"optics": 1.0, "interfaces": 1.0, "system": 1.0, "bgp": 1.0, "inventory": 5.0}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def test_collect_run_fills_history_with_both_protocols_traps_and_metrics(tmp_path: Path) -> None:
    trap_port = _free_udp_port()
    network = LabNetwork.preset("metro-ring")
    settings = Settings.load(home=tmp_path / "home", redis_url=None, database_url=None)
    settings = settings.model_copy(
        update={
            "collect": CollectSettings(
                intervals=FAST, metrics_port=0, trap_port=trap_port, device_timeout=10.0
            )
        }
    )
    settings.home.mkdir()
    engine = make_engine(settings)
    upgrade(engine)
    store = SampleStore(engine)

    async def run(lab: LabRunner, client: object) -> tuple[CollectService, str]:
        import redis

        assert isinstance(client, redis.Redis)
        service = CollectService(
            settings, lab.inventory, redis_client=client, store=store, history=True
        )
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        # Every device polled, over both protocols, before the fault.
        await _until(lambda: len(service.latest.devices()) == 34, "all 34 devices in /metrics")
        await _until(
            lambda: {"snmp", "netconf"} <= set(service.stats.by_protocol), "polls over both"
        )
        faults = FaultInjector(network)
        faults.inject("link_down", "pe1:eth1")
        await _until(lambda: service.stats.events >= 4, "link and BGP traps from both ends")
        await asyncio.sleep(2.5)  # a poll or two after the fault
        assert service.metrics_server is not None
        with urllib.request.urlopen(service.metrics_server.url, timeout=10) as reply:
            scraped = reply.read().decode()
        stop.set()
        await asyncio.wait_for(task, 60)
        return service, scraped

    with (
        redis_endpoint(settings) as endpoint,
        LabRunner(network, netconf=True, trap_target=("127.0.0.1", trap_port)) as lab,
    ):
        import redis

        client = redis.Redis.from_url(endpoint.url, socket_timeout=30)
        try:
            service, scraped = asyncio.run(run(lab, client))
        finally:
            client.close()

    try:
        assert service.stats.failed == 0
        assert service.writer is not None
        assert service.writer.stats.stored_samples == service.stats.samples > 0
        # Routers over SNMP: interfaces, CPU, BGP; optics over NETCONF.
        pe1 = store.snapshot("pe1")
        for key in ("cpu_util_pct", "mem_used_pct", "if_in_bps@eth2", "bgp_peer_up@10.0.0.14"):
            assert key in pe1, key
        assert pe1["if_oper_up@eth1"][1] == 0.0  # the fault, in the history
        assert pe1["bgp_peer_up@10.0.0.10"][1] == 0.0
        xp = store.snapshot("xp-a1")
        assert 20 < xp["opt_osnr_db@line1"][1] < 40
        assert -30 < xp["opt_rx_power_dbm@line1"][1] < 5
        amp = store.snapshot("amp-a-b")
        assert "amp_gain_db@edfa" in amp or "amp_gain_db" in {k.split("@")[0] for k in amp}
        series = store.series("xp-a1", "opt_osnr_db", "line1")
        assert len(series) >= 3
        # Traps: events in the history, named after the interface and the peer.
        events = store.events(kinds=["link_down", "bgp_down"])
        assert {(e.device, e.kind) for e in events} >= {
            ("pe1", "link_down"),
            ("p1", "link_down"),
            ("pe1", "bgp_down"),
            ("p1", "bgp_down"),
        }
        assert ("pe1", "bgp_down", "10.0.0.10") in {(e.device, e.kind, e.instance) for e in events}
        # Prometheus: device metrics with labels, and the collectors' own health.
        assert (
            'autonoc_opt_osnr_db{device="xp-a1",site="a",role="transponder",component="line1"}'
            in scraped
        )
        assert (
            'autonoc_if_oper_up{device="pe1",site="a",role="router",interface="eth1"} 0' in scraped
        )
        assert (
            'autonoc_collector_polls_total{protocol="netconf",group="optics",result="ok"}'
            in scraped
        )
        assert "autonoc_collector_poll_duration_seconds_bucket" in scraped
    finally:
        engine.dispose()


def _autonoc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autonoc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_collect_once_summarises_and_fails_on_a_dead_device(tmp_path: Path) -> None:
    network = LabNetwork.preset("ring4")
    with LabRunner(network, netconf=True) as lab:
        inventory = tmp_path / "inventory.yaml"
        lab.write_inventory(inventory)
        env = {**os.environ, "AUTONOC_HOME": str(tmp_path / "home")}
        ok = _autonoc(env, "collect", "once", "--inventory", str(inventory), "--json")
        assert ok.returncode == 0, ok.stderr
        report = json.loads(ok.stdout)
        assert report["failed"] == 0 and report["ok"] == report["devices"] == 4
        assert report["varbinds"] > 0 and report["samples"] > 0
        assert {r["protocol"] for r in report["results"]} == {"snmp"}  # routers: counters over SNMP
        assert all(r["ok"] and r["varbinds"] > 0 for r in report["results"])

        # Add a device nobody answers for: its poll fails with a reason, the others do not wait.
        data = yaml.safe_load(inventory.read_text())
        dead = dict(data["devices"][0], name="dead1")
        dead["mgmt"] = dict(dead["mgmt"], snmp_port=_free_udp_port())
        dead.pop("netconf", None)
        data["devices"].append(dead)
        broken = tmp_path / "with-dead.yaml"
        broken.write_text(yaml.safe_dump(data))
        env["AUTONOC_SNMP__TIMEOUT"] = "0.3"
        bad = _autonoc(
            env, "collect", "once", "--inventory", str(broken), "--json", "--group", "system"
        )
        assert bad.returncode == 1, bad.stderr
        report = json.loads(bad.stdout)
        assert report["failed"] == 1 and report["ok"] == 4
        failed = [r for r in report["results"] if not r["ok"]]
        assert [r["device"] for r in failed] == ["dead1"]
        assert "no SNMP response" in failed[0]["error"]

        human = _autonoc(env, "collect", "once", "--inventory", str(inventory))
        assert human.returncode == 0, human.stderr
        assert "4 of 4 devices ok" in human.stdout
