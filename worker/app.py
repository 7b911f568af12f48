"""The Celery app: built from settings at a composition root, never at import.

Broker and result backend are the same Redis (embedded or external). Four
queues keep one kind of work from waiting behind another:

- ``poll``: ``autonoc.collect``, sent by beat; any number of workers share the shards.
- ``detect``: ``autonoc.detect``, sent by beat; one worker process (device frames live in it).
- ``remediate``: ``autonoc.run_playbook``; the workers allowed to change devices.
- ``default``: ``autonoc.ping`` and anything else; the remediation workers.

See docs/operations.md for what to run where, and why the limits are what they are.

Tasks are thin adapters; the work they do lives in :mod:`worker.execute`,
:mod:`worker.collect` and :mod:`worker.detect`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from celery import Celery, Task
from kombu import Exchange, Queue
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from autonoc.core.errors import RedisUnavailable, TransientError
from autonoc.core.settings import Settings
from autonoc.core.types import ActionPlan

__all__ = [
    "BEAT_NODENAME",
    "COLLECT",
    "DEFAULT_QUEUE",
    "DETECT",
    "DETECT_QUEUE",
    "FALLBACK_LONGEST_PLAYBOOK_S",
    "PING",
    "POLL_QUEUE",
    "QUEUES",
    "REMEDIATE_QUEUE",
    "RUN_PLAYBOOK",
    "TRANSIENT_RETRY",
    "WORKER_DEFAULT_QUEUES",
    "RetryPolicy",
    "TimeLimits",
    "WorkerLimits",
    "celery_url",
    "collect_beat_schedule",
    "detect_beat_schedule",
    "dispatch_plan",
    "longest_playbook_s",
    "make_celery",
    "playbook_task_id",
    "poll_limits",
    "running_beats",
    "worker_limits",
]

POLL_QUEUE = "poll"
DETECT_QUEUE = "detect"
REMEDIATE_QUEUE = "remediate"
DEFAULT_QUEUE = "default"
QUEUES = (POLL_QUEUE, DETECT_QUEUE, REMEDIATE_QUEUE, DEFAULT_QUEUE)
#: What ``autonoc worker`` serves unless told otherwise: device changes, and the rest.
WORKER_DEFAULT_QUEUES = (REMEDIATE_QUEUE, DEFAULT_QUEUE)

RUN_PLAYBOOK = "autonoc.run_playbook"
COLLECT = "autonoc.collect"
DETECT = "autonoc.detect"
#: Answers with the worker's name and the queue it came from: "is anyone serving queue X?"
PING = "autonoc.ping"
#: The node name ``autonoc beat`` answers ``celery inspect ping`` on (``%h``: the host name).
BEAT_NODENAME = "autonoc-beat@%h"

#: Assumed worst case of the slowest playbook when the catalog cannot say.
FALLBACK_LONGEST_PLAYBOOK_S = 600.0
#: On top of the slowest playbook: a fresh pool process imports the engine on its first task.
_REMEDIATE_MARGIN_S = 30
#: Between soft and hard limit: the engine catches SoftTimeLimitExceeded and rolls back.
_REMEDIATE_GRACE_S = 60
#: Between soft and hard limit for the read-only tasks: enough to log and let go.
_READ_ONLY_GRACE_S = 10
#: A poll of a rarely polled group (inventory, every 900 s) takes no longer than any other.
_POLL_INTERVAL_CAP_S = 60.0
#: A detection cycle drains at most 100 bus reads; a healthy one takes seconds.
_DETECT_SOFT_S = 120
_PING_SOFT_S = 10
#: Added to the computed visibility timeout: clock skew, broker round trips.
_VISIBILITY_MARGIN_S = 60

_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_MAX_APPROVAL_REF = 64

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """A task's soft limit (raises ``SoftTimeLimitExceeded`` in it) and hard limit (kills it).

    Celery enforces both only in the prefork pool, which ``autonoc worker`` uses.
    """

    soft: int
    hard: int

    def options(self) -> dict[str, int]:
        """As task or ``apply_async`` options."""
        return {"soft_time_limit": self.soft, "time_limit": self.hard}


@dataclass(frozen=True, slots=True)
class WorkerLimits:
    """Time limits of every task, and the broker's visibility timeout that follows from them."""

    remediate: TimeLimits
    poll: TimeLimits
    detect: TimeLimits
    ping: TimeLimits

    @property
    def visibility_timeout(self) -> int:
        """Seconds Redis waits for an acknowledgement before it delivers a message again.

        A late-acknowledged playbook message stays unacknowledged through a
        retry countdown (at most the backoff cap), a wait behind the task its
        worker process is running (at most the longest hard limit of any task)
        and its own run (at most the remediate hard limit). Redelivering it
        sooner would start a second copy of a playbook still running; so the
        timeout is their sum plus a margin. The cost: a plan whose worker died
        is picked up again only after this long.
        """
        longest = max(self.remediate.hard, self.poll.hard, self.detect.hard, self.ping.hard)
        return longest + self.remediate.hard + TRANSIENT_RETRY.backoff_max + _VISIBILITY_MARGIN_S


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Which errors a task retries, how often, and how long it waits in between.

    The wait before retry ``n`` (from 0) is a random 0..2^n seconds (full
    jitter, so a crowd of retries spreads out), never more than ``backoff_max``.
    """

    on: tuple[type[BaseException], ...]
    max_retries: int
    backoff_max: int

    def options(self) -> dict[str, Any]:
        """As task options."""
        return {
            "autoretry_for": self.on,
            "max_retries": self.max_retries,
            "retry_backoff": True,
            "retry_backoff_max": self.backoff_max,
            "retry_jitter": True,
        }


#: The remediate task's: only :class:`~autonoc.core.errors.TransientError`, raised
#: when nothing on the device was changed; anything else fails the task at once.
TRANSIENT_RETRY = RetryPolicy(on=(TransientError,), max_retries=5, backoff_max=60)


def longest_playbook_s() -> float:
    """Worst-case run time of the slowest catalog playbook, in seconds.

    Raises:
        PlaybookValidationError: the catalog does not load (a worker must not start on it).
    """
    from playbooks.base import Catalog

    longest = getattr(Catalog.load(), "longest_run_s", None)
    if longest is None:
        return FALLBACK_LONGEST_PLAYBOOK_S
    return float(longest())


def poll_limits(settings: Settings, interval: float) -> TimeLimits:
    """Limits of one poll of groups due every ``interval`` seconds.

    Each device's poll is bounded by ``collect.device_timeout``; a poll still
    running one device timeout after the next one was due is stuck, not slow.
    """
    soft = math.ceil(min(interval, _POLL_INTERVAL_CAP_S) + settings.collect.device_timeout)
    return TimeLimits(soft, soft + _READ_ONLY_GRACE_S)


def worker_limits(settings: Settings, longest_playbook: float) -> WorkerLimits:
    """Every task's time limits, from the settings and the slowest playbook's worst case."""
    remediate_soft = math.ceil(longest_playbook) + _REMEDIATE_MARGIN_S
    return WorkerLimits(
        remediate=TimeLimits(remediate_soft, remediate_soft + _REMEDIATE_GRACE_S),
        poll=max(
            (poll_limits(settings, i) for i in settings.collect.intervals.values()),
            key=lambda limits: limits.hard,
            default=poll_limits(settings, _POLL_INTERVAL_CAP_S),
        ),
        detect=TimeLimits(_DETECT_SOFT_S, _DETECT_SOFT_S + _READ_ONLY_GRACE_S),
        ping=TimeLimits(_PING_SOFT_S, _PING_SOFT_S + _READ_ONLY_GRACE_S),
    )


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
        limits = poll_limits(settings, interval)
        for shard in range(shards):
            schedule[f"collect {'+'.join(groups)} shard {shard}/{shards}"] = {
                "task": COLLECT,
                "schedule": interval,
                "args": (groups, shard, shards),
                "options": {"queue": POLL_QUEUE, "expires": interval, **limits.options()},
            }
    return schedule


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


def celery_url(redis_url: str) -> str:
    """Celery spells a unix-socket Redis ``redis+socket:///path``; redis-py ``unix:///path``."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


