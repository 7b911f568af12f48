"""Root-cause analysis: ranked, explainable hypotheses from evidence over the topology.

Given an incident's evidence (:mod:`agents.evidence`), every component that could
explain it is a *candidate*: each component with evidence, and everything its
evidence could come from (:meth:`agents.topology.Topology.causes`: what it rides
on, and the light path into an optical receiver). Rules, one per fault signature,
look at a candidate and the evidence around it and may *fire*, naming a fault kind
with a weight (how specific the signature is). A hypothesis's confidence is

    confidence = weight × (0.4 + 0.6 × coverage)

where ``coverage`` is the share of the components with primary evidence (state,
optics, errors, congestion) that the candidate explains: itself, what rides on
it, or, for an interface, its link's far end and what rides there. A fibre cut
thus beats each of the links it took down: the span explains all of them, each
link only itself. Hypotheses are ranked by confidence, then lowest layer, then
(for the two ends of a link that telemetry cannot tell apart) the end the
inventory lists first, then id; every hypothesis lists the rules that fired and
the evidence they cite, so a person can check each step.

Fault kinds are the simulator's (:class:`lab.faults.FaultKind` values) plus
``interface_admin_down``, so :meth:`playbooks.base.Catalog.for_fault` finds the
playbooks that treat them. Rules read numbers and states, never device text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from agents.evidence import Evidence, EvidenceClass, Fact
from agents.topology import Component, Kind, Layer, Topology

__all__ = ["FAULT_KINDS", "Hypothesis", "rank"]

#: Every fault kind a hypothesis can name.
FAULT_KINDS = (
    "fiber_cut",
    "span_loss",
    "amplifier_failure",
    "osnr_degradation",
    "laser_degradation",
    "link_down",
    "interface_flap",
    "interface_admin_down",
    "crc_errors",
    "congestion",
    "config_drift",
    "bgp_session_down",
    "cpu_runaway",
)

E = EvidenceClass
_COVERED = frozenset({E.STATE, E.ADMIN, E.SOURCE, E.POWER_IN, E.QUALITY, E.ERRORS, E.CONGESTION})
_OPTICAL = frozenset({E.SOURCE, E.POWER_IN, E.QUALITY})
#: An input drop this large (dB) is a loss on the way in, not noise.
POWER_DROP_DB = 3.0
#: A receive power within this much (dB) of normal is "normal" for the OSNR rule.
POWER_STEADY_DB = 1.5
#: Down transitions of one link within the correlator's flap window that make it a flap.
FLAP_COUNT = 3


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """One candidate root cause.

    ``component`` is the topology id (for a cut fibre pair: its first-listed span
    direction, the name the simulator's faults use); ``aliases`` are other ids for the
    same place (the pair, the other direction, the far end of a link that telemetry
    cannot split). ``device``/``instance`` say where a playbook would act. ``rules``
    name the rules that fired; ``evidence`` cites what they read; ``explains`` lists
    the components with evidence it accounts for.
    """

    component: str
    fault_kind: str
    confidence: float
    layer: Layer
    device: str
    instance: str
    rules: tuple[str, ...]
    evidence: tuple[str, ...]
    explains: tuple[str, ...]
    aliases: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        why = ", ".join(self.rules)
        return f"{self.fault_kind} on {self.component} ({self.confidence:.0%}; rules: {why})"


@dataclass
class _Fired:
    kind: str
    weight: float
    rules: list[str]
    cites: list[Evidence]


class _View:
    """The evidence of one incident, indexed for the rules."""

    def __init__(
        self,
        evidence: Sequence[Evidence],
        topology: Topology,
        flaps: Mapping[str, int],
        facts: Sequence[Fact],
    ) -> None:
        self.t = topology
        self.flaps = flaps
        self.by: dict[str, list[Evidence]] = {}
        for e in evidence:
            if e.cls is not E.CLEAR:
                self.by.setdefault(e.component.id, []).append(e)
        self.facts: dict[tuple[str, str], Fact] = {}
        for fact in sorted(facts, key=lambda f: f.ts):
            self.facts[(fact.component, fact.name)] = fact
        covered = [c for c, es in self.by.items() if any(e.cls in _COVERED for e in es)]
        self.primary = covered or list(self.by)

    def of(self, cid: str | None, *classes: EvidenceClass) -> list[Evidence]:
        if cid is None:
            return []
        found = self.by.get(cid, [])
        return [e for e in found if not classes or e.cls in classes]

    def fact(self, cid: str | None, name: str) -> Fact | None:
        return None if cid is None else self.facts.get((cid, name))

    def optical_trouble_under(self, cid: str) -> list[Evidence]:
        """Optical evidence on anything ``cid`` rides on (its channel's ports, spans, EDFAs)."""
        out: list[Evidence] = []
        for cause in sorted(self.t.causes(cid)):
            out.extend(self.of(cause, *_OPTICAL))
        return out


def rank(
    evidence: Sequence[Evidence],
    topology: Topology,
    *,
    flaps: Mapping[str, int] | None = None,
    facts: Sequence[Fact] = (),
) -> list[Hypothesis]:
    """Hypotheses for ``evidence``, likeliest first; empty when no rule fires.

    Args:
        evidence: one incident's evidence (:class:`agents.evidence.Evidence`).
        topology: the layers the evidence is placed on.
        flaps: down transitions per interface id in the flap window (the correlator's).
        facts: diagnostic tool readings (:mod:`agents.tools`), each with provenance.
    """
    view = _View(evidence, topology, flaps or {}, facts)
    if not view.by:
        return []
    candidates: dict[str, Component] = {}
    for cid, es in view.by.items():
        candidates.setdefault(cid, es[0].component)
        peer = topology.peer(cid)
        if peer is not None:
            candidates.setdefault(peer, topology.component(peer))
        for cause in topology.causes(cid):
            candidates.setdefault(cause, topology.component(cause))
    out: list[Hypothesis] = []
    for cid in sorted(candidates):
        comp = candidates[cid]
        for fired in _rules(comp, view):
            out.append(_hypothesis(comp, fired, view))
    best: dict[tuple[str, str], Hypothesis] = {}
    for h in out:
        key = (h.component, h.fault_kind)
        if key not in best or h.confidence > best[key].confidence:
            best[key] = h
    ranked = list(best.values())
    ranked.sort(
        key=lambda h: (
            -h.confidence,
            h.layer,
            0 if topology.peer(h.component) is None or topology.is_a_end(h.component) else 1,
            h.component,
            h.fault_kind,
        )
    )
    return ranked


def _explains(t: Topology, x: str, c: str) -> bool:
    if c == x or x in t.causes(c):
        return True
    peer = t.peer(x)
    return peer is not None and (c == peer or peer in t.causes(c))


def _hypothesis(comp: Component, fired: _Fired, view: _View) -> Hypothesis:
    t = view.t
    explained = tuple(sorted(c for c in view.primary if _explains(t, comp.id, c)))
    coverage = len(explained) / len(view.primary) if view.primary else 1.0
    confidence = round(min(1.0, fired.weight) * (0.4 + 0.6 * coverage), 3)
    component: str = comp.id
    aliases: tuple[str, ...] = ()
    device, instance = comp.device, comp.instance
    if comp.kind is Kind.FIBRE_PAIR:
        component = t.canonical_span(comp.id)
        aliases = (comp.id, *(s for s in t.children(comp.id) if s != component))
    if comp.kind in (Kind.FIBRE_PAIR, Kind.SPAN):
        span = component
        amps = [c for c in t.children(span) if t.component(c).kind is Kind.AMPLIFIER]
        ends = t.devices_at(span)
        device, instance = (amps[0], "edfa") if amps else (ends[0] if ends else "", "")
    if comp.kind is Kind.INTERFACE and fired.kind in _LINK_WIDE:
        peer = t.peer(comp.id)
        aliases = (peer,) if peer is not None else ()
    seen: set[str] = set()
    cites: list[str] = []
    for e in sorted(fired.cites, key=lambda e: (e.ts, e.component.id, e.what)):
        line = e.describe()
        if line not in seen:
            seen.add(line)
            cites.append(line)
    return Hypothesis(
        component=component,
        fault_kind=fired.kind,
        confidence=confidence,
        layer=comp.layer,
        device=device,
        instance=instance,
        rules=tuple(fired.rules),
        evidence=tuple(cites[:12]),
        explains=explained,
        aliases=tuple(aliases),
    )


#: Faults that show alike at both ends of a link: the far end is an alias.
_LINK_WIDE = frozenset({"link_down", "interface_flap", "config_drift"})


# ---- the rules ------------------------------------------------------------------------


def _rules(comp: Component, v: _View) -> Iterable[_Fired]:
    if comp.kind is Kind.FIBRE_PAIR:
        yield from _fibre_pair(comp, v)
    elif comp.kind is Kind.SPAN:
        yield from _span(comp, v)
    elif comp.kind is Kind.AMPLIFIER:
        yield from _amplifier(comp, v)
    elif comp.kind is Kind.LINE_PORT:
        yield from _line_port(comp, v)
    elif comp.kind is Kind.INTERFACE:
        yield from _interface(comp, v)
    elif comp.kind is Kind.BGP_SESSION:
        yield from _bgp(comp, v)
    elif comp.kind is Kind.DEVICE:
        yield from _device(comp, v)


def _amp_of(span: str, t: Topology) -> str | None:
    for c in t.children(span):
        if t.component(c).kind is Kind.AMPLIFIER:
            return c
    return None


def _degree_of(span: str, t: Topology) -> str | None:
    amp = _amp_of(span, t)
    for c in t.children(amp if amp is not None else span):
        if t.component(c).kind is Kind.DEGREE:
            return c
    return None


def _receivers_through(span_or_amp: str, v: _View) -> list[str]:
    """Line ports with evidence whose incoming light crosses ``span_or_amp``."""
    return sorted(
        c for c in v.by if v.t.component(c).kind is Kind.LINE_PORT and span_or_amp in v.t.feeds(c)
    )


def _cut_evidence(span: str, v: _View) -> list[Evidence]:
    """Loss of signal right after ``span``: its EDFA's input, else its ROADM port's input."""
    amp = _amp_of(span, v.t)
    at_amp = [e for e in v.of(amp, E.POWER_IN) if e.los]
    if at_amp:
        return at_amp
    if amp is not None and v.of(amp, E.POWER_IN):
        return []  # the amp sees light: not cut
    degree = _degree_of(span, v.t)
    if amp is None:
        return [e for e in v.of(degree, E.POWER_IN) if e.los]
    return []


def _dark_downstream(span: str, v: _View) -> list[Evidence]:
    """LOS at receivers (and the ROADM port) after ``span`` while its EDFA reports nothing."""
    amp = _amp_of(span, v.t)
    if amp is not None and v.of(amp):
        return []
    out = [e for e in v.of(_degree_of(span, v.t), E.POWER_IN) if e.los]
    for rx in _receivers_through(span, v):
        out.extend(e for e in v.of(rx, E.POWER_IN) if e.los)
    return out


def _fibre_pair(comp: Component, v: _View) -> Iterable[_Fired]:
    spans = v.t.children(comp.id)
    cut = [_cut_evidence(s, v) for s in spans]
    if len(spans) == 2 and all(cut):
        yield _Fired("fiber_cut", 0.95, ["los_after_both_directions"], [*cut[0], *cut[1]])


def _span(comp: Component, v: _View) -> Iterable[_Fired]:
    cut = _cut_evidence(comp.id, v)
    if cut:
        yield _Fired("fiber_cut", 0.85, ["los_after_span"], cut)
        return
    amp = _amp_of(comp.id, v.t)
    drops = [e for e in v.of(amp, E.POWER_IN) if e.drop >= POWER_DROP_DB and not e.los]
    if drops:
        yield _Fired("span_loss", 0.9, ["edfa_input_dropped"], drops)
        return
    if amp is None or not v.of(amp):
        rx = [
            e
            for c in _receivers_through(comp.id, v)
            for e in v.of(c, E.POWER_IN)
            if e.drop >= POWER_DROP_DB and not e.los
        ]
        if rx:
            yield _Fired("span_loss", 0.6, ["rx_power_dropped_downstream"], rx)
        dark = _dark_downstream(comp.id, v)
        if dark:
            yield _Fired("fiber_cut", 0.45, ["dark_downstream_edfa_silent"], dark)


def _amplifier(comp: Component, v: _View) -> Iterable[_Fired]:
    own = [e for e in v.of(comp.id, E.SOURCE) if e.drop > 0]
    inputs = v.of(comp.id, E.POWER_IN)
    input_lost = any(e.los or e.drop >= POWER_DROP_DB for e in inputs)
    if own and not input_lost:
        yield _Fired("amplifier_failure", 0.9, ["edfa_output_lost_input_normal"], own)
        return
    spans = v.t.parents(comp.id)
    if not v.of(comp.id) and spans:
        dark = _dark_downstream(spans[0], v)
        if dark:
            yield _Fired("amplifier_failure", 0.5, ["dark_downstream_edfa_silent"], dark)
    # Noise added here: OSNR down at every degraded receiver through this EDFA, power steady.
    degraded = [
        c
        for c in v.by
        if v.t.component(c).kind is Kind.LINE_PORT and v.of(c, E.QUALITY) and not _power_lost(c, v)
    ]
    through = degraded and all(comp.id in v.t.feeds(c) for c in degraded)
    if through and not input_lost and not own:
        cites = [e for c in degraded for e in v.of(c, E.QUALITY)]
        yield _Fired("osnr_degradation", 0.75, ["osnr_down_power_steady"], cites)


def _power_lost(rx: str, v: _View) -> bool:
    return any(e.los or e.drop > POWER_STEADY_DB for e in v.of(rx, E.POWER_IN))


def _line_port(comp: Component, v: _View) -> Iterable[_Fired]:
    own = [
        e
        for e in v.of(comp.id, E.SOURCE)
        if (e.what == "opt_tx_power_dbm" and e.drop > 0)
        or (e.what in ("opt_laser_bias_ma", "opt_module_temp_c") and e.rise > 0)
    ]
    if own:
        yield _Fired("laser_degradation", 0.9, ["laser_bias_up_or_tx_down"], own)


def _interface(comp: Component, v: _View) -> Iterable[_Fired]:
    cid, peer = comp.id, v.t.peer(comp.id)
    admin = v.of(cid, E.ADMIN)
    fact = v.fact(cid, "admin_up")
    if admin or (fact is not None and fact.value in (False, 0, 0.0)):
        rules = ["admin_down"] if admin else []
        if fact is not None:
            rules.append("admin_down_read_back")
        yield _Fired("interface_admin_down", 0.97, rules, admin)
        return
    flaps = max(v.flaps.get(cid, 0), v.flaps.get(peer or "", 0))
    down = v.of(cid, E.STATE) + v.of(peer, E.STATE)
    read_down = [
        f
        for f in (v.fact(cid, "oper_up"), v.fact(peer, "oper_up"))
        if f is not None and f.value in (False, 0, 0.0)
    ]
    rules_down = ["oper_down_optics_clean"] if down else []
    if read_down:
        rules_down.append("oper_down_read_back")
    under = v.optical_trouble_under(cid)
    if flaps >= FLAP_COUNT:
        yield _Fired("interface_flap", 0.9, [f"down_up_{flaps}_times"], down)
        return
    if v.of(peer, E.ADMIN):
        return  # the far end was shut: its own hypothesis
    if (down or read_down) and not under:
        yield _Fired("link_down", 0.8, rules_down, down)
    errors = [e for e in v.of(cid, E.ERRORS) if e.what == "if_in_errors_ps"]
    if errors and not any(e.cls is E.QUALITY for e in under):
        yield _Fired("crc_errors", 0.85, ["input_errors_optics_clean"], errors)
    congested = [
        e for e in v.of(cid, E.CONGESTION) if e.what in ("if_out_discards_ps", "if_out_util")
    ]
    if congested:
        yield _Fired("congestion", 0.8, ["output_discards_or_utilisation"], congested)
    drained = v.of(cid, E.TRAFFIC_LOST) + v.of(peer, E.TRAFFIC_LOST)
    if drained and not down and not read_down and not v.of(cid, E.ERRORS) and not under:
        rules, weight = ["traffic_drained_link_up"], 0.6
        mtu, far_mtu = v.fact(cid, "mtu"), v.fact(peer, "mtu")
        if mtu is not None and far_mtu is not None and mtu.value != far_mtu.value:
            rules.append("mtu_mismatch_read_back")
            weight += 0.3
        if v.fact(cid, "recent_config_change") is not None:
            rules.append("config_changed_recently")
            weight += 0.05
        yield _Fired("config_drift", weight, rules, drained)


def _bgp(comp: Component, v: _View) -> Iterable[_Fired]:
    down = v.of(comp.id, E.STATE)
    reverse = _reverse_session(comp, v.t)
    down_reverse = v.of(reverse, E.STATE)
    if not (down or down_reverse):
        return
    link = v.t.parents(comp.id)
    if any(v.of(p, E.STATE, E.ADMIN) for p in link) or any(
        v.optical_trouble_under(p) for p in link
    ):
        return  # the link under it failed: the session is impact
    rules, weight = ["session_down_link_up"], 0.8
    # BGP4-MIB state 1 (idle) on a session whose link is up: it was shut on this side;
    # the far side keeps trying (active, 3). From the anomaly, or read back fresh.
    if _idle(comp.id, down, v):
        rules.append("idle_here_shut_on_this_side")
        weight += 0.08
    if reverse is not None and _idle(reverse, down_reverse, v):
        weight -= 0.08
    enabled = v.fact(comp.id, "bgp_enabled")
    if enabled is not None and enabled.value in (False, 0, 0.0):
        rules.append("neighbour_disabled_in_config")
        weight += 0.1
    yield _Fired("bgp_session_down", weight, rules, down + down_reverse)


def _idle(session: str, down: list[Evidence], v: _View) -> bool:
    fact = v.fact(session, "bgp_state")
    if (
        fact is not None
        and isinstance(fact.value, int | float)
        and not isinstance(fact.value, bool)
    ):
        return fact.value <= 1.5
    return any(e.what == "bgp_peer_state" and e.value is not None and e.value <= 1.5 for e in down)


def _reverse_session(comp: Component, t: Topology) -> str | None:
    """The same session seen from the neighbour: ``bgp:p1:10.0.0.9`` for ``bgp:pe1:10.0.0.10``."""
    for parent in t.parents(comp.id):
        for sibling in t.children(parent):
            if sibling != comp.id and t.component(sibling).kind is Kind.BGP_SESSION:
                other = t.component(sibling)
                if other.device != comp.device and set(t.parents(sibling)) == set(
                    t.parents(comp.id)
                ):
                    return sibling
    return None


def _device(comp: Component, v: _View) -> Iterable[_Fired]:
    cpu = [e for e in v.of(comp.id, E.RESOURCE) if e.what == "cpu_util_pct"]
    if cpu:
        rules = ["cpu_pinned"]
        mem = [e for e in v.of(comp.id, E.RESOURCE) if e.what != "cpu_util_pct"]
        if mem:
            rules.append("memory_growing")
        yield _Fired("cpu_runaway", 0.85 + (0.05 if mem else 0.0), rules, cpu + mem)
