"""The playbook format, parameter validation, and the engine's logic against fakes.

The engine runs against fakes of its Protocols: a NETCONF device that keeps a
running and a candidate configuration as XML and implements confirmed commit
(a closed or dropped session reverts an unconfirmed commit, as RFC 6241 8.4
says), an SNMP agent with an ifName/ifAdminStatus table, telemetry read from
those same fakes, a lock and an audit list. The journal, archive and tickets
are the real ones on an in-memory SQLite database. Time is a fake clock
advanced by a fake ``sleep``.
"""

from __future__ import annotations

import asyncio
import copy
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from lxml import etree
from pydantic import SecretStr
from sqlalchemy.pool import StaticPool

from autonoc.core.db import metadata
from autonoc.core.errors import DeviceLocked, PlaybookValidationError
from autonoc.core.inventory import Device, Inventory, Mgmt, NetconfCredentials, Role, SnmpV2c
from autonoc.core.types import ActionPlan
from playbooks.base import CATALOG_DIR, Catalog, PlaybookSpec, load_spec
from playbooks.engine import IF_NAME_OID, PlaybookEngine
from playbooks.journal import ConfigArchive, RunJournal, RunState, TicketBook
from playbooks.platforms import NC_BASE, Platforms

OC_IF = "http://openconfig.net/yang/interfaces"
ADMIN_OID = "1.3.6.1.2.1.2.2.1.7"
ENABLED_PATH = "/oc-if:interfaces/oc-if:interface[name=eth1]/oc-if:config/oc-if:enabled"
UP, DOWN = 1, 2


# ---- the format ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_every_catalog_playbook_loads_with_a_rollback(catalog: Catalog) -> None:
    names = {spec.name for spec in catalog}
    assert len(names) == len(list(CATALOG_DIR.glob("*.yaml"))) == 12
    assert {
        "drain-link",
        "undrain-link",
        "interface-bounce",
        "shut-flapping-interface",
        "bgp-neighbor-enable",
        "config-rollback",
        "raise-amplifier-gain",
        "raise-launch-power",
        "protection-switch",
        "rebalance-traffic",
        "restart-process",
        "interface-enable",
    } == names
    for spec in catalog:
        assert spec.rollback and spec.verify.conditions


def test_every_catalog_op_renders_on_the_openconfig_platform(catalog: Catalog) -> None:
    platform = next(p for p in Platforms.load() if p.name == "openconfig")
    for spec in catalog:
        for action in (*spec.actions, *spec.rollback):
            if action.op in ("wait", "open_ticket", "restore"):
                continue
            if action.op == "bounce_interface":
                assert platform.renderings("set_interface_enabled")
                continue
            assert platform.renderings(action.op), f"{spec.name}: {action.op}"


def _write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


GOOD = """\
    name: test-enable
    description: enable an interface
    fault_kinds: [link_down]
    roles: [router]
    target: interface
    risk: low
    params:
      interface: {type: interface}
      gain: {type: float, default: 1, minimum: 0.5, maximum: 3}
    actions:
      - {op: set_interface_enabled, enabled: true}
    verify:
      within_s: 10
      conditions:
        - {metric: if_oper_up, equals: 1}
    rollback:
      - {op: restore}
"""


def test_a_good_file_loads(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, GOOD))
    assert spec.name == "test-enable" and spec.changes_config


def test_validation_error_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("risk: low", "risk: extreme"))
    with pytest.raises(PlaybookValidationError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message and "line 6" in message and "risk" in message, message


def test_validation_error_inside_a_list_points_at_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("enabled: true}", "enabled: true, colour: red}"))
    with pytest.raises(PlaybookValidationError) as info:
        load_spec(path)
    message = str(info.value)
    assert "line 11" in message and "actions.0" in message and "colour" in message, message


