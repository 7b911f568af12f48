"""Scenarios: a topology, a fault schedule and what the platform is expected to do.

A scenario file is YAML in this schema (other issues and external suites rely
on it, so it only grows)::

    name: span-loss-west
    description: free text
    topology: {preset: metro-ring, seed: 7}      # or {file: path/to/topology.yaml}
    speed: 20            # simulated seconds per wall second
    warmup_s: 600        # simulated seconds before the first fault
    duration_s: 3600     # simulated seconds in all
    faults:
      - at_s: 0          # after warm-up
        kind: span_loss
        target: span:roadm-a:roadm-b
        params: {extra_db: 9}
        clear_at_s: null # null: stays until the platform mitigates it
    expect:
      detect_within_s: 120
      root_cause: {kind: span_loss, target: span:roadm-a:roadm-b}
      remediation: [raise-amplifier-gain, drain-link]   # any of these; [] = no action may be taken
      recover_within_s: 900
      autonomy: auto     # auto | approve

:func:`run_scenario` serves the topology on loopback (SNMP and NETCONF, so a
platform can watch and act on it), warms up, injects and clears the faults on
schedule, and records the ground-truth timeline and service health.
:class:`ScenarioHook` is where the platform's own loop plugs in; the agents
issue adds the scoring.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lab.faults import FAULT_HELP, FaultInjector, FaultKind
from lab.network import Event, LabNetwork, SimClock
from lab.topology import PRESETS, Topology, load_topology, load_yaml_model

__all__ = [
    "Expectation",
    "FaultStep",
    "Scenario",
    "ScenarioHook",
    "ScenarioReport",
    "TimelineEntry",
    "load_scenario",
    "run_scenario",
    "scenario_files",
]

SCENARIO_DIR = Path(__file__).parent / "scenarios"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopologyRef(_Strict):
    preset: str | None = None
    seed: int = 7
    file: str | None = None

    @model_validator(mode="after")
    def _one(self) -> TopologyRef:
        if (self.preset is None) == (self.file is None):
            raise ValueError("give exactly one of preset or file")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} (known: {', '.join(PRESETS)})")
        return self


class FaultStep(_Strict):
    at_s: float = Field(ge=0)
    kind: FaultKind
    target: str = Field(min_length=1)
    params: dict[str, float] = Field(default_factory=dict)
    clear_at_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> FaultStep:
        allowed = FAULT_HELP[self.kind][2]
        unknown = set(self.params) - set(allowed)
        if unknown:
            raise ValueError(
                f"{self.kind.value} takes no parameter {sorted(unknown)[0]!r} "
                f"(allowed: {', '.join(allowed) or 'none'})"
            )
        if self.clear_at_s is not None and self.clear_at_s <= self.at_s:
            raise ValueError("clear_at_s must come after at_s")
        return self


class RootCause(_Strict):
    kind: FaultKind
    target: str


class Expectation(_Strict):
    detect_within_s: float | None = Field(None, gt=0)
    root_cause: RootCause | None = None
    remediation: tuple[str, ...] = ()
    recover_within_s: float | None = Field(None, gt=0)
    autonomy: Literal["auto", "approve"] = "approve"


class Scenario(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    topology: TopologyRef
    speed: float = Field(1.0, gt=0, le=10_000)
    warmup_s: float = Field(0.0, ge=0)
    duration_s: float = Field(gt=0)
    faults: tuple[FaultStep, ...] = ()
    expect: Expectation = Expectation()

    @model_validator(mode="after")
    def _fits(self) -> Scenario:
        for step in self.faults:
            if self.warmup_s + step.at_s > self.duration_s:
                raise ValueError(f"a {step.kind.value} fault at {step.at_s} s is past duration_s")
        return self

    def build_topology(self, base: Path | None = None) -> Topology:
        ref = self.topology
        if ref.preset is not None:
            return PRESETS[ref.preset](ref.seed)
        assert ref.file is not None
        path = Path(ref.file)
        if not path.is_absolute() and base is not None:
            path = base / path
        return load_topology(path)


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file.

    Raises:
        LabError: unreadable, not YAML, or invalid; names the file, line and field.
    """
    return load_yaml_model(path, Scenario, "scenario", "a mapping with name, topology, duration_s")


def scenario_files() -> list[Path]:
    """The scenarios shipped in ``lab/scenarios/``."""
    return sorted(SCENARIO_DIR.glob("*.yaml"))


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One ground-truth happening, at simulated seconds since the scenario started."""

    t: float
    what: str
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 1), "what": self.what, **self.detail}


@dataclass(slots=True)
class ScenarioReport:
    """What happened: the ground truth a scorer compares the platform's actions with."""

    scenario: str
    topology: str
    speed: float
    started_at: float
    duration_s: float
    faults_at: list[float] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    health: list[tuple[float, bool]] = field(default_factory=list)
    unhealthy_s: float = 0.0
    recovered_at: float | None = None
    healthy_at_end: bool = False
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "topology": self.topology,
            "speed": self.speed,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "faults_at": self.faults_at,
            "healthy_at_end": self.healthy_at_end,
            "unhealthy_s": round(self.unhealthy_s, 1),
            "recovered_at": None if self.recovered_at is None else round(self.recovered_at, 1),
            "wall_s": round(self.wall_s, 2),
            "timeline": [e.as_dict() for e in self.timeline],
            "health": [{"t": round(t, 1), "ok": ok} for t, ok in self.health],
            **self.extra,
        }


