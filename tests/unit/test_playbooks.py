"""The playbook catalog, parameter validation, and the engine against fake devices.

The engine runs against fakes that implement its Protocols: an SNMP agent
with an in-memory ifName/ifAdminStatus table, a collector that reports
samples from that same table, a device lock and an audit log. Verification
uses a fake clock advanced by a fake ``sleep``, so nothing waits in real time.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from autonoc.core.errors import DeviceLocked, DeviceUnreachable, PlaybookValidationError
from autonoc.core.inventory import Device, Inventory, Role
from autonoc.core.types import ActionPlan, ActionResult, Sample
from collectors.base import Collector, CollectRequest, CollectResult
from playbooks.base import CATALOG_DIR, Catalog, PlaybookSpec
from playbooks.engine import IF_NAME_OID, SNMP_WRITABLE, PlaybookEngine, SnmpOps
from tests.unit.fakes import link, router

ADMIN_OID = SNMP_WRITABLE["ifAdminStatus"][0]
UP, DOWN = 1, 2
PLAYBOOK = "interface-enable"


# ---- catalog ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture
def spec(catalog: Catalog) -> PlaybookSpec:
    return catalog.get(PLAYBOOK)


def test_every_catalog_file_loads_and_validates(catalog: Catalog) -> None:
    files = sorted(CATALOG_DIR.glob("*.yaml"))
    assert files
    names = {s.name for s in catalog}
    assert len(names) == len(files)
    assert {p.stem for p in files} == names
    for spec in catalog:
        assert spec.actions and spec.rollback and spec.verify.conditions


def test_unknown_playbook_name_lists_the_known_ones(catalog: Catalog) -> None:
    with pytest.raises(PlaybookValidationError, match=PLAYBOOK):
        catalog.get("reboot-everything")


def test_validate_params_fills_defaults(spec: PlaybookSpec) -> None:
    params = spec.validate_params({"interface": "eth1"})
    assert params == {"interface": "eth1", "min_traffic_bps": 1000.0, "verify_within_s": 20.0}
    assert isinstance(params["min_traffic_bps"], float)


def test_validate_params_keeps_given_values_typed(spec: PlaybookSpec) -> None:
    params = spec.validate_params({"interface": "eth1", "verify_within_s": 45})
    assert params["verify_within_s"] == 45.0
    assert isinstance(params["verify_within_s"], float)


def test_validate_params_rejects_unknown_parameters(spec: PlaybookSpec) -> None:
    with pytest.raises(PlaybookValidationError, match=r"unknown parameter.*command"):
        spec.validate_params({"interface": "eth1", "command": "shutdown"})


def test_validate_params_requires_parameters_without_default(spec: PlaybookSpec) -> None:
    with pytest.raises(PlaybookValidationError, match="'interface' is required"):
        spec.validate_params({})


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"verify_within_s": 1}, "below its minimum"),
        ({"verify_within_s": 301}, "above its maximum"),
        ({"min_traffic_bps": -1}, "below its minimum"),
        ({"min_traffic_bps": 4e11 + 1}, "above its maximum"),
    ],
)
def test_validate_params_rejects_out_of_bounds_values(
    spec: PlaybookSpec, given: dict[str, Any], message: str
) -> None:
    with pytest.raises(PlaybookValidationError, match=message):
        spec.validate_params({"interface": "eth1", **given})


@pytest.mark.parametrize(
    "given",
    [
        {"verify_within_s": "20"},
        {"verify_within_s": True},
        {"verify_within_s": None, "min_traffic_bps": [1]},
        {"interface": 1},
        {"interface": ""},
        {"interface": "x" * 65},
    ],
)
def test_validate_params_rejects_wrong_types(spec: PlaybookSpec, given: dict[str, Any]) -> None:
    with pytest.raises(PlaybookValidationError):
        spec.validate_params({"interface": "eth1", **given})


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_validate_params_rejects_non_finite_numbers(spec: PlaybookSpec, value: float) -> None:
    # NaN compares false against both bounds; as verify_within_s it would make
    # verification's deadline unreachable.
    with pytest.raises(PlaybookValidationError):
        spec.validate_params({"interface": "eth1", "verify_within_s": value})


def test_validate_params_rejects_a_fraction_for_an_int_parameter(spec: PlaybookSpec) -> None:
    data = spec.model_dump()
    data["params"]["retries"] = {"type": "int", "default": 1, "minimum": 0, "maximum": 3}
    with_int = PlaybookSpec.model_validate(data)
    assert with_int.validate_params({"interface": "eth1", "retries": 2})["retries"] == 2
    # 3.9 must not silently become 3 (and so slip under the maximum).
    with pytest.raises(PlaybookValidationError):
        with_int.validate_params({"interface": "eth1", "retries": 3.9})


GOOD_YAML = """\
name: {name}
description: test playbook
fault_kinds: [{fault}]
roles: [{role}]
risk: {risk}
params:
  interface: {{type: interface}}