def test_a_file_that_is_not_yaml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: [unclosed\n")
    with pytest.raises(PlaybookValidationError, match="not valid YAML") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_a_reference_to_an_unknown_parameter_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("within_s: 10", "within_s: param:nope"))
    with pytest.raises(PlaybookValidationError, match="'param:nope': no parameter"):
        load_spec(path)


def test_a_condition_placed_on_an_unknown_parameter_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GOOD.replace(
            "{metric: if_oper_up, equals: 1}", "{metric: x, equals: 1, device: param:router}"
        ),
    )
    with pytest.raises(PlaybookValidationError, match="'param:router': no parameter"):
        load_spec(path)


def test_rollback_cannot_adjust_by_a_delta(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GOOD.replace("- {op: restore}", "- {op: adjust_amplifier_gain, delta_db: -3}"),
    )
    with pytest.raises(PlaybookValidationError, match="rollback cannot adjust by a delta"):
        load_spec(path)


def test_a_target_must_name_a_name_parameter(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("target: interface", "target: gain"))
    with pytest.raises(PlaybookValidationError, match="target 'gain' must name"):
        load_spec(path)


def test_a_playbook_defined_twice_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, GOOD, "a.yaml")
    _write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(PlaybookValidationError, match="defined twice"):
        Catalog.load(tmp_path)


@pytest.fixture
def spec(tmp_path: Path) -> PlaybookSpec:
    return load_spec(_write(tmp_path, GOOD))


def test_params_get_defaults_and_types(spec: PlaybookSpec) -> None:
    assert spec.validate_params({"interface": "eth1"}) == {"interface": "eth1", "gain": 1.0}
    assert spec.validate_params({"interface": "eth1", "gain": 2})["gain"] == 2.0


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"interface": "eth1", "gain": 3.5}, "above its maximum 3"),
        ({"interface": "eth1", "gain": 0.1}, "below its minimum 0.5"),
        ({"interface": "eth1", "gain": float("nan")}, "finite"),
        ({"interface": "eth1", "gain": "3"}, "must be a number"),
        ({"interface": "eth1", "gain": True}, "must be a number"),
        ({"interface": "eth1; reload", "gain": 1}, "must be a interface name"),
        ({}, "'interface' is required"),
        ({"interface": "eth1", "colour": "red"}, r"unknown parameter\(s\) \['colour'\]"),
    ],
)
def test_bad_params_are_refused_with_a_clear_error(
    spec: PlaybookSpec, given: dict[str, Any], message: str
) -> None:
    with pytest.raises(PlaybookValidationError, match=message):
        spec.validate_params(given)


def test_catalog_bounds_the_amplifier_gain_change(catalog: Catalog) -> None:
    gain = catalog.get("raise-amplifier-gain")
    with pytest.raises(PlaybookValidationError, match="above its maximum 3"):
        gain.validate_params({"gain_change_db": 6.0, "min_output_dbm": 0.0})


def test_unknown_playbook_lists_the_known_ones(catalog: Catalog) -> None:
    with pytest.raises(PlaybookValidationError, match="drain-link"):
        catalog.get("no-such-playbook")


def test_worst_case_counts_waits_and_verification(catalog: Catalog) -> None:
    bounce = catalog.get("interface-bounce")
    assert bounce.worst_case_s({"down_s": 5, "verify_within_s": 20}) == 60 + 20 + 5
    assert catalog.longest_run_s() >= bounce.worst_case_s()


# ---- fakes for the engine ---------------------------------------------------------------


def _leaf(parent: Any, tag: str, text: str) -> Any:
    node = etree.SubElement(parent, tag)
    node.text = text
    return node


def _interfaces_config(enabled: dict[str, bool]) -> Any:
    data = etree.Element(f"{{{NC_BASE}}}data")
    interfaces = etree.SubElement(data, f"{{{OC_IF}}}interfaces")
    for name, on in enabled.items():
        intf = etree.SubElement(interfaces, f"{{{OC_IF}}}interface")
        _leaf(intf, f"{{{OC_IF}}}name", name)
        config = etree.SubElement(intf, f"{{{OC_IF}}}config")
        _leaf(config, f"{{{OC_IF}}}name", name)
        _leaf(config, f"{{{OC_IF}}}enabled", "true" if on else "false")
    return data


