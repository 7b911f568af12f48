"""The policy gate, deterministic diagnosis, and the incident graph's paths.

The graph runs with a fresh in-memory checkpointer and fake dependencies (an
incident sink, an audit log, a dispatcher and a ``latest`` telemetry view), so
its interrupt and resume paths are exercised exactly as the demo drives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from agents.diagnose import Latest, diagnose
from agents.graph import IncidentDeps, anomaly_to_dict, build_incident_graph
from agents.policy import Outcome, PolicyGate
from autonoc.core.inventory import Inventory
from autonoc.core.settings import Autonomy, PolicySettings
from autonoc.core.types import (
    ActionPlan,
    ActionResult,
    Anomaly,
    Attribution,
    Check,
    IncidentStatus,
    StepResult,
    TimelineEvent,
    Verdict,
)
from playbooks.base import Catalog, PlaybookSpec
from tests.unit.fakes import FakeClock, link, router

PLAYBOOK = "interface-enable"

# ---- shared world ------------------------------------------------------------------


INVENTORY = Inventory(
    devices=(
        router("pe1", 16101),
        router("p1", 16102),
        router("p2", 16103),
        router("pe2", 16104),
    ),
    links=(
        link("pe1:eth1", "p1:eth1"),
        link("p1:eth2", "p2:eth2"),
        link("p2:eth1", "pe2:eth1"),
        link("pe1:eth2", "p2:eth3"),
    ),
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture
def spec(catalog: Catalog) -> PlaybookSpec:
    return catalog.get(PLAYBOOK)


def _state(
    *,
    admin_down: tuple[str, ...] = (),
    oper_down: tuple[str, ...] = (),
) -> dict[str, dict[tuple[str, str], tuple[float, float]]]:
    """``latest`` for every inventory port: all up, except the ``device:port`` named."""
    ports: dict[str, set[str]] = {d.name: set() for d in INVENTORY.devices}
    for ip_link in INVENTORY.links:
        for end in (ip_link.a, ip_link.b):
            ports[end.device].add(end.port)
    latest: dict[str, dict[tuple[str, str], tuple[float, float]]] = {}
    for device, names in ports.items():
        latest[device] = {}
        for port in sorted(names):
            where = f"{device}:{port}"
            admin = 0.0 if where in admin_down else 1.0
            oper = 0.0 if where in admin_down or where in oper_down else 1.0
            latest[device][("if_admin_up", port)] = (100.0, admin)
            latest[device][("if_oper_up", port)] = (100.0, oper)
            latest[device][("if_in_bps", port)] = (100.0, 1e6 * oper)
    return latest


# The demo fault: pe1:eth1 shut, so p1:eth1 (its far end) goes oper down too.
ADMIN_DOWN = _state(admin_down=("pe1:eth1",), oper_down=("p1:eth1",))
LINK_DOWN = _state(oper_down=("pe1:eth1", "p1:eth1"))
ALL_UP = _state()


def _anomaly(device: str, port: str, metric: str = "if_in_bps", value: float = 0.0) -> Anomaly:
    return Anomaly(
        device=device,
        ts=100.0,
        score=20.0,
        threshold=6.0,
        detector="robust_z",
        attributions=(
            Attribution(metric=metric, instance=port, score=20.0, value=value, expected=1e6),
            Attribution(metric="if_out_bps", instance=port, score=3.0, value=8e5, expected=8e5),
        ),
    )


# ---- policy gate ---------------------------------------------------------------------


def _plan(device: str = "pe1") -> ActionPlan:
    return ActionPlan(
        playbook=PLAYBOOK,
        device=device,
        target="eth1",
        params={"interface": "eth1", "min_traffic_bps": 1000.0, "verify_within_s": 20.0},
        incident_id=1,
    )


def test_policy_uses_the_catalog_default_autonomy(spec: PlaybookSpec) -> None:
    assert spec.autonomy is Autonomy.APPROVE
    decision = PolicyGate(PolicySettings()).decide(_plan(), spec)
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    assert decision.autonomy is Autonomy.APPROVE
    assert decision.plan_hash == _plan().hash
    assert "catalog default" in decision.reason


def test_policy_settings_can_raise_a_playbook_to_auto(spec: PlaybookSpec) -> None:
    gate = PolicyGate(PolicySettings(autonomy={PLAYBOOK: Autonomy.AUTO}))
    decision = gate.decide(_plan(), spec)
    assert decision.outcome is Outcome.RUN
    assert decision.autonomy is Autonomy.AUTO
    assert "settings" in decision.reason


def test_policy_settings_can_lower_a_playbook_to_suggest(spec: PlaybookSpec) -> None:
    gate = PolicyGate(PolicySettings(autonomy={PLAYBOOK: Autonomy.SUGGEST}))
    assert gate.decide(_plan(), spec).outcome is Outcome.SUGGEST_ONLY


def test_policy_overrides_for_other_playbooks_do_not_apply(spec: PlaybookSpec) -> None:
    gate = PolicyGate(PolicySettings(autonomy={"some-other-playbook": Autonomy.AUTO}))
    assert gate.decide(_plan(), spec).outcome is Outcome.NEEDS_APPROVAL


def test_policy_rate_limit_denies_then_the_window_expires(spec: PlaybookSpec) -> None:
    clock = FakeClock()
    settings = PolicySettings(autonomy={PLAYBOOK: Autonomy.AUTO}, max_actions_per_device_per_hour=3)
    gate = PolicyGate(settings, clock=clock)
    for _ in range(3):
        assert gate.decide(_plan(), spec).outcome is Outcome.RUN
        gate.record_dispatch("pe1")
        clock.now += 60.0
    denied = gate.decide(_plan(), spec)
    assert denied.outcome is Outcome.DENY
    assert "limit 3" in denied.reason
    # Another device has its own budget.
    assert gate.decide(_plan("p1"), spec).outcome is Outcome.RUN
    # An hour after the first dispatch, one slot frees up again.
    clock.now += 3600.0 - 3 * 60.0 + 1.0
    assert gate.decide(_plan(), spec).outcome is Outcome.RUN
    gate.record_dispatch("pe1")
    assert gate.decide(_plan(), spec).outcome is Outcome.DENY


def test_policy_rate_limit_also_holds_back_approvals(spec: PlaybookSpec) -> None:
    gate = PolicyGate(PolicySettings(max_actions_per_device_per_hour=0), clock=FakeClock())
    assert gate.decide(_plan(), spec).outcome is Outcome.DENY


# ---- diagnosis ------------------------------------------------------------------------


def test_admin_down_is_the_cause_and_the_far_end_is_impact() -> None:
    found = diagnose([_anomaly("pe1", "eth1"), _anomaly("p1", "eth1")], ADMIN_DOWN, INVENTORY)
    assert found.fault_kind == "interface_admin_down"
    assert (found.device, found.instance) == ("pe1", "eth1")
    assert any(i.startswith("p1:eth1") for i in found.impact)
    assert any("if_admin_up@eth1 = 0" in e for e in found.evidence)


def test_admin_down_is_found_through_the_peer_when_only_the_far_end_is_anomalous() -> None:
    # The detector scored p1:eth1 highest; the cause sits on the other end of its link.
    found = diagnose([_anomaly("p1", "eth1")], ADMIN_DOWN, INVENTORY)
    assert found.fault_kind == "interface_admin_down"
    assert (found.device, found.instance) == ("pe1", "eth1")
    assert any(i.startswith("p1:eth1") for i in found.impact)


def test_oper_down_with_admin_up_is_a_link_fault() -> None:
    found = diagnose([_anomaly("pe1", "eth1")], LINK_DOWN, INVENTORY)
    assert found.fault_kind == "link_down"
    assert (found.device, found.instance) == ("pe1", "eth1")


def test_everything_up_is_a_traffic_anomaly() -> None:
    found = diagnose([_anomaly("p2", "eth2", value=9e9)], ALL_UP, INVENTORY)
    assert found.fault_kind == "traffic_anomaly"
    assert (found.device, found.instance) == ("p2", "eth2")
    assert found.confidence < 0.95


def test_unrelated_admin_down_port_is_not_blamed() -> None:
    # pe2:eth1 is shut, but no anomaly points at it or its far end.
    latest = _state(admin_down=("pe2:eth1",), oper_down=("p2:eth1",))
    found = diagnose([_anomaly("p1", "eth2", value=9e9)], latest, INVENTORY)
    assert found.fault_kind == "traffic_anomaly"


def test_diagnose_needs_an_anomaly() -> None:
    with pytest.raises(ValueError):
        diagnose([], ALL_UP, INVENTORY)


# ---- the incident graph ---------------------------------------------------------------


@dataclass
class FakeIncidents:
    events: list[tuple[int, TimelineEvent]] = field(default_factory=list)
    updates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def add_event(self, incident_id: int, event: TimelineEvent) -> None:
        self.events.append((incident_id, event))

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
    ) -> None:
        fields = {
            "status": status,
            "fault_kind": fault_kind,
            "title": title,
            "device": device,
            "instance": instance,
        }
        fields["closed_at"] = closed_at
        self.updates.append((incident_id, {k: v for k, v in fields.items() if v is not None}))

    @property
    def kinds(self) -> list[str]:
        return [e.kind for _, e in self.events]

    @property
    def statuses(self) -> list[IncidentStatus]:
        return [u["status"] for _, u in self.updates if "status" in u]


@dataclass
class FakeAudit:
    entries: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    def append(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> int:
        self.entries.append((actor, action, subject, details))
        return len(self.entries)


@dataclass
class FakeDispatcher:
    plans: list[ActionPlan] = field(default_factory=list)

    approvals: list[str | None] = field(default_factory=list)

    def dispatch(self, plan: ActionPlan, approval: str | None = None) -> str:
        self.plans.append(plan)
        self.approvals.append(approval)
        return "task-1"


@dataclass
class World:
    deps: IncidentDeps
    incidents: FakeIncidents
    audit: FakeAudit
    dispatcher: FakeDispatcher
    asked: list[list[str]]


def _world(catalog: Catalog, latest: Latest, autonomy: Autonomy | None = None) -> World:
    incidents, audit, dispatcher = FakeIncidents(), FakeAudit(), FakeDispatcher()
    asked: list[list[str]] = []

    def latest_for(devices: list[str]) -> Latest:
        asked.append(list(devices))
        return {d: latest[d] for d in devices if d in latest}

    overrides = {PLAYBOOK: autonomy} if autonomy else {}
    deps = IncidentDeps(
        inventory=INVENTORY,
        catalog=catalog,
        policy=PolicyGate(PolicySettings(autonomy=overrides), clock=FakeClock()),
        incidents=incidents,
        audit=audit,
        latest=latest_for,
        dispatcher=dispatcher,
    )
    return World(deps, incidents, audit, dispatcher, asked)


CONFIG: Any = {"configurable": {"thread_id": "t1"}}


def _start(world: World, *anomalies: Anomaly) -> tuple[Any, dict[str, Any]]:
    graph = build_incident_graph(InMemorySaver())
    state = {"incident_id": 42, "anomalies": [anomaly_to_dict(a) for a in anomalies]}
    return graph, graph.invoke(state, CONFIG, context=world.deps)


def _interrupt(result: dict[str, Any]) -> dict[str, Any]:
    assert "__interrupt__" in result, f"the graph did not pause: {result.get('status')}"
    (paused,) = result["__interrupt__"]
    value: dict[str, Any] = paused.value
    return value


def _result(ok: bool, passed: bool, plan_hash: str = "x") -> dict[str, Any]:
    checks = [
        Check(name="interface is operationally up", passed=passed, observed="if_oper_up=1"),
        Check(name="traffic flows in", passed=passed, observed="if_in_bps=5e+06"),
    ]
    result = ActionResult(
        plan_hash=plan_hash,
        playbook=PLAYBOOK,
        device="pe1",
        ok=ok,
        changed=True,
        steps=[StepResult(name="action ifAdminStatus=up", ok=True, detail="SET ... = 1")],
        verdict=Verdict(passed=passed, checks=checks),
        rolled_back=not passed,
    )
    return result.model_dump(mode="json")


def test_graph_at_auto_dispatches_once_and_resolves_after_resume(catalog: Catalog) -> None:
    world = _world(catalog, ADMIN_DOWN, Autonomy.AUTO)
    graph, result = _start(world, _anomaly("p1", "eth1"))
    paused = _interrupt(result)
    assert paused == {"kind": "await_task", "task_id": "task-1"}
    assert len(world.dispatcher.plans) == 1
    plan = world.dispatcher.plans[0]
    assert (plan.playbook, plan.device, plan.target, plan.incident_id) == (
        PLAYBOOK,
        "pe1",
        "eth1",
        42,
    )
    # The peer lookup asked for p1's far end too.
    assert "pe1" in world.asked[0]

    done = graph.invoke(
        Command(resume=_result(ok=True, passed=True, plan_hash=plan.hash)),
        CONFIG,
        context=world.deps,
    )
    assert "__interrupt__" not in done
    assert done["status"] == IncidentStatus.RESOLVED.value
    assert world.incidents.kinds == [
        "triaged",
        "diagnosed",
        "planned",
        "policy",
        "dispatched",
        "acted",
        "verified",
        "resolved",
    ]
    assert {i for i, _ in world.incidents.events} == {42}
    assert world.incidents.statuses == [
        IncidentStatus.DIAGNOSED,
        IncidentStatus.ACTING,
        IncidentStatus.RESOLVED,
    ]
    closing = world.incidents.updates[-1][1]
    assert closing.get("closed_at") is not None
    assert world.incidents.updates[0][1]["fault_kind"] == "interface_admin_down"
    assert len(world.dispatcher.plans) == 1, "resume must not dispatch the plan again"
    actions = [a for _, a, _, _ in world.audit.entries]
    assert actions == ["policy_decision", "plan_dispatched"]


def test_graph_escalates_when_verification_fails(catalog: Catalog) -> None:
    world = _world(catalog, ADMIN_DOWN, Autonomy.AUTO)
    graph, result = _start(world, _anomaly("pe1", "eth1"))
    assert _interrupt(result)["kind"] == "await_task"
    done = graph.invoke(Command(resume=_result(ok=False, passed=False)), CONFIG, context=world.deps)
    assert done["status"] == IncidentStatus.ESCALATED.value
    assert world.incidents.kinds[-3:] == ["acted", "verification_failed", "escalated"]
    assert "resolved" not in world.incidents.kinds
    assert world.incidents.statuses[-1] is IncidentStatus.ESCALATED
    failed_event = world.incidents.events[-2][1]
    assert "traffic flows in" in failed_event.message
    assert "rolled back" in failed_event.message
    assert len(world.dispatcher.plans) == 1


def test_graph_waits_for_an_approval_bound_to_the_plan_hash(catalog: Catalog) -> None:
    world = _world(catalog, ADMIN_DOWN)  # catalog default: approve
    graph, result = _start(world, _anomaly("p1", "eth1"))
    paused = _interrupt(result)
    assert paused["kind"] == "approval"
    assert paused["incident_id"] == 42
    plan = ActionPlan.model_validate(paused["plan"])
    assert paused["plan_hash"] == plan.hash
    assert (plan.device, plan.target) == ("pe1", "eth1")
    assert world.dispatcher.plans == []

    answer = {"approved": True, "plan_hash": paused["plan_hash"], "by": "alice"}
    after = graph.invoke(Command(resume=answer), CONFIG, context=world.deps)
    assert _interrupt(after) == {"kind": "await_task", "task_id": "task-1"}
    assert [p.hash for p in world.dispatcher.plans] == [plan.hash]
    # The run goes under the approval: its task id is bound to who approved it.
    assert world.dispatcher.approvals == ["alice-incident42"]
    assert "approved" in world.incidents.kinds
    approvals = [e for e in world.audit.entries if e[1] == "approval"]
    assert approvals == [
        ("alice", "approval", "incident:42", {"plan_hash": plan.hash, "approved": True})
    ]

    done = graph.invoke(
        Command(resume=_result(ok=True, passed=True, plan_hash=plan.hash)),
        CONFIG,
        context=world.deps,
    )
    assert done["status"] == IncidentStatus.RESOLVED.value
    assert len(world.dispatcher.plans) == 1


def test_graph_refuses_an_approval_for_another_plan_hash(catalog: Catalog) -> None:
    world = _world(catalog, ADMIN_DOWN)
    graph, result = _start(world, _anomaly("p1", "eth1"))
    paused = _interrupt(result)
    answer = {"approved": True, "plan_hash": "0000000000000000", "by": "mallory"}
    assert answer["plan_hash"] != paused["plan_hash"]
    done = graph.invoke(Command(resume=answer), CONFIG, context=world.deps)
    assert "__interrupt__" not in done
    assert done["status"] == IncidentStatus.ESCALATED.value
    assert world.dispatcher.plans == []
    assert world.incidents.kinds[-2:] == ["rejected", "escalated"]
    assert "another plan hash" in world.incidents.events[-2][1].message
    approvals = [e for e in world.audit.entries if e[1] == "approval"]
    assert approvals[0][3]["approved"] is False


def test_graph_escalates_a_rejection(catalog: Catalog) -> None:
    world = _world(catalog, ADMIN_DOWN)
    graph, result = _start(world, _anomaly("p1", "eth1"))
    paused = _interrupt(result)
    answer = {"approved": False, "plan_hash": paused["plan_hash"], "by": "bob"}
    done = graph.invoke(Command(resume=answer), CONFIG, context=world.deps)
    assert done["status"] == IncidentStatus.ESCALATED.value
    assert world.dispatcher.plans == []
    assert "rejected by bob" in world.incidents.events[-2][1].message


def test_graph_at_suggest_escalates_with_the_suggestion(catalog: Catalog) -> None:
    world = _world(catalog, ADMIN_DOWN, Autonomy.SUGGEST)
    _, done = _start(world, _anomaly("p1", "eth1"))
    assert "__interrupt__" not in done
    assert done["status"] == IncidentStatus.ESCALATED.value
    assert world.dispatcher.plans == []
    assert f"suggested {PLAYBOOK} on pe1" in world.incidents.events[-1][1].message


def test_graph_escalates_a_fault_no_playbook_treats(catalog: Catalog) -> None:
    world = _world(catalog, ALL_UP, Autonomy.AUTO)
    _, done = _start(world, _anomaly("p2", "eth2", value=9e9))
    assert "__interrupt__" not in done
    assert done["status"] == IncidentStatus.ESCALATED.value
    assert done["fault_kind"] == "traffic_anomaly"
    assert world.dispatcher.plans == []
    assert world.incidents.kinds == ["triaged", "diagnosed", "no_plan", "escalated"]
    assert world.incidents.statuses == [IncidentStatus.DIAGNOSED, IncidentStatus.ESCALATED]
    assert not any(a == "plan_dispatched" for _, a, _, _ in world.audit.entries)


def test_graph_escalates_when_the_rate_limit_denies(catalog: Catalog) -> None:
    world = _world(catalog, ADMIN_DOWN, Autonomy.AUTO)
    for _ in range(world.deps.policy.settings.max_actions_per_device_per_hour):
        world.deps.policy.record_dispatch("pe1")
    _, done = _start(world, _anomaly("p1", "eth1"))
    assert done["status"] == IncidentStatus.ESCALATED.value
    assert world.dispatcher.plans == []
    assert world.incidents.kinds[-2:] == ["policy", "escalated"]