actions:
  - {{op: snmp_set, object: ifAdminStatus, value: up}}
verify:
  conditions:
    - {{metric: if_oper_up, equals: 1}}
rollback:
  - {{op: snmp_set, object: ifAdminStatus, value: down}}
"""


def _write_playbook(directory: Path, filename: str, text: str) -> Path:
    path = directory / filename
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _good(name: str, fault: str = "link_down", role: str = "router", risk: str = "low") -> str:
    return GOOD_YAML.format(name=name, fault=fault, role=role, risk=risk)


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        (lambda t: t.replace("risk: low", "risk: extreme"), "risk"),
        (lambda t: t.replace("value: up", "value: sideways"), "actions.0.value"),
        (
            lambda t: t.replace("object: ifAdminStatus, value: up", "object: ifAlias, value: up"),
            "actions.0.object",
        ),
        (lambda t: t.replace("description: test playbook\n", ""), "description"),
        (lambda t: t + "shell: rm -rf /\n", "shell"),
        (
            lambda t: t.replace("{metric: if_oper_up, equals: 1}", "{metric: if_oper_up}"),
            "verify.conditions.0",
        ),
        (lambda t: t.replace("name: bad-one", "name: Bad_One"), "name"),
    ],
)
def test_malformed_catalog_file_names_the_file_and_field(
    tmp_path: Path, broken: Any, field: str
) -> None:
    _write_playbook(tmp_path, "a-good.yaml", _good("good-one"))
    path = _write_playbook(tmp_path, "bad.yaml", broken(_good("bad-one")))
    with pytest.raises(PlaybookValidationError) as info:
        Catalog.load(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert f": {field}:" in message


def test_catalog_file_that_is_not_yaml_names_the_file(tmp_path: Path) -> None:
    path = _write_playbook(tmp_path, "broken.yaml", "name: [unclosed\n")
    with pytest.raises(PlaybookValidationError, match="not valid YAML") as info:
        Catalog.load(tmp_path)
    assert str(path) in str(info.value)


def test_catalog_param_reference_must_name_a_param(tmp_path: Path) -> None:
    text = _good("refs").replace("equals: 1", "equals: param:nope")
    path = _write_playbook(tmp_path, "refs.yaml", text)
    with pytest.raises(PlaybookValidationError, match="param:nope") as info:
        Catalog.load(tmp_path)
    assert str(path) in str(info.value)


def test_catalog_refuses_a_playbook_defined_twice(tmp_path: Path) -> None:
    _write_playbook(tmp_path, "one.yaml", _good("same"))
    two = _write_playbook(tmp_path, "two.yaml", _good("same"))
    with pytest.raises(PlaybookValidationError, match="defined twice") as info:
        Catalog.load(tmp_path)
    assert str(two) in str(info.value)


def test_for_fault_filters_by_fault_kind_and_role(catalog: Catalog) -> None:
    assert [s.name for s in catalog.for_fault("interface_admin_down", "router")] == [PLAYBOOK]
    assert [s.name for s in catalog.for_fault("interface_admin_down", "switch")] == [PLAYBOOK]
    assert catalog.for_fault("interface_admin_down", "roadm") == []
    assert catalog.for_fault("traffic_anomaly", "router") == []


def test_for_fault_lists_lowest_risk_first(tmp_path: Path) -> None:
    _write_playbook(tmp_path, "a.yaml", _good("a-risky", risk="high"))
    _write_playbook(tmp_path, "b.yaml", _good("b-safe", risk="low"))
    _write_playbook(tmp_path, "c.yaml", _good("c-medium", risk="medium"))
    _write_playbook(tmp_path, "d.yaml", _good("d-optical", role="roadm"))
    _write_playbook(tmp_path, "e.yaml", _good("e-other", fault="fan_failed"))
    found = Catalog.load(tmp_path).for_fault("link_down", "router")
    assert [s.name for s in found] == ["b-safe", "c-medium", "a-risky"]


# ---- fakes for the engine ------------------------------------------------------------


@dataclass
class FakePort:
    if_index: int
    admin: int = UP
    link_ok: bool = True  # False: the cable is cut, oper stays down whatever admin says
    bps: float = 5.0e6


@dataclass
class FakeNetwork:
    """The devices' state, shared by the fake SNMP agent and the fake collector."""

    ports: dict[str, dict[str, FakePort]]
    reachable: bool = True

    def port(self, device: str, name: str) -> FakePort:
        return self.ports[device][name]

    def oper_up(self, port: FakePort) -> bool:
        return port.admin == UP and port.link_ok