@dataclass(slots=True)
class ScenarioContext:
    """What a hook may use: the served lab (endpoints, inventory) and the clock.

    The ground truth (``faults``) is for scoring only; a platform under test
    must not read it.
    """

    scenario: Scenario
    network: LabNetwork
    clock: SimClock
    faults: FaultInjector
    inventory_path: Path | None
    start: float

    def elapsed(self) -> float:
        return self.clock() - self.start


class ScenarioHook(Protocol):
    """The platform's loop, plugged into a scenario run (the agents issue implements it)."""

    def on_start(self, ctx: ScenarioContext) -> None: ...

    def on_tick(self, ctx: ScenarioContext) -> None: ...

    def on_end(self, ctx: ScenarioContext, report: ScenarioReport) -> None: ...


def run_scenario(
    scenario: Scenario,
    *,
    speed: float | None = None,
    base_dir: Path | None = None,
    serve: Callable[[LabNetwork], AbstractContextManager[Path | None]] | None = None,
    hooks: Sequence[ScenarioHook] = (),
    tick_s: float = 10.0,
    progress: Callable[[float, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ScenarioReport:
    """Run ``scenario`` to its end and return the ground-truth report.

    Args:
        speed: overrides the file's ``speed``.
        base_dir: where a relative topology ``file`` is looked up.
        serve: returns a context manager that serves the network (SNMP/NETCONF)
            while the scenario runs and yields the inventory file it wrote (or
            None); ``None`` runs the model alone (no sockets).
        hooks: the platform's loop; called at start, every ``tick_s`` simulated
            seconds, and at the end.
        progress: called with (elapsed, duration) in simulated seconds.

    Raises:
        LabError: an invalid topology, or a fault that cannot be injected.
    """
    topology = scenario.build_topology(base_dir)
    pace = speed if speed is not None else scenario.speed
    clock = SimClock(speed=pace)
    network = LabNetwork(topology, clock=clock)
    injector = FaultInjector(network)
    start = clock()
    report = ScenarioReport(
        scenario=scenario.name,
        topology=topology.name,
        speed=pace,
        started_at=start,
        duration_s=scenario.duration_s,
    )

    def on_event(event: Event) -> None:
        detail: dict[str, Any] = {"device": event.device}
        if event.ifname is not None:
            detail["interface"] = event.ifname
        if event.peer_address is not None:
            detail["peer"] = event.peer_address
        report.timeline.append(TimelineEntry(event.at - start, event.kind, detail))

    network.subscribe(on_event)
    steps = sorted(
        [(scenario.warmup_s + f.at_s, "inject", i) for i, f in enumerate(scenario.faults)]
        + [
            (scenario.warmup_s + f.clear_at_s, "clear", i)
            for i, f in enumerate(scenario.faults)
            if f.clear_at_s is not None
        ]
    )
    injected: dict[int, int] = {}
    wall0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        stack.callback(network.unsubscribe, on_event)
        inventory_path = stack.enter_context(serve(network)) if serve is not None else None
        # Serving thousands of devices takes wall time; the scenario starts once they answer.
        start = clock()
        report.started_at = start
        ctx = ScenarioContext(scenario, network, clock, injector, inventory_path, start)
        for hook in hooks:
            hook.on_start(ctx)
        next_tick = 0.0
        last_ok: bool | None = None
        last_t = 0.0
        while True:
            now = clock() - start
            while steps and steps[0][0] <= now:
                at, op, i = steps.pop(0)
                step = scenario.faults[i]
                if op == "inject":
                    fault = injector.inject(step.kind.value, step.target, step.params)
                    injected[i] = fault.id
                    report.faults_at.append(round(at, 1))
                    report.timeline.append(
                        TimelineEntry(
                            at,
                            "fault_injected",
                            {"kind": step.kind.value, "target": step.target, "params": step.params},
                        )
                    )
                elif i in injected:
                    injector.clear(injected[i])
                    report.timeline.append(
                        TimelineEntry(
                            at, "fault_cleared", {"kind": step.kind.value, "target": step.target}
                        )
                    )
            if now >= next_tick or now >= scenario.duration_s:
                health = network.health()
                if last_ok is False:
                    report.unhealthy_s += now - last_t
                if health.ok != last_ok:
                    report.timeline.append(TimelineEntry(now, "health", health.as_dict()))
                    if health.ok and report.faults_at:
                        report.recovered_at = now
                    elif not health.ok:
                        report.recovered_at = None
                report.health.append((now, health.ok))
                last_ok, last_t = health.ok, now
                for hook in hooks:
                    hook.on_tick(ctx)
                if progress is not None:
                    progress(min(now, scenario.duration_s), scenario.duration_s)
                next_tick = now + tick_s
            if now >= scenario.duration_s:
                break
            wake = min(next_tick, steps[0][0] if steps else next_tick, scenario.duration_s)
            sleep(max(0.0, min(0.5, (wake - now) / pace)))
        report.healthy_at_end = bool(last_ok)
        for fault in injector.faults():
            report.timeline.append(
                TimelineEntry(
                    clock() - start,
                    "fault_still_active" if fault.present else "fault_mitigated",
                    {"kind": fault.kind.value, "target": fault.target},
                )
            )
        report.timeline.sort(key=lambda e: e.t)
        report.wall_s = time.monotonic() - wall0
        for hook in hooks:
            hook.on_end(ctx, report)
        return report
