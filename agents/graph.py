"""The incident graph: triage → diagnose → propose → policy → (approve) → dispatch
→ await result → verify → close, or escalate.

Nodes are plain functions over :class:`IncidentState`; their dependencies
arrive through the graph's context (:class:`IncidentDeps`), never globals.
The graph pauses twice with ``interrupt()``: for an approval bound to the
plan's hash, and while the worker runs the playbook, so no process is held
waiting. ``Command(resume=...)`` continues it from its checkpoint; nodes that
interrupt do nothing before the interrupt, because they re-run on resume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agents.diagnose import Latest, diagnose
from agents.policy import Outcome, PolicyGate
from autonoc.core.errors import PlaybookValidationError
from autonoc.core.inventory import Inventory
from autonoc.core.types import (
    ActionPlan,
    ActionResult,
    Anomaly,
    Attribution,
    IncidentStatus,
    TimelineEvent,
    utcnow,
)
from playbooks.base import Catalog

__all__ = [
    "Dispatcher",
    "IncidentDeps",
    "IncidentState",
    "anomaly_from_dict",
    "anomaly_to_dict",
    "build_incident_graph",
]


class IncidentState(TypedDict, total=False):
    incident_id: int
    anomalies: list[dict[str, Any]]
    fault_kind: str
    device: str
    instance: str
    summary: str
    plan: dict[str, Any] | None
    plan_hash: str
    outcome: str
    task_id: str
    approval: str
    result: dict[str, Any] | None
    status: str
    reason: str


class Dispatcher(Protocol):
    def dispatch(self, plan: ActionPlan, approval: str | None = None) -> str:
        """Enqueue ``plan`` for the worker under ``approval``; return the task id.

        The task id derives from the plan's hash and the approval reference, so
        dispatching the same approved plan twice runs it once.
        """
        ...


class IncidentSink(Protocol):
    def add_event(self, incident_id: int, event: TimelineEvent) -> None: ...

    def update(
        self,
        incident_id: int,
        *,
        status: IncidentStatus | None = None,
        fault_kind: str | None = None,
        title: str | None = None,
        device: str | None = None,
        instance: str | None = None,
        closed_at: Any = None,
    ) -> None: ...


class AuditSink(Protocol):
    def append(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> int: ...


@dataclass
class IncidentDeps:
    """What the incident graph's nodes may use."""

    inventory: Inventory
    catalog: Catalog
    policy: PolicyGate
    incidents: IncidentSink
    audit: AuditSink
    latest: Callable[[list[str]], Latest]
    dispatcher: Dispatcher
    narrate: Callable[[str, str], None] = lambda kind, message: None


def anomaly_to_dict(a: Anomaly) -> dict[str, Any]:
    return {
        "device": a.device,
        "ts": a.ts,
        "score": a.score,
        "threshold": a.threshold,
        "detector": a.detector,
        "attributions": [
            {
                "metric": t.metric,
                "instance": t.instance,
                "score": t.score,
                "value": t.value,
                "expected": t.expected,
            }
            for t in a.attributions
        ],
    }


def anomaly_from_dict(d: dict[str, Any]) -> Anomaly:
    return Anomaly(
        device=d["device"],
        ts=d["ts"],
        score=d["score"],
        threshold=d["threshold"],
        detector=d["detector"],
        attributions=tuple(Attribution(**t) for t in d["attributions"]),
    )


def _event(
    rt: Runtime[IncidentDeps], state: IncidentState, kind: str, message: str, **data: Any
) -> None:
    rt.context.incidents.add_event(
        state["incident_id"], TimelineEvent(kind=kind, message=message, data=data)
    )
    rt.context.narrate(kind, message)


# ---- nodes ------------------------------------------------------------------


def triage(state: IncidentState, runtime: Runtime[IncidentDeps]) -> IncidentState:
    devices = sorted({a["device"] for a in state["anomalies"]})
    _event(
        runtime,
        state,
        "triaged",
        f"{len(state['anomalies'])} anomalies on {', '.join(devices)} grouped into one incident",
        devices=devices,
    )
    return {}


