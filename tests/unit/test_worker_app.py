"""The Celery app's configuration as an operator relies on it: queues, acknowledgement,
time limits, retries, task ids, the beat schedule, and the worker and beat commands.

No broker here: building the app opens no connection, and sending is replaced where a
test needs to see what would be sent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from kombu.exceptions import OperationalError
from typer.testing import CliRunner

import worker.app as worker_app
from autonoc.cli import app as cli
from autonoc.core.errors import (
    DeviceLocked,
    PrecheckFailed,
    RedisUnavailable,
    TransientError,
    VerificationFailed,
)
from autonoc.core.settings import CollectSettings, Settings
from autonoc.core.types import ActionPlan
from worker.app import (
    COLLECT,
    DEFAULT_QUEUE,
    DETECT,
    DETECT_QUEUE,
    FALLBACK_LONGEST_PLAYBOOK_S,
    PING,
    POLL_QUEUE,
    QUEUES,
    REMEDIATE_QUEUE,
    RUN_PLAYBOOK,
    TRANSIENT_RETRY,
    TimeLimits,
    collect_beat_schedule,
    detect_beat_schedule,
    dispatch_plan,
    longest_playbook_s,
    make_celery,
    playbook_task_id,
    poll_limits,
    worker_limits,
)

URL = "redis://127.0.0.1:6379/0"
runner = CliRunner()


def _app(longest: float = 300.0, settings: Settings | None = None) -> Celery:
    return make_celery(settings or Settings.load(), URL, longest_playbook=longest)


def _plan(**changes: Any) -> ActionPlan:
    fields: dict[str, Any] = {
        "playbook": "interface-enable",
        "device": "pe1",
        "target": "eth1",
        "params": {"interface": "eth1"},
        "incident_id": 7,
    }
    return ActionPlan(**{**fields, **changes})


# ---- queues and acknowledgement ----------------------------------------------------------


def test_the_four_queues_and_where_each_task_goes() -> None:
    app = _app()
    assert QUEUES == ("poll", "detect", "remediate", "default")
    assert [q.name for q in app.conf.task_queues] == list(QUEUES)
    assert app.conf.task_default_queue == DEFAULT_QUEUE
    routes = app.conf.task_routes
    assert routes[RUN_PLAYBOOK] == {"queue": REMEDIATE_QUEUE}
    assert routes[COLLECT] == {"queue": POLL_QUEUE}
    assert routes[DETECT] == {"queue": DETECT_QUEUE}
    assert routes[PING] == {"queue": DEFAULT_QUEUE}


def test_playbooks_are_acknowledged_late_and_polls_on_receipt() -> None:
    app = _app()
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is False
    assert app.tasks[RUN_PLAYBOOK].acks_late is True
    assert app.tasks[COLLECT].acks_late is False
    assert app.tasks[DETECT].acks_late is False


def test_events_for_flower_are_on() -> None:
    app = _app()
    assert app.conf.worker_send_task_events is True
    assert app.conf.task_send_sent_event is True
    assert app.conf.task_track_started is True


# ---- time limits and the visibility timeout --------------------------------------------


def test_remediate_limits_follow_the_slowest_playbook() -> None:
    app = _app(longest=300.0)
    task = app.tasks[RUN_PLAYBOOK]
    assert (task.soft_time_limit, task.time_limit) == (330, 390)
    slower = _app(longest=1800.5).tasks[RUN_PLAYBOOK]
    assert (slower.soft_time_limit, slower.time_limit) == (1831, 1891)


@pytest.mark.parametrize("longest", [0.0, 60.0, 390.0, 7200.0])
def test_visibility_timeout_outlasts_a_retried_playbook_queued_behind_another(
    longest: float,
) -> None:
    app = _app(longest=longest)
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    hard = {name: app.tasks[name].time_limit for name in (RUN_PLAYBOOK, COLLECT, DETECT, PING)}
    # Redelivering earlier would start a second copy of a playbook still running.
    assert visibility > max(hard.values()) + hard[RUN_PLAYBOOK] + TRANSIENT_RETRY.backoff_max


def test_every_task_has_a_soft_limit_below_its_hard_limit() -> None:
    app = _app()
    for name in (RUN_PLAYBOOK, COLLECT, DETECT, PING):
        task = app.tasks[name]
        assert 0 < task.soft_time_limit < task.time_limit, name


def test_polls_end_one_device_timeout_after_the_next_was_due() -> None:
    settings = Settings.load()  # device_timeout 20 s
    assert poll_limits(settings, 10.0) == TimeLimits(30, 40)
    # A rarely polled group's poll takes no longer than any other's.
    assert poll_limits(settings, 900.0) == TimeLimits(80, 90)
    assert worker_limits(settings, 0.0).poll == TimeLimits(80, 90)


def test_longest_playbook_comes_from_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    import playbooks.base

    real = longest_playbook_s()
    assert real == playbooks.base.Catalog.load().longest_run_s() > 0

    class Old:
        """A catalog from before longest_run_s."""

    monkeypatch.setattr(playbooks.base.Catalog, "load", classmethod(lambda cls: Old()))
    assert longest_playbook_s() == FALLBACK_LONGEST_PLAYBOOK_S


# ---- retries -----------------------------------------------------------------------------


def test_only_transient_errors_are_retried_with_capped_jittered_backoff() -> None:
    task = _app().tasks[RUN_PLAYBOOK]
    assert task.autoretry_for == (TransientError,)
    assert task.max_retries == 5
    assert task.retry_backoff is True
    assert task.retry_backoff_max == 60
    assert task.retry_jitter is True
    assert issubclass(DeviceLocked, TransientError)
    for permanent in (PrecheckFailed, VerificationFailed):
        assert not issubclass(permanent, TransientError)
    for name in (COLLECT, DETECT, PING):
        assert not getattr(_app().tasks[name], "autoretry_for", ())


# ---- task ids and dispatch ---------------------------------------------------------------


def test_task_id_is_the_plan_hash_and_the_approval() -> None:
    plan = _plan()
    assert playbook_task_id(plan, "appr-42") == f"playbook-{plan.hash}-appr-42"
    assert playbook_task_id(plan, None) == f"playbook-{plan.hash}-auto"
    assert playbook_task_id(plan, "") == f"playbook-{plan.hash}-auto"
    # Same plan, same approval: same id, however often it is computed.
    assert playbook_task_id(_plan(), "appr-42") == playbook_task_id(plan, "appr-42")
    # A changed plan or another approval is another run.
    assert playbook_task_id(_plan(incident_id=8), "appr-42") != playbook_task_id(plan, "appr-42")
    assert playbook_task_id(plan, "appr-43") != playbook_task_id(plan, "appr-42")


def test_task_id_keeps_approval_references_tame() -> None:
    plan = _plan()
    task_id = playbook_task_id(plan, "alice@noc / ticket #7\n" + "x" * 200)
    reference = task_id.removeprefix(f"playbook-{plan.hash}-")
    assert re.fullmatch(r"[A-Za-z0-9_.-]{64}", reference)
    assert reference.startswith("alice_noc___ticket__7_")


def test_dispatch_sends_the_plan_to_remediate_under_its_task_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _app()
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append((name, kw)))
    plan = _plan()
    task_id = dispatch_plan(app, plan, approval="appr-42")
    assert task_id == playbook_task_id(plan, "appr-42")
    assert sent == [
        (
            RUN_PLAYBOOK,
            {
                "kwargs": {"plan": plan.model_dump(mode="json"), "approval": "appr-42"},
                "task_id": task_id,
                "queue": REMEDIATE_QUEUE,
            },
        )
    ]
    assert dispatch_plan(app, plan) == f"playbook-{plan.hash}-auto"
    assert sent[-1][1]["kwargs"]["approval"] is None


def test_dispatch_says_what_to_do_when_redis_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app()

    def refuse(name: str, **kw: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "send_task", refuse)
    plan = _plan()
    with pytest.raises(RedisUnavailable, match="AUTONOC_REDIS_URL") as caught:
        dispatch_plan(app, plan, approval="appr-42")
    assert playbook_task_id(plan, "appr-42") in str(caught.value)


# ---- beat --------------------------------------------------------------------------------


def test_beat_schedules_each_poll_interval_per_shard_and_detection() -> None:
    settings = Settings.load().model_copy(
        update={"collect": CollectSettings(intervals={"optics": 10, "interfaces": 30}, shards=2)}
    )
    schedule = collect_beat_schedule(settings)
    assert sorted(schedule) == [
        "collect interfaces shard 0/2",
        "collect interfaces shard 1/2",
        "collect optics shard 0/2",
        "collect optics shard 1/2",
    ]
    optics = schedule["collect optics shard 1/2"]
    assert optics["task"] == COLLECT and optics["schedule"] == 10.0
    assert optics["args"] == (["optics"], 1, 2)
    assert optics["options"] == {
        "queue": POLL_QUEUE,
        "expires": 10.0,
        "soft_time_limit": 30,
        "time_limit": 40,
    }
    assert detect_beat_schedule(settings) == {
        "detect": {
            "task": DETECT,
            "schedule": 10.0,
            "options": {"queue": DETECT_QUEUE, "expires": 10.0},
        }
    }
    app = _app(settings=settings)
    assert set(app.conf.beat_schedule) == {*schedule, "detect"}
    assert app.conf.beat_enable_remote_control is True


# ---- the commands ------------------------------------------------------------------------


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, autonoc_home: Path) -> list[list[str]]:
    """Celery command lines the CLI would run, instead of running them."""
    monkeypatch.setenv("AUTONOC_REDIS_URL", "redis://127.0.0.1:6379/0")
    argvs: list[list[str]] = []
    monkeypatch.setattr(Celery, "start", lambda self, argv=None: argvs.append(list(argv or [])))
    monkeypatch.setattr(worker_app, "running_beats", lambda app, timeout=1.0: [])
    return argvs


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_worker_serves_remediate_and_default_by_default(started: list[list[str]]) -> None:
    result = runner.invoke(cli, ["worker"])
    assert result.exit_code == 0, result.output
    [argv] = started
    assert argv[0] == "worker"
    assert _option(argv, "-Q") == "remediate,default"
    # prefork: the only pool where Celery enforces time limits.
    assert "--pool=prefork" in argv and "--concurrency=1" in argv
    assert _option(argv, "--hostname") == "autonoc-remediate-default@%h"
    assert "--beat" not in argv


def test_worker_queues_option_and_the_deprecated_flags(
    started: list[list[str]], autonoc_home: Path
) -> None:
    result = runner.invoke(cli, ["worker", "--queues", "poll, remediate", "-c", "4"])
    assert result.exit_code == 0, result.output
    assert _option(started[-1], "-Q") == "poll,remediate"
    assert "--concurrency=4" in started[-1]

    result = runner.invoke(cli, ["worker", "--collect", "--detect", "--beat"])
    assert result.exit_code == 0, result.output
    argv = started[-1]
    assert _option(argv, "-Q") == "remediate,default,poll,detect"
    assert _option(argv, "--schedule") == str(autonoc_home / "celerybeat-schedule")
    assert "--collect is deprecated; use --queues remediate,default,poll" in result.stderr
    assert "--detect is deprecated" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queues", "playbooks"], "unknown queue 'playbooks'; choose from poll, detect"),
        (["--queues", " , "], "choose from poll, detect, remediate, default"),
        (["--queues", "detect", "-c", "2"], "serve detect from its own"),
    ],
)
def test_worker_refuses_bad_queues_with_exit_2(
    started: list[list[str]], args: list[str], message: str
) -> None:
    result = runner.invoke(cli, ["worker", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert started == []


def test_worker_and_beat_need_the_redis_url(
    started: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTONOC_REDIS_URL")
    for command in ("worker", "beat"):
        result = runner.invoke(cli, [command])
        assert result.exit_code == 2
        assert "AUTONOC_REDIS_URL" in result.stderr
    assert started == []


def test_beat_runs_with_remote_control_and_its_schedule_file(
    started: list[list[str]], autonoc_home: Path
) -> None:
    result = runner.invoke(cli, ["beat"])
    assert result.exit_code == 0, result.output
    [argv] = started
    assert argv[0] == "beat"
    assert _option(argv, "--schedule") == str(autonoc_home / "celerybeat-schedule")
    assert "--enable-remote-control" in argv
    assert _option(argv, "--hostname") == "autonoc-beat@%h"


def test_a_second_beat_refuses_to_start(
    started: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_app, "running_beats", lambda app, timeout=1.0: ["autonoc-beat@a"])
    result = runner.invoke(cli, ["beat"])
    assert result.exit_code == 2
    assert "another beat is running (autonoc-beat@a)" in " ".join(result.stderr.split())
    assert started == []


def test_help_tells_an_operator_what_to_run() -> None:
    top = runner.invoke(cli, ["--help"])
    for command in ("worker", "beat", "audit"):
        assert command in top.output
    for command in ("worker", "beat"):
        text = " ".join(runner.invoke(cli, [command, "--help"], terminal_width=120).output.split())
        assert "autonoc beat exactly one" in text
        assert "autonoc worker --queues detect exactly one" in text
        assert "autonoc worker --queues poll -c 4 on each machine" in text
