"""Alarm correlation: anomalies and device events become incidents, by time and topology.

A fibre cut raises dozens of alarms: loss of light at two EDFAs and six receivers,
six router ports down (traps and polls), twelve BGP sessions dropping, traffic
moving onto the links that are left. People need one incident: "the a–b fibre pair
is cut", with the rest as its impact. :class:`Correlator` does that:

- **Placement.** Each anomaly attribution and each event becomes
  :class:`~agents.evidence.Evidence` on a topology component.
- **Grouping.** Evidence joins an open incident (one with evidence in the last
  ``window_s`` seconds) when the topology relates them: its component is one the
  incident's components ride on or carry, the far end of one of their links, or
  shares with them something unobservable (a span, a fibre pair) they ride on;
  traffic, control and CPU evidence, which follows faults rather than causing them,
  joins an incident on the same device or one whose services it carries. Evidence
  that relates to several open incidents merges them. Otherwise it opens a new one.
- **Deduplication.** The same observation (component, what, class) within
  ``dedup_s`` of the last one counts as a raw alarm but adds nothing new.
- **Suppression.** The root (:mod:`agents.rca`'s best hypothesis) explains the
  rest: components below it in the layers are its *impact*, listed, not raised.
- **Flap damping.** Down transitions per interface are counted over
  ``flap_window_s``; from ``flap_count`` on, the link is flapping: its downs and ups
  stay in its one incident, whose root cause becomes ``interface_flap``.
- **Confirmation.** Detectors have false alarms. An incident is *confirmed* (and
  reported) once it has a device event or state change, evidence from two
  observations, or one anomaly at least ``strong_ratio`` × its threshold; one
  that never gets there closes silently as noise.
- **Maintenance.** Evidence on a component, or riding on one, or on a device named
  by an active :class:`MaintenanceWindow` is dropped (counted as suppressed).

Everything is pure logic over the inputs and the injected clock: the same inputs
give the same incidents, ids included. :attr:`Correlator.stats` reports the alarm
compression ratio: raw alarms per confirmed incident.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from agents.evidence import (
    PRIMARY,
    Evidence,
    EvidenceClass,
    Fact,
    evidence_from_alarm,
    evidence_from_anomaly,
)
from agents.rca import Hypothesis, rank
from agents.topology import UNOBSERVABLE, Kind, Topology
from autonoc.core.types import Alarm, Anomaly

__all__ = [
    "CorrelatedIncident",
    "CorrelationStats",
    "Correlator",
    "CorrelatorConfig",
    "MaintenanceWindow",
    "correlate",
]

E = EvidenceClass
_FOLLOWERS = frozenset({E.TRAFFIC_GAINED, E.TRAFFIC_LOST, E.CONTROL, E.RESOURCE, E.OTHER})


@dataclass(frozen=True, slots=True)
class CorrelatorConfig:
    """Correlation windows and thresholds, in telemetry seconds."""

    window_s: float = 300.0
    dedup_s: float = 60.0
    flap_window_s: float = 600.0
    flap_count: int = 3
    strong_ratio: float = 3.0
    confirm_observations: int = 2


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Planned work: evidence on these components (or riding on them) or devices, from
    ``start`` up to ``end`` (epoch seconds), is expected and suppressed."""

    start: float
    end: float
    components: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    reason: str = ""

    def active(self, ts: float) -> bool:
        return self.start <= ts < self.end


