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
from worker.app import dispatch_plan, make_celery
from worker.locks import RedisDeviceLock


@pytest.fixture
def lab() -> Iterator[LabRunner]:
    with LabRunner(LabNetwork.preset("ring4")) as runner:
        yield runner


def _plan(interface: str = "eth1") -> ActionPlan:
    spec = Catalog.load().get("interface-enable")
    params = spec.validate_params({"interface": interface, "verify_within_s": 10})
    return ActionPlan(playbook=spec.name, device="pe1", target=interface, params=params)


def _run(
    backend: Backend, lab: LabRunner, tmp_path: Path, plan: ActionPlan, approval: str | None = None
) -> ActionResult:
    inventory = tmp_path / "inventory.yaml"
    lab.write_inventory(inventory)
    settings = backend.settings().model_copy(update={"inventory": inventory})
    app = make_celery(settings, backend.redis_url)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        task_id = dispatch_plan(app, plan, approval=approval)
        return ActionResult.model_validate(app.AsyncResult(task_id).get(timeout=60))


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

    # The same task again (a redelivery, or a second dispatch under the same
    # approval): the same run, its stored result, and no second SET.
    same = _run(backend, lab, tmp_path, plan)
    assert same.model_dump(exclude={"finished_at"}) == result.model_dump(exclude={"finished_at"})
    # The same plan under another approval: a new run that finds it applied.
    again = _run(backend, lab, tmp_path, plan, approval="operator-2")
    assert again.ok and not again.changed
    engine = make_engine(backend.settings())
    try:
        sets = [e for e in AuditLog(engine).entries(subject="pe1:eth1") if e.action == "snmp_set"]
    finally:
        engine.dispose()
    assert len(sets) == 1


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
    with (
        first.hold("pe9", "run-a"),
        pytest.raises(DeviceLocked, match="pe9"),
        second.hold("pe9", "run-b"),
    ):
        pass
    with second.hold("pe9", "run-b"):  # released: free again
        pass
    client.close()


def test_a_redelivered_run_takes_its_own_lock_over(backend: Backend) -> None:
    """A worker killed inside the lock leaves it held; its own run, redelivered, goes on."""
    client = redis.Redis.from_url(backend.redis_url)
    lock = RedisDeviceLock(client, ttl=300, wait=0.1)
    client.set(RedisDeviceLock.key("pe8"), "run-dead", px=300_000)  # what the dead worker left
    try:
        with pytest.raises(DeviceLocked), lock.hold("pe8", "run-other"):
            pass
        with lock.hold("pe8", "run-dead"):
            assert lock.holder("pe8") == "run-dead"
        assert lock.holder("pe8") is None
    finally:
        client.delete(RedisDeviceLock.key("pe8"))
        client.close()
