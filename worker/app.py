"""The Celery app: built from settings at a composition root, never at import.

Broker and result backend are the same Redis (embedded or external). Tasks
are thin adapters; the work they do lives in :mod:`worker.execute`.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from autonoc.core.settings import Settings

__all__ = [
    "COLLECT",
    "COLLECT_QUEUE",
    "DETECT",
    "DETECT_QUEUE",
    "PLAYBOOK_QUEUE",
    "RUN_PLAYBOOK",
    "celery_url",
    "collect_beat_schedule",
    "detect_beat_schedule",
    "make_celery",
]

PLAYBOOK_QUEUE = "autonoc.playbooks"
RUN_PLAYBOOK = "autonoc.run_playbook"
#: Polling has its own queue, so a fleet's polls never wait behind a playbook.
COLLECT_QUEUE = "autonoc.collect"
COLLECT = "autonoc.collect"
#: Detection keeps device frames in process memory: one worker process serves this queue.
DETECT_QUEUE = "autonoc.detect"
DETECT = "autonoc.detect"


def collect_beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Celery beat entries: per poll interval, one ``autonoc.collect`` per shard.

    Groups with the same interval share a task. A task that waited longer
    than its interval expires instead of running late on top of the next one.
    """
    by_interval: dict[float, list[str]] = {}
    for group, interval in settings.collect.intervals.items():
        by_interval.setdefault(float(interval), []).append(group)
    shards = settings.collect.shards
    schedule: dict[str, dict[str, Any]] = {}
    for interval, groups in sorted(by_interval.items()):
        for shard in range(shards):
            schedule[f"collect {'+'.join(groups)} shard {shard}/{shards}"] = {
                "task": COLLECT,
                "schedule": interval,
                "args": (groups, shard, shards),
                "options": {"queue": COLLECT_QUEUE, "expires": interval},
            }
    return schedule


def celery_url(redis_url: str) -> str:
    """Celery spells a unix-socket Redis ``redis+socket:///path``; redis-py ``unix:///path``."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


def detect_beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """One detection cycle per shortest poll interval; a late one expires."""
    every = min(settings.collect.intervals.values())
    return {
        "detect": {
            "task": DETECT,
            "schedule": every,
            "options": {"queue": DETECT_QUEUE, "expires": every},
        }
    }


def make_celery(settings: Settings, redis_url: str) -> Celery:
    """A Celery app on ``redis_url`` with autonoc's tasks registered."""
    url = celery_url(redis_url)
    app = Celery("autonoc", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=PLAYBOOK_QUEUE,
        # A playbook is acknowledged only once it finished: a worker that dies
        # mid-change leaves the task to be redelivered, and the engine's
        # read-before-write keeps the retry from changing the device twice.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        redis_socket_connect_timeout=5,
        result_expires=7 * 24 * 3600,
        result_extended=True,
        broker_transport_options={"visibility_timeout": 3600},
        beat_schedule={**collect_beat_schedule(settings), **detect_beat_schedule(settings)},
        task_routes={COLLECT: {"queue": COLLECT_QUEUE}, DETECT: {"queue": DETECT_QUEUE}},
    )
    _register(app, settings, redis_url)
    return app


def _register(app: Celery, settings: Settings, redis_url: str) -> None:
    # The runner (and the pysnmp/SQL imports behind it) is made on the first
    # task, so apps that only send tasks, like the demo's, never pay for it.
    runners: list[Any] = []

    # shared=False: a shared task would be copied onto every later app, closure and all.
    @app.task(name=RUN_PLAYBOOK, bind=False, acks_late=True, shared=False)
    def run_playbook(plan: dict[str, Any]) -> dict[str, Any]:
        if not runners:
            from worker.execute import PlaybookRunner

            runners.append(PlaybookRunner(settings, redis_url))
        result: dict[str, Any] = runners[0].execute(plan)
        return result

    collectors: list[Any] = []

    # Polls are cheap to repeat and useless late: acknowledged on receipt, never retried.
    @app.task(name=COLLECT, bind=False, acks_late=False, shared=False)
    def collect(groups: list[str], shard: int, shards: int) -> dict[str, Any]:
        if not collectors:
            from worker.collect import ShardCollector

            collectors.append(ShardCollector(settings, redis_url))
        summary: dict[str, Any] = collectors[0].collect(groups, shard, shards)
        return summary

    detectors: list[Any] = []

    @app.task(name=DETECT, bind=False, acks_late=False, shared=False)
    def detect() -> dict[str, Any]:
        if not detectors:
            from worker.detect import DetectCycle

            detectors.append(DetectCycle(settings, redis_url))
        cycle: dict[str, Any] = detectors[0].cycle()
        return cycle
