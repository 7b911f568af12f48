"""``autonoc demo``: the closed loop, once, on the embedded simulated network.

Composition root for the demo: it starts (or connects to) Redis and the
database, the lab simulator on loopback, and a real Celery worker (serving
all four queues) and Celery beat as child processes, as a one-machine
installation runs them; then polls over SNMP, learns normal, injects a
fault, and lets the loop detect, diagnose, decide, act and verify.
Everything it starts, it stops, on success, failure or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from celery import Celery
from celery.result import AsyncResult
from celery.utils.nodenames import host_format
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from agents.graph import IncidentDeps, anomaly_to_dict, build_incident_graph
from agents.incidents import IncidentRepo
from agents.policy import PolicyGate
from autonoc.core import procs
from autonoc.core.audit import AuditLog
from autonoc.core.db import check_database, make_engine, upgrade
from autonoc.core.errors import AutonocError
from autonoc.core.inventory import Inventory, Role
from autonoc.core.redis import RedisEndpoint, redis_endpoint
from autonoc.core.settings import Autonomy, Settings
from autonoc.core.types import (
    ActionPlan,
    Anomaly,
    Incident,
    IncidentStatus,
    Sample,
    Severity,
    TimelineEvent,
)
from collectors.base import CollectRequest
from collectors.snmp import SnmpClient, poll_many
from collectors.snmp_groups import SnmpCollector
from collectors.store import SampleStore
from lab.network import LabNetwork
from lab.runner import LabRunner
from models.online import OnlineDetector
from playbooks.base import Catalog
from worker.app import BEAT_NODENAME, PING, QUEUES, dispatch_plan, make_celery

__all__ = ["DemoOutcome", "run_demo"]

Narrate = Callable[[str, str], None]

#: The fault the demo injects: someone shuts pe1's uplink by mistake.
DEMO_FAULT = ("pe1", "eth1")
DEMO_PLAYBOOK = "interface-enable"


@dataclass
class DemoOutcome:
    incident: Incident | None
    polls: int
    raw_anomalies: int
    seconds: float
    worker_log: Path
    notes: list[str] = field(default_factory=list)

    @property
    def resolved(self) -> bool:
        return self.incident is not None and self.incident.status is IncidentStatus.RESOLVED


class _CeleryDispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def dispatch(self, plan: ActionPlan, approval: str | None = None) -> str:
        return dispatch_plan(self.app, plan, approval)


def run_demo(settings: Settings, narrate: Narrate) -> DemoOutcome:
    """Run the closed loop once; returns how the incident ended.

    The demo grants ``interface-enable`` autonomy ``auto`` (the catalog's
    default is ``approve``) unless settings already say otherwise.
    """
    if DEMO_PLAYBOOK not in settings.policy.autonomy:
        autonomy = {**settings.policy.autonomy, DEMO_PLAYBOOK: Autonomy.AUTO}
        settings = settings.model_copy(
            update={"policy": settings.policy.model_copy(update={"autonomy": autonomy})}
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(redis_endpoint(settings))
        narrate(
            "setup",
            f"Redis: {endpoint.display} ({'embedded' if endpoint.embedded else 'external'})",
        )
        engine = make_engine(settings)
        stack.callback(engine.dispose)
        check_database(engine)
        upgrade(engine)
        narrate(
            "setup", f"database: {engine.url.render_as_string(hide_password=True)} (schema at head)"
        )

        lab = stack.enter_context(
            LabRunner(LabNetwork.preset("metro-ring"), host=settings.lab.host, base_port=0)
        )
        inventory_path = settings.home / "lab" / "inventory.yaml"
        lab.write_inventory(inventory_path)
        inventory = lab.inventory
        narrate(
            "setup",
            f"lab: metro-ring, {len(inventory.devices)} devices (routers, ROADMs, EDFAs, "
            f"transponders) serving SNMP v2c on {settings.lab.host} ports "
            f"{min(lab.ports.values())}-{max(lab.ports.values())}; "
            f"inventory at {inventory_path}",
        )

        worker_log = settings.home / "logs" / "worker.log"
        app = make_celery(settings, endpoint.url)
        env = _child_env(settings, endpoint, inventory_path)
        children = [
            stack.enter_context(_worker(env, worker_log, app, narrate)),
            stack.enter_context(_beat(env, settings.home / "logs" / "beat.log", app, narrate)),
        ]

        def worker_check() -> None:
            for child in children:
                child.check("mid-run")

        outcome = asyncio.run(
            _loop(settings, engine, inventory, lab, app, narrate, stack, worker_check)
        )
        outcome.worker_log = worker_log
        outcome.seconds = time.monotonic() - started
        return outcome
    raise AssertionError("unreachable")  # pragma: no cover


def _child_env(settings: Settings, endpoint: RedisEndpoint, inventory_path: Path) -> dict[str, str]:
    return {
        "AUTONOC_HOME": str(settings.home),
        "AUTONOC_REDIS_URL": endpoint.url,
        "AUTONOC_DATABASE_URL": settings.effective_database_url,
        "AUTONOC_INVENTORY": str(inventory_path),
        "AUTONOC_SNMP__TIMEOUT": str(settings.snmp.timeout),
        "AUTONOC_SNMP__RETRIES": str(settings.snmp.retries),
    }


#: How long a child process may take to answer its first ping.
_STARTUP_S = 60.0


@dataclass
class _Child:
    """A process the demo started, and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def check(self, when: str) -> None:
        if self.proc.poll() is not None:
            raise AutonocError(
                f"{self.name} exited with code {self.proc.returncode} {when}; see {self.log_path}"
            )

    def wait_ready(self, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + _STARTUP_S
        while not ready():
            self.check("before it was ready")
            if time.monotonic() > deadline:
                raise AutonocError(
                    f"{self.name} did not answer within {_STARTUP_S:.0f} s; see {self.log_path}"
                )
            time.sleep(0.2)


@contextlib.contextmanager
def _worker(env: dict[str, str], log_path: Path, app: Celery, narrate: Narrate) -> Iterator[_Child]:
    """``autonoc worker`` on every queue; ready once it answered a ping sent to each."""
    argv = [sys.executable, "-m", "autonoc", "worker", "--queues", ",".join(QUEUES)]
    child = _Child("the Celery worker", procs.spawn(argv, env=env, log_path=log_path), log_path)
    try:
        # A ping left unanswered (the worker died) expires instead of lingering in Redis.
        pings = [app.send_task(PING, queue=q, expires=_STARTUP_S) for q in QUEUES]
        child.wait_ready(lambda: all(p.ready() for p in pings))
        narrate(
            "setup",
            f"Celery worker pid {child.proc.pid} ready on queues {', '.join(QUEUES)} "
            f"(log {log_path})",
        )
        yield child
    finally:
        procs.stop(child.proc, timeout=10.0)


@contextlib.contextmanager
def _beat(env: dict[str, str], log_path: Path, app: Celery, narrate: Narrate) -> Iterator[_Child]:
    """``autonoc beat``; ready once it answers a remote-control ping."""
    argv = [sys.executable, "-m", "autonoc", "beat"]
    child = _Child("Celery beat", procs.spawn(argv, env=env, log_path=log_path), log_path)
    node = host_format(BEAT_NODENAME)
    try:
        child.wait_ready(lambda: bool(app.control.ping(destination=[node], timeout=1.0)))
        narrate(
            "setup",
            f"Celery beat pid {child.proc.pid} schedules polls and detection (log {log_path})",
        )
        yield child
    finally:
        procs.stop(child.proc, timeout=10.0)


@contextlib.contextmanager
def _checkpointer(settings: Settings) -> Iterator[BaseCheckpointSaver[Any]]:
    url = settings.effective_database_url
    if url.startswith(("postgresql", "postgres")):
        from langgraph.checkpoint.postgres import PostgresSaver

        plain = sa.engine.make_url(url).set(drivername="postgresql")
        with PostgresSaver.from_conn_string(plain.render_as_string(hide_password=False)) as saver:
            saver.setup()
            yield saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(settings.home / "checkpoints.sqlite3", check_same_thread=False)
    try:
        yield SqliteSaver(conn)
    finally:
        conn.close()


async def _loop(
    settings: Settings,
    engine: sa.Engine,
    inventory: Inventory,
    lab: LabRunner,
    app: Celery,
    narrate: Narrate,
    stack: contextlib.ExitStack,
    worker_check: Callable[[], None],
) -> DemoOutcome:
    snmp = SnmpClient(settings.snmp)
    collector = SnmpCollector(snmp)
    detector = OnlineDetector(warmup=settings.demo.warmup_polls)
    store = SampleStore(engine)
    incidents = IncidentRepo(engine)
    audit = AuditLog(engine)
    policy = PolicyGate(settings.policy)
    saver = stack.enter_context(_checkpointer(settings))
    graph = build_incident_graph(saver)

    def latest(devices: list[str]) -> dict[str, Any]:
        return {d: store.latest(d) for d in devices}

    deps = IncidentDeps(
        inventory=inventory,
        catalog=Catalog.load(),
        policy=policy,
        incidents=incidents,
        audit=audit,
        latest=latest,
        dispatcher=_CeleryDispatcher(app),
        narrate=narrate,
    )
    request = CollectRequest(("interfaces",))
    interval = settings.demo.poll_interval
    deadline = time.monotonic() + settings.demo.deadline
    outcome = DemoOutcome(None, 0, 0, 0.0, Path())
    incident_id: int | None = None
    config: RunnableConfig = {}
    waiting_task: str | None = None
    fault_injected = False
    suppressed = 0
    try:
        while time.monotonic() < deadline:
            cycle = time.monotonic()
            worker_check()
            results = await poll_many(
                collector, list(inventory.devices), request, settings.snmp.concurrency
            )
            outcome.polls += 1
            samples: list[Sample] = [s for r in results for s in r.samples]
            store.write(samples)
            for r in results:
                if r.failed:
                    narrate("poll", f"{r.device}: poll failed: {r.exception}")
            anomalies = [
                a
                for r in results
                if not r.failed
                if (a := detector.observe(r.device, r.samples)) is not None
            ]
            outcome.raw_anomalies += len(anomalies)
            # The skeleton's detector watches traffic rates: routers. Optical
            # shelves report status and levels it does not model yet.
            ready = all(detector.ready(d.name) for d in inventory.devices if d.role is Role.ROUTER)
            if not ready:
                narrate(
                    "learn",
                    f"poll {outcome.polls}: {len(samples)} samples stored; learning normal traffic",
                )
            elif not fault_injected:
                device, port = DEMO_FAULT
                lab.inject_admin_down(device, port)
                fault_injected = True
                narrate(
                    "fault",
                    f"injected: {device}:{port} administratively shut down "
                    f"(as if by a mistyped command)",
                )
            if anomalies and incident_id is None:
                incident_id = _open_incident(incidents, anomalies, narrate)
                for a in anomalies:
                    incidents.record_anomaly(a)
                config = {"configurable": {"thread_id": f"incident-{incident_id}"}}
                state = graph.invoke(
                    {
                        "incident_id": incident_id,
                        "anomalies": [anomaly_to_dict(a) for a in anomalies],
                    },
                    config,
                    context=deps,
                )
                waiting_task = _waiting_task(state, incidents, incident_id, narrate)
            elif anomalies:
                suppressed += len(anomalies)
            if waiting_task is not None:
                async_result: AsyncResult[Any] = AsyncResult(waiting_task, app=app)
                if async_result.ready():
                    if async_result.failed():
                        payload: Any = _failed_result(async_result)
                    else:
                        payload = async_result.get(timeout=5)
                    state = graph.invoke(Command(resume=payload), config, context=deps)
                    waiting_task = _waiting_task(state, incidents, incident_id, narrate)
            if incident_id is not None and waiting_task is None:
                incident = incidents.get(incident_id)
                if incident.status.closed or incident.status is IncidentStatus.AWAITING_APPROVAL:
                    outcome.incident = incident
                    break
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - cycle)))
        else:
            outcome.notes.append(f"gave up after {settings.demo.deadline:.0f} s")
            if incident_id is not None:
                outcome.incident = incidents.get(incident_id)
    finally:
        snmp.close()
    if suppressed:
        outcome.notes.append(f"{suppressed} further anomalies folded into the open incident")
    return outcome


