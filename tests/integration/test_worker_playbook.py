"""A real Celery worker (celery.contrib.testing, not eager) runs a playbook
against the lab over SNMP, on the embedded and the external Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker

from autonoc.core.audit import AuditLog
from autonoc.core.db import make_engine
from autonoc.core.errors import DeviceLocked
from autonoc.core.types import ActionPlan, ActionResult
from lab.network import LabNetwork
from lab.runner import LabRunner
from playbooks.base import Catalog
from tests.integration.conftest import Backend
from worker.app import PLAYBOOK_QUEUE, RUN_PLAYBOOK, make_celery
from worker.locks import RedisDeviceLock


@pytest.fixture
def lab() -> Iterator[LabRunner]:
    with LabRunner(LabNetwork.preset("ring4")) as runner:
        yield runner


def _plan(interface: str = "eth1") -> ActionPlan:
    spec = Catalog.load().get("interface-enable")
    params = spec.validate_params({"interface": interface, "verify_within_s": 10})
    return ActionPlan(playbook=spec.name, device="pe1", target=interface, params=params)


def _run(backend: Backend, lab: LabRunner, tmp_path: Path, plan: ActionPlan) -> ActionResult:
    inventory = tmp_path / "inventory.yaml"
    lab.write_inventory(inventory)
    settings = backend.settings().model_copy(update={"inventory": inventory})
    app = make_celery(settings, backend.redis_url)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        async_result = app.send_task(
            RUN_PLAYBOOK, args=[plan.model_dump(mode="json")], queue=PLAYBOOK_QUEUE
        )
        return ActionResult.model_validate(async_result.get(timeout=60))


def test_worker_brings_the_interface_back_and_verifies(
    backend: Backend, lab: LabRunner, tmp_path: Path
) -> None:
    lab.inject_admin_down("pe1", "eth1")
    plan = _plan()
    result = _run(backend, lab, tmp_path, plan)
    assert result.ok and result.changed and not result.rolled_back, result
    assert result.verdict is not None and result.verdict.passed
    state = lab.network.interface("pe1", "eth1")
    assert (state.admin_up, state.oper_up) == (True, True)
    engine = make_engine(backend.settings())
    try:
        actions = [e.action for e in AuditLog(engine).entries(subject="pe1:eth1")]
    finally:
        engine.dispose()
    assert {"playbook_started", "snmp_set", "playbook_finished"} <= set(actions)

    again = _run(backend, lab, tmp_path, plan)
    assert again.ok and not again.changed  # idempotent: the second run changes nothing


def test_unknown_interface_is_a_result_not_a_crash(
    backend: Backend, lab: LabRunner, tmp_path: Path
) -> None:
    result = _run(backend, lab, tmp_path, _plan("eth99"))
    assert not result.ok and not result.changed
    assert result.error is not None and "eth99" in result.error


def test_device_lock_is_exclusive(backend: Backend) -> None:
    client = redis.Redis.from_url(backend.redis_url)
    first = RedisDeviceLock(client, ttl=30, wait=0.1)
    second = RedisDeviceLock(client, ttl=30, wait=0.1)
    with first.hold("pe9"), pytest.raises(DeviceLocked, match="pe9"), second.hold("pe9"):
        pass
    with second.hold("pe9"):  # released: free again
        pass
    client.close()