def playbook_task_id(plan: ActionPlan, approval: str | None) -> str:
    """The Celery task id of running ``plan`` under ``approval``: its idempotency key.

    ``playbook-<plan hash>-<approval reference, or "auto">``, the reference
    cut down to ``[A-Za-z0-9_.-]`` and 64 characters. The same plan under the
    same approval always gets the same id, so the engine's run journal can
    tell a redelivered or re-sent task from a new run. Two references that
    only differ in dropped characters name one run of one plan: never a
    second change to a device.
    """
    reference = _UNSAFE_ID_CHARS.sub("_", approval or "auto")[:_MAX_APPROVAL_REF]
    return f"playbook-{plan.hash}-{reference}"


def dispatch_plan(app: Celery, plan: ActionPlan, approval: str | None = None) -> str:
    """Queue ``plan`` on the remediate queue under its deterministic task id; returns the id.

    Every dispatcher (the agents, the demo, the CLI) goes through here.

    Raises:
        RedisUnavailable: the broker did not take the message.
    """
    task_id = playbook_task_id(plan, approval)
    try:
        app.send_task(
            RUN_PLAYBOOK,
            kwargs={"plan": plan.model_dump(mode="json"), "approval": approval},
            task_id=task_id,
            queue=REMEDIATE_QUEUE,
        )
    except (KombuOperationalError, RedisError) as exc:
        raise RedisUnavailable(
            f"cannot queue playbook {plan.playbook} for {plan.device} (task {task_id}): {exc}. "
            "Check that Redis runs (AUTONOC_REDIS_URL), then dispatch again: "
            "the task id stays the same"
        ) from exc
    log.info("playbook_dispatched", task_id=task_id, playbook=plan.playbook, device=plan.device)
    return task_id


