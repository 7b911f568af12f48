"""The playbook engine: precheck → apply → verify → (rollback), audited.

Actions are the catalog's typed operations, rendered here per protocol. The
engine holds a per-device lock for the whole change so two playbooks never
touch one device at once, reads before it writes so applying a plan twice
changes the device once, and rolls back when verification fails.

SNMP SET has no confirmed commit; this engine's rollback is explicit. NETCONF
candidate + confirmed-commit arrives with the NETCONF playbooks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from autonoc.core.errors import (
    AutonocError,
    DeviceError,
    PlaybookError,
    PlaybookValidationError,
    PrecheckFailed,
)
from autonoc.core.inventory import Device, Inventory
from autonoc.core.types import ActionPlan, ActionResult, Check, StepResult, Verdict, utcnow
from collectors.base import Collector, CollectRequest
from playbooks.base import ActionStep, Catalog, Condition, PlaybookSpec

__all__ = ["AuditSink", "DeviceLock", "PlaybookEngine", "SnmpOps", "render_step"]

IF_NAME_OID = "1.3.6.1.2.1.31.1.1.1.1"

#: Writable objects the catalog may name, with their value enumerations.
SNMP_WRITABLE: dict[str, tuple[str, dict[str, int]]] = {
    "ifAdminStatus": ("1.3.6.1.2.1.2.2.1.7", {"up": 1, "down": 2}),
}


class SnmpOps(Protocol):
    async def walk(self, device: Device, root_oids: Sequence[str]) -> dict[str, Any]: ...

    async def get(self, device: Device, oids: Sequence[str]) -> dict[str, Any]: ...

    async def set(self, device: Device, oid: str, value: int, *, write: bool = True) -> None: ...


class DeviceLock(Protocol):
    def hold(self, device: str) -> AbstractContextManager[None]:
        """Hold ``device`` exclusively; raises DeviceLocked if another holder has it."""
        ...


class AuditSink(Protocol):
    def append(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> int: ...


def render_step(step: ActionStep, device: str, target: str) -> str:
    """A person-readable rendering of one step (dry-run and audit)."""
    base, values = SNMP_WRITABLE[step.object]
    return (
        f"SNMP SET {device} IF-MIB::{step.object}.<ifIndex of {target}> ({base}.N) "
        f"= {values[step.value]} ({step.value})"
    )


class PlaybookEngine:
    """Runs catalog playbooks against inventory devices over SNMP.

    Args:
        catalog: the playbooks that may run.
        inventory: resolves plan targets to devices.
        snmp: SNMP client used for reads and SETs.
        collector_factory: a fresh collector per verification (so rates span only it).
        lock: per-device exclusive lock.
        audit: append-only audit log.
        actor: who acts, as recorded in the audit log.
    """

    def __init__(
        self,
        catalog: Catalog,
        inventory: Inventory,
        snmp: SnmpOps,
        collector_factory: Callable[[], Collector],
        lock: DeviceLock,
        audit: AuditSink,
        *,
        actor: str = "worker",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.inventory = inventory
        self.snmp = snmp
        self.collector_factory = collector_factory
        self.lock = lock
        self.audit = audit
        self.actor = actor
        self._sleep = sleep
        self._clock = clock

    # ---- planning -------------------------------------------------------------

    def plan(
        self,
        playbook: str,
        device: str,
        target: str,
        params: dict[str, Any],
        incident_id: int | None = None,
        rationale: str = "",
    ) -> ActionPlan:
        """A validated plan: known playbook, inventory device of an allowed role, typed params."""
        spec = self.catalog.get(playbook)
        dev = self._device(device)
        if dev.role.value not in spec.roles:
            raise PlaybookValidationError(
                f"{playbook} applies to roles {list(spec.roles)}, not {device} ({dev.role})"
            )
        checked = spec.validate_params(params)
        if target != checked.get("interface", target):
            raise PlaybookValidationError(f"{playbook}: target {target!r} != interface param")
        return ActionPlan(
            playbook=playbook,
            device=device,
            target=target,
            params=checked,
            incident_id=incident_id,
            rationale=rationale,
        )

    def dry_run(self, plan: ActionPlan) -> list[str]:
        """What ``apply`` would do, rendered; changes nothing."""
        spec = self._check(plan)
        lines = [f"precheck: {_describe(c, spec, plan.params)}" for c in spec.prechecks]
        lines += [f"action: {render_step(s, plan.device, plan.target)}" for s in spec.actions]
        lines += [f"verify: {_describe(c, spec, plan.params)}" for c in spec.verify.conditions]
        lines += [f"rollback: {render_step(s, plan.device, plan.target)}" for s in spec.rollback]
        return lines

    # ---- execution ------------------------------------------------------------

    async def apply(self, plan: ActionPlan) -> ActionResult:
        """Precheck, act, verify, and roll back if verification fails.

        Device and playbook failures come back in the result; they do not raise.
        """
        started = utcnow()
        result = ActionResult(
            plan_hash=plan.hash,
            playbook=plan.playbook,
            device=plan.device,
            ok=False,
            started_at=started,
        )
        try:
            spec = self._check(plan)
            self._audit("playbook_started", plan, {"plan": plan.model_dump(mode="json")})
            with self.lock.hold(plan.device):
                await self._prechecks(spec, plan, result)
                await self._run_steps(spec.actions, plan, result)
                result.verdict = await self.verify(plan)
                if result.verdict.passed:
                    result.ok = True
                elif result.changed:
                    result.steps += await self.rollback(plan)
                    result.rolled_back = True
        except (PlaybookError, DeviceError) as exc:
            result.error = str(exc)
            if result.changed and not result.rolled_back:
                result.steps += await self._safe_rollback(plan)
                result.rolled_back = True
        result.finished_at = utcnow()
        self._audit(
            "playbook_finished",
            plan,
            {
                "ok": result.ok,
                "changed": result.changed,
                "rolled_back": result.rolled_back,
                "error": result.error,
                "verdict": result.verdict.model_dump(mode="json") if result.verdict else None,
            },
        )
        return result

    async def verify(self, plan: ActionPlan) -> Verdict:
        """Poll fresh telemetry until every condition holds or the time runs out."""
        spec = self._check(plan)
        within = spec.resolve(spec.verify.within_s, plan.params) or 30.0
        device = self._device(plan.device)
        collector = self.collector_factory()
        deadline = self._clock() + within
        checks: list[Check] = []
        while True:
            values = await self._component_values(collector, device, plan.target)
            checks = [_evaluate(c, spec, plan.params, values) for c in spec.verify.conditions]
            if all(c.passed for c in checks) or self._clock() >= deadline:
                break
            await self._sleep(spec.verify.interval_s)
        return Verdict(passed=all(c.passed for c in checks), checks=checks)

    async def rollback(self, plan: ActionPlan) -> list[StepResult]:
        spec = self._check(plan)
        scratch = ActionResult(
            plan_hash=plan.hash, playbook=plan.playbook, device=plan.device, ok=False
        )
        await self._run_steps(spec.rollback, plan, scratch, prefix="rollback")
        self._audit("playbook_rolled_back", plan, {"steps": [s.name for s in scratch.steps]})
        return scratch.steps

    async def _safe_rollback(self, plan: ActionPlan) -> list[StepResult]:
        try:
            return await self.rollback(plan)
        except AutonocError as exc:
            return [StepResult(name="rollback", ok=False, detail=str(exc))]

    async def _prechecks(self, spec: PlaybookSpec, plan: ActionPlan, result: ActionResult) -> None:
        if not spec.prechecks:
            return
        device = self._device(plan.device)
        values = await self._component_values(self.collector_factory(), device, plan.target)
        for cond in spec.prechecks:
            check = _evaluate(cond, spec, plan.params, values)
            result.steps.append(
                StepResult(name=f"precheck {check.name}", ok=check.passed, detail=check.observed)
            )
            if not check.passed:
                raise PrecheckFailed(
                    f"{plan.playbook} on {plan.device}: precheck '{check.name}' does not hold "
                    f"(observed {check.observed}); nothing was changed"
                )

    async def _run_steps(
        self,
        steps: Sequence[ActionStep],
        plan: ActionPlan,
        result: ActionResult,
        prefix: str = "action",
    ) -> None:
        device = self._device(plan.device)
        if_index = await self._if_index(device, plan.target)
        for step in steps:
            base, values = SNMP_WRITABLE[step.object]
            oid = f"{base}.{if_index}"
            desired = values[step.value]
            current = (await self.snmp.get(device, [oid])).get(oid)
            name = f"{prefix} {step.object}={step.value}"
            if current is not None and _as_int(current) == desired:
                result.steps.append(StepResult(name=name, ok=True, detail="already set; no change"))
                continue
            await self.snmp.set(device, oid, desired)
            result.changed = True
            result.steps.append(StepResult(name=name, ok=True, detail=f"SET {oid} = {desired}"))
            self._audit("snmp_set", plan, {"oid": oid, "value": desired, "was": _as_int(current)})

    async def _if_index(self, device: Device, ifname: str) -> int:
        names = await self.snmp.walk(device, [IF_NAME_OID])
        for oid, value in names.items():
            if str(value) == ifname:
                return int(oid.rsplit(".", 1)[1])
        raise PrecheckFailed(f"{device.name} has no interface named {ifname!r} (ifName walk)")

    async def _component_values(
        self, collector: Collector, device: Device, instance: str
    ) -> dict[str, float]:
        result = await collector.collect(device, CollectRequest(("interfaces",)))
        result.raise_for_status()
        return {s.metric: s.value for s in result.samples if s.instance in (instance, "")}

    def _check(self, plan: ActionPlan) -> PlaybookSpec:
        """Re-validate a plan that crossed a process boundary."""
        spec = self.catalog.get(plan.playbook)
        replanned = self.plan(
            plan.playbook, plan.device, plan.target, plan.params, plan.incident_id, plan.rationale
        )
        if replanned.hash != plan.hash:
            raise PlaybookValidationError("plan does not survive re-validation; refusing it")
        return spec

    def _device(self, name: str) -> Device:
        try:
            return self.inventory.device(name)
        except KeyError:
            raise PlaybookValidationError(f"device {name!r} is not in the inventory") from None

    def _audit(self, action: str, plan: ActionPlan, details: dict[str, Any]) -> None:
        self.audit.append(
            self.actor,
            action,
            f"{plan.device}:{plan.target}",
            {"plan_hash": plan.hash, "playbook": plan.playbook, **details},
        )


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _describe(cond: Condition, spec: PlaybookSpec, params: dict[str, Any]) -> str:
    op, ref = _comparison(cond)
    return f"{cond.metric} {op} {spec.resolve(ref, params):g}" + (
        f" ({cond.description})" if cond.description else ""
    )


def _comparison(cond: Condition) -> tuple[str, float | str | None]:
    if cond.equals is not None:
        return "==", cond.equals
    if cond.at_least is not None:
        return ">=", cond.at_least
    return "<=", cond.at_most


def _evaluate(
    cond: Condition, spec: PlaybookSpec, params: dict[str, Any], values: dict[str, float]
) -> Check:
    op, ref = _comparison(cond)
    bound = spec.resolve(ref, params)
    name = cond.description or f"{cond.metric} {op} {bound:g}"
    if cond.metric not in values or bound is None:
        return Check(name=name, passed=False, observed=f"{cond.metric} not observed yet")
    value = values[cond.metric]
    passed = {"==": value == bound, ">=": value >= bound, "<=": value <= bound}[op]
    return Check(name=name, passed=passed, observed=f"{cond.metric}={value:g}")
