"""Online detection end to end: the lab polled at 1 s into Redis and SQL, a model trained on the
healthy history and promoted, the detection service on the bus; a CRC fault on pe1:eth1 becomes
an Anomaly on ``autonoc:anomalies`` within two polls of showing, naming pe1 and eth1 first."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from autonoc.core.db import make_engine
from autonoc.core.settings import CollectSettings
from autonoc.core.types import Anomaly
from collectors.bus import SAMPLES_STREAM, decode_samples
from collectors.service import CollectService
from collectors.store import SampleStore
from lab.faults import FaultInjector
from lab.network import LabNetwork
from lab.runner import LabRunner
from models.detect_service import ANOMALIES_STREAM, CycleResult, decode_anomaly
from models.registry import ModelRegistry, train_from_history
from tests.integration.conftest import Backend
from worker.detect import DETECT_GROUP, build_service

pytestmark = pytest.mark.timeout(180)

INTERVAL = 1.0
FAST = {"optics": INTERVAL, "interfaces": INTERVAL, "system": INTERVAL, "bgp": INTERVAL,
        "inventory": 60.0}  # fmt: skip


async def _until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def _stream_end(client: redis.Redis, stream: str) -> str:
    last: Any = client.xrevrange(stream, count=1)
    return last[0][0].decode() if last else "0-0"


def _first_visible(client: redis.Redis, after: str) -> float | None:
    """The timestamp of the first sample after ``after`` that shows the fault."""
    entries: Any = client.xrange(SAMPLES_STREAM, min=f"({after}")
    for _, fields in entries:
        for s in decode_samples(fields):
            if (s.device, s.metric, s.instance) == ("pe1", "if_in_errors_ps", "eth1") and (
                s.value > 0
            ):
                return s.ts
    return None


def test_a_lab_fault_becomes_an_anomaly_on_the_bus_naming_its_component(
    backend: Backend, tmp_path: Path
) -> None:
    settings = backend.settings().model_copy(
        update={
            "home": tmp_path / "home",
            "collect": CollectSettings(
                intervals=FAST, metrics_port=0, trap_port=0, device_timeout=10.0
            ),
        }
    )
    settings.home.mkdir()
    engine = make_engine(settings)
    store = SampleStore(engine)
    client = redis.Redis.from_url(backend.redis_url, socket_timeout=30)
    network = LabNetwork.preset("metro-ring")
    registry = ModelRegistry.for_home(settings.home)
    cycles: list[CycleResult] = []

    async def scenario(lab: LabRunner) -> tuple[list[Anomaly], float | None, int]:
        collect = CollectService(
            settings, lab.inventory, redis_client=client, store=store, metrics=False, traps=False
        )
        stop = asyncio.Event()
        task = asyncio.create_task(collect.run(stop))
        started = time.time()
        # The healthy lab's first polls, stored in the history.
        await _until(lambda: len(store.series("pe1", "if_in_bps", "eth1", start=started)) >= 12,
                     "12 polls of pe1 in the history")  # fmt: skip
        end = time.time()
        version = await asyncio.to_thread(
            train_from_history,
            store,
            registry,
            days=(end - started) / 86400,
            end=end,
            detector="robust_z",
            kinds={d.name: str(d.role) for d in lab.inventory.devices},
        )
        registry.promote(version.version)
        service = build_service(
            client,
            settings,
            consumer="it",
            kinds={d.name: str(d.role) for d in lab.inventory.devices},
        )
        assert service.version == version.version
        detect_stop = threading.Event()
        thread = threading.Thread(
            target=service.run,
            args=(detect_stop,),
            kwargs={"block_ms": 200, "on_cycle": cycles.append},
            daemon=True,
        )
        thread.start()
        try:
            # A few healthy cycles over every device: no alarm.
            await _until(lambda: service.stats.scored >= 3 * len(version.meta["devices"]),
                         "three healthy scoring cycles")  # fmt: skip
            healthy = service.stats.anomalies
            anomalies_from = _stream_end(client, ANOMALIES_STREAM)
            samples_from = _stream_end(client, SAMPLES_STREAM)
            FaultInjector(network).inject("crc_errors", "pe1:eth1")

            def pe1_anomalies() -> list[Anomaly]:
                raw: Any = client.xrange(ANOMALIES_STREAM, min=f"({anomalies_from}")
                decoded = [decode_anomaly(fields) for _, fields in raw]
                return [a for a in decoded if a.device == "pe1"]

            await _until(lambda: bool(pe1_anomalies()), "an anomaly on pe1", timeout=30)
        finally:
            detect_stop.set()
            await asyncio.to_thread(thread.join, 30)
            stop.set()
            await asyncio.wait_for(task, 60)
        return pe1_anomalies(), _first_visible(client, samples_from), healthy

    try:
        with LabRunner(network) as lab:
            found, visible, healthy = asyncio.run(scenario(lab))
        pending = client.xpending(SAMPLES_STREAM, DETECT_GROUP)["pending"]
    finally:
        client.delete(ANOMALIES_STREAM)
        client.xgroup_destroy(SAMPLES_STREAM, DETECT_GROUP)
        client.close()
        engine.dispose()

    assert healthy == 0, "the healthy lab raised anomalies"
    assert visible is not None
    first = found[0]
    # Telemetry time, not wall time: the anomaly's frame is at most two polls after the
    # first sample that showed the fault (5 % scheduler jitter allowed).
    assert first.ts - visible <= 2 * INTERVAL * 1.05
    assert first.component == "eth1"
    assert (first.attributions[0].metric, first.attributions[0].instance) == (
        "if_in_errors_ps",
        "eth1",
    )
    assert first.attributions[0].value > 0 and first.attributions[0].expected == 0.0
    assert first.detector == "robust_z" and first.score > first.threshold
    assert first.window_start is not None and first.window_start <= first.ts
    assert pending == 0  # every entry the service read was acknowledged
    assert any(c.anomalies for c in cycles)