def running_beats(app: Celery, timeout: float = 1.0) -> list[str]:
    """Node names of the ``autonoc beat`` processes that answer a ping within ``timeout``."""
    prefix = BEAT_NODENAME.split("@", 1)[0] + "@"
    try:
        replies = app.control.ping(timeout=timeout)
    except (KombuOperationalError, RedisError) as exc:
        raise RedisUnavailable(
            f"cannot ask Redis which beats run: {exc}. Check that Redis runs (AUTONOC_REDIS_URL)"
        ) from exc
    return sorted(name for reply in replies or () for name in reply if name.startswith(prefix))


def make_celery(
    settings: Settings, redis_url: str, *, longest_playbook: float | None = None
) -> Celery:
    """A Celery app on ``redis_url`` with autonoc's tasks registered.

    Args:
        settings: the installation's settings.
        redis_url: broker and result backend, in redis-py's spelling.
        longest_playbook: worst case of the slowest playbook, seconds; read from
            the catalog when not given.

    Raises:
        PlaybookValidationError: the catalog does not load.
    """
    if longest_playbook is None:
        longest_playbook = longest_playbook_s()
    limits = worker_limits(settings, longest_playbook)
    url = celery_url(redis_url)
    app = Celery("autonoc", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
        task_default_queue=DEFAULT_QUEUE,
        task_routes={
            RUN_PLAYBOOK: {"queue": REMEDIATE_QUEUE},
            COLLECT: {"queue": POLL_QUEUE},
            DETECT: {"queue": DETECT_QUEUE},
            PING: {"queue": DEFAULT_QUEUE},
        },
        # A playbook is acknowledged only once it finished: a worker that dies
        # mid-change leaves the task to be redelivered, and the engine's run
        # journal (keyed by the deterministic task id) keeps the redelivery
        # from changing the device twice.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A broker blip must not cancel a playbook half way through a change;
        # its message is redelivered after the visibility timeout, and the
        # journal recognises it.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Prefetch is per worker, not per queue: 1 everywhere is what the
        # remediate queue needs (a waiting plan is never held by a busy
        # worker), and costs the short poll and detect tasks nothing.
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        # Events for Flower: task sent/started/succeeded, and worker heartbeats.
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_track_started=True,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        redis_socket_connect_timeout=5,
        result_expires=7 * 24 * 3600,
        result_extended=True,
        broker_transport_options={"visibility_timeout": limits.visibility_timeout},
        # `autonoc beat` answers pings (health checks, and the one-beat guard).
        beat_enable_remote_control=True,
        beat_schedule={**collect_beat_schedule(settings), **detect_beat_schedule(settings)},
    )
    _register(app, settings, redis_url, limits)
    return app