def _merge(target: Any, edit: Any) -> None:
    """NETCONF merge, enough for keyed paths: an entry with containers below it is a
    list entry keyed by its leaves; one with only leaves is a container."""
    for child in edit:
        operation = child.get(f"{{{NC_BASE}}}operation")
        is_leaf = len(child) == 0
        keys = (
            {c.tag: (c.text or "") for c in child if len(c) == 0}
            if any(len(c) for c in child)
            else {}
        )
        match = None
        for existing in target.iterchildren(child.tag):
            if all(existing.findtext(k) == v for k, v in keys.items()):
                match = existing
                break
        if operation == "remove":
            if match is not None:
                target.remove(match)
            continue
        if is_leaf:
            if match is None:
                match = etree.SubElement(target, child.tag)
            match.text = child.text
            continue
        if match is None:
            match = etree.SubElement(target, child.tag)
        _merge(match, child)


@dataclass
class FakeNetconfDevice:
    """One device's datastores and its pending confirmed commit."""

    running: Any
    candidate: Any = None
    rollback_to: Any = None
    commits: list[str] = field(default_factory=list)
    revert_on_close: bool = True

    def __post_init__(self) -> None:
        self.candidate = copy.deepcopy(self.running)

    def enabled(self, ifname: str) -> bool:
        for intf in self.running.iter(f"{{{OC_IF}}}interface"):
            if intf.findtext(f"{{{OC_IF}}}name") == ifname:
                return bool(intf.findtext(f"{{{OC_IF}}}config/{{{OC_IF}}}enabled") == "true")
        raise KeyError(ifname)


class FakeSession:
    """A ConfigSession over a :class:`FakeNetconfDevice` (same methods, no transport)."""

    has_candidate = True
    has_confirmed_commit = True

    def __init__(self, device: FakeNetconfDevice) -> None:
        self.dev = device
        self._locked: list[str] = []
        self.closed = False

    def require_confirmed_commit(self) -> None:
        pass

    def lock(self, target: str = "candidate") -> None:
        self._locked.append(target)

    def locked(self, target: str) -> bool:
        return target in self._locked

    def discard_changes(self) -> None:
        self.dev.candidate = copy.deepcopy(self.dev.running)

    def get_config(self, filter_: Any = None, source: str = "running") -> Any:
        return copy.deepcopy(self.dev.running)

    def edit_candidate(self, config: Any, *, replace: bool = False) -> None:
        if replace:
            fresh = etree.Element(f"{{{NC_BASE}}}data")
            for child in config:
                fresh.append(copy.deepcopy(child))
            self.dev.candidate = fresh
        else:
            _merge(self.dev.candidate, config)

    def commit_confirmed(self, timeout_s: int) -> None:
        if self.dev.rollback_to is None:
            self.dev.rollback_to = copy.deepcopy(self.dev.running)
        self.dev.running = copy.deepcopy(self.dev.candidate)
        self.dev.commits.append("confirmed")

    def commit(self) -> None:
        self.dev.running = copy.deepcopy(self.dev.candidate)
        self.dev.rollback_to = None
        self.dev.commits.append("commit")

    def cancel_commit(self) -> None:
        assert self.dev.rollback_to is not None, "cancel-commit with no pending commit"
        self.dev.running, self.dev.rollback_to = self.dev.rollback_to, None
        self.dev.candidate = copy.deepcopy(self.dev.running)
        self.dev.commits.append("cancel")

    def dispatch(self, rpc: Any) -> Any:
        return etree.Element(f"{{{NC_BASE}}}ok")

    def close(self) -> None:
        # The session that issued a confirmed commit ends: the device reverts (RFC 6241 8.4).
        if self.dev.revert_on_close and self.dev.rollback_to is not None:
            self.dev.running, self.dev.rollback_to = self.dev.rollback_to, None
            self.dev.commits.append("reverted")
        self._locked.clear()
        self.closed = True

    def drop(self) -> None:
        self.close()