@dataclass
class FakeSnmp:
    """SnmpOps over the in-memory ifName and ifAdminStatus tables."""

    net: FakeNetwork
    calls: list[tuple[str, str, Any]] = field(default_factory=list)

    async def walk(self, device: Device, root_oids: Sequence[str]) -> dict[str, Any]:
        self.calls.append(("walk", device.name, tuple(root_oids)))
        assert list(root_oids) == [IF_NAME_OID]
        return {f"{IF_NAME_OID}.{p.if_index}": n for n, p in self.net.ports[device.name].items()}

    async def get(self, device: Device, oids: Sequence[str]) -> dict[str, Any]:
        self.calls.append(("get", device.name, tuple(oids)))
        ports = self.net.ports[device.name].values()
        by_oid = {f"{ADMIN_OID}.{p.if_index}": p.admin for p in ports}
        return {oid: by_oid[oid] for oid in oids if oid in by_oid}

    async def set(self, device: Device, oid: str, value: int, *, write: bool = True) -> None:
        self.calls.append(("set", device.name, (oid, value)))
        for port in self.net.ports[device.name].values():
            if oid == f"{ADMIN_OID}.{port.if_index}":
                port.admin = value
                return
        raise AssertionError(f"SET on an OID the fake does not have: {oid}")

    @property
    def sets(self) -> list[tuple[str, Any]]:
        return [(dev, args) for op, dev, args in self.calls if op == "set"]


@dataclass
class FakeCollector:
    """A Collector reporting status and traffic samples from the fake tables."""

    net: FakeNetwork
    clock: FakeClock
    name: str = "fake"

    async def collect(self, device: Device, request: CollectRequest) -> CollectResult:
        if not self.net.reachable:
            return CollectResult(
                device.name, failed=True, exception=DeviceUnreachable(device.name, "no answer")
            )
        ts = self.clock()
        samples = [Sample(device.name, "sys_uptime_s", "", ts, 1000.0 + ts)]
        for name, port in self.net.ports[device.name].items():
            up = self.net.oper_up(port)
            samples += [
                Sample(device.name, "if_admin_up", name, ts, float(port.admin == UP)),
                Sample(device.name, "if_oper_up", name, ts, float(up)),
                Sample(device.name, "if_in_bps", name, ts, port.bps if up else 0.0),
            ]
        return CollectResult(device.name, samples=samples)


