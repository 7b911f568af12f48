"""What the run-playbook task does: compose the engine from settings and run one plan."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import structlog

from autonoc.core.audit import AuditLog
from autonoc.core.db import make_engine
from autonoc.core.errors import ConfigError
from autonoc.core.settings import Settings
from autonoc.core.types import ActionPlan, ActionResult
from collectors.inventory import load_inventory
from collectors.snmp import SnmpClient, SnmpInterfaceCollector
from playbooks.base import Catalog
from playbooks.engine import PlaybookEngine
from worker.locks import RedisDeviceLock

__all__ = ["execute_plan"]

log = structlog.get_logger(__name__)


def execute_plan(settings: Settings, redis_url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Validate a plan that crossed the broker, run it, and return its ActionResult as JSON."""
    plan = ActionPlan.model_validate(payload)
    if settings.inventory is None:
        raise ConfigError("the worker has no inventory: set AUTONOC_INVENTORY=path/inventory.yaml")
    structlog.contextvars.bind_contextvars(plan_hash=plan.hash, device=plan.device)
    try:
        inventory = load_inventory(settings.inventory)
        db = make_engine(settings)
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=5)
        result = asyncio.run(_run(settings, inventory, db, client, plan))
        log.info(
            "playbook_done",
            playbook=plan.playbook,
            ok=result.ok,
            changed=result.changed,
            rolled_back=result.rolled_back,
        )
        db.dispose()
        client.close()
        return result.model_dump(mode="json")
    finally:
        structlog.contextvars.unbind_contextvars("plan_hash", "device")


async def _run(
    settings: Settings, inventory: Any, db: Any, client: redis.Redis, plan: ActionPlan
) -> ActionResult:
    snmp = SnmpClient(settings.snmp)
    try:
        engine = PlaybookEngine(
            catalog=Catalog.load(),
            inventory=inventory,
            snmp=snmp,
            collector_factory=lambda: SnmpInterfaceCollector(snmp),
            lock=RedisDeviceLock(client),
            audit=AuditLog(db),
        )
        return await engine.apply(plan)
    finally:
        snmp.close()
