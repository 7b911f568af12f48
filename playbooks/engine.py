"""The playbook engine: dry-run, apply (precheck → change → verify → confirm), rollback.

Every run is journaled (:mod:`playbooks.journal`) under its run id, the Celery
task id, and audited. The shape of a run::

    lock device (Redis, owned by the run id)
    prechecks on fresh telemetry             fail: nothing changed, run failed
    read the values the actions will change  (the journal keeps them: "before")
    NETCONF: lock candidate, discard, edit, commit confirmed (timeout > verify time)
    SNMP:    SET, after reading the current value (no confirmed commit: explicit restore)
    RPCs (restart a process), tickets, waits
    verify on fresh telemetry                pass: confirming <commit/>, archive the good config
                                             fail: <cancel-commit/> (device reverts), SNMP restore

Idempotent: a leaf already at its desired value is not written; a plan whose
run already finished verified is not applied again (its result is returned);
a redelivered run whose worker died mid-change never re-applies: the lost
NETCONF session made the device revert its confirmed commit, and the engine
makes sure of that (or restores what SNMP changed) and ends the run rolled back.
"""

from __future__ import annotations

import asyncio
import difflib
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from lxml import etree

from autonoc.core.errors import (
    AutonocError,
    DeviceError,
    DeviceRejected,
    PlaybookError,
    PlaybookValidationError,
    PrecheckFailed,
)
from autonoc.core.inventory import Device, Inventory
from autonoc.core.types import ActionPlan, ActionResult, Check, StepResult, Verdict, utcnow
from collectors.base import Collector, CollectRequest
from collectors.scheduler import GROUP_PROTOCOLS, ROLE_GROUPS
from playbooks.base import (
    CONFIG_OPS,
    Action,
    AdjustAmplifierGain,
    AdjustTxPower,
    BounceInterface,
    Catalog,
    Condition,
    OpenTicket,
    PlaybookSpec,
    Restore,
    RestoreConfig,
    SetBgpNeighborEnabled,
    SetIgpMetric,
    SetInterfaceEnabled,
    SetProtection,
    Wait,
)
from playbooks.frr import FrrSetting, NetnsVtysh, VtyshDriver
from playbooks.journal import ConfigArchive, RunJournal, RunState, TicketBook
from playbooks.netconf_session import ConfigSession, xml_text
from playbooks.platforms import (
    FrrVtysh,
    NetconfConfig,
    NetconfLeaf,
    NetconfRpc,
    Platforms,
    PlatformSpec,
    Rendering,
    SnmpLeaf,
)

__all__ = [
    "AuditSink",
    "CollectorTelemetry",
    "DeviceLock",
    "DryRun",
    "PlaybookEngine",
    "SnmpOps",
    "Telemetry",
]

log = structlog.get_logger(__name__)

Element = Any
IF_NAME_OID = "1.3.6.1.2.1.31.1.1.1.1"


class SnmpOps(Protocol):
    async def walk(self, device: Device, root_oids: Sequence[str]) -> dict[str, Any]: ...

    async def get(self, device: Device, oids: Sequence[str]) -> dict[str, Any]: ...

    async def set(self, device: Device, oid: str, value: int, *, write: bool = True) -> None: ...


class DeviceLock(Protocol):
    def hold(self, device: str, owner: str) -> AbstractContextManager[None]:
        """Hold ``device`` for ``owner`` (a run id); raises DeviceLocked if another holds it."""
        ...


class AuditSink(Protocol):
    def append(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> int: ...


class Telemetry(Protocol):
    async def read(self, device: Device) -> dict[tuple[str, str], float]:
        """Fresh values by (metric, instance); rates appear from the second read."""
        ...


class CollectorTelemetry:
    """Fresh telemetry from the collectors, over the protocols the device enables.

    One instance per verification, so rates span only its own reads.
    """

    def __init__(self, collectors: dict[str, Collector]) -> None:
        self.collectors = collectors

    async def read(self, device: Device) -> dict[tuple[str, str], float]:
        plan: dict[str, list[str]] = {}
        for group in ROLE_GROUPS.get(device.role, ()):
            if group == "inventory":
                continue
            for protocol in GROUP_PROTOCOLS.get(group, ()):
                enabled = device.snmp if protocol == "snmp" else device.netconf
                if protocol in self.collectors and enabled is not None:
                    plan.setdefault(protocol, []).append(group)
                    break
        values: dict[tuple[str, str], float] = {}
        for protocol, groups in plan.items():
            result = await self.collectors[protocol].collect(device, CollectRequest(tuple(groups)))
            result.raise_for_status()
            for s in result.samples:
                values[(s.metric, s.instance)] = s.value
        return values


@dataclass
class DryRun:
    """What ``apply`` would do, rendered, and the configuration diff against running."""

    plan: ActionPlan
    steps: list[str]
    diff: list[str]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.model_dump(mode="json"),
            "plan_hash": self.plan.hash,
            "steps": self.steps,
            "diff": self.diff,
            "notes": self.notes,
        }


@dataclass
class _Leaf:
    """One configuration value an action sets, read before and desired after."""

    op: str
    rendering: NetconfLeaf | SnmpLeaf | FrrVtysh
    where: dict[str, str]
    path: str
    before: str | int | None = None
    after: str | int | None = None
    oid: str | None = None

    @property
    def key(self) -> str:
        return self.oid or self.path

    def as_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "protocol": self.rendering.protocol,
            "path": self.key,
            "before": self.before,
            "after": self.after,
        }


@dataclass
class _Change:
    """Everything one run does to one device, resolved against its current state."""

    leaves: list[_Leaf] = field(default_factory=list)
    restore_config: str | None = None  # the whole configuration to put in place (XML)
    running_config: str | None = None  # the whole configuration before, when replacing it

    @property
    def netconf_leaves(self) -> list[_Leaf]:
        return [x for x in self.leaves if isinstance(x.rendering, NetconfLeaf)]

    @property
    def snmp_leaves(self) -> list[_Leaf]:
        return [x for x in self.leaves if isinstance(x.rendering, SnmpLeaf)]

    @property
    def frr_leaves(self) -> list[_Leaf]:
        return [x for x in self.leaves if isinstance(x.rendering, FrrVtysh)]

    @property
    def pending(self) -> list[_Leaf]:
        return [x for x in self.leaves if x.before != x.after]

    @property
    def uses_netconf(self) -> bool:
        return bool(self.netconf_leaves) or self.restore_config is not None

    def config_differs(self) -> bool:
        return self.restore_config is not None and self.restore_config != self.running_config


