"""Router process tables, a runaway process, and restarting it: the network, the fault ground
truth, SNMP's CPU view, and NETCONF's process table and restart-process RPC (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from autonoc.core.errors import LabError
from lab.faults import FaultInjector
from lab.mibs import device_mib
from lab.netconf import LAB_SYSTEM_NS, Datastore, LabNetworkBackend, RpcError
from lab.netconf.openconfig import OC_SYSTEM_NS
from lab.network import DEFAULT_RUNAWAY_PROCESS, PROCESSES, LabNetwork
from lab.scenario import SCENARIO_DIR, load_scenario, run_scenario
from tests.unit.fakes import FakeClock
from tests.unit.test_netconf_datastore import FakeScheduler

HR_PROCESSOR_LOAD = (1, 3, 6, 1, 2, 1, 25, 3, 3, 1, 2, 1)
NS = {"sys": OC_SYSTEM_NS}
NAMES = [name for name, _, _ in PROCESSES]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metro(clock: FakeClock) -> LabNetwork:
    network = LabNetwork.preset("metro-ring", seed=7, clock=clock)
    clock.advance(60.0)
    return network


def _cpu_by_name(net: LabNetwork, device: str) -> dict[str, float]:
    return {p.name: p.cpu_pct for p in net.processes(device)}


def normal_load(net: LabNetwork, device: str) -> float:
    """The router's load without the runaway: what the calm daemons' shares add up from."""
    share = {name: cpu for name, cpu, _ in PROCESSES}
    calm = next(p for p in net.processes(device) if not net.process_runaway(device, p.name))
    return calm.cpu_pct / share[calm.name]


def test_every_router_runs_its_daemons(metro: LabNetwork, clock: FakeClock) -> None:
    booted = clock.now - 60.0
    for device in metro.router_names:
        procs = metro.processes(device)
        assert sorted(p.name for p in procs) == sorted(NAMES)
        assert [p.pid for p in procs] == sorted({p.pid for p in procs})  # unique, by pid
        for p in procs:
            assert booted <= p.start_time < booted + 2.0
            assert 0.0 < p.cpu_pct < 10.0 and p.mem_bytes > 10 * 2**20
        assert sum(p.cpu_pct for p in procs) < metro.system(device).cpu_pct
    assert DEFAULT_RUNAWAY_PROCESS == "telemetryd"
    with pytest.raises(LabError, match="'xp-a1' is an optical device"):
        metro.processes("xp-a1")


def test_a_runaway_pins_the_cpu_through_its_process_and_leaks(
    metro: LabNetwork, clock: FakeClock
) -> None:
    calm = _cpu_by_name(metro, "p2")
    mem_before = metro.system("p2").mem_used_kb
    fault = FaultInjector(metro).inject("cpu_runaway", "p2")
    assert fault.present and metro.process_runaway("p2", "telemetryd")
    assert metro.system("p2").cpu_pct >= 90.0
    hot = _cpu_by_name(metro, "p2")
    # It takes everything above the router's normal load, whatever that load is.
    assert hot["telemetryd"] == pytest.approx(
        calm["telemetryd"] + metro.system("p2").cpu_pct - normal_load(metro, "p2"), abs=3.0
    )
    assert hot["telemetryd"] > 50.0 and max(hot, key=hot.__getitem__) == "telemetryd"
    for name in set(NAMES) - {"telemetryd"}:
        assert hot[name] == pytest.approx(calm[name], abs=2.0)
    clock.advance(600.0)
    leaked = metro.process("p2", "telemetryd").mem_bytes
    assert metro.system("p2").mem_used_kb > mem_before + 2_000_000  # ~15 % of 16 GiB
    assert leaked > 2_000_000 * 1024
    assert metro.system("pe1").cpu_pct < 50.0  # only p2


def test_restarting_the_runaway_ends_it_and_the_fault(metro: LabNetwork, clock: FakeClock) -> None:
    faults = FaultInjector(metro)
    fault = faults.inject("cpu_runaway", "p2")
    clock.advance(300.0)
    old = metro.process("p2", "telemetryd")
    new = metro.restart_process("p2", "telemetryd")
    assert new.pid != old.pid and new.pid not in {p.pid for p in metro.processes("p2")} - {new.pid}
    assert new.start_time == clock.now
    clock.advance(10.0)
    assert metro.system("p2").cpu_pct < 50.0
    assert metro.process("p2", "telemetryd").cpu_pct < 10.0
    assert metro.process("p2", "telemetryd").mem_bytes < old.mem_bytes / 2
    assert not fault.present and not metro.process_runaway("p2", "telemetryd")
    assert faults.faults() == [fault]  # still listed (not cleared), but no longer present
    faults.clear()  # nothing left to undo: the process stays calm
    assert metro.system("p2").cpu_pct < 50.0
    # Another restart: yet another pid; the other daemons keep theirs.
    others = {p.name: p.pid for p in metro.processes("p2") if p.name != "bgpd"}
    assert metro.restart_process("p2", "bgpd").pid not in {new.pid, old.pid}
    assert {p.name: p.pid for p in metro.processes("p2") if p.name != "bgpd"} == others


def test_a_restarted_routing_daemon_keeps_its_sessions(metro: LabNetwork) -> None:
    before = [(s.peer_address, s.state, s.transitions) for s in metro.bgp_sessions("p1")]
    metro.restart_process("p1", "bgpd")
    metro.restart_process("p1", "isisd")
    assert [(s.peer_address, s.state, s.transitions) for s in metro.bgp_sessions("p1")] == before
    assert all(i.igp_up for i in metro.interfaces("p1") if i.igp_metric is not None)


def test_the_fault_can_name_its_process(metro: LabNetwork) -> None:
    faults = FaultInjector(metro)
    fault = faults.inject("cpu_runaway", "pe1:bgpd")
    assert metro.process_runaway("pe1", "bgpd")
    assert not metro.process_runaway("pe1", "telemetryd")
    hot = _cpu_by_name(metro, "pe1")
    assert hot["bgpd"] > 50.0 and max(hot, key=hot.__getitem__) == "bgpd"
    faults.clear(fault.id)
    assert not metro.process_runaway("pe1", "bgpd") and metro.system("pe1").cpu_pct < 50.0
    with pytest.raises(LabError, match=r"pe1 runs no process 'sshd' \(it runs: bgpd, "):
        faults.inject("cpu_runaway", "pe1:sshd")
    with pytest.raises(LabError, match="optical device"):
        faults.inject("cpu_runaway", "amp-a-b")
    assert faults.faults() == []


def test_snmp_cpu_follows_the_restart(metro: LabNetwork, clock: FakeClock) -> None:
    FaultInjector(metro).inject("cpu_runaway", "p2")
    mib = device_mib(metro, "p2")
    assert _hr_cpu(mib) >= 90
    metro.restart_process("p2", "telemetryd")
    clock.advance(10.0)
    assert _hr_cpu(device_mib(metro, "p2")) < 50


def _hr_cpu(mib: Any) -> int:
    """hrProcessorLoad.1 as the agent reads it: layout, then one reader."""
    i = mib.layout().index(HR_PROCESSOR_LOAD)
    assert i is not None
    return int(mib.reader()(i)[1])


def test_the_cpu_runaway_scenario_records_a_restart_as_mitigation() -> None:
    shipped = load_scenario(SCENARIO_DIR / "cpu-runaway.yaml")
    (step,) = shipped.faults
    assert (step.kind.value, step.target) == ("cpu_runaway", "p2")
    scenario = shipped.model_copy(update={"warmup_s": 0.0, "duration_s": 100.0, "speed": 2000.0})

    class Restarter:
        def on_start(self, ctx: object) -> None:
            pass

        def on_tick(self, ctx: object) -> None:
            network = ctx.network  # type: ignore[attr-defined]
            if ctx.elapsed() > 50 and network.process_runaway("p2", "telemetryd"):  # type: ignore[attr-defined]
                network.restart_process("p2", "telemetryd")

        def on_end(self, ctx: object, report: object) -> None:
            pass

    report = run_scenario(scenario, hooks=[Restarter()], tick_s=5.0)
    assert [e.what for e in report.timeline].count("fault_mitigated") == 1


# NETCONF --------------------------------------------------------------------------------


@pytest.fixture
def store(metro: LabNetwork) -> Datastore:
    return Datastore("p2", LabNetworkBackend(metro), FakeScheduler())


def _restart(name: str | None) -> Any:
    inner = f"<name>{name}</name>" if name is not None else ""
    return etree.fromstring(f"<restart-process xmlns='{LAB_SYSTEM_NS}'>{inner}</restart-process>")


def _process_state(tree: Any, name: str, leaf: str) -> str:
    found = tree.xpath(
        f"//sys:processes/sys:process[sys:state/sys:name='{name}']/sys:state/sys:{leaf}/text()",
        namespaces=NS,
    )
    assert len(found) == 1, (name, leaf, found)
    return str(found[0])


def test_the_process_table_is_served_as_openconfig(store: Datastore, metro: LabNetwork) -> None:
    state = store.get()
    for p in metro.processes("p2"):
        assert _process_state(state, p.name, "pid") == str(p.pid)
        key = state.xpath(
            f"//sys:process[sys:state/sys:name='{p.name}']/sys:pid/text()", namespaces=NS
        )
        assert key == [str(p.pid)]
        assert _process_state(state, p.name, "start-time") == str(round(p.start_time * 1e9))
        assert 0 <= int(_process_state(state, p.name, "cpu-utilization")) <= 100
        assert int(_process_state(state, p.name, "memory-usage")) > 0
        assert 0 <= int(_process_state(state, p.name, "memory-utilization")) <= 100
    assert not store.get_config("running").xpath("//sys:processes", namespaces=NS)  # state only


def test_restart_process_rpc_restarts_it(store: Datastore, metro: LabNetwork) -> None:
    fault = FaultInjector(metro).inject("cpu_runaway", "p2")
    before = store.get()
    assert int(_process_state(before, "telemetryd", "cpu-utilization")) > 50
    old_pid = _process_state(before, "telemetryd", "pid")
    running = etree.tostring(store.running)
    store.lock(7, "candidate")  # another session's lock does not stand in the way
    assert store.rpc(1, _restart("telemetryd")) is None  # <ok/>
    after = store.get()
    assert _process_state(after, "telemetryd", "pid") != old_pid
    assert int(_process_state(after, "telemetryd", "cpu-utilization")) < 10
    total = after.xpath("//sys:cpu/sys:state/sys:total/sys:instant/text()", namespaces=NS)
    assert int(total[0]) < 50
    assert not fault.present
    assert etree.tostring(store.running) == running  # not configuration
    assert not store.confirmed_commit_pending


@pytest.mark.parametrize(
    ("op", "tag", "words"),
    [
        (_restart("sshd"), "invalid-value", "p2 runs no process 'sshd'"),
        (_restart(None), "missing-element", "needs <name>"),
        (
            etree.fromstring(f"<reboot xmlns='{LAB_SYSTEM_NS}'/>"),
            "operation-not-supported",
            "'reboot'",
        ),
        (
            etree.fromstring(
                "<restart-process xmlns='urn:example:other'><name>bgpd</name></restart-process>"
            ),
            "operation-not-supported",
            "urn:example:other",
        ),
    ],
)
def test_restart_process_rpc_errors(store: Datastore, op: Any, tag: str, words: str) -> None:
    with pytest.raises(RpcError) as err:
        store.rpc(1, op)
    assert err.value.tag == tag
    assert words in err.value.message


def test_only_routers_restart_processes(metro: LabNetwork) -> None:
    xp = Datastore("xp-a1", LabNetworkBackend(metro), FakeScheduler())
    with pytest.raises(RpcError) as err:
        xp.rpc(1, _restart("telemetryd"))
    assert err.value.tag == "operation-not-supported"
    assert "xp-a1 is a transponder" in err.value.message
