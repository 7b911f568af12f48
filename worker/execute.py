"""What the run-playbook task does: compose the engine from settings and run one plan."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import sqlalchemy as sa
import structlog
from celery.exceptions import SoftTimeLimitExceeded

from autonoc.core.audit import AuditLog
from autonoc.core.db import make_engine
from autonoc.core.errors import ConfigError
from autonoc.core.inventory import Inventory
from autonoc.core.settings import Settings
from autonoc.core.types import ActionPlan, ActionResult
from collectors.inventory import load_inventory
from collectors.netconf import NetconfCollector, NetconfSessionPool
from collectors.snmp import SnmpClient
from collectors.snmp_groups import SnmpCollector
from playbooks.base import Catalog
from playbooks.engine import CollectorTelemetry, PlaybookEngine
from playbooks.journal import ConfigArchive, RunJournal, TicketBook
from playbooks.platforms import Platforms
from worker.locks import RedisDeviceLock

__all__ = ["PlaybookRunner", "build_engine"]

log = structlog.get_logger(__name__)


class PlaybookRunner:
    """Runs plans for one worker process.

    The database engine and the Redis client (for device locks) are made once
    per process, on first use, and shared by every task; the inventory and the
    catalog are read per task, so edits to them apply to the next plan.
    """

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self._db: sa.Engine | None = None
        self._redis: redis.Redis | None = None

    def execute(
        self, payload: dict[str, Any], *, run_id: str, approval: str | None = None
    ) -> dict[str, Any]:
        """Validate a plan that crossed the broker, run it, return its ActionResult as JSON.

        Args:
            run_id: the idempotency key: the task id, kept by a redelivered task.
            approval: the approval reference the plan runs under (audited).

        Raises:
            TransientError: nothing was changed and the task should retry (device locked).
        """
        plan = ActionPlan.model_validate(payload)
        if self.settings.inventory is None:
            raise ConfigError(
                "the worker has no inventory: set AUTONOC_INVENTORY=path/inventory.yaml"
            )
        if self._db is None:
            self._db = make_engine(self.settings)
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.redis_url, socket_connect_timeout=5)
        structlog.contextvars.bind_contextvars(plan_hash=plan.hash, device=plan.device)
        try:
            inventory = load_inventory(self.settings.inventory)
            try:
                result = asyncio.run(
                    self._run(inventory, self._db, self._redis, plan, run_id, approval)
                )
            except SoftTimeLimitExceeded:
                # Out of time: the NETCONF session is closed by now (the device reverts
                # an unconfirmed commit by itself). Run the same run id once more: the
                # journal sends it down the recovery path, which puts back SNMP values
                # and ends the run rolled back, before the hard limit kills the process.
                log.warning("playbook_time_limit", playbook=plan.playbook, run_id=run_id)
                result = asyncio.run(
                    self._run(inventory, self._db, self._redis, plan, run_id, approval)
                )
            log.info(
                "playbook_done",
                playbook=plan.playbook,
                ok=result.ok,
                changed=result.changed,
                rolled_back=result.rolled_back,
            )
            return result.model_dump(mode="json")
        finally:
            structlog.contextvars.unbind_contextvars("plan_hash", "device")

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
        if self._redis is not None:
            self._redis.close()
        self._db = self._redis = None

    async def _run(
        self,
        inventory: Inventory,
        db: sa.Engine,
        client: redis.Redis,
        plan: ActionPlan,
        run_id: str,
        approval: str | None,
    ) -> ActionResult:
        snmp = SnmpClient(self.settings.snmp)
        pool = NetconfSessionPool(workers=2)
        try:
            engine = build_engine(inventory, db, client, snmp, pool)
            return await engine.apply(plan, run_id=run_id, approval=approval)
        finally:
            await pool.aclose()
            snmp.close()


def build_engine(
    inventory: Inventory,
    db: sa.Engine,
    client: redis.Redis,
    snmp: SnmpClient,
    pool: NetconfSessionPool,
    *,
    actor: str = "worker",
) -> PlaybookEngine:
    """The playbook engine on these clients: the catalog and platform data read now."""
    catalog = Catalog.load()
    return PlaybookEngine(
        catalog=catalog,
        platforms=Platforms.load(),
        inventory=inventory,
        snmp=snmp,
        telemetry=lambda: CollectorTelemetry(
            {"snmp": SnmpCollector(snmp), "netconf": NetconfCollector(pool)}
        ),
        lock=RedisDeviceLock(client, ttl=catalog.longest_run_s()),
        audit=AuditLog(db),
        journal=RunJournal(db),
        archive=ConfigArchive(db),
        tickets=TicketBook(db),
        actor=actor,
    )