@dataclass
class CorrelatedIncident:
    """One incident as correlation sees it: its evidence, root cause and impact."""

    id: str
    opened_at: float
    last_ts: float
    evidence: list[Evidence] = field(default_factory=list)
    raw_alarms: int = 0
    observations: int = 0
    confirmed: bool = False
    closed: bool = False
    flaps: dict[str, int] = field(default_factory=dict)
    hypotheses: list[Hypothesis] = field(default_factory=list)
    _downs: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _link_down: dict[str, bool] = field(default_factory=dict, repr=False)
    _seen: dict[tuple[str, str, str], float] = field(default_factory=dict, repr=False)

    @property
    def components(self) -> tuple[str, ...]:
        """Components with evidence, in the order they first showed."""
        out: dict[str, None] = {}
        for e in self.evidence:
            out.setdefault(e.component.id, None)
        return tuple(out)

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(sorted({e.component.device for e in self.evidence if e.component.device}))

    @property
    def root(self) -> Hypothesis | None:
        """The best hypothesis: the lowest component that explains the evidence."""
        return self.hypotheses[0] if self.hypotheses else None

    @property
    def flapping(self) -> tuple[str, ...]:
        return tuple(sorted(c for c, n in self.flaps.items() if n > 0))

    def impact(self, topology: Topology) -> tuple[str, ...]:
        """Components with evidence that the root explains (suppressed under it)."""
        root = self.root
        if root is None:
            return ()
        return tuple(c for c in self.components if c in root.explains and c != root.component)

    def as_dict(self, topology: Topology) -> dict[str, object]:
        root = self.root
        return {
            "id": self.id,
            "opened_at": self.opened_at,
            "last_ts": self.last_ts,
            "confirmed": self.confirmed,
            "closed": self.closed,
            "raw_alarms": self.raw_alarms,
            "root": root.component if root else None,
            "fault_kind": root.fault_kind if root else None,
            "confidence": root.confidence if root else None,
            "devices": list(self.devices),
            "impact": list(self.impact(topology)),
            "services_at_risk": list(topology.services_over(root.component)) if root else [],
            "flapping": list(self.flapping),
            "hypotheses": [h.summary() for h in self.hypotheses[:5]],
        }


@dataclass
class CorrelationStats:
    raw_alarms: int = 0
    suppressed_maintenance: int = 0
    unplaced: int = 0
    noise_closed: int = 0

    def compression_ratio(self, incidents: int) -> float:
        """Raw alarms per incident; the raw alarm count when there is no incident."""
        return self.raw_alarms / incidents if incidents else float(self.raw_alarms)