class FakeSnmp:
    """ifName and ifAdminStatus of SNMP-only devices."""

    def __init__(self) -> None:
        self.admin: dict[tuple[str, int], int] = {}
        self.names: dict[tuple[str, int], str] = {}
        self.sets: list[tuple[str, str, int]] = []

    def add(self, device: str, if_index: int, name: str, admin: int) -> None:
        self.names[(device, if_index)] = name
        self.admin[(device, if_index)] = admin

    async def walk(self, device: Device, root_oids: Sequence[str]) -> dict[str, Any]:
        assert list(root_oids) == [IF_NAME_OID]
        return {f"{IF_NAME_OID}.{i}": n for (d, i), n in self.names.items() if d == device.name}

    async def get(self, device: Device, oids: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for oid in oids:
            base, _, index = oid.rpartition(".")
            assert base == ADMIN_OID
            out[oid] = self.admin[(device.name, int(index))]
        return out

    async def set(self, device: Device, oid: str, value: int, *, write: bool = True) -> None:
        base, _, index = oid.rpartition(".")
        assert base == ADMIN_OID
        self.admin[(device.name, int(index))] = value
        self.sets.append((device.name, oid, value))


class Crash(BaseException):
    """What a kill -9 looks like from inside: nothing after it runs (no except catches it)."""


@dataclass
class World:
    """What telemetry sees: derived from the fakes, with an optional delay and crash."""

    netconf: dict[str, FakeNetconfDevice]
    snmp: FakeSnmp
    carrier: bool = True
    """The far end answers: oper up follows admin up."""
    crash_on_read: int | None = None
    reads: int = 0

    def up(self, device: str, ifname: str) -> bool:
        if device in self.netconf:
            return self.netconf[device].enabled(ifname)
        for (d, i), name in self.snmp.names.items():
            if d == device and name == ifname:
                return self.snmp.admin[(d, i)] == UP
        raise KeyError(ifname)


class FakeTelemetry:
    def __init__(self, world: World) -> None:
        self.world = world

    async def read(self, device: Device) -> dict[tuple[str, str], float]:
        self.world.reads += 1
        if self.world.crash_on_read is not None and self.world.reads >= self.world.crash_on_read:
            raise Crash("worker killed")
        values: dict[tuple[str, str], float] = {("sys_uptime_s", ""): 1000.0}
        for ifname in ("eth1", "eth2"):
            up = self.world.up(device.name, ifname)
            values[("if_admin_up", ifname)] = float(up)
            values[("if_oper_up", ifname)] = float(up and self.world.carrier)
            values[("if_in_bps", ifname)] = 5e6 if up and self.world.carrier else 0.0
        return values


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeLock:
    def __init__(self, busy: set[str] | None = None) -> None:
        self.busy = busy or set()
        self.held: list[tuple[str, str]] = []

    @contextmanager
    def hold(self, device: str, owner: str) -> Iterator[None]:
        if device in self.busy:
            raise DeviceLocked(f"{device} is being changed by another run")
        self.held.append((device, owner))
        yield


class FakeAudit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, dict[str, Any]]] = []
        self.crash_on: str | None = None

    def append(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> int:
        self.entries.append((action, subject, details))
        if action == self.crash_on:
            raise Crash(f"worker killed right after {action}")
        return len(self.entries)

    def actions(self) -> list[str]:
        return [a for a, _, _ in self.entries]


def _netconf_device(name: str) -> Device:
    return Device(
        name=name,
        role=Role.ROUTER,
        vendor="autonoc-lab",
        platform="lab-router",
        mgmt=Mgmt(host="127.0.0.1", snmp_port=16100, netconf_port=18300),
        netconf=NetconfCredentials(username="u", password=SecretStr("p"), hostkey_verify=False),
    )


def _snmp_device(name: str) -> Device:
    return Device(
        name=name,
        role=Role.ROUTER,
        vendor="autonoc-lab",
        platform="lab-router",
        mgmt=Mgmt(host="127.0.0.1", snmp_port=16101),
        snmp=SnmpV2c(community=SecretStr("public"), write_community=SecretStr("private")),
    )


@dataclass
class Rig:
    engine: PlaybookEngine
    world: World
    audit: FakeAudit
    journal: RunJournal
    db: sa.Engine

    @property
    def pe1(self) -> FakeNetconfDevice:
        return self.world.netconf["pe1"]

    def plan(
        self, playbook: str = "interface-enable", device: str = "pe1", **params: Any
    ) -> ActionPlan:
        params.setdefault("verify_within_s", 10)
        return self.engine.plan(playbook, device, "eth1", params)

    def fresh_engine(self) -> PlaybookEngine:
        """Another worker's engine on the same device, database and fakes."""
        old = self.engine
        return PlaybookEngine(
            old.catalog,
            old.platforms,
            old.inventory,
            old.snmp,
            old.telemetry,
            old.lock,
            self.audit,
            self.journal,
            old.archive,
            old.tickets,
            netconf=lambda d: FakeSession(self.world.netconf[d.name]),  # type: ignore[arg-type,return-value]
            sleep=old._sleep,
            clock=old._clock,
        )


@pytest.fixture
def rig(catalog: Catalog) -> Iterator[Rig]:
    db = sa.create_engine("sqlite://", poolclass=StaticPool)
    metadata.create_all(db)
    snmp = FakeSnmp()
    snmp.add("pe2", 1, "eth1", DOWN)
    snmp.add("pe2", 2, "eth2", UP)
    world = World(
        netconf={"pe1": FakeNetconfDevice(_interfaces_config({"eth1": False, "eth2": True}))},
        snmp=snmp,
    )
    clock = FakeClock()
    audit = FakeAudit()
    journal = RunJournal(db)
    engine = PlaybookEngine(
        catalog,
        Platforms.load(),
        Inventory(devices=(_netconf_device("pe1"), _snmp_device("pe2"))),
        snmp,
        lambda: FakeTelemetry(world),
        FakeLock(),
        audit,
        journal,
        ConfigArchive(db),
        TicketBook(db),
        netconf=lambda d: FakeSession(world.netconf[d.name]),  # type: ignore[arg-type,return-value]
        sleep=clock.sleep,
        clock=clock,
    )
    yield Rig(engine, world, audit, journal, db)
    db.dispose()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---- planning and dry run -----------------------------------------------------------------


def test_plan_is_validated_and_carries_defaults(rig: Rig) -> None:
    plan = rig.plan()
    assert (plan.device, plan.target) == ("pe1", "eth1")
    assert plan.params == {"interface": "eth1", "min_traffic_bps": 1000.0, "verify_within_s": 10.0}


def test_plan_refuses_unknown_device_wrong_role_and_bad_params(rig: Rig) -> None:
    with pytest.raises(PlaybookValidationError, match="not in the inventory"):
        rig.engine.plan("interface-enable", "nope", "eth1", {})
    with pytest.raises(PlaybookValidationError, match="roles"):
        rig.engine.plan("raise-amplifier-gain", "pe1", None, {"min_output_dbm": 0.0})
    with pytest.raises(PlaybookValidationError, match="differs"):
        rig.engine.plan("interface-enable", "pe1", "eth1", {"interface": "eth2"})
    with pytest.raises(PlaybookValidationError, match="above its maximum"):
        rig.engine.plan("interface-enable", "pe1", "eth1", {"verify_within_s": 1e6})


def test_a_plan_altered_in_transit_is_refused(rig: Rig) -> None:
    plan = rig.plan().model_copy(update={"params": {"interface": "eth1", "verify_within_s": 1e6}})
    result = run(rig.engine.apply(plan, run_id="r-tampered"))
    assert not result.ok and not result.changed and "maximum" in (result.error or "")
    assert rig.pe1.commits == []


def test_dry_run_renders_the_diff_and_changes_nothing(rig: Rig) -> None:
    dry = run(rig.engine.dry_run(rig.plan()))
    assert any("NETCONF edit-config candidate" in s and "commit confirmed" in s for s in dry.steps)
    assert dry.diff == [
        "/oc-if:interfaces/oc-if:interface[name=eth1]/oc-if:config/oc-if:enabled: false → true"
    ]
    assert not rig.pe1.enabled("eth1") and rig.pe1.commits == []
    assert rig.audit.actions() == ["playbook_dry_run"]


def test_dry_run_of_a_device_already_fixed_says_apply_changes_nothing(rig: Rig) -> None:
    rig.pe1.running = _interfaces_config({"eth1": True, "eth2": True})
    dry = run(rig.engine.dry_run(rig.plan()))
    assert dry.diff == [] and any("changes nothing" in n for n in dry.notes)


# ---- apply, verify, rollback ------------------------------------------------------------


def test_apply_commits_confirmed_verifies_then_confirms(rig: Rig) -> None:
    result = run(rig.engine.apply(rig.plan(), run_id="r1"))
    assert result.ok and result.changed and not result.rolled_back, result
    assert rig.pe1.enabled("eth1") and rig.pe1.rollback_to is None
    assert rig.pe1.commits == ["confirmed", "commit"]
    actions = rig.audit.actions()
    assert actions.index("netconf_commit") < actions.index("playbook_verified")
    assert actions.index("playbook_verified") < actions.index("netconf_confirmed")
    record = rig.journal.get("r1")
    assert record is not None and record.state is RunState.DONE
    assert record.before["leaves"][0]["before"] == "false"
    assert (
        ConfigArchive(rig.db).last_good("pe1") is not None
    )  # a verified config is a restore point


def test_applying_a_plan_twice_changes_the_device_once(rig: Rig) -> None:
    plan = rig.plan()
    first = run(rig.engine.apply(plan, run_id="r1"))
    again = run(rig.engine.apply(plan, run_id="r2"))
    assert first.changed and again.ok and not again.changed
    assert "applied and verified by run r1" in again.steps[0].detail
    assert rig.pe1.commits == ["confirmed", "commit"]


def test_a_redelivered_finished_run_returns_its_result(rig: Rig) -> None:
    plan = rig.plan()
    first = run(rig.engine.apply(plan, run_id="r1"))
    again = run(rig.engine.apply(plan, run_id="r1"))
    assert again == first
    assert rig.pe1.commits == ["confirmed", "commit"]
    assert "playbook_redelivered" in rig.audit.actions()


def test_a_leaf_already_at_its_value_is_not_written(rig: Rig) -> None:
    rig.pe1.running = _interfaces_config({"eth1": True, "eth2": True})
    result = run(rig.engine.apply(rig.plan(), run_id="r1"))
    assert result.ok and not result.changed
    assert [s.name for s in result.steps][-1] == "no change" or any(
        s.name == "no change" for s in result.steps
    )
    assert rig.pe1.commits == []


def test_failed_verification_cancels_the_commit(rig: Rig) -> None:
    rig.world.carrier = False  # enabled, but the link never comes up
    result = run(rig.engine.apply(rig.plan(), run_id="r1"))
    assert not result.ok and result.rolled_back and "verification failed" in (result.error or "")
    assert not rig.pe1.enabled("eth1")
    assert rig.pe1.commits == ["confirmed", "cancel"]
    record = rig.journal.get("r1")
    assert record is not None and record.state is RunState.ROLLED_BACK


def test_failing_precheck_changes_nothing(rig: Rig) -> None:
    # interface-bounce needs the interface admin up; eth1 is down.
    plan = rig.engine.plan("interface-bounce", "pe1", "eth1", {})
    result = run(rig.engine.apply(plan, run_id="r1"))
    assert not result.ok and not result.changed and "precheck" in (result.error or "")
    assert rig.pe1.commits == []
    record = rig.journal.get("r1")
    assert record is not None and record.state is RunState.FAILED


def test_a_locked_device_raises_and_changes_nothing(rig: Rig) -> None:
    rig.engine.lock = FakeLock(busy={"pe1"})
    with pytest.raises(DeviceLocked):
        run(rig.engine.apply(rig.plan(), run_id="r1"))
    assert rig.pe1.commits == []


def test_rollback_puts_the_before_value_back(rig: Rig) -> None:
    plan = rig.plan()
    run(rig.engine.apply(plan, run_id="r1"))
    steps = run(rig.engine.rollback(plan, "r1"))
    assert steps and all(s.ok for s in steps)
    assert not rig.pe1.enabled("eth1") and rig.pe1.rollback_to is None
    record = rig.journal.get("r1")
    assert record is not None and record.state is RunState.ROLLED_BACK


def test_rollback_of_an_unknown_run_is_refused(rig: Rig) -> None:
    with pytest.raises(PlaybookValidationError, match="no run"):
        run(rig.engine.rollback(rig.plan(), "never-ran"))


def test_snmp_only_device_is_set_and_restored_on_failed_verification(rig: Rig) -> None:
    plan = rig.plan(device="pe2")
    rig.world.carrier = False
    result = run(rig.engine.apply(plan, run_id="r1"))
    assert not result.ok and result.rolled_back
    assert rig.world.snmp.sets == [
        ("pe2", f"{ADMIN_OID}.1", UP),
        ("pe2", f"{ADMIN_OID}.1", DOWN),
    ]
    assert rig.world.snmp.admin[("pe2", 1)] == DOWN


def test_shut_flapping_interface_opens_one_ticket(rig: Rig) -> None:
    rig.pe1.running = _interfaces_config({"eth1": True, "eth2": True})
    rig.world.carrier = True
    plan = rig.engine.plan("shut-flapping-interface", "pe1", "eth1", {"verify_within_s": 10})
    result = run(rig.engine.apply(plan, run_id="r1"))
    assert result.ok and result.changed, result
    run(rig.engine.apply(plan, run_id="r2"))
    tickets = TicketBook(rig.db).list()
    assert [(t.queue, t.reason, t.component) for t in tickets] == [
        ("field", "interface_flapping", "eth1")
    ]


# ---- crash recovery: a redelivered run never applies twice ----------------------------------


def test_crash_during_verification_then_redelivery_rolls_back(rig: Rig) -> None:
    """The worker dies after the confirmed commit; its session ends and the device reverts.
    The redelivered run finds the device as it was and ends rolled back, writing nothing."""
    rig.world.crash_on_read = 2  # the precheck reads once; the first verification read dies
    plan = rig.plan()
    with pytest.raises(Crash):
        run(rig.engine.apply(plan, run_id="r1"))
    record = rig.journal.get("r1")
    assert record is not None and record.state is RunState.COMMITTED
    assert not rig.pe1.enabled("eth1") and rig.pe1.commits == ["confirmed", "reverted"]

    rig.world.crash_on_read = None
    result = run(rig.fresh_engine().apply(plan, run_id="r1"))
    assert not result.ok and result.rolled_back and "was lost" in (result.error or "")
    assert not rig.pe1.enabled("eth1")
    assert rig.pe1.commits == ["confirmed", "reverted"]  # nothing written again
    record = rig.journal.get("r1")
    assert record is not None and record.state is RunState.ROLLED_BACK and record.attempts == 2
    assert "playbook_recovering" in rig.audit.actions()


def test_crash_while_changing_with_the_device_reverted_rolls_back(rig: Rig) -> None:
    plan = rig.plan()
    rig.journal.begin("r1", plan)
    rig.journal.set_state(
        "r1",
        RunState.CHANGING,
        before={
            "leaves": [
                {
                    "op": "set_interface_enabled",
                    "protocol": "netconf",
                    "path": ENABLED_PATH,
                    "before": "false",
                    "after": "true",
                }
            ],
            "config": None,
        },
    )
    result = run(rig.engine.apply(plan, run_id="r1"))
    assert result.rolled_back and not result.ok
    assert result.steps[-1].name == "rollback confirmed-commit"
    assert rig.pe1.commits == [] and not rig.pe1.enabled("eth1")


def test_committed_change_that_survived_the_crash_is_put_back(rig: Rig) -> None:
    """A device that kept the unconfirmed change (its timer has not fired yet): the
    redelivered run restores the before-value itself rather than verify and confirm."""
    rig.pe1.revert_on_close = False
    rig.world.crash_on_read = 2
    plan = rig.plan()
    with pytest.raises(Crash):
        run(rig.engine.apply(plan, run_id="r1"))
    assert rig.pe1.enabled("eth1")

    rig.world.crash_on_read = None
    result = run(rig.fresh_engine().apply(plan, run_id="r1"))
    assert result.rolled_back and not result.ok
    assert "put back 1 value" in result.steps[-1].detail
    assert not rig.pe1.enabled("eth1")


def test_crash_after_the_confirming_commit_ends_done(rig: Rig) -> None:
    rig.audit.crash_on = "netconf_confirmed"
    plan = rig.plan()
    with pytest.raises(Crash):
        run(rig.engine.apply(plan, run_id="r1"))
    record = rig.journal.get("r1")
    assert record is not None and record.state is RunState.VERIFIED
    assert rig.pe1.enabled("eth1") and rig.pe1.commits == ["confirmed", "commit"]

    rig.audit.crash_on = None
    result = run(rig.fresh_engine().apply(plan, run_id="r1"))
    assert result.ok and result.changed and not result.rolled_back
    assert rig.pe1.enabled("eth1") and rig.pe1.commits == ["confirmed", "commit"]
    record = rig.journal.get("r1")
    assert record is not None and record.state is RunState.DONE


def test_verified_run_whose_confirm_was_lost_ends_rolled_back(rig: Rig) -> None:
    """Verified, but the worker died before the confirming commit: the device reverted,
    so the run must not claim success."""
    rig.audit.crash_on = "playbook_verified"
    plan = rig.plan()
    with pytest.raises(Crash):
        run(rig.engine.apply(plan, run_id="r1"))
    assert not rig.pe1.enabled("eth1")  # reverted when the session ended

    rig.audit.crash_on = None
    result = run(rig.fresh_engine().apply(plan, run_id="r1"))
    assert not result.ok and result.rolled_back
    assert not rig.pe1.enabled("eth1")
    assert rig.pe1.commits == ["confirmed", "reverted"]


def test_snmp_change_left_by_a_crash_is_restored(rig: Rig) -> None:
    rig.world.crash_on_read = 2
    plan = rig.plan(device="pe2")
    with pytest.raises(Crash):
        run(rig.engine.apply(plan, run_id="r1"))
    assert rig.world.snmp.admin[("pe2", 1)] == UP  # SNMP has no confirmed commit

    rig.world.crash_on_read = None
    result = run(rig.fresh_engine().apply(plan, run_id="r1"))
    assert result.rolled_back and not result.ok
    assert rig.world.snmp.admin[("pe2", 1)] == DOWN
    assert rig.world.snmp.sets[-1] == ("pe2", f"{ADMIN_OID}.1", DOWN)