@contextmanager
def _task_context(task_id: str | None) -> Iterator[None]:
    structlog.contextvars.bind_contextvars(task_id=task_id)
    try:
        yield
    finally:
        structlog.contextvars.unbind_contextvars("task_id")


def _register(app: Celery, settings: Settings, redis_url: str, limits: WorkerLimits) -> None:
    # Each task's worker object (and the pysnmp/SQL/torch imports behind it) is
    # made on its first run in a pool process, so apps that only send tasks,
    # like the demo's, never pay for them.
    runners: list[Any] = []

    # shared=False: a shared task would be copied onto every later app, closure and all.
    @app.task(
        name=RUN_PLAYBOOK,
        bind=True,
        acks_late=True,
        shared=False,
        autoretry_for=TRANSIENT_RETRY.on,
        max_retries=TRANSIENT_RETRY.max_retries,
        retry_backoff=True,
        retry_backoff_max=TRANSIENT_RETRY.backoff_max,
        retry_jitter=True,
        soft_time_limit=limits.remediate.soft,
        time_limit=limits.remediate.hard,
    )
    def run_playbook(
        self: Task[Any, Any], plan: dict[str, Any], approval: str | None = None
    ) -> dict[str, Any]:
        if not runners:
            from worker.execute import PlaybookRunner

            runners.append(PlaybookRunner(settings, redis_url))
        with _task_context(self.request.id):
            result: dict[str, Any] = runners[0].execute(
                plan, run_id=self.request.id, approval=approval
            )
        return result

    collectors: list[Any] = []

    # Polls are cheap to repeat and useless late: acknowledged on receipt, never retried.
    @app.task(
        name=COLLECT,
        bind=True,
        acks_late=False,
        shared=False,
        soft_time_limit=limits.poll.soft,
        time_limit=limits.poll.hard,
    )
    def collect(self: Task[Any, Any], groups: list[str], shard: int, shards: int) -> dict[str, Any]:
        if not collectors:
            from worker.collect import ShardCollector

            collectors.append(ShardCollector(settings, redis_url))
        with _task_context(self.request.id):
            summary: dict[str, Any] = collectors[0].collect(groups, shard, shards)
        return summary

    detectors: list[Any] = []

    @app.task(
        name=DETECT,
        bind=True,
        acks_late=False,
        shared=False,
        soft_time_limit=limits.detect.soft,
        time_limit=limits.detect.hard,
    )
    def detect(self: Task[Any, Any]) -> dict[str, Any]:
        if not detectors:
            from worker.detect import DetectCycle

            detectors.append(DetectCycle(settings, redis_url))
        with _task_context(self.request.id):
            cycle: dict[str, Any] = detectors[0].cycle()
        return cycle

    @app.task(
        name=PING,
        bind=True,
        acks_late=False,
        shared=False,
        soft_time_limit=limits.ping.soft,
        time_limit=limits.ping.hard,
    )
    def ping(self: Task[Any, Any]) -> dict[str, Any]:
        delivery = self.request.delivery_info or {}
        return {
            "hostname": self.request.hostname,
            "queue": delivery.get("routing_key"),
            "pid": os.getpid(),
        }
