"""Network faults, not just benchmarks: does detection flag every lab fault kind on the right
component? Writes the ``lab-faults`` section of ``docs/detection.md``.

    .venv/bin/python -m bench.detect_faults [--detector robust_z|forecast|all] [--speed 10]
        [--interval 1.0] [--kinds crc_errors,link_down] [--json] [--no-write]

For each of the simulator's fault kinds, on a fresh metro-ring lab (seed 7, clock ``speed``
times faster than the wall clock and started at a fixed instant, so the traffic curve is the
same every run) served over SNMP and NETCONF on loopback:

1. poll every device through the real collectors (:class:`collectors.scheduler.Poller` over
   :class:`~collectors.snmp_groups.SnmpCollector` and
   :class:`~collectors.netconf.NetconfCollector`) every ``interval`` wall seconds, and write
   ``train_polls`` healthy polls into a SQLite :class:`~collectors.store.SampleStore`;
2. train one detector per device on that history (:func:`models.registry.train_from_history`)
   and load the version into a :class:`models.detect_service.DetectionService`;
3. score ``healthy_polls`` more healthy polls through the service (every anomaly there is a
   false alarm), inject the fault (FAULT_HELP's example target and default parameters), and
   score ``fault_polls`` polls of the faulty network.

Per kind it records whether anything was flagged, after how many polls, the device and
component at the top of the first anomalous poll (the first anomaly the service published:
it orders a cycle's anomalies likeliest cause first, :func:`models.attribution.cause_order`;
the loudest one, by score / threshold, is recorded too), whether that is where the fault
shows (:data:`EXPECTED`), when an anomaly first named an expected location, and the false
alarms of the healthy part.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autonoc.core import db
from autonoc.core.settings import Settings, SnmpSettings
from autonoc.core.types import Anomaly, Sample
from collectors.netconf import NetconfCollector, NetconfSessionPool
from collectors.scheduler import Poller, PollPolicy
from collectors.snmp import SnmpClient
from collectors.snmp_groups import SnmpCollector
from collectors.store import SampleStore
from lab.faults import FAULT_HELP, FaultInjector, FaultKind
from lab.network import LabNetwork, SimClock
from lab.runner import LabRunner
from models.base import default_registry
from models.detect_service import DetectionService, ListSink, MemoryFeed
from models.registry import ModelRegistry, train_from_history

__all__ = [
    "EXPECTED",
    "Expected",
    "FaultResult",
    "LabFaultConfig",
    "render_markdown",
    "run_fault",
    "write_section",
]

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "detection.md"
BEGIN = "<!-- lab-faults:begin -->"
END = "<!-- lab-faults:end -->"

#: The lab's clock starts here (2026-01-01 12:00 UTC): the same traffic curve every run.
LAB_START = 1_767_268_800.0
#: Every group is polled every cycle: the cycle is the poll interval.
GROUPS = ("optics", "interfaces", "system", "bgp")

Location = tuple[str, str]
"""``(device, component)``; component ``""`` is the device as a whole (CPU, memory)."""


@dataclass(frozen=True, slots=True)
class Expected:
    """Where a fault of one kind should be flagged, on metro-ring (seed 7), and why there."""

    locations: tuple[Location, ...]
    why: str


#: Where each fault kind, injected on FAULT_HELP's example target in the metro-ring lab,
#: shows in telemetry: the faulty component, or where the symptom is by nature. The lab's
#: metro-ring: pe1:eth1 is a direct (unamplified) link to p1:eth3 carrying the eBGP session
#: pe1 10.0.0.9 <-> p1 10.0.0.10; span roadm-a -> roadm-b ends in EDFA amp-a-b (an EDFA sits
#: at the downstream end of its span) and roadm-b's degree deg-1, and carries och-1
#: (xp-a1 -> xp-c1), och-4 (xp-a4 -> xp-b1) and och-6 (xp-a5 -> xp-c5).
EXPECTED: dict[FaultKind, Expected] = {
    FaultKind.LINK_DOWN: Expected(
        (("pe1", "eth1"), ("p1", "eth3")),
        "both ends of the link go oper down and lose their traffic alike; telemetry cannot "
        "tell which end's optic failed",
    ),
    FaultKind.INTERFACE_FLAP: Expected(
        (("pe1", "eth1"), ("p1", "eth3")),
        "the link bounces: status, traffic and the BGP session over it, at both ends",
    ),
    FaultKind.FIBER_CUT: Expected(
        (
            ("amp-a-b", "edfa"),
            ("amp-b-a", "edfa"),
            ("roadm-b", "deg-1"),
            ("roadm-a", "deg-1"),
            ("xp-c1", "line1"),
            ("xp-a1", "line1"),
            ("xp-b1", "line1"),
            ("xp-a4", "line1"),
            ("xp-c5", "line1"),
            ("xp-a5", "line1"),
        ),
        "a span has no sensor of its own: the EDFAs at its ends lose their input (LOS), then "
        "the ROADM degrees and every line port of the channels crossing it; the router links "
        "riding those channels are impact, not location",
    ),
    FaultKind.SPAN_LOSS: Expected(
        (
            ("amp-a-b", "edfa"),
            ("roadm-b", "deg-1"),
            ("xp-c1", "line1"),
            ("xp-b1", "line1"),
            ("xp-c5", "line1"),
        ),
        "extra loss shows downstream: amp-a-b's input power, roadm-b's degree, and the rx "
        "power, OSNR and BER of the receivers of och-1, och-4 and och-6",
    ),
    FaultKind.AMPLIFIER_FAILURE: Expected(
        (("amp-a-b", "edfa"),),
        "the failed EDFA reports its own gain and pump current at zero",
    ),
    FaultKind.LASER_DEGRADATION: Expected(
        (("xp-a1", "line1"),),
        "the ageing laser reports its own bias current up and tx power down",
    ),
    FaultKind.OSNR_DEGRADATION: Expected(
        (("amp-a-b", "edfa"), ("xp-c1", "line1"), ("xp-b1", "line1"), ("xp-c5", "line1")),
        "an EDFA serves no noise-figure sensor: the added noise shows as OSNR, Q and BER at "
        "the receivers of the channels through it",
    ),
    FaultKind.CRC_ERRORS: Expected(
        (("pe1", "eth1"),),
        "the receiving port counts the corrupted frames; the sender sees nothing",
    ),
    FaultKind.CONGESTION: Expected(
        (("pe1", "eth1"), ("p1", "eth3")),
        "the congested port drops the excess (output discards, utilisation); its far end "
        "receives the surge",
    ),
    FaultKind.CPU_RUNAWAY: Expected(
        (("pe1", ""),),
        "CPU and memory are device-wide: the component is the device itself",
    ),
    FaultKind.BGP_SESSION_DOWN: Expected(
        (("pe1", "10.0.0.10"), ("p1", "10.0.0.9")),
        "the session goes down as seen from both routers (each names the other's address)",
    ),
    FaultKind.CONFIG_DRIFT: Expected(
        (("pe1", "eth1"), ("p1", "eth3")),
        "an MTU is configuration, not telemetry: the IGP adjacency drops and the link's "
        "traffic drains away at both ends while it stays oper up",
    ),
}


@dataclass(frozen=True, slots=True)
class LabFaultConfig:
    """How one fault kind is run.

    Attributes:
        kind: the fault kind; target and parameters come from FAULT_HELP unless given.
        detectors: registered detector names; each is trained on the same history and
            scores the same polls through its own detection service.
        params: the detectors' constructor parameters, by detector name.
        speed: simulated seconds per wall second.
        interval: wall seconds between polls (``interval × speed`` simulated seconds).
        train_polls: healthy polls the detector is trained on.
        healthy_polls: healthy polls scored after training (false alarms).
        fault_polls: polls scored after the fault is injected.
        seed: the lab's seed (and the poller's jitter).
    """

    kind: FaultKind
    detectors: tuple[str, ...] = ("robust_z",)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    speed: float = 10.0
    interval: float = 1.0
    train_polls: int = 30
    healthy_polls: int = 10
    fault_polls: int = 8
    seed: int = 7
    target: str | None = None
    fault_params: dict[str, float] | None = None


@dataclass(slots=True)
class FaultResult:
    """What detection made of one fault kind."""

    kind: str
    target: str
    detector: str
    expected: list[str]
    detected: bool = False
    polls_to_first: int | None = None
    top_device: str | None = None
    top_component: str | None = None
    top_metric: str | None = None
    top_ratio: float | None = None
    top_ok: bool = False
    loudest: str | None = None
    loudest_ok: bool = False
    polls_to_expected: int | None = None
    expected_metric: str | None = None
    misattributed: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    first_poll: list[str] = field(default_factory=list)
    false_alarms: int = 0
    false_alarm_devices: list[str] = field(default_factory=list)
    healthy_polls: int = 0
    fault_polls: int = 0
    devices_trained: int = 0
    #: Devices trained with the baseline instead (history too short for the detector).
    devices_fallback: int = 0
    poll_failures: int = 0
    wall_s: float = 0.0

    @property
    def verdict(self) -> str:
        """``top``, ``among first``, ``later``, ``wrong place`` or ``missed``."""
        if not self.detected:
            return "missed"
        if self.top_ok:
            return "top"
        if self.polls_to_expected is None:
            return "wrong place"
        if self.polls_to_expected == self.polls_to_first:
            return "among first"
        return "later"


def location_name(device: str, component: str) -> str:
    return f"{device}:{component}" if component else device


def _ratio(a: Anomaly) -> float:
    return a.score / a.threshold if a.threshold > 0 else math.inf


class _Tally:
    """One detector's running account of a fault run."""

    def __init__(self, result: FaultResult, expected: set[Location]) -> None:
        self.result = result
        self.expected = expected
        self.flagged: dict[str, None] = {}

    def healthy(self, found: Sequence[Anomaly]) -> None:
        r = self.result
        r.healthy_polls += 1
        r.false_alarms += len(found)
        r.false_alarm_devices.extend(location_name(a.device, a.component) for a in found)

    def faulty(self, n: int, found: Sequence[Anomaly]) -> None:
        r, expected = self.result, self.expected
        r.fault_polls += 1
        for a in found:
            self.flagged.setdefault(location_name(a.device, a.component))
        r.flagged = list(self.flagged)
        if found and r.polls_to_first is None:
            # The service publishes a cycle's anomalies likeliest cause first
            # (models.attribution.cause_order): its first is what an operator reads first.
            top = found[0]
            loudest = max(found, key=_ratio)
            r.loudest = location_name(loudest.device, loudest.component)
            r.loudest_ok = (loudest.device, loudest.component) in expected
            r.detected = True
            r.polls_to_first = n
            r.top_device, r.top_component = top.device, top.component
            r.top_metric = top.attributions[0].metric if top.attributions else None
            r.top_ratio = round(_ratio(top), 2)
            r.top_ok = (top.device, top.component) in expected
            r.first_poll = [
                f"{location_name(a.device, a.component)} "
                f"{a.attributions[0].metric if a.attributions else '-'} {_ratio(a):.1f}x"
                for a in found
            ]
        hits = [a for a in found if (a.device, a.component) in expected]
        if hits and r.polls_to_expected is None:
            best = max(hits, key=_ratio)
            r.polls_to_expected = n
            r.expected_metric = best.attributions[0].metric if best.attributions else None
        expected_devices = {d for d, _ in expected}
        for a in found:
            name = location_name(a.device, a.component)
            if (
                a.device in expected_devices
                and (a.device, a.component) not in expected
                and name not in r.misattributed
            ):
                r.misattributed.append(name)


