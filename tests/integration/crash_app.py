"""The Celery app of the crash tests' worker subprocess: ``celery -A tests.integration.crash_app``.

It is autonoc's own app (:func:`worker.app.make_celery` from ``AUTONOC_*``
settings) with two test-only changes, made here and never in production code:

* a short broker visibility timeout (``AUTONOC_TEST_VISIBILITY_TIMEOUT``, s),
  swept every second, so a task whose worker was killed is redelivered in
  seconds rather than after the longest playbook's worst case;
* a pause point (``AUTONOC_TEST_PAUSE_AT``): when the engine reaches that step
  of a run, the worker writes ``$AUTONOC_HOME/paused-STEP`` and sleeps, so the
  test can ``kill -9`` it exactly there. The steps:

  ``prechecks``  before the prechecks read telemetry (journal: started)
  ``committed``  after the confirmed commit, before verification (committed)
  ``verifying``  after the first verification poll (committed)
  ``verified``   after verification passed, before the confirming commit (verified)
  ``confirmed``  after the confirming commit, before the run is recorded done (verified)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from autonoc.core.settings import Settings
from playbooks.engine import PlaybookEngine
from playbooks.netconf_session import ConfigSession
from worker.app import make_celery

PAUSE_ENV = "AUTONOC_TEST_PAUSE_AT"
VISIBILITY_ENV = "AUTONOC_TEST_VISIBILITY_TIMEOUT"
STEPS = ("prechecks", "committed", "verifying", "verified", "confirmed")


def marker(home: Path, step: str) -> Path:
    return home / f"paused-{step}"


def _pause(step: str) -> None:
    if os.environ.get(PAUSE_ENV) != step:
        return
    marker(Path(os.environ["AUTONOC_HOME"]), step).write_text(str(os.getpid()))
    time.sleep(600)  # the test kills this process here


def _install_pause_points() -> None:
    prechecks = PlaybookEngine._prechecks
    verify = PlaybookEngine.verify
    evaluate_all = PlaybookEngine._evaluate_all
    archive_good = PlaybookEngine._archive_good
    commit = ConfigSession.commit

    async def paused_prechecks(self: PlaybookEngine, *args: Any, **kwargs: Any) -> None:
        _pause("prechecks")
        await prechecks(self, *args, **kwargs)

    async def paused_verify(self: PlaybookEngine, plan: Any) -> Any:
        _pause("committed")
        return await verify(self, plan)

    async def paused_evaluate_all(
        self: PlaybookEngine, conditions: Any, spec: Any, *args: Any
    ) -> Any:
        checks = await evaluate_all(self, conditions, spec, *args)
        if conditions is spec.verify.conditions:
            _pause("verifying")
        return checks

    async def paused_archive_good(self: PlaybookEngine, *args: Any) -> None:
        _pause("confirmed")
        await archive_good(self, *args)

    def paused_commit(self: ConfigSession) -> None:
        _pause("verified")
        commit(self)

    PlaybookEngine._prechecks = paused_prechecks  # type: ignore[method-assign]
    PlaybookEngine.verify = paused_verify  # type: ignore[method-assign]
    PlaybookEngine._evaluate_all = paused_evaluate_all  # type: ignore[method-assign,assignment]
    PlaybookEngine._archive_good = paused_archive_good  # type: ignore[method-assign,assignment]
    ConfigSession.commit = paused_commit  # type: ignore[method-assign]


def _app() -> Any:
    settings = Settings.load()
    if settings.redis_url is None:
        raise RuntimeError("crash_app needs AUTONOC_REDIS_URL")
    app = make_celery(settings, settings.redis_url)
    app.conf.broker_transport_options = {
        "visibility_timeout": int(os.environ.get(VISIBILITY_ENV, "15")),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
    return app


_install_pause_points()
app = _app()