class Correlator:
    """Streams anomalies and events into incidents; see the module docstring.

    Args:
        topology: the layers (:class:`agents.topology.Topology`).
        config: windows and thresholds.
        windows: maintenance windows in force (the policy file feeds these later).
        clock: epoch seconds now; only :meth:`expire` reads it.
    """

    def __init__(
        self,
        topology: Topology,
        config: CorrelatorConfig | None = None,
        windows: Sequence[MaintenanceWindow] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topology = topology
        self.config = config or CorrelatorConfig()
        self.windows = tuple(windows)
        self.clock = clock
        self.stats = CorrelationStats()
        self._incidents: list[CorrelatedIncident] = []
        self._next = 1
        self._facts: list[Fact] = []

    # -- input ------------------------------------------------------------------------

    def observe_anomaly(self, anomaly: Anomaly) -> CorrelatedIncident | None:
        """Take one detector anomaly; returns the incident it joined or opened, if any."""
        ratio = anomaly.score / anomaly.threshold if anomaly.threshold > 0 else 1.0
        return self._observe(evidence_from_anomaly(anomaly, self.topology), strong=ratio)

    def observe_event(self, alarm: Alarm) -> CorrelatedIncident | None:
        """Take one device event (a trap's alarm: link_down/up, bgp_down/up, trap)."""
        return self._observe(evidence_from_alarm(alarm, self.topology), strong=None)

    def add_facts(self, facts: Iterable[Fact]) -> None:
        """Readings from diagnostic tools; they refine the hypotheses of every incident."""
        self._facts.extend(facts)
        for inc in self._incidents:
            if not inc.closed:
                self._rank(inc)

    def expire(self) -> list[CorrelatedIncident]:
        """Close incidents with no evidence for ``window_s`` (by the clock); returns them."""
        now = self.clock()
        closed = []
        for inc in self._incidents:
            if not inc.closed and now - inc.last_ts > self.config.window_s:
                inc.closed = True
                if not inc.confirmed:
                    self.stats.noise_closed += 1
                closed.append(inc)
        return closed

    # -- output -----------------------------------------------------------------------

    def incidents(self, include_closed: bool = True) -> list[CorrelatedIncident]:
        """Confirmed incidents, oldest first."""
        return [i for i in self._incidents if i.confirmed and (include_closed or not i.closed)]

    def compression_ratio(self) -> float:
        return self.stats.compression_ratio(len(self.incidents()))

    # -- internals --------------------------------------------------------------------

    def _observe(self, evidence: list[Evidence], strong: float | None) -> CorrelatedIncident | None:
        self.stats.raw_alarms += 1
        if not evidence:
            self.stats.unplaced += 1
            return None
        kept = [e for e in evidence if not self._in_maintenance(e)]
        if not kept:
            self.stats.suppressed_maintenance += 1
            return None
        ts = max(e.ts for e in kept)
        open_ = [
            i for i in self._incidents if not i.closed and ts - i.last_ts <= self.config.window_s
        ]
        related = [i for i in open_ if any(self._related(e, i) for e in kept)]
        if related:
            target = related[0]
            # Only evidence of a fault merges incidents; traffic that moved, CPU and
            # control-plane churn follow faults and could follow either.
            if any(e.cls not in _FOLLOWERS for e in kept):
                for other in related[1:]:
                    self._merge(target, other)
        elif all(e.cls is E.CLEAR for e in kept):
            return None  # a recovery with no incident to recover from
        else:
            target = CorrelatedIncident(id=f"inc-{self._next}", opened_at=ts, last_ts=ts)
            self._next += 1
            self._incidents.append(target)
        target.raw_alarms += 1
        if any(e.cls in PRIMARY for e in kept):
            target.observations += 1  # traffic that moved confirms nothing alone
        target.last_ts = max(target.last_ts, ts)
        for e in kept:
            self._add(target, e)
        events = any(e.source == "event" and e.cls is E.STATE for e in kept)
        state_flip = any(e.cls in (E.STATE, E.ADMIN) for e in kept)
        strong_enough = (
            strong is not None
            and strong >= self.config.strong_ratio
            and any(e.cls in PRIMARY for e in kept)
        )
        if (
            events
            or state_flip
            or strong_enough
            or target.observations >= self.config.confirm_observations
        ):
            target.confirmed = True
        self._rank(target)
        return target

    def _add(self, inc: CorrelatedIncident, e: Evidence) -> None:
        cid = e.component.id
        if (
            e.component.kind is Kind.INTERFACE
            and e.cls in (E.STATE, E.CLEAR)
            and (e.source == "event" or e.what == "if_oper_up")
        ):
            self._count_flap(inc, cid, e)
        key = (cid, e.what, e.cls.value)
        last = inc._seen.get(key)
        inc._seen[key] = e.ts
        if last is not None and e.ts - last <= self.config.dedup_s:
            return  # the same observation again: counted as a raw alarm, nothing new
        inc.evidence.append(e)

    def _count_flap(self, inc: CorrelatedIncident, cid: str, e: Evidence) -> None:
        # One down per link and transition: both ends, traps and polls all report it.
        peer = self.topology.peer(cid)
        link = min(cid, peer) if peer is not None else cid
        was_down = inc._link_down.get(link, False)
        inc._link_down[link] = e.cls is E.STATE
        if e.cls is not E.STATE or was_down:
            return
        downs = inc._downs.setdefault(link, [])
        downs.append(e.ts)
        recent = [t for t in downs if e.ts - t <= self.config.flap_window_s]
        inc._downs[link] = recent
        count = len(recent)
        for end in (cid, peer):
            if end is not None:
                inc.flaps[end] = count if count >= self.config.flap_count else 0

    def _rank(self, inc: CorrelatedIncident) -> None:
        flaps = {c: n for c, n in inc.flaps.items() if n > 0}
        inc.hypotheses = rank(inc.evidence, self.topology, flaps=flaps, facts=self._facts)

    def _merge(self, into: CorrelatedIncident, other: CorrelatedIncident) -> None:
        into.evidence.extend(other.evidence)
        into.evidence.sort(key=lambda e: e.ts)
        into.raw_alarms += other.raw_alarms
        into.observations += other.observations
        into.confirmed = into.confirmed or other.confirmed
        into.opened_at = min(into.opened_at, other.opened_at)
        into.last_ts = max(into.last_ts, other.last_ts)
        into._link_down.update(other._link_down)
        for link, downs in other._downs.items():
            into._downs[link] = sorted({*into._downs.get(link, []), *downs})
        for c, n in other.flaps.items():
            into.flaps[c] = max(into.flaps.get(c, 0), n)
        into._seen.update(other._seen)
        self._incidents.remove(other)

    def _related(self, e: Evidence, inc: CorrelatedIncident) -> bool:
        t = self.topology
        cid = e.component.id
        if e.cls in _FOLLOWERS:
            comps = inc.components
        else:
            # Anchored on the incident's fault evidence: traffic that moved onto a port
            # does not make that port part of the fault.
            comps = tuple(
                dict.fromkeys(x.component.id for x in inc.evidence if x.cls not in _FOLLOWERS)
            )
        if cid in comps:
            return True
        causes = t.causes(cid) if cid in t else frozenset()
        peer = t.peer(cid)
        for other in comps:
            if other in causes or (peer is not None and other == peer):
                return True
            if other in t and cid in t.causes(other):
                return True
        if e.cls not in _FOLLOWERS:
            # Two components riding one thing that reports nothing of its own (a span,
            # a fibre pair, a channel) failing together: that thing, most likely.
            shared = {c for c in causes if t.component(c).kind in UNOBSERVABLE}
            if shared and any(other in t and shared & t.causes(other) for other in comps):
                return e.cls in (E.STATE, E.POWER_IN, E.QUALITY, E.ERRORS)
            return False
        if e.cls is E.RESOURCE:
            # A busy CPU follows routing churn on the same device, and nothing else.
            churn = any(x.cls is E.STATE for x in inc.evidence)
            return churn and e.component.device in inc.devices
        # Traffic, control: the same device, or a service in common.
        if e.component.device and e.component.device in inc.devices:
            return True
        services = set(t.services_over(cid)) if cid in t else set()
        if not services:
            return False
        return any(other in t and services & set(t.services_over(other)) for other in comps)

    def _in_maintenance(self, e: Evidence) -> bool:
        t = self.topology
        for w in self.windows:
            if not w.active(e.ts):
                continue
            if e.component.device and e.component.device in w.devices:
                return True
            cid = e.component.id
            if cid in w.components:
                return True
            if cid in t and any(c in w.components for c in t.causes(cid)):
                return True
        return False


def correlate(
    topology: Topology,
    anomalies: Sequence[Anomaly] = (),
    events: Sequence[Alarm] = (),
    *,
    config: CorrelatorConfig | None = None,
    windows: Sequence[MaintenanceWindow] = (),
    now: float | None = None,
) -> tuple[list[CorrelatedIncident], CorrelationStats]:
    """Correlate a batch: anomalies and events in time order (anomalies first at equal
    times); returns the confirmed incidents and the stats. ``now`` closes stale ones."""
    items: list[tuple[float, int, Anomaly | Alarm]] = [(a.ts, 0, a) for a in anomalies]
    items += [(e.ts, 1, e) for e in events]
    items.sort(key=lambda x: (x[0], x[1]))
    latest = max((x[0] for x in items), default=0.0)
    clock_now = now if now is not None else latest
    correlator = Correlator(topology, config, windows, clock=lambda: clock_now)
    for _, _, item in items:
        if isinstance(item, Anomaly):
            correlator.observe_anomaly(item)
        else:
            correlator.observe_event(item)
    correlator.expire()
    return correlator.incidents(), correlator.stats