async def run_fault(config: LabFaultConfig, workdir: Path) -> list[FaultResult]:
    """Run one fault kind end to end (see the module docstring), one result per detector.

    ``workdir`` holds the SQLite history and the model registry.

    Raises:
        RegistryError: a detector is not registered, or could not be trained.
    """
    kind = config.kind
    example_target, _, defaults = FAULT_HELP[kind]
    target = config.target or example_target
    fault_params = {**defaults, **(config.fault_params or {})}
    expected = set(EXPECTED[kind].locations)
    results = [
        FaultResult(
            kind=kind.value,
            target=target,
            detector=name,
            expected=[location_name(*loc) for loc in EXPECTED[kind].locations],
        )
        for name in config.detectors
    ]
    tallies = [_Tally(r, expected) for r in results]
    failures = 0
    wall0 = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    settings = Settings.load(home=workdir, redis_url=None, database_url=None)
    engine = db.make_engine(settings)
    db.upgrade(engine)
    store = SampleStore(engine)
    clock = SimClock(speed=config.speed, start=LAB_START)
    network = LabNetwork.preset("metro-ring", seed=config.seed, clock=clock)
    try:
        with LabRunner(network, netconf=True) as lab:
            inventory = lab.inventory
            roles = {d.name: str(d.role) for d in inventory.devices}
            client = SnmpClient(SnmpSettings(timeout=2.0, retries=1))
            pool = NetconfSessionPool(workers=8)
            poller = Poller(
                inventory.devices,
                {"snmp": SnmpCollector(client), "netconf": NetconfCollector(pool)},
                PollPolicy(device_timeout=max(5.0, 4 * config.interval)),
                rng=random.Random(config.seed),
            )
            next_at = time.monotonic()

            async def poll() -> list[Sample]:
                nonlocal next_at, failures
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at = max(next_at + config.interval, time.monotonic())
                outcomes = await poller.poll_once(GROUPS)
                failures += sum(1 for o in outcomes if o.result.failed)
                return [s for o in outcomes for s in o.result.samples]

            try:
                # One poll sets the counters' baselines (it has no rates yet).
                await poll()
                first_ts = time.time()
                for _ in range(config.train_polls):
                    await asyncio.to_thread(store.write, await poll())
                end = time.time()
                registry = ModelRegistry(workdir / "models", default_registry())
                services: list[tuple[DetectionService, MemoryFeed]] = []
                for r in results:
                    version = await asyncio.to_thread(
                        train_from_history,
                        store,
                        registry,
                        days=(end - first_ts + 1.0) / 86400.0,
                        end=end,
                        detector=r.detector,
                        params=config.params.get(r.detector),
                        kinds=roles,
                    )
                    models = registry.load(version.version)
                    r.devices_trained = len(models.devices)
                    r.devices_fallback = sum(
                        1 for m in models.devices.values() if m.meta.get("fallback")
                    )
                    feed = MemoryFeed()
                    services.append((DetectionService(feed, ListSink(), models, kinds=roles), feed))

                def score(samples: Sequence[Sample]) -> list[list[Anomaly]]:
                    out = []
                    for service, feed in services:
                        feed.push(samples)
                        out.append(service.run_once().anomalies)
                    return out

                for _ in range(config.healthy_polls):
                    for tally, found in zip(tallies, score(await poll()), strict=True):
                        tally.healthy(found)
                FaultInjector(network).inject(kind.value, target, fault_params)
                for n in range(1, config.fault_polls + 1):
                    for tally, found in zip(tallies, score(await poll()), strict=True):
                        tally.faulty(n, found)
            finally:
                pool.close_all()
                client.close()
    finally:
        engine.dispose()
    wall = round(time.monotonic() - wall0, 1)
    for r in results:
        r.poll_failures, r.wall_s = failures, wall
    return results