class FakeClock:
    """Monotonic time that only moves when the engine sleeps.

    ``on_sleep`` lets a test change the world between verification polls.
    """

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[int], None] = lambda n: None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep(len(self.sleeps))


class FakeLock:
    def __init__(self, busy: set[str] | None = None) -> None:
        self.busy = busy or set()
        self.held: list[str] = []

    @contextmanager
    def hold(self, device: str) -> Iterator[None]:
        if device in self.busy:
            raise DeviceLocked(f"{device} is locked by another playbook")
        self.held.append(device)
        try:
            yield
        finally:
            self.held.remove(device)


class FakeAudit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str, dict[str, Any]]] = []

    def append(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> int:
        self.entries.append((actor, action, subject, details))
        return len(self.entries)

    @property
    def actions(self) -> list[str]:
        return [action for _, action, _, _ in self.entries]


INVENTORY = Inventory(
    devices=(
        router("pe1", 16101),
        router("p1", 16102),
        router("p2", 16103),
        router("pe2", 16104),
        router("roadm1", 16105, Role.ROADM),
    ),
    links=(
        link("pe1:eth1", "p1:eth1"),
        link("p1:eth2", "p2:eth2"),
        link("p2:eth1", "pe2:eth1"),
    ),
)


@dataclass
class Rig:
    engine: PlaybookEngine
    net: FakeNetwork
    snmp: FakeSnmp
    lock: FakeLock
    audit: FakeAudit
    clock: FakeClock

    def run(self, plan: ActionPlan) -> ActionResult:
        return asyncio.run(self.engine.apply(plan))

    def admin(self, device: str, port: str) -> int:
        return self.net.port(device, port).admin


def _rig(catalog: Catalog, busy: set[str] | None = None) -> Rig:
    net = FakeNetwork(
        {
            d.name: {"eth0": FakePort(1), "eth1": FakePort(2), "eth2": FakePort(3)}
            for d in INVENTORY.devices
        }
    )
    snmp, lock, audit, clock = FakeSnmp(net), FakeLock(busy), FakeAudit(), FakeClock()

    def collector_factory() -> Collector:
        return FakeCollector(net, clock)

    engine = PlaybookEngine(
        catalog,
        INVENTORY,
        snmp,
        collector_factory,
        lock,
        audit,
        actor="test-worker",
        sleep=clock.sleep,
        clock=clock,
    )
    return Rig(engine, net, snmp, lock, audit, clock)


@pytest.fixture
def rig(catalog: Catalog) -> Rig:
    r = _rig(catalog)
    r.net.port("pe1", "eth1").admin = DOWN  # the fault: pe1:eth1 administratively shut
    return r


def _plan(rig: Rig, device: str = "pe1", port: str = "eth1", **params: Any) -> ActionPlan:
    return rig.engine.plan(PLAYBOOK, device, port, {"interface": port, **params}, incident_id=7)


def test_fakes_implement_the_protocols(rig: Rig) -> None:
    snmp: SnmpOps = rig.snmp
    assert isinstance(FakeCollector(rig.net, rig.clock), Collector)
    assert snmp is rig.snmp


# ---- planning ----------------------------------------------------------------------


def test_plan_is_validated_and_carries_defaults(rig: Rig) -> None:
    plan = _plan(rig)
    assert (plan.playbook, plan.device, plan.target, plan.incident_id) == (
        PLAYBOOK,
        "pe1",
        "eth1",
        7,
    )
    assert plan.params["verify_within_s"] == 20.0
    assert plan.hash == _plan(rig).hash
    assert plan.hash != _plan(rig, verify_within_s=30).hash


def test_plan_rejects_a_device_not_in_the_inventory(rig: Rig) -> None:
    with pytest.raises(PlaybookValidationError, match="'ghost' is not in the inventory"):
        rig.engine.plan(PLAYBOOK, "ghost", "eth1", {"interface": "eth1"})


def test_plan_rejects_a_role_the_playbook_does_not_cover(rig: Rig) -> None:
    with pytest.raises(PlaybookValidationError, match="roadm1"):
        rig.engine.plan(PLAYBOOK, "roadm1", "eth1", {"interface": "eth1"})


def test_plan_rejects_a_target_that_differs_from_the_interface_param(rig: Rig) -> None:
    with pytest.raises(PlaybookValidationError, match="target"):
        rig.engine.plan(PLAYBOOK, "pe1", "eth2", {"interface": "eth1"})


def test_plan_rejects_bad_params(rig: Rig) -> None:
    with pytest.raises(PlaybookValidationError, match="unknown parameter"):
        _plan(rig, force=True)


def test_dry_run_renders_the_snmp_set_and_touches_nothing(rig: Rig) -> None:
    lines = rig.engine.dry_run(_plan(rig))
    action = f"SNMP SET pe1 IF-MIB::ifAdminStatus.<ifIndex of eth1> ({ADMIN_OID}.N) = 1 (up)"
    assert f"action: {action}" in lines
    assert any(line.startswith("rollback:") and "= 2 (down)" in line for line in lines)
    assert any(line.startswith("verify:") and "if_in_bps >= 1000" in line for line in lines)
    assert any(line.startswith("precheck:") and "sys_uptime_s" in line for line in lines)
    assert rig.snmp.calls == []
    assert rig.audit.entries == []
    assert rig.admin("pe1", "eth1") == DOWN


# ---- apply, verify, rollback -----------------------------------------------------------


def test_apply_enables_an_admin_down_interface_and_verifies(rig: Rig) -> None:
    result = rig.run(_plan(rig))
    assert result.error is None
    assert result.ok and result.changed and not result.rolled_back
    assert rig.admin("pe1", "eth1") == UP
    assert rig.snmp.sets == [("pe1", (f"{ADMIN_OID}.2", UP))]
    assert result.verdict is not None and result.verdict.passed
    assert {c.name for c in result.verdict.checks} == {
        "interface is administratively up",
        "interface is operationally up",
        "traffic flows in",
    }
    assert rig.lock.held == []  # released after the change
    # Other interfaces and devices were left alone.
    assert rig.admin("p1", "eth1") == UP
    assert rig.admin("pe1", "eth2") == UP


def test_applying_the_same_plan_twice_changes_the_device_once(rig: Rig) -> None:
    plan = _plan(rig)
    first = rig.run(plan)
    second = rig.run(plan)
    assert first.changed and first.ok
    assert second.ok and not second.changed
    assert len(rig.snmp.sets) == 1
    assert any("already set; no change" in s.detail for s in second.steps)
    assert rig.audit.actions.count("snmp_set") == 1


def test_failed_verification_rolls_back(rig: Rig) -> None:
    rig.net.port("pe1", "eth1").link_ok = False  # oper stays down: the fix does not take
    result = rig.run(_plan(rig, verify_within_s=10))
    assert not result.ok
    assert result.changed and result.rolled_back
    assert result.verdict is not None and not result.verdict.passed
    failed = {c.name for c in result.verdict.checks if not c.passed}
    assert failed == {"interface is operationally up", "traffic flows in"}
    assert rig.admin("pe1", "eth1") == DOWN
    assert rig.snmp.sets == [("pe1", (f"{ADMIN_OID}.2", UP)), ("pe1", (f"{ADMIN_OID}.2", DOWN))]
    # It polled until its deadline on the fake clock, not in real time.
    assert sum(rig.clock.sleeps) == pytest.approx(10.0)
    assert "playbook_rolled_back" in rig.audit.actions


def test_verification_waits_for_a_slow_recovery(rig: Rig) -> None:
    port = rig.net.port("pe1", "eth1")
    port.link_ok = False

    def link_comes_up_after_three_polls(sleeps: int) -> None:
        if sleeps == 3:
            port.link_ok = True

    rig.clock.on_sleep = link_comes_up_after_three_polls
    result = rig.run(_plan(rig))
    assert result.ok and result.changed and not result.rolled_back
    assert len(rig.clock.sleeps) == 3
    assert rig.admin("pe1", "eth1") == UP


def test_unknown_interface_gives_an_error_and_no_change(rig: Rig) -> None:
    result = rig.run(_plan(rig, port="eth7"))
    assert not result.ok and not result.changed and not result.rolled_back
    assert result.error is not None and "eth7" in result.error
    assert rig.snmp.sets == []


def test_locked_device_gives_an_error_and_no_change(catalog: Catalog) -> None:
    rig = _rig(catalog, busy={"pe1"})
    rig.net.port("pe1", "eth1").admin = DOWN
    result = rig.run(_plan(rig))
    assert not result.ok and not result.changed
    assert result.error is not None and "locked" in result.error
    assert rig.snmp.calls == []
    assert rig.admin("pe1", "eth1") == DOWN


def test_unreachable_device_fails_the_precheck_and_changes_nothing(rig: Rig) -> None:
    rig.net.reachable = False
    result = rig.run(_plan(rig))
    assert not result.ok and not result.changed
    assert result.error is not None and "pe1" in result.error
    assert rig.snmp.sets == []


def test_device_lost_during_verification_is_rolled_back(rig: Rig) -> None:
    rig.net.port("pe1", "eth1").link_ok = False

    def lose_device(sleeps: int) -> None:
        rig.net.reachable = False

    rig.clock.on_sleep = lose_device
    result = rig.run(_plan(rig))
    assert not result.ok and result.changed and result.rolled_back
    assert result.error is not None and "no answer" in result.error
    assert rig.admin("pe1", "eth1") == DOWN


def test_a_plan_that_was_tampered_with_is_refused(rig: Rig) -> None:
    honest = _plan(rig)
    params = {**honest.params, "verify_within_s": 100_000.0}
    tampered = honest.model_copy(update={"params": params})
    result = rig.run(tampered)
    assert not result.ok and not result.changed
    assert result.error is not None and "verify_within_s" in result.error
    assert rig.snmp.calls == []


def test_every_change_is_audited(rig: Rig) -> None:
    plan = _plan(rig)
    rig.run(plan)
    assert rig.audit.actions == ["playbook_started", "snmp_set", "playbook_finished"]
    for actor, _, subject, details in rig.audit.entries:
        assert actor == "test-worker"
        assert subject == "pe1:eth1"
        assert details["plan_hash"] == plan.hash
    _, _, _, set_details = rig.audit.entries[1]
    assert set_details["value"] == UP and set_details["was"] == DOWN
    _, _, _, finished = rig.audit.entries[-1]
    assert finished["ok"] is True and finished["changed"] is True


def test_a_rolled_back_change_is_audited_both_ways(rig: Rig) -> None:
    rig.net.port("pe1", "eth1").link_ok = False
    rig.run(_plan(rig))
    assert rig.audit.actions == [
        "playbook_started",
        "snmp_set",
        "snmp_set",
        "playbook_rolled_back",
        "playbook_finished",
    ]
    values = [d["value"] for _, a, _, d in rig.audit.entries if a == "snmp_set"]
    assert values == [UP, DOWN]
    assert rig.audit.entries[-1][3]["rolled_back"] is True


def test_failures_are_audited_too(rig: Rig) -> None:
    rig.run(_plan(rig, port="eth7"))
    assert rig.audit.actions == ["playbook_started", "playbook_finished"]
    assert "eth7" in rig.audit.entries[-1][3]["error"]