def diagnose_node(state: IncidentState, runtime: Runtime[IncidentDeps]) -> IncidentState:
    deps = runtime.context
    anomalies = [anomaly_from_dict(a) for a in state["anomalies"]]
    devices = sorted({a.device for a in anomalies})
    for a in anomalies:
        for t in a.attributions:
            peer = deps.inventory.peer(a.device, t.instance) if t.instance else None
            if peer is not None and peer.device not in devices:
                devices.append(peer.device)
    found = diagnose(anomalies, deps.latest(devices), deps.inventory)
    deps.incidents.update(
        state["incident_id"],
        status=IncidentStatus.DIAGNOSED,
        fault_kind=found.fault_kind,
        title=found.summary,
        device=found.device,
        instance=found.instance,
    )
    _event(
        runtime,
        state,
        "diagnosed",
        f"{found.summary} (confidence {found.confidence:.0%})",
        fault_kind=found.fault_kind,
        device=found.device,
        instance=found.instance,
        evidence=list(found.evidence),
        impact=list(found.impact),
    )
    return {
        "fault_kind": found.fault_kind,
        "device": found.device,
        "instance": found.instance,
        "summary": found.summary,
    }


def propose(state: IncidentState, runtime: Runtime[IncidentDeps]) -> IncidentState:
    deps = runtime.context
    role = deps.inventory.device(state["device"]).role.value
    options = deps.catalog.for_fault(state["fault_kind"], role)
    if not options:
        reason = f"no catalog playbook treats {state['fault_kind']} on a {role}"
        _event(runtime, state, "no_plan", reason)
        return {"plan": None, "reason": reason}
    spec = options[0]
    try:
        plan = ActionPlan(
            playbook=spec.name,
            device=state["device"],
            target=state["instance"],
            params=spec.validate_params({"interface": state["instance"]}),
            incident_id=state["incident_id"],
            rationale=state["summary"],
        )
    except PlaybookValidationError as exc:
        _event(runtime, state, "no_plan", str(exc))
        return {"plan": None, "reason": str(exc)}
    _event(
        runtime,
        state,
        "planned",
        f"playbook {plan.playbook} on {plan.device}:{plan.target} (plan {plan.hash})",
        plan=plan.model_dump(mode="json"),
        plan_hash=plan.hash,
    )
    return {"plan": plan.model_dump(mode="json"), "plan_hash": plan.hash}


def policy(state: IncidentState, runtime: Runtime[IncidentDeps]) -> IncidentState:
    deps = runtime.context
    plan = ActionPlan.model_validate(state["plan"])
    decision = deps.policy.decide(
        plan, deps.catalog.get(plan.playbook), fault_kind=state.get("fault_kind")
    )
    deps.audit.append(
        "policy", "policy_decision", f"incident:{state['incident_id']}", decision.as_dict()
    )
    _event(
        runtime,
        state,
        "policy",
        f"{decision.outcome}: {decision.reason}",
        outcome=decision.outcome,
        plan_hash=plan.hash,
    )
    return {"outcome": decision.outcome.value, "reason": decision.reason}


def approval(state: IncidentState, runtime: Runtime[IncidentDeps]) -> IncidentState:
    # Nothing before interrupt(): this node re-runs from the top on resume.
    answer = interrupt(
        {
            "kind": "approval",
            "incident_id": state["incident_id"],
            "plan": state["plan"],
            "plan_hash": state["plan_hash"],
        }
    )
    approved = bool(answer.get("approved")) and answer.get("plan_hash") == state["plan_hash"]
    who = str(answer.get("by", "unknown"))
    runtime.context.audit.append(
        who,
        "approval",
        f"incident:{state['incident_id']}",
        {"plan_hash": answer.get("plan_hash"), "approved": approved},
    )
    if not approved:
        why = (
            "approval was for another plan hash" if answer.get("approved") else f"rejected by {who}"
        )
        _event(runtime, state, "rejected", why)
        return {"outcome": Outcome.DENY.value, "reason": why}
    _event(runtime, state, "approved", f"approved by {who} for plan {state['plan_hash']}")
    reference = str(answer.get("approval_id") or f"{who}-incident{state['incident_id']}")
    return {"outcome": Outcome.RUN.value, "approval": reference}


def dispatch(state: IncidentState, runtime: Runtime[IncidentDeps]) -> IncidentState:
    deps = runtime.context
    plan = ActionPlan.model_validate(state["plan"])
    task_id = deps.dispatcher.dispatch(plan, approval=state.get("approval"))
    deps.policy.record_dispatch(plan.device)
    deps.incidents.update(state["incident_id"], status=IncidentStatus.ACTING)
    deps.audit.append(
        "agent",
        "plan_dispatched",
        f"{plan.device}:{plan.target}",
        {"plan_hash": plan.hash, "task_id": task_id},
    )
    _event(
        runtime, state, "dispatched", f"worker task {task_id} runs {plan.playbook}", task_id=task_id
    )
    return {"task_id": task_id}