# -- the report --------------------------------------------------------------------------


def machine() -> str:
    """This machine, in words (CPU model, cores, OS, Python)."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{model or 'unknown CPU'}, {cores} cores available, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def render_markdown(
    results: Sequence[FaultResult], configs: Sequence[LabFaultConfig], command: str
) -> str:
    """The lab-faults section (without its markers)."""
    c = configs[0]
    lines = [
        "## Lab faults: every simulator fault kind, end to end",
        "",
        "Each fault kind runs on a fresh `metro-ring` lab (seed "
        f"{c.seed}) served over SNMP and NETCONF on loopback, its clock {c.speed:g}× the wall "
        f"clock. The real collectors poll every device every {c.interval:g} s "
        f"({c.interval * c.speed:g} s of lab time); {c.train_polls} healthy polls go into a "
        "SQLite history, one detector per device is trained on it "
        "(`models.registry.train_from_history`), and the detection service scores "
        f"{c.healthy_polls} more healthy polls (every anomaly there is a false alarm), then "
        f"{c.fault_polls} polls after the fault is injected on `FAULT_HELP`'s example target.",
        "",
        "*first* is the number of polls after the injection until the first anomaly; *top of "
        "first poll* is the first anomaly the detection service published in that poll "
        "(it orders a cycle's anomalies likeliest cause first, by the evidence layer of "
        "their component, then by score / threshold; see *Attribution* below), with its "
        "device: component, the metric first in its attribution and its score / threshold; "
        "*loudest* is that poll's anomaly with the highest score / threshold, where it is "
        "not the same; *where* says whether it is an "
        "expected location (**top**), an expected location was flagged in the same poll but "
        "ranked lower (**among first**), only in a later poll (**later**), or never "
        "(**wrong place**); *expected after* is the poll of the first anomaly naming an "
        "expected location. *Other components* lists components of the expected devices "
        "that were flagged though not expected.",
        "",
        "### Attribution: evidence of a cause before loudness",
        "",
        "Which component an anomaly names is decided in `models/attribution.py`, for every "
        "detector. The loudest component is often a consequence: when `pe1:eth1` dies, its "
        "traffic moves onto the idle backup port `pe1:eth2`, whose rates jump by decades on a "
        "log scale while `eth1`'s fall only by what the poll interval had left, and the BGP "
        "session over `eth1` drops all its prefixes. So each metric's evidence gets a layer, "
        "lowest first, as multi-layer root-cause analysis orders alarms (a lower-layer "
        "failure explains the symptoms above it): optical source (what an optical component "
        "reports about itself: laser bias, transmit power, pump current, gain, output power), "
        "optical received (input or receive power, OSNR, Q, BER from upstream), port (oper "
        "status, errors, discards; CPU and memory), control (BGP state and prefixes), traffic "
        "lost (a rate that fell), traffic gained (a rate that rose: load that moved here). "
        "Only significant evidence sets a layer: a state flag that flipped, or a metric whose "
        "contribution alone reaches the detector's threshold. A device's components are "
        "ranked by their lowest significant layer, then by summed contribution; a cycle's "
        "anomalies across devices are published in the same order (layer of their "
        "component, then score / threshold), so the first names the likeliest cause. "
        "Nothing in it is per fault kind; `tests/unit/test_attribution.py` pins it.",
        "",
        "| fault | target | detector | detected | first | top of first poll | where "
        "| loudest | expected after | other components | false alarms (healthy polls) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        top = (
            f"`{location_name(r.top_device or '', r.top_component or '')}` "
            f"({r.top_metric}, {r.top_ratio:.3g}×)"
            if r.detected and r.top_ratio is not None
            else "—"
        )
        top_name = location_name(r.top_device or "", r.top_component or "")
        loudest = (
            "same"
            if r.loudest is None or r.loudest == top_name
            else f"`{r.loudest}`" + ("" if r.loudest_ok else " (not expected)")
        )
        expected_after = (
            f"{r.polls_to_expected} (`{r.expected_metric}`)"
            if r.polls_to_expected is not None
            else "—"
        )
        detector = f"`{r.detector}`"
        if r.devices_fallback:
            detector += f" ({r.devices_fallback}/{r.devices_trained} on `robust_z`)"
        lines.append(
            f"| `{r.kind}` | `{r.target}` | {detector} | {_yes(r.detected)} "
            f"| {r.polls_to_first if r.polls_to_first is not None else '—'} | {top} "
            f"| {r.verdict} | {loudest} | {expected_after} "
            f"| {', '.join(f'`{m}`' for m in r.misattributed) or '—'} "
            f"| {r.false_alarms} ({r.healthy_polls}) |"
        )
    fallback = [r for r in results if r.devices_fallback]
    if fallback:
        names = sorted({r.detector for r in fallback})
        lines += [
            "",
            "*(n/m on `robust_z`)*: of the m devices trained, n had too short a history for "
            f"{', '.join(f'`{n}`' for n in names)} (`min_train_rows`: its score scales and "
            "threshold are tail quantiles, which need about 100 held-out rows) and were "
            "trained with the `robust_z` baseline instead, as `autonoc models train` does; "
            "the model's metadata says so (`fallback`).",
        ]
    lines += [
        "",
        "Expected locations (`bench/detect_faults.py`, `EXPECTED`), for FAULT_HELP's example "
        "targets on metro-ring:",
        "",
        "| fault | expected locations | why there |",
        "|---|---|---|",
    ]
    for kind, exp in EXPECTED.items():
        locs = ", ".join(f"`{location_name(*loc)}`" for loc in exp.locations)
        lines.append(f"| `{kind.value}` | {locs} | {exp.why} |")
    lines += [
        "",
        f"Measured on {machine()}, {time.strftime('%Y-%m-%d', time.gmtime())}:",
        "",
        "```",
        command,
        "```",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str, path: Path = DOC) -> None:
    """Put ``text`` between the lab-faults markers of ``path`` (appended when absent)."""
    doc = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{text.rstrip()}\n{END}"
    if BEGIN in doc and END in doc:
        head, _, rest = doc.partition(BEGIN)
        _, _, tail = rest.partition(END)
        doc = head + block + tail
    else:
        doc = doc.rstrip("\n") + ("\n\n" if doc else "") + block + "\n"
    path.write_text(doc)


def _detectors(arg: str) -> list[str]:
    registered = [n for n in default_registry() if n != "random"]
    if arg == "all":
        return registered
    chosen = [n.strip() for n in arg.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in registered]
    if unknown:
        raise SystemExit(f"unknown detector(s) {', '.join(unknown)} (registered: {registered})")
    return chosen


def _params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, param = key.partition(".")
        if not sep or not dot or not name or not param:
            raise SystemExit(f"--param {item!r}: use DETECTOR.KEY=VALUE (e.g. forecast.window=16)")
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(name, {})[param] = parsed
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.detect_faults", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--detector", default="robust_z", help="a detector, a list, or all")
    parser.add_argument("--speed", type=float, default=10.0, help="lab clock speed-up")
    parser.add_argument("--interval", type=float, default=1.0, help="wall seconds per poll")
    parser.add_argument("--train-polls", type=int, default=30)
    parser.add_argument("--healthy-polls", type=int, default=10)
    parser.add_argument("--fault-polls", type=int, default=8)
    parser.add_argument("--kinds", default="", help="fault kinds, comma-separated (all)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="DETECTOR.KEY=VALUE",
        help="a detector parameter, e.g. forecast.window=16 (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--no-write", action="store_true", help="leave docs/detection.md")
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="write the section from a saved --json output (and the --command it came from)",
    )
    parser.add_argument("--command", default="", help="with --render: the sweep's command")
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        known = set(FaultResult.__dataclass_fields__)
        loaded = [FaultResult(**{k: v for k, v in r.items() if k in known}) for r in saved]
        write_section(
            render_markdown(
                loaded,
                [
                    LabFaultConfig(
                        kind=FaultKind(loaded[0].kind),
                        speed=args.speed,
                        interval=args.interval,
                        train_polls=args.train_polls,
                        healthy_polls=args.healthy_polls,
                        fault_polls=args.fault_polls,
                    )
                ],
                args.command,
            )
        )
        print(f"wrote the lab-faults section of {DOC}", file=sys.stderr)
        return 0
    from autonoc.core.logging import configure_logging

    configure_logging("WARNING")
    kinds = [FaultKind(k.strip()) for k in args.kinds.split(",") if k.strip()] or list(FaultKind)
    detectors = tuple(_detectors(args.detector))
    configs = [
        LabFaultConfig(
            kind=kind,
            detectors=detectors,
            params=_params(args.param),
            speed=args.speed,
            interval=args.interval,
            train_polls=args.train_polls,
            healthy_polls=args.healthy_polls,
            fault_polls=args.fault_polls,
        )
        for kind in kinds
    ]
    results: list[FaultResult] = []
    with tempfile.TemporaryDirectory(prefix="autonoc-detect-faults-") as tmp:
        for i, config in enumerate(configs):
            for r in asyncio.run(run_fault(config, Path(tmp) / f"run{i:02d}")):
                results.append(r)
                print(
                    f"{r.kind:18} {r.detector:9} detected={r.detected!s:5} "
                    f"first={r.polls_to_first} "
                    f"top={location_name(r.top_device or '-', r.top_component or '')} "
                    f"({r.top_metric}) where={r.verdict} expected_after={r.polls_to_expected} "
                    f"false_alarms={r.false_alarms} fallback={r.devices_fallback} "
                    f"[{r.wall_s:.0f} s]",
                    file=sys.stderr,
                )
    results.sort(
        key=lambda r: (detectors.index(r.detector), list(FaultKind).index(FaultKind(r.kind)))
    )
    if args.json:
        print(json.dumps([{**asdict(r), "verdict": r.verdict} for r in results], indent=2))
    if not args.no_write:
        command = "python -m bench.detect_faults " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        write_section(render_markdown(results, configs, command.strip()))
        print(f"wrote the lab-faults section of {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