def _open_incident(repo: IncidentRepo, anomalies: list[Anomaly], narrate: Narrate) -> int:
    top = max(anomalies, key=lambda a: a.score)
    where = ", ".join(
        f"{a.device}:{a.top.instance} {a.top.metric}" if a.top else a.device for a in anomalies
    )
    incident = Incident(
        title=f"anomalous telemetry on {', '.join(sorted({a.device for a in anomalies}))}",
        device=top.device,
        instance=top.top.instance if top.top else "",
        severity=Severity.MAJOR,
        timeline=[
            TimelineEvent(
                kind="detected",
                message=f"{len(anomalies)} anomalies (max score {top.score:.1f} > threshold "
                f"{top.threshold:.1f}): {where}",
                data={"anomalies": [anomaly_to_dict(a) for a in anomalies]},
            )
        ],
    )
    incident_id = repo.create(incident)
    narrate("detected", f"incident {incident_id}: {incident.timeline[0].message}")
    return incident_id


def _waiting_task(
    state: dict[str, Any], repo: IncidentRepo, incident_id: int | None, narrate: Narrate
) -> str | None:
    for pending in state.get("__interrupt__", ()):
        value = pending.value
        if value.get("kind") == "await_task":
            return str(value["task_id"])
        if value.get("kind") == "approval" and incident_id is not None:
            repo.update(incident_id, status=IncidentStatus.AWAITING_APPROVAL)
            narrate(
                "approval",
                f"incident {incident_id} waits for an approval of plan {value['plan_hash']}",
            )
    return None


def _failed_result(async_result: AsyncResult[Any]) -> dict[str, Any]:
    from autonoc.core.types import ActionResult

    return ActionResult(
        plan_hash="",
        playbook="",
        device="",
        ok=False,
        error=f"worker task failed: {async_result.result!r}",
    ).model_dump(mode="json")