def await_result(state: IncidentState, runtime: Runtime[IncidentDeps]) -> IncidentState:
    # Resumed by the task's completion with the ActionResult as JSON.
    result = interrupt({"kind": "await_task", "task_id": state["task_id"]})
    return {"result": result}


def verify(state: IncidentState, runtime: Runtime[IncidentDeps]) -> IncidentState:
    result = ActionResult.model_validate(state["result"])
    acted = "; ".join(f"{s.name}: {s.detail}" for s in result.steps if "precheck" not in s.name)
    _event(
        runtime, state, "acted", acted or "no steps ran", changed=result.changed, error=result.error
    )
    if result.ok and result.verdict is not None and result.verdict.passed:
        checks = ", ".join(f"{c.name} ({c.observed})" for c in result.verdict.checks)
        _event(
            runtime,
            state,
            "verified",
            f"fresh telemetry confirms recovery: {checks}",
            checks=[c.model_dump() for c in result.verdict.checks],
        )
        return {"status": IncidentStatus.RESOLVED.value}
    why = result.error or "verification failed"
    if result.verdict is not None:
        failed = [f"{c.name} ({c.observed})" for c in result.verdict.checks if not c.passed]
        why = f"{why}: {', '.join(failed)}" if failed else why
    _event(
        runtime,
        state,
        "verification_failed",
        why + ("; the change was rolled back" if result.rolled_back else ""),
    )
    return {"status": IncidentStatus.ESCALATED.value, "reason": why}


def close(state: IncidentState, runtime: Runtime[IncidentDeps]) -> IncidentState:
    runtime.context.incidents.update(
        state["incident_id"], status=IncidentStatus.RESOLVED, closed_at=utcnow()
    )
    _event(runtime, state, "resolved", "incident resolved: fix verified on fresh telemetry")
    return {"status": IncidentStatus.RESOLVED.value}


def escalate(state: IncidentState, runtime: Runtime[IncidentDeps]) -> IncidentState:
    reason = state.get("reason") or "needs a person"
    suggestion = state.get("plan")
    if state.get("outcome") == Outcome.SUGGEST_ONLY.value and suggestion:
        reason = f"suggested {suggestion['playbook']} on {suggestion['device']}; {reason}"
    runtime.context.incidents.update(state["incident_id"], status=IncidentStatus.ESCALATED)
    _event(runtime, state, "escalated", f"escalated to the NOC: {reason}")
    return {"status": IncidentStatus.ESCALATED.value}


# ---- routing ----------------------------------------------------------------


def _after_propose(state: IncidentState) -> Literal["policy", "escalate"]:
    return "policy" if state.get("plan") else "escalate"


def _after_policy(state: IncidentState) -> Literal["dispatch", "approval", "escalate"]:
    outcome = state.get("outcome")
    if outcome == Outcome.RUN.value:
        return "dispatch"
    if outcome == Outcome.NEEDS_APPROVAL.value:
        return "approval"
    return "escalate"


def _after_approval(state: IncidentState) -> Literal["dispatch", "escalate"]:
    return "dispatch" if state.get("outcome") == Outcome.RUN.value else "escalate"


def _after_verify(state: IncidentState) -> Literal["close", "escalate"]:
    return "close" if state.get("status") == IncidentStatus.RESOLVED.value else "escalate"


def build_incident_graph(
    checkpointer: BaseCheckpointSaver[Any],
) -> CompiledStateGraph[IncidentState, IncidentDeps, IncidentState, IncidentState]:
    """Compile the incident graph with ``checkpointer`` (SqliteSaver, PostgresSaver, ...)."""
    g = StateGraph(IncidentState, context_schema=IncidentDeps)
    g.add_node("triage", triage)
    g.add_node("diagnose", diagnose_node)
    g.add_node("propose", propose)
    g.add_node("policy", policy)
    g.add_node("approval", approval)
    g.add_node("dispatch", dispatch)
    g.add_node("await_result", await_result)
    g.add_node("verify", verify)
    g.add_node("close", close)
    g.add_node("escalate", escalate)
    g.add_edge(START, "triage")
    g.add_edge("triage", "diagnose")
    g.add_edge("diagnose", "propose")
    g.add_conditional_edges("propose", _after_propose)
    g.add_conditional_edges("policy", _after_policy)
    g.add_conditional_edges("approval", _after_approval)
    g.add_edge("dispatch", "await_result")
    g.add_edge("await_result", "verify")
    g.add_conditional_edges("verify", _after_verify)
    g.add_edge("close", END)
    g.add_edge("escalate", END)
    return g.compile(checkpointer=checkpointer)
