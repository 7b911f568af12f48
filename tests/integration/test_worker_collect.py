"""Collection as Celery tasks: a real worker polls a shard, publishes to the bus, and keeps
counter baselines in Redis so the next task (in any worker) computes rates."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker

from autonoc.core.settings import CollectSettings
from collectors.bus import SAMPLES_STREAM, decode_samples
from lab.network import LabNetwork
from lab.runner import LabRunner
from tests.integration.conftest import Backend
from worker.app import COLLECT, POLL_QUEUE, collect_beat_schedule, make_celery
from worker.collect import RATES_KEY

pytestmark = pytest.mark.timeout(180)


def test_collect_tasks_publish_and_share_rate_baselines(backend: Backend, tmp_path: Path) -> None:
    with LabRunner(LabNetwork.preset("ring4")) as lab:
        inventory = tmp_path / "inventory.yaml"
        lab.write_inventory(inventory)
        settings = backend.settings().model_copy(
            update={"inventory": inventory, "collect": CollectSettings(shards=2)}
        )
        app = make_celery(settings, backend.redis_url)
        client = redis.Redis.from_url(backend.redis_url)
        try:
            names = {d.name for d in lab.inventory.devices}
            for device in names:
                client.delete(RATES_KEY.format(protocol="snmp", device=device))
            last_id = (client.xrevrange(SAMPLES_STREAM, count=1) or [(b"0-0", {})])[0][0]
            with start_worker(
                app,
                pool="solo",
                perform_ping_check=False,
                shutdown_timeout=30,
                queues=[POLL_QUEUE],
            ):
                runs = []
                for _ in range(2):
                    for shard in (0, 1):
                        result = app.send_task(
                            COLLECT, args=[["interfaces"], shard, 2], queue=POLL_QUEUE
                        )
                        runs.append(result.get(timeout=60))
            # The two shards split ring4's four routers between them, each polled twice.
            assert sum(r["devices"] for r in runs[:2]) == 4
            assert all(r["failed"] == {} for r in runs)
            # Baselines crossed from one task to the next through Redis: only the
            # second round has rates (a fresh collector per task has none of its own).
            published = [
                sample
                for _, entries in client.xread({SAMPLES_STREAM: last_id}) or []
                for _, fields in entries
                for sample in decode_samples(fields)
            ]
            rates = {s.device for s in published if s.metric == "if_in_bps"}
            assert rates == names
            first_round = sum(r["samples"] for r in runs[:2])
            second_round = sum(r["samples"] for r in runs[2:])
            assert second_round > first_round
            assert client.hlen(RATES_KEY.format(protocol="snmp", device="pe1")) > 0
        finally:
            client.close()


def test_beat_schedule_has_one_entry_per_interval_and_shard() -> None:
    from autonoc.core.settings import Settings

    settings = Settings.load().model_copy(update={"collect": CollectSettings(shards=3)})
    schedule = collect_beat_schedule(settings)
    assert len(schedule) == 3 * 3  # intervals 10, 30, 900 s, three shards each
    entry = schedule["collect interfaces+system+bgp shard 1/3"]
    assert entry["schedule"] == 30.0
    assert entry["args"] == (["interfaces", "system", "bgp"], 1, 3)
    # Late polls expire; a stuck one ends one device timeout (20 s) after the next was due.
    assert entry["options"] == {
        "queue": POLL_QUEUE,
        "expires": 30.0,
        "soft_time_limit": 50,
        "time_limit": 60,
    }