class PlaybookEngine:
    """Runs catalog playbooks against inventory devices over NETCONF and SNMP.

    Args:
        catalog: the playbooks that may run.
        platforms: how each operation is rendered per device platform.
        inventory: resolves plan devices.
        snmp: SNMP client for ifIndex lookups, reads and SETs.
        telemetry: a fresh :class:`Telemetry` per precheck or verification.
        lock: per-device exclusive lock.
        audit: append-only audit log.
        journal, archive, tickets: the engine's records in the database.
        netconf: opens a :class:`ConfigSession` for a device (tests pass another).
        vtysh: reaches FRR's ``vtysh`` for ``frr-vtysh`` renderings (default: FRR
            instances on this host found by their ``netns:NAME`` inventory tag).
    """

    def __init__(
        self,
        catalog: Catalog,
        platforms: Platforms,
        inventory: Inventory,
        snmp: SnmpOps,
        telemetry: Callable[[], Telemetry],
        lock: DeviceLock,
        audit: AuditSink,
        journal: RunJournal,
        archive: ConfigArchive,
        tickets: TicketBook,
        *,
        netconf: Callable[[Device], ConfigSession] = ConfigSession,
        vtysh: VtyshDriver | None = None,
        actor: str = "worker",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.platforms = platforms
        self.inventory = inventory
        self.snmp = snmp
        self.telemetry = telemetry
        self.lock = lock
        self.audit = audit
        self.journal = journal
        self.archive = archive
        self.tickets = tickets
        self._netconf = netconf
        self.vtysh: VtyshDriver = vtysh if vtysh is not None else NetnsVtysh()
        self.actor = actor
        self._sleep = sleep
        self._clock = clock

    # ---- planning -------------------------------------------------------------

    def plan(
        self,
        playbook: str,
        device: str,
        target: str | None,
        params: dict[str, Any],
        incident_id: int | None = None,
        rationale: str = "",
    ) -> ActionPlan:
        """A validated plan: known playbook, a device of an allowed role, typed bounded params.

        ``target`` may be omitted when the playbook's target parameter is given.
        """
        spec = self.catalog.get(playbook)
        dev = self._device(device)
        if dev.role.value not in spec.roles:
            raise PlaybookValidationError(
                f"{playbook} applies to roles {list(spec.roles)}, not {device} ({dev.role.value})"
            )
        given = dict(params)
        if spec.target is not None and target is not None:
            if spec.target in given and str(given[spec.target]) != target:
                raise PlaybookValidationError(
                    f"{playbook}: target {target!r} differs from parameter "
                    f"{spec.target}={given[spec.target]!r}"
                )
            given.setdefault(spec.target, target)
        checked = spec.validate_params(given)
        resolved = str(checked[spec.target]) if spec.target is not None else device
        if spec.target is None and target not in (None, device):
            raise PlaybookValidationError(f"{playbook} acts on the device; drop target {target!r}")
        self.platforms.for_device(dev)  # refuses a device whose platform has no data
        return ActionPlan(
            playbook=playbook,
            device=device,
            target=resolved,
            params=checked,
            incident_id=incident_id,
            rationale=rationale,
        )

    # ---- dry run ----------------------------------------------------------------

    async def dry_run(self, plan: ActionPlan) -> DryRun:
        """Render the plan and diff its configuration against running. Changes nothing.

        Reads the device (get-config, SNMP GET); an unreachable device still
        renders, with the diff marked unknown.
        """
        spec = self._check(plan)
        device = self._device(plan.device)
        platform = self.platforms.for_device(device)
        steps = [f"precheck: {_describe(c, spec, plan)}" for c in spec.prechecks]
        steps += [f"action: {self._render(a, spec, plan, platform)}" for a in spec.actions]
        steps += [f"verify: {_describe(c, spec, plan)}" for c in spec.verify.conditions]
        steps += [f"rollback: {self._render(a, spec, plan, platform)}" for a in spec.rollback]
        notes: list[str] = []
        diff: list[str] = []
        try:
            change = await self._resolve(spec, plan, device, platform)
            diff = _diff(change)
        except (DeviceError, PlaybookError) as exc:
            notes.append(f"could not read the device to diff against running: {exc}")
        if spec.changes_config and not diff and not notes:
            notes.append("the device already has the desired configuration: apply changes nothing")
        if any(a.op in ("adjust_amplifier_gain", "adjust_tx_power") for a in spec.actions):
            notes.append("a delta is applied to the value read when the run starts")
        self._audit("playbook_dry_run", plan, {"steps": steps, "diff": diff, "notes": notes})
        return DryRun(plan=plan, steps=steps, diff=diff, notes=notes)

    # ---- apply ------------------------------------------------------------------

    async def apply(
        self, plan: ActionPlan, *, run_id: str | None = None, approval: str | None = None
    ) -> ActionResult:
        """Run the plan once, whatever happens to this process. Failures come back as data.

        Args:
            run_id: the idempotency key (the Celery task id); a redelivered run keeps it.
            approval: the approval reference the run goes under, for the audit log.

        Raises:
            TransientError (DeviceLocked): nothing was changed; retry later.
        """
        run_id = run_id or f"adhoc-{plan.hash}-{time.time_ns()}"
        result = ActionResult(
            plan_hash=plan.hash, playbook=plan.playbook, device=plan.device, ok=False
        )
        try:
            spec = self._check(plan)
        except PlaybookError as exc:
            result.error = str(exc)
            result.finished_at = utcnow()
            self._audit("playbook_refused", plan, {"run_id": run_id, "error": str(exc)})
            return result
        record = self.journal.begin(run_id, plan)
        if record.state.terminal and record.result is not None:
            self._audit("playbook_redelivered", plan, {"run_id": run_id, "state": record.state})
            return ActionResult.model_validate(record.result)
        if record.state is RunState.STARTED:
            done = self.journal.succeeded(plan.hash)
            if done is not None and done.run_id != run_id and done.result is not None:
                previous = ActionResult.model_validate(done.result)
                result = previous.model_copy(
                    update={
                        "changed": False,
                        "steps": [
                            StepResult(
                                name="idempotent",
                                ok=True,
                                detail=f"plan {plan.hash} was applied and verified by run "
                                f"{done.run_id}; nothing to do",
                            )
                        ],
                    }
                )
                self._finish(run_id, plan, result, RunState.DONE)
                return result
        self._audit(
            "playbook_started",
            plan,
            {
                "run_id": run_id,
                "attempt": record.attempts,
                "approval": approval,
                "plan": plan.model_dump(mode="json"),
            },
        )
        with self.lock.hold(plan.device, run_id):
            if record.state is not RunState.STARTED:
                return await self._recover(spec, plan, run_id, record.state, record.before)
            return await self._run(spec, plan, run_id, result)

    async def _run(
        self, spec: PlaybookSpec, plan: ActionPlan, run_id: str, result: ActionResult
    ) -> ActionResult:
        device = self._device(plan.device)
        platform = self.platforms.for_device(device)
        session: ConfigSession | None = None
        state = RunState.STARTED
        change = _Change()
        try:
            await self._prechecks(spec, plan, device, result)
            change = await self._resolve(spec, plan, device, platform)
            before = {
                "leaves": [x.as_json() for x in change.leaves],
                "config": change.running_config,
            }
            needs_netconf = (change.uses_netconf and bool(change.pending)) or (
                change.config_differs()
            )
            needs_rpc = any(a.op == "restart_process" for a in spec.actions) or (
                any(a.op == "bounce_interface" for a in spec.actions)
                and isinstance(_first(platform, "set_interface_enabled", device, None), NetconfLeaf)
            )
            if needs_netconf or needs_rpc:
                session = await self._open(device)
            state = RunState.CHANGING
            self.journal.set_state(run_id, state, before=before)
            written = False
            for action in spec.actions:
                if action.op in CONFIG_OPS:
                    # Resolved together: the first one writes every leaf in one commit.
                    if not written:
                        written = True
                        state = await self._write(change, plan, device, platform, session, result)
                        if state is RunState.COMMITTED:
                            self.journal.set_state(run_id, state)
                    continue
                acted = await self._act(action, spec, plan, device, platform, session, result)
                if acted is RunState.COMMITTED:
                    state = acted
                    self.journal.set_state(run_id, state)
            result.verdict = await self.verify(plan)
            if result.verdict.passed:
                self.journal.set_state(run_id, RunState.VERIFIED)
                if session is not None and result.changed and session.locked("candidate"):
                    await asyncio.to_thread(session.commit)
                    result.steps.append(StepResult(name="confirm", ok=True, detail="<commit/>"))
                    self._audit("netconf_confirmed", plan, {"run_id": run_id})
                if session is not None and platform.confirmed_commit:
                    await self._archive_good(session, plan, run_id)
                result.ok = True
                self._finish(run_id, plan, result, RunState.DONE)
                return result
            result.error = "verification failed: " + "; ".join(
                f"{c.name} ({c.observed})" for c in result.verdict.checks if not c.passed
            )
            result.steps += await self._undo(
                change, plan, device, session, cancel=True, result_steps=result.steps
            )
            result.rolled_back = result.changed
            self._finish(
                run_id, plan, result, RunState.ROLLED_BACK if result.changed else RunState.FAILED
            )
            return result
        except (PlaybookError, DeviceError) as exc:
            result.error = str(exc)
            if state is not RunState.STARTED and result.changed:
                with suppress(AutonocError):
                    result.steps += await self._undo(
                        change, plan, device, session, cancel=True, result_steps=result.steps
                    )
                result.rolled_back = True
                self._finish(run_id, plan, result, RunState.ROLLED_BACK)
            else:
                self._finish(run_id, plan, result, RunState.FAILED)
            return result
        finally:
            if session is not None:
                await asyncio.to_thread(session.close)

    async def _act(
        self,
        action: Action,
        spec: PlaybookSpec,
        plan: ActionPlan,
        device: Device,
        platform: PlatformSpec,
        session: ConfigSession | None,
        result: ActionResult,
    ) -> RunState:
        """Do one action that is not a configuration change (waits, tickets, RPCs)."""
        if isinstance(action, Wait):
            seconds = spec.resolve(action.seconds, plan.params) or 0.0
            await self._sleep(seconds)
            result.steps.append(StepResult(name="wait", ok=True, detail=f"{seconds:g} s"))
            return RunState.CHANGING
        if isinstance(action, OpenTicket):
            ticket, opened = self.tickets.open(
                queue=action.queue,
                device=plan.device,
                component=plan.target,
                reason=action.reason,
                summary=f"{spec.name} on {plan.device}:{plan.target}: {action.reason}",
                plan_hash=plan.hash,
                incident_id=plan.incident_id,
            )
            result.steps.append(
                StepResult(
                    name=f"ticket {action.queue}",
                    ok=True,
                    detail=f"ticket #{ticket.id} {'opened' if opened else 'already open'}",
                )
            )
            self._audit("ticket_opened", plan, {"ticket": ticket.id, "new": opened})
            return RunState.CHANGING
        if isinstance(action, BounceInterface):
            await self._bounce(action, spec, plan, device, platform, session, result)
            return RunState.COMMITTED
        if action.op == "restart_process":
            rendering = _first(platform, "restart_process", device, NetconfRpc)
            assert session is not None and isinstance(rendering, NetconfRpc)
            rpc = platform.path(rendering.rpc).rpc(_where(plan), plan.target)
            await asyncio.to_thread(session.dispatch, rpc)
            result.changed = True
            result.steps.append(
                StepResult(name="restart_process", ok=True, detail=f"restarted {plan.target}")
            )
            self._audit("netconf_rpc", plan, {"rpc": "restart-process", "process": plan.target})
            return RunState.CHANGING
        return RunState.CHANGING  # restore: only meaningful in rollback

    async def _write(
        self,
        change: _Change,
        plan: ActionPlan,
        device: Device,
        platform: PlatformSpec,
        session: ConfigSession | None,
        result: ActionResult,
    ) -> RunState:
        pending = change.pending
        if not pending and not change.config_differs():
            result.steps.append(
                StepResult(name="no change", ok=True, detail="the device already had it")
            )
            return RunState.CHANGING
        for leaf in change.snmp_leaves:
            if leaf.before == leaf.after:
                continue
            assert leaf.oid is not None and isinstance(leaf.after, int)
            await self.snmp.set(device, leaf.oid, leaf.after)
            result.changed = True
            result.steps.append(
                StepResult(name=f"SET {leaf.op}", ok=True, detail=f"{leaf.oid} = {leaf.after}")
            )
            self._audit(
                "snmp_set", plan, {"oid": leaf.oid, "value": leaf.after, "was": leaf.before}
            )
        frr_pending = [x for x in change.frr_leaves if x.before != x.after]
        if frr_pending:
            commands = await self._vtysh_set(device, [(x, x.after) for x in frr_pending])
            result.changed = True
            result.steps.append(
                StepResult(name="vtysh configure", ok=True, detail="; ".join(commands))
            )
            self._audit("vtysh_config", plan, {"commands": commands, "diff": _diff(change)})
        netconf_pending = [x for x in pending if isinstance(x.rendering, NetconfLeaf)]
        if netconf_pending or change.config_differs():
            assert session is not None
            timeout = self._confirm_timeout(plan, platform)
            await asyncio.to_thread(self._stage, session, change, netconf_pending, platform)
            if platform.confirmed_commit:
                await asyncio.to_thread(session.commit_confirmed, timeout)
            else:
                await asyncio.to_thread(session.commit)
            result.changed = True
            detail = "; ".join(f"{x.path}: {x.before} → {x.after}" for x in netconf_pending)
            if change.config_differs():
                detail = "the whole configuration replaced by the last known good one"
            result.steps.append(
                StepResult(
                    name="commit confirmed" if platform.confirmed_commit else "commit",
                    ok=True,
                    detail=f"{detail} (rolls back by itself in {timeout} s unless confirmed)"
                    if platform.confirmed_commit
                    else detail,
                )
            )
            self._audit(
                "netconf_commit",
                plan,
                {
                    "confirmed": platform.confirmed_commit,
                    "confirm_timeout_s": timeout,
                    "diff": _diff(change),
                },
            )
        return RunState.COMMITTED

    async def _bounce(
        self,
        action: BounceInterface,
        spec: PlaybookSpec,
        plan: ActionPlan,
        device: Device,
        platform: PlatformSpec,
        session: ConfigSession | None,
        result: ActionResult,
    ) -> None:
        """Down, wait, up. NETCONF: two confirmed commits; a lost session reverts to up."""
        down_s = spec.resolve(action.down_s, plan.params) or 0.0
        rendering = _first(platform, "set_interface_enabled", device, None)
        where = _where(plan)
        if isinstance(rendering, NetconfLeaf):
            assert session is not None
            path = platform.path(rendering.leaf)
            timeout = self._confirm_timeout(plan, platform)
            for enabled in (False, True):
                text = rendering.values.get(str(enabled).lower(), str(enabled).lower())

                def stage(text: str = text) -> None:
                    assert session is not None
                    if not session.locked("candidate"):
                        session.lock("candidate")
                    session.edit_candidate(path.edit(where, text))
                    session.commit_confirmed(timeout)

                await asyncio.to_thread(stage)
                result.changed = True
                result.steps.append(
                    StepResult(
                        name=f"commit confirmed enabled={str(enabled).lower()}",
                        ok=True,
                        detail=path.describe(where),
                    )
                )
                self._audit("netconf_commit", plan, {"bounce": "up" if enabled else "down"})
                if not enabled:
                    await self._sleep(down_s)
            return
        assert isinstance(rendering, SnmpLeaf)
        oid = f"{rendering.oid}.{await self._if_index(device, plan.target)}"
        for enabled in (False, True):
            value = rendering.values[str(enabled).lower()]
            await self.snmp.set(device, oid, value)
            result.changed = True
            result.steps.append(StepResult(name="SET bounce", ok=True, detail=f"{oid} = {value}"))
            self._audit("snmp_set", plan, {"oid": oid, "value": value, "bounce": True})
            if not enabled:
                await self._sleep(down_s)

    def _stage(
        self,
        session: ConfigSession,
        change: _Change,
        leaves: list[_Leaf],
        platform: PlatformSpec,
    ) -> None:
        session.lock("candidate")
        session.discard_changes()
        if change.config_differs():
            assert change.restore_config is not None
            session.edit_candidate(_as_config(change.restore_config), replace=True)
        for leaf in leaves:
            assert isinstance(leaf.rendering, NetconfLeaf)
            path = platform.path(leaf.rendering.leaf)
            value = None if leaf.after is None else str(leaf.after)
            session.edit_candidate(
                path.edit(leaf.where, value, operation="remove" if value is None else None)
            )

    async def _undo(
        self,
        change: _Change,
        plan: ActionPlan,
        device: Device,
        session: ConfigSession | None,
        *,
        cancel: bool,
        result_steps: Sequence[StepResult] = (),
    ) -> list[StepResult]:
        """Undo this run's change while its session is open: cancel-commit, SNMP restore."""
        steps: list[StepResult] = []
        platform = self.platforms.for_device(device)
        if (
            session is not None
            and change.uses_netconf
            and (change.pending or change.config_differs())
        ):
            if cancel and platform.confirmed_commit:
                await asyncio.to_thread(session.cancel_commit)
                steps.append(StepResult(name="rollback cancel-commit", ok=True, detail="reverted"))
            else:
                await asyncio.to_thread(self._restore_leaves, session, change, platform)
                steps.append(StepResult(name="rollback restore", ok=True, detail="restored"))
            self._audit("netconf_rolled_back", plan, {"how": "cancel-commit" if cancel else "edit"})
        frr_done = [x for x in change.frr_leaves if x.before != x.after]
        if frr_done:
            # FRR has no confirmed commit: write the values read before, in one vtysh call.
            commands = await self._vtysh_set(device, [(x, x.before) for x in frr_done])
            steps.append(StepResult(name="rollback vtysh", ok=True, detail="; ".join(commands)))
            self._audit("vtysh_config", plan, {"commands": commands, "rollback": True})
        for leaf in change.snmp_leaves:
            if leaf.before is None or leaf.before == leaf.after:
                continue
            assert leaf.oid is not None and isinstance(leaf.before, int)
            await self.snmp.set(device, leaf.oid, leaf.before)
            steps.append(
                StepResult(
                    name=f"rollback SET {leaf.op}", ok=True, detail=f"{leaf.oid} = {leaf.before}"
                )
            )
            self._audit("snmp_set", plan, {"oid": leaf.oid, "value": leaf.before, "rollback": True})
        return steps

    def _restore_leaves(
        self,
        session: ConfigSession,
        change: _Change,
        platform: PlatformSpec,
        *,
        to_after: bool = False,
    ) -> None:
        """Edit the before-values (or the after-values) in and commit at once (a plain change)."""
        session.lock("candidate")
        session.discard_changes()
        if change.running_config is not None and change.restore_config is not None:
            session.edit_candidate(_as_config(change.running_config), replace=True)
        for leaf in change.netconf_leaves:
            assert isinstance(leaf.rendering, NetconfLeaf)
            path = platform.path(leaf.rendering.leaf)
            wanted = leaf.after if to_after else leaf.before
            value = None if wanted is None else str(wanted)
            session.edit_candidate(
                path.edit(leaf.where, value, operation="remove" if value is None else None)
            )
        session.commit()

    async def _vtysh_set(
        self, device: Device, values: Sequence[tuple[_Leaf, str | int | None]]
    ) -> list[str]:
        """Write FRR settings in one ``vtysh`` call, then read them back to be sure."""
        running = await self.vtysh.running_config(device)
        settings = []
        commands: list[str] = []
        for leaf, value in values:
            assert isinstance(leaf.rendering, FrrVtysh)
            setting = FrrSetting(leaf.rendering.setting, leaf.where["target"])
            wanted = None if value is None else str(value)
            settings.append((setting, wanted))
            commands += setting.commands(wanted, running)
        await self.vtysh.configure(device, commands)
        after = await self.vtysh.running_config(device)
        for setting, wanted in settings:
            got = setting.read(after)
            if got != wanted:
                raise DeviceRejected(
                    device.name,
                    f"vtysh accepted {setting.describe()} = {wanted} but running has {got}",
                )
        return commands

    # ---- crash recovery ---------------------------------------------------------

    async def _recover(
        self,
        spec: PlaybookSpec,
        plan: ActionPlan,
        run_id: str,
        state: RunState,
        before: dict[str, Any],
    ) -> ActionResult:
        """A redelivered run whose worker died after it began changing the device.

        It never applies the plan again. A NETCONF change that was not confirmed
        was rolled back by the device when the session died; SNMP changes are put
        back here. Either way the run ends rolled back (or done, if the change was
        already confirmed), and the device is checked against the journal.
        """
        device = self._device(plan.device)
        platform = self.platforms.for_device(device)
        result = ActionResult(
            plan_hash=plan.hash, playbook=plan.playbook, device=plan.device, ok=False
        )
        leaves = [_Leaf(**_leaf_args(x, platform, plan)) for x in before.get("leaves", [])]
        change = _Change(leaves=leaves, running_config=before.get("config"))
        # What is on the device now, compared with before and after.
        current = await self._resolve(spec, plan, device, platform)
        now_by_key = {x.key: x.before for x in current.leaves}
        applied = [x for x in change.pending if now_by_key.get(x.key) == x.after]
        self._audit(
            "playbook_recovering",
            plan,
            {"run_id": run_id, "state": state.value, "still_applied": [x.key for x in applied]},
        )
        if before.get("config") is not None and change.leaves == []:
            # A whole-configuration restore: compare the running text instead of leaves.
            now = current.running_config
            if now is not None and now != before["config"]:
                applied = [
                    _Leaf(
                        "restore_config", NetconfLeaf(protocol="netconf", leaf="/x:x"), {}, "config"
                    )
                ]
        if state is RunState.VERIFIED and applied:
            # Verified, and the device still has it: the confirming commit went through
            # (an unconfirmed one would have been reverted when the session died).
            result.ok = result.changed = True
            result.steps.append(
                StepResult(name="recovered", ok=True, detail="verified before the worker was lost")
            )
            self._finish(run_id, plan, result, RunState.DONE)
            return result
        if applied:
            netconf_applied = [x for x in applied if isinstance(x.rendering, NetconfLeaf)]
            if netconf_applied:
                undo = _Change(leaves=[x for x in netconf_applied if x.path != "config"])
                if len(undo.leaves) < len(netconf_applied):
                    undo.running_config, undo.restore_config = before["config"], ""
                session = await self._open(device)
                try:
                    await asyncio.to_thread(self._restore_leaves, session, undo, platform)
                finally:
                    await asyncio.to_thread(session.close)
            frr_applied = [x for x in applied if isinstance(x.rendering, FrrVtysh)]
            if frr_applied:
                await self._vtysh_set(device, [(x, x.before) for x in frr_applied])
            for leaf in applied:
                if isinstance(leaf.rendering, SnmpLeaf) and isinstance(leaf.before, int):
                    assert leaf.oid is not None
                    await self.snmp.set(device, leaf.oid, leaf.before)
            result.steps.append(
                StepResult(
                    name="rollback restore",
                    ok=True,
                    detail=f"put back {len(applied)} value(s) the lost run had changed",
                )
            )
        elif not change.leaves and before.get("config") is None:
            # Nothing in the configuration to check: a process restart or a ticket.
            # Neither can be undone, and neither is repeated.
            irreversible = [
                a.op for a in spec.actions if a.op in ("restart_process", "open_ticket")
            ]
            result.changed = bool(irreversible)
            result.ok = state is RunState.VERIFIED
            result.steps.append(
                StepResult(
                    name="recovered",
                    ok=result.ok,
                    detail=f"{', '.join(irreversible) or 'nothing'} may have run before the worker "
                    "was lost; it cannot be undone and is not repeated",
                )
            )
            if not result.ok:
                result.error = (
                    f"the worker running this plan was lost while it was {state.value}; "
                    "not repeated: check the device and run the plan anew if needed"
                )
            self._finish(run_id, plan, result, RunState.DONE if result.ok else RunState.FAILED)
            return result
        else:
            result.steps.append(
                StepResult(
                    name="rollback confirmed-commit",
                    ok=True,
                    detail="the device had already reverted the unconfirmed change by itself",
                )
            )
        result.changed = bool(change.pending)
        result.rolled_back = True
        result.error = (
            f"the worker running this plan was lost while it was {state.value}; the change "
            "was rolled back and not applied again (run the plan anew to retry)"
        )
        self._finish(run_id, plan, result, RunState.ROLLED_BACK)
        return result

    # ---- verify and rollback ---------------------------------------------------

    async def verify(self, plan: ActionPlan) -> Verdict:
        """Poll fresh telemetry until every condition holds or the time runs out."""
        spec = self._check(plan)
        within = spec.resolve(spec.verify.within_s, plan.params) or 30.0
        deadline = self._clock() + within
        telemetry = self.telemetry()
        checks: list[Check] = []
        while True:
            try:
                checks = await self._evaluate_all(spec.verify.conditions, spec, plan, telemetry)
            except DeviceError as exc:
                checks = [Check(name="telemetry", passed=False, observed=str(exc))]
            if all(c.passed for c in checks) or self._clock() >= deadline:
                break
            await self._sleep(spec.verify.interval_s)
        verdict = Verdict(passed=all(c.passed for c in checks), checks=checks)
        self._audit("playbook_verified", plan, {"verdict": verdict.model_dump(mode="json")})
        return verdict

    async def rollback(self, plan: ActionPlan, run_id: str) -> list[StepResult]:
        """Run the playbook's rollback section for a finished run (an operator's decision).

        ``restore`` puts back the values the run's journal says it changed; other
        rollback actions (``set_interface_enabled: true`` after a bounce) are
        applied as written, with a plain commit.
        """
        spec = self._check(plan)
        record = self.journal.get(run_id)
        if record is None or record.plan_hash != plan.hash:
            raise PlaybookValidationError(f"no run {run_id!r} of plan {plan.hash} in the journal")
        device = self._device(plan.device)
        platform = self.platforms.for_device(device)
        steps: list[StepResult] = []
        with self.lock.hold(plan.device, f"rollback-{run_id}"):
            for action in spec.rollback:
                if isinstance(action, Restore):
                    steps += await self._restore_journaled(
                        spec, plan, device, platform, record.before
                    )
                elif action.op in CONFIG_OPS:
                    steps += await self._set_plainly(spec, plan, device, platform, action)
                else:
                    scratch = ActionResult(
                        plan_hash=plan.hash, playbook=plan.playbook, device=plan.device, ok=False
                    )
                    session = await self._open(device) if action.op == "restart_process" else None
                    try:
                        await self._act(action, spec, plan, device, platform, session, scratch)
                    finally:
                        if session is not None:
                            await asyncio.to_thread(session.close)
                    steps += scratch.steps
        self.journal.set_state(run_id, RunState.ROLLED_BACK)
        self._audit(
            "playbook_rolled_back", plan, {"run_id": run_id, "steps": [s.name for s in steps]}
        )
        return steps

    async def _restore_journaled(
        self,
        spec: PlaybookSpec,
        plan: ActionPlan,
        device: Device,
        platform: PlatformSpec,
        before: dict[str, Any],
    ) -> list[StepResult]:
        leaves = [_Leaf(**_leaf_args(x, platform, plan)) for x in before.get("leaves", [])]
        change = _Change(leaves=leaves, running_config=before.get("config"))
        if any(isinstance(a, RestoreConfig) for a in spec.actions):
            change.restore_config = ""  # mark: the whole configuration was replaced
        steps: list[StepResult] = []
        if change.uses_netconf:
            session = await self._open(device)
            try:
                await asyncio.to_thread(self._restore_leaves, session, change, platform)
            finally:
                await asyncio.to_thread(session.close)
            steps.append(StepResult(name="rollback restore", ok=True, detail="committed"))
        steps += await self._undo(
            _Change(leaves=change.snmp_leaves + change.frr_leaves),
            plan,
            device,
            None,
            cancel=False,
        )
        if not steps:
            steps.append(
                StepResult(name="rollback restore", ok=True, detail="the run changed no values")
            )
        return steps

    async def _set_plainly(
        self,
        spec: PlaybookSpec,
        plan: ActionPlan,
        device: Device,
        platform: PlatformSpec,
        action: Action,
    ) -> list[StepResult]:
        change = await self._resolve(spec, plan, device, platform, actions=[action])
        if not change.pending:
            return [StepResult(name=f"rollback {action.op}", ok=True, detail="already so")]
        netconf = [x for x in change.pending if isinstance(x.rendering, NetconfLeaf)]
        if netconf:
            session = await self._open(device)
            try:
                await asyncio.to_thread(
                    self._restore_leaves, session, _Change(leaves=netconf), platform, to_after=True
                )
            finally:
                await asyncio.to_thread(session.close)
        frr = [x for x in change.pending if isinstance(x.rendering, FrrVtysh)]
        if frr:
            await self._vtysh_set(device, [(x, x.after) for x in frr])
        for leaf in change.pending:
            if isinstance(leaf.rendering, SnmpLeaf) and isinstance(leaf.after, int):
                assert leaf.oid is not None
                await self.snmp.set(device, leaf.oid, leaf.after)
        detail = "; ".join(f"{x.path}: {x.before} → {x.after}" for x in change.pending)
        return [StepResult(name=f"rollback {action.op}", ok=True, detail=detail)]

    # ---- resolution: what the actions mean on this device now -------------------

    async def _resolve(
        self,
        spec: PlaybookSpec,
        plan: ActionPlan,
        device: Device,
        platform: PlatformSpec,
        actions: Sequence[Action] | None = None,
    ) -> _Change:
        change = _Change()
        where = _where(plan)
        session: ConfigSession | None = None
        frr_running: str | None = None
        try:
            for action in spec.actions if actions is None else actions:
                if action.op not in CONFIG_OPS:
                    continue
                rendering = _first(platform, action.op, device, None, self.vtysh)
                if isinstance(rendering, NetconfConfig):
                    session = session or await self._open(device)
                    running = await asyncio.to_thread(session.get_config)
                    change.running_config = xml_text(running)
                    good = self.archive.last_good(plan.device)
                    if good is None:
                        raise PrecheckFailed(
                            f"{plan.device} has no known good configuration to restore "
                            "(take one with `autonoc config backup --good`); nothing was changed"
                        )
                    change.restore_config = good.config
                    continue
                if isinstance(rendering, NetconfLeaf):
                    path = platform.path(rendering.leaf)
                    session = session or await self._open(device)
                    data = await asyncio.to_thread(session.get_config, path.filter(where))
                    current: str | int | None = path.read(data, where)
                    leaf = _Leaf(action.op, rendering, where, path.describe(where), current)
                    leaf.after = _desired(action, spec, plan, rendering, current)
                elif isinstance(rendering, SnmpLeaf):
                    if_index = await self._if_index(device, plan.target)
                    oid = f"{rendering.oid}.{if_index}"
                    got = (await self.snmp.get(device, [oid])).get(oid)
                    current = _as_int(got)
                    leaf = _Leaf(action.op, rendering, where, oid, current, oid=oid)
                    leaf.after = _desired(action, spec, plan, rendering, current)
                elif isinstance(rendering, FrrVtysh):
                    if frr_running is None:
                        frr_running = await self.vtysh.running_config(device)
                    setting = FrrSetting(rendering.setting, plan.target)
                    current = setting.read(frr_running)
                    leaf = _Leaf(action.op, rendering, where, setting.describe(), current)
                    leaf.after = _desired(action, spec, plan, rendering, current)
                    setting.commands(str(leaf.after), frr_running)  # refuses bad values now
                else:
                    raise PlaybookValidationError(
                        f"platform {platform.name}: {action.op} cannot be rendered as {rendering}"
                    )
                change.leaves.append(leaf)
        finally:
            if session is not None:
                await asyncio.to_thread(session.close)
        return change

    def _render(
        self, action: Action, spec: PlaybookSpec, plan: ActionPlan, platform: PlatformSpec
    ) -> str:
        """A person-readable rendering of one action (dry-run and audit)."""
        where = _where(plan)
        if isinstance(action, Wait):
            return f"wait {spec.resolve(action.seconds, plan.params):g} s"
        if isinstance(action, OpenTicket):
            return f"open a {action.queue} ticket ({action.reason}) for {plan.device}:{plan.target}"
        if isinstance(action, Restore):
            return "put back every value this run changed, as read before the change"
        renderings = platform.renderings(action.op)
        if not renderings:
            return f"{action.op}: NOT SUPPORTED on platform {platform.name}"
        r = renderings[0]
        if isinstance(r, NetconfLeaf):
            what = _what(action, spec, plan)
            return (
                f"NETCONF edit-config candidate {platform.path(r.leaf).describe(where)} = {what}, "
                "commit confirmed, confirm after verification"
            )
        if isinstance(r, SnmpLeaf):
            return f"SNMP SET {r.oid}.<ifIndex of {plan.target}> = {_what(action, spec, plan)}"
        if isinstance(r, FrrVtysh):
            return (
                f"vtysh configure {FrrSetting(r.setting, plan.target).describe()} = "
                f"{_what(action, spec, plan)} (rolled back by writing the value read before)"
            )
        if isinstance(r, NetconfRpc):
            return f"NETCONF RPC {platform.path(r.rpc).describe(where)} = {plan.target}"
        return "NETCONF edit-config candidate: replace the configuration with the last known good"

    # ---- helpers -----------------------------------------------------------------

    async def _open(self, device: Device) -> ConfigSession:
        session = await asyncio.to_thread(self._netconf, device)
        if self.platforms.for_device(device).confirmed_commit:
            try:
                session.require_confirmed_commit()
            except DeviceRejected:
                await asyncio.to_thread(session.close)
                raise
        return session

    def _confirm_timeout(self, plan: ActionPlan, platform: PlatformSpec) -> int:
        spec = self.catalog.get(plan.playbook)
        within = spec.resolve(spec.verify.within_s, plan.params) or 30.0
        waits = sum(
            spec.resolve(a.seconds, plan.params) or 0.0 for a in spec.actions if isinstance(a, Wait)
        )
        return int(within + waits + platform.confirm_margin_s)

    async def _archive_good(self, session: ConfigSession, plan: ActionPlan, run_id: str) -> None:
        try:
            running = await asyncio.to_thread(session.get_config)
        except DeviceError as exc:
            log.warning("config_archive_failed", device=plan.device, error=str(exc))
            return
        snap = self.archive.save(
            plan.device, xml_text(running), good=True, source=f"verified {plan.playbook} {run_id}"
        )
        self._audit("config_archived", plan, {"snapshot": snap.id, "digest": snap.digest})

    async def _prechecks(
        self, spec: PlaybookSpec, plan: ActionPlan, device: Device, result: ActionResult
    ) -> None:
        if not spec.prechecks:
            return
        checks = await self._evaluate_all(spec.prechecks, spec, plan, self.telemetry())
        for check in checks:
            result.steps.append(
                StepResult(name=f"precheck {check.name}", ok=check.passed, detail=check.observed)
            )
        failed = [c for c in checks if not c.passed]
        if failed:
            raise PrecheckFailed(
                f"{plan.playbook} on {plan.device}: precheck '{failed[0].name}' does not hold "
                f"(observed {failed[0].observed}); nothing was changed"
            )

    async def _evaluate_all(
        self,
        conditions: Sequence[Condition],
        spec: PlaybookSpec,
        plan: ActionPlan,
        telemetry: Telemetry,
    ) -> list[Check]:
        by_device: dict[str, dict[tuple[str, str], float]] = {}
        checks = []
        for cond in conditions:
            dev = spec.place(cond.device, plan.params, plan.device)
            if dev not in by_device:
                by_device[dev] = await telemetry.read(self._device(dev))
            instance = spec.place(cond.instance, plan.params, plan.target)
            if spec.target is None and cond.instance is None:
                instance = ""
            checks.append(_evaluate(cond, spec, plan, by_device[dev], instance))
        return checks

    async def _if_index(self, device: Device, ifname: str) -> int:
        names = await self.snmp.walk(device, [IF_NAME_OID])
        for oid, value in names.items():
            if str(value) == ifname:
                return int(oid.rsplit(".", 1)[1])
        raise PrecheckFailed(f"{device.name} has no interface named {ifname!r} (ifName walk)")

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

    def _finish(self, run_id: str, plan: ActionPlan, result: ActionResult, state: RunState) -> None:
        result.finished_at = utcnow()
        self.journal.set_state(run_id, state, result=result.model_dump(mode="json"))
        self._audit(
            "playbook_finished",
            plan,
            {
                "run_id": run_id,
                "state": state.value,
                "ok": result.ok,
                "changed": result.changed,
                "rolled_back": result.rolled_back,
                "error": result.error,
                "steps": [s.model_dump() for s in result.steps],
                "verdict": result.verdict.model_dump(mode="json") if result.verdict else None,
            },
        )

    def _audit(self, action: str, plan: ActionPlan, details: dict[str, Any]) -> None:
        self.audit.append(
            self.actor,
            action,
            f"{plan.device}:{plan.target}",
            {"plan_hash": plan.hash, "playbook": plan.playbook, **details},
        )


# ---- module helpers -------------------------------------------------------------------


def _where(plan: ActionPlan) -> dict[str, str]:
    return {"target": plan.target, "device": plan.device}


def _first(
    platform: PlatformSpec,
    op: str,
    device: Device,
    kind: type[Any] | None,
    vtysh: VtyshDriver | None = None,
) -> Rendering:
    """The first rendering of ``op`` the device can take (credentials for its protocol)."""
    for r in platform.renderings(op):
        if kind is not None and not isinstance(r, kind):
            continue
        if isinstance(r, FrrVtysh):
            if vtysh is not None and vtysh.reaches(device):
                return r
            continue
        if isinstance(r, SnmpLeaf) and device.snmp is None:
            continue
        if not isinstance(r, SnmpLeaf) and device.netconf is None:
            continue
        return r
    protocols: list[str] = [r.protocol for r in platform.renderings(op)] or ["none"]
    raise PlaybookValidationError(
        f"{device.name} (platform {platform.name}) cannot do {op}: it needs "
        f"{' or '.join(protocols)} and the inventory gives it "
        f"{'snmp' if device.snmp else ''}{' netconf' if device.netconf else ''}".rstrip()
    )


def _desired(
    action: Action,
    spec: PlaybookSpec,
    plan: ActionPlan,
    rendering: NetconfLeaf | SnmpLeaf | FrrVtysh,
    current: str | int | None,
) -> str | int:
    if isinstance(action, SetInterfaceEnabled | SetBgpNeighborEnabled):
        key = "true" if action.enabled else "false"
    elif isinstance(action, SetProtection):
        key = action.path
    elif isinstance(action, SetIgpMetric):
        key = str(int(spec.resolve(action.metric, plan.params) or 0))
    elif isinstance(action, AdjustAmplifierGain | AdjustTxPower):
        if current is None:
            raise PrecheckFailed(
                f"{plan.device}: {action.op} needs the current value, and the device's "
                "configuration has none; nothing was changed"
            )
        delta = spec.resolve(action.delta_db, plan.params) or 0.0
        key = f"{float(current) + delta:.2f}"
    else:
        raise PlaybookValidationError(f"{action.op} sets no leaf")
    if isinstance(rendering, SnmpLeaf):
        if key not in rendering.values:
            raise PlaybookValidationError(f"SNMP rendering of {action.op} has no value for {key}")
        return rendering.values[key]
    if isinstance(rendering, FrrVtysh):
        return key
    return rendering.values.get(key, key)


def _what(action: Action, spec: PlaybookSpec, plan: ActionPlan) -> str:
    if isinstance(action, SetInterfaceEnabled | SetBgpNeighborEnabled):
        return "enabled" if action.enabled else "disabled"
    if isinstance(action, SetProtection):
        return action.path
    if isinstance(action, SetIgpMetric):
        return f"{spec.resolve(action.metric, plan.params):g}"
    if isinstance(action, AdjustAmplifierGain | AdjustTxPower):
        return f"current {spec.resolve(action.delta_db, plan.params):+g} dB"
    return action.op


def _leaf_args(data: dict[str, Any], platform: PlatformSpec, plan: ActionPlan) -> dict[str, Any]:
    """Rebuild a journaled leaf (from ``_Leaf.as_json``) against the platform data."""
    op = data["op"]
    for r in platform.renderings(op):
        if r.protocol != data["protocol"]:
            continue
        if isinstance(r, SnmpLeaf | NetconfLeaf | FrrVtysh):
            return {
                "op": op,
                "rendering": r,
                "where": _where(plan),
                "path": data["path"],
                "before": data["before"],
                "after": data["after"],
                "oid": data["path"] if isinstance(r, SnmpLeaf) else None,
            }
    raise PlaybookValidationError(f"platform {platform.name} no longer renders {op}")


def _as_config(xml: str) -> Element:
    """A stored ``<data>`` configuration as the ``<config>`` of an edit."""
    data = etree.fromstring(xml.encode(), parser=etree.XMLParser(resolve_entities=False))
    config = etree.Element("{urn:ietf:params:xml:ns:netconf:base:1.0}config")
    for child in data:
        config.append(child)
    return config


def _diff(change: _Change) -> list[str]:
    lines = [f"{x.path}: {x.before} → {x.after}" for x in change.pending]
    if change.config_differs():
        assert change.restore_config is not None and change.running_config is not None
        lines += list(
            difflib.unified_diff(
                change.running_config.splitlines(),
                change.restore_config.splitlines(),
                "running",
                "last known good",
                lineterm="",
            )
        )
    return lines


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _comparison(cond: Condition) -> tuple[str, float | str | None]:
    if cond.equals is not None:
        return "==", cond.equals
    if cond.at_least is not None:
        return ">=", cond.at_least
    return "<=", cond.at_most


def _describe(cond: Condition, spec: PlaybookSpec, plan: ActionPlan) -> str:
    op, ref = _comparison(cond)
    dev = spec.place(cond.device, plan.params, plan.device)
    inst = spec.place(cond.instance, plan.params, plan.target)
    where = f"{dev}:{inst}" if inst and inst != dev else dev
    text = f"{cond.metric}@{where} {op} {spec.resolve(ref, plan.params):g}"
    return text + (f" ({cond.description})" if cond.description else "")


def _evaluate(
    cond: Condition,
    spec: PlaybookSpec,
    plan: ActionPlan,
    values: dict[tuple[str, str], float],
    instance: str,
) -> Check:
    op, ref = _comparison(cond)
    bound = spec.resolve(ref, plan.params)
    name = cond.description or f"{cond.metric} {op} {bound:g}"
    value = values.get((cond.metric, instance))
    if value is None or bound is None:
        return Check(name=name, passed=False, observed=f"{cond.metric} not observed yet")
    passed = {"==": value == bound, ">=": value >= bound, "<=": value <= bound}[op]
    return Check(name=name, passed=passed, observed=f"{cond.metric}={value:g}")
