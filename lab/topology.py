"""Lab topologies: a YAML schema, named presets and a generator for scale.

A :class:`Topology` is plain data: routers and their IP links (each link may
ride a DWDM wavelength), the optical line system (ROADMs, fibre spans with an
EDFA per direction, transponders, wavelengths) and the traffic demands between
PE routers. :class:`lab.network.LabNetwork` builds the living network from it.

Presets:

- ``metro-ring``: four ROADM sites in a ring, six routers (four PEs, two P
  routers), ten IP links of which eight ride 400ZR wavelengths, sixteen
  transponders and an EDFA on each of the eight fibre directions.
- ``leaf-spine``: an IP-only fabric (two spines, four leaves).
- ``ring4``: four routers in a ring, IP only; small and fast for tests.
- ``generated``: ``generate(devices=N)``, a leaf-spine fabric of N routers
  for scale tests (up to thousands).

A topology file is YAML with the same fields as :class:`Topology`::

    name: my-lab
    routers:
      - {name: pe1, role: pe, site: a}
      - {name: p1, role: p, site: a}
    links:
      - {a: pe1:eth1, b: p1:eth1, metric: 10}
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autonoc.core.errors import LabError
from autonoc.core.yamlfile import node_line
from lab.optical.presets import other_way

__all__ = [
    "PRESETS",
    "ChannelSpec",
    "DemandSpec",
    "LinkSpec",
    "RouterSpec",
    "SpanSpec",
    "Topology",
    "TransponderSpec",
    "generate",
    "load_topology",
    "load_yaml_model",
    "resolve_topology",
]

RouterRole = Literal["pe", "p", "leaf", "spine"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouterSpec(_Strict):
    """One router. PEs and leaves carry customer traffic on their access ports."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    role: RouterRole = "p"
    site: str = "lab"
    asn: int | None = Field(None, ge=1, le=4_294_967_295)
    prefixes: int | None = Field(None, ge=0, le=1_000_000)
    access_ports: int | None = Field(None, ge=0, le=64)


class LinkSpec(_Strict):
    """An IP link between two router ports, optionally riding a wavelength."""

    a: str = Field(pattern=r"^[^:\s]+:[^:\s]+$")
    b: str = Field(pattern=r"^[^:\s]+:[^:\s]+$")
    metric: int = Field(10, ge=1, le=16_777_214)
    capacity_gbps: float = Field(100.0, gt=0, le=1600)
    wavelength: str | None = None


class SpanSpec(_Strict):
    """A fibre pair between two ROADMs: one span and one EDFA in each direction."""

    a: str
    b: str
    length_km: float = Field(gt=0, le=200)


class TransponderSpec(_Strict):
    name: str = Field(min_length=1)
    roadm: str


class ChannelSpec(_Strict):
    """A wavelength from transponder ``a`` to ``b`` over the ROADMs in ``path``.

    ``protection``, when given, is a 1:1 protection path over other ROADMs' spans
    between the same two end ROADMs: ``a``'s transponder holds the (manual)
    switch, see :meth:`lab.network.LabNetwork.set_protection`.
    """

    name: str = Field(min_length=1)
    index: int = Field(ge=-30, le=29)
    a: str
    b: str
    path: tuple[str, ...] = Field(min_length=2)
    protection: tuple[str, ...] | None = Field(None, min_length=2)

    @model_validator(mode="after")
    def _protection_differs(self) -> ChannelSpec:
        p = self.protection
        if p is None:
            return self
        if (p[0], p[-1]) != (self.path[0], self.path[-1]):
            raise ValueError(
                f"channel {self.name!r}: the protection path must join the same ROADMs as the "
                f"path ({self.path[0]} to {self.path[-1]}), not {p[0]} to {p[-1]}"
            )
        working = {frozenset(hop) for hop in itertools.pairwise(self.path)}
        for hop in itertools.pairwise(p):
            if frozenset(hop) in working:
                raise ValueError(
                    f"channel {self.name!r}: the protection path shares the span "
                    f"{hop[0]}-{hop[1]} with the path; it must use other spans"
                )
        return self


class DemandSpec(_Strict):
    """Traffic from PE ``src`` to PE ``dst`` at ``gbps`` at the daily peak."""

    src: str
    dst: str
    gbps: float = Field(gt=0, le=10_000)


class Topology(_Strict):
    """A whole lab: routers, IP links, the optical line system and demands."""

    name: str = "lab"
    seed: int = 7
    routers: tuple[RouterSpec, ...] = Field(min_length=1)
    links: tuple[LinkSpec, ...] = ()
    roadms: tuple[str, ...] = ()
    spans: tuple[SpanSpec, ...] = ()
    transponders: tuple[TransponderSpec, ...] = ()
    channels: tuple[ChannelSpec, ...] = ()
    demands: tuple[DemandSpec, ...] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        routers = {r.name for r in self.routers}
        if len(routers) != len(self.routers):
            raise ValueError("router names must be unique")
        ports: set[str] = set()
        for link in self.links:
            for end in (link.a, link.b):
                device = end.split(":", 1)[0]
                if device not in routers:
                    raise ValueError(f"link end {end!r} names no router")
                if end in ports:
                    raise ValueError(f"port {end!r} is on two links")
                ports.add(end)
        channels = {c.name for c in self.channels}
        for link in self.links:
            if link.wavelength is not None and link.wavelength not in channels:
                raise ValueError(f"link {link.a}-{link.b} rides unknown wavelength")
        roadms = set(self.roadms)
        for span in self.spans:
            if span.a not in roadms or span.b not in roadms:
                raise ValueError(f"span {span.a}-{span.b} names an unknown ROADM")
        for xp in self.transponders:
            if xp.roadm not in roadms:
                raise ValueError(f"transponder {xp.name!r} sits at unknown ROADM {xp.roadm!r}")
        if self.demands is not None:
            for d in self.demands:
                if d.src not in routers or d.dst not in routers or d.src == d.dst:
                    raise ValueError(f"demand {d.src}->{d.dst} needs two different routers")
        return self

    @property
    def device_count(self) -> int:
        """Routers, ROADMs, EDFAs (two per fibre pair) and transponders."""
        return len(self.routers) + len(self.roadms) + 2 * len(self.spans) + len(self.transponders)


def load_topology(path: Path) -> Topology:
    """Read and validate a topology YAML file.

    Raises:
        LabError: the file is missing, not YAML, or invalid; the message names
            the file, the field and, where known, the line.
    """
    return load_yaml_model(path, Topology, "topology file", "a mapping with 'routers:'")


M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[M], what: str, shape: str) -> M:
    """Read ``path`` as YAML and validate it as ``model``.

    Raises:
        LabError: unreadable, not YAML, not a mapping (``shape`` says what is
            expected), or invalid; the message names the file, line and field.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabError(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise LabError(f"{path}{where}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise LabError(f"{path}: a {what} must be {shape}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = node_line(node, loc)
        where = f" line {line}" if line else ""
        raise LabError(f"{path}{where}: {field}: {err['msg']}") from None


# Presets ------------------------------------------------------------------


def metro_ring(seed: int = 7) -> Topology:
    """Four ROADM sites (a–d) in a ring; PEs at every site, P routers at a and c.

    Every PE is dual-homed to p1 and p2; p1 and p2 are joined twice, once each
    way round the ring. Links within a site are patch cords; the rest ride
    400ZR wavelengths, each with a 1:1 protection path the other way round the
    ring (manual switching at its first transponder). Span lengths (60–80 km)
    come from ``seed``.
    """
    rng = random.Random(f"metro-ring/{seed}")
    sites = ("a", "b", "c", "d")
    routers = (
        RouterSpec(name="pe1", role="pe", site="a"),
        RouterSpec(name="pe2", role="pe", site="b"),
        RouterSpec(name="pe3", role="pe", site="c"),
        RouterSpec(name="pe4", role="pe", site="d"),
        RouterSpec(name="p1", role="p", site="a"),
        RouterSpec(name="p2", role="p", site="c"),
    )
    site_of = {r.name: r.site for r in routers}
    # (a end, b end, ROADM path or None for a patch cord in one site)
    plan: tuple[tuple[str, str, str | None], ...] = (
        ("p1:eth1", "p2:eth1", "abc"),
        ("p1:eth2", "p2:eth2", "adc"),
        ("pe1:eth1", "p1:eth3", None),
        ("pe1:eth2", "p2:eth3", "adc"),
        ("pe2:eth1", "p1:eth4", "ba"),
        ("pe2:eth2", "p2:eth4", "bc"),
        ("pe3:eth1", "p2:eth5", None),
        ("pe3:eth2", "p1:eth5", "cba"),
        ("pe4:eth1", "p1:eth6", "da"),
        ("pe4:eth2", "p2:eth6", "dc"),
    )
    spans = []
    lengths: dict[frozenset[str], float] = {}
    for i, here in enumerate(sites):
        there = sites[(i + 1) % len(sites)]
        length = round(rng.uniform(60.0, 80.0), 1)
        lengths[frozenset((here, there))] = length
        spans.append(SpanSpec(a=f"roadm-{here}", b=f"roadm-{there}", length_km=length))
    links: list[LinkSpec] = []
    transponders: list[TransponderSpec] = []
    channels: list[ChannelSpec] = []
    per_site = dict.fromkeys(sites, 0)
    for a, b, path in plan:
        if path is None:
            links.append(LinkSpec(a=a, b=b, metric=1))
            continue
        och = f"och-{len(channels) + 1}"
        ends = []
        for end, site in ((a, path[0]), (b, path[-1])):
            per_site[site] += 1
            xp = f"xp-{site}{per_site[site]}"
            transponders.append(TransponderSpec(name=xp, roadm=f"roadm-{site}"))
            ends.append(xp)
            assert site_of[end.split(":")[0]] == site, (end, site)
        km = sum(lengths[frozenset(pair)] for pair in itertools.pairwise(path))
        channels.append(
            ChannelSpec(
                name=och,
                index=len(channels) + 1,
                a=f"{ends[0]}:line1",
                b=f"{ends[1]}:line1",
                path=tuple(f"roadm-{s}" for s in path),
                protection=tuple(f"roadm-{s}" for s in other_way(path, sites)),
            )
        )
        # IGP metric by distance: about one per 10 km, as many operators set it.
        links.append(LinkSpec(a=a, b=b, metric=max(1, round(km / 10)), wavelength=och))
    pes = [r.name for r in routers if r.role == "pe"]
    demands = tuple(
        DemandSpec(src=s, dst=d, gbps=round(rng.uniform(4.0, 12.0), 1))
        for s, d in itertools.permutations(pes, 2)
    )
    return Topology(
        name="metro-ring",
        seed=seed,
        routers=routers,
        links=tuple(links),
        roadms=tuple(f"roadm-{s}" for s in sites),
        spans=tuple(spans),
        transponders=tuple(transponders),
        channels=tuple(channels),
        demands=demands,
    )


def leaf_spine(seed: int = 7, spines: int = 2, leaves: int = 4) -> Topology:
    """An IP-only Clos fabric: every leaf linked to every spine."""
    return _clos("leaf-spine", seed, spines, leaves, uplinks=spines)


def ring4(seed: int = 7) -> Topology:
    """Four routers in a ring (pe1, p1, p2, pe2), IP only; the smallest useful lab."""
    routers = (
        RouterSpec(name="pe1", role="pe"),
        RouterSpec(name="pe2", role="pe"),
        RouterSpec(name="p1", role="p"),
        RouterSpec(name="p2", role="p"),
    )
    links = (
        LinkSpec(a="pe1:eth1", b="p1:eth1"),
        LinkSpec(a="p1:eth2", b="p2:eth1"),
        LinkSpec(a="p2:eth2", b="pe2:eth1"),
        # As long as the way round: ECMP splits pe1<->pe2 over both halves of the ring.
        LinkSpec(a="pe2:eth2", b="pe1:eth2", metric=30),
    )
    demands = (
        DemandSpec(src="pe1", dst="pe2", gbps=8.0),
        DemandSpec(src="pe2", dst="pe1", gbps=6.0),
    )
    return Topology(name="ring4", seed=seed, routers=routers, links=links, demands=demands)


def ring4_wide(seed: int = 7) -> Topology:
    """``ring4`` with 37 access ports on each PE (40 interfaces): for walk benchmarks."""
    base = ring4(seed)
    routers = tuple(
        r.model_copy(update={"access_ports": 37}) if r.role == "pe" else r for r in base.routers
    )
    return base.model_copy(update={"name": "ring4-wide", "routers": routers})


def generate(devices: int, seed: int = 7) -> Topology:
    """A Clos fabric of ``devices`` routers (at least 4), for scale.

    Up to 104 routers: one leaf-spine tier, every leaf on every spine (two to
    four spines). Beyond that, pods of four spines and their leaves, joined by
    a super-spine tier that every spine connects to. Demands: each leaf sends
    to two others.
    """
    if not 4 <= devices <= 20_000:
        raise LabError(f"--devices must be between 4 and 20000, got {devices}")
    if devices <= 104:
        spines = min(4, max(2, devices // 25))
        return _clos(f"generated-{devices}", seed, spines, devices - spines, uplinks=spines)
    supers = max(2, devices // 250)
    spines = 4 * max(1, devices // 100)
    leaves = devices - supers - spines
    return _clos(f"generated-{devices}", seed, spines, leaves, uplinks=4, supers=supers)


def _clos(
    name: str, seed: int, spines: int, leaves: int, uplinks: int, supers: int = 0
) -> Topology:
    rng = random.Random(f"{name}/{seed}")
    routers = [RouterSpec(name=f"super{i}", role="spine", site="dc") for i in range(1, supers + 1)]
    routers += [RouterSpec(name=f"spine{i}", role="spine", site="dc") for i in range(1, spines + 1)]
    routers += [RouterSpec(name=f"leaf{i}", role="leaf", site="dc") for i in range(1, leaves + 1)]
    ports: dict[str, int] = {}

    def port(device: str) -> str:
        ports[device] = ports.get(device, 0) + 1
        return f"{device}:eth{ports[device]}"

    links = []
    pods = max(1, spines // uplinks)
    for leaf in range(1, leaves + 1):
        pod = (leaf - 1) % pods
        for k in range(uplinks):
            spine = pod * uplinks + k + 1
            links.append(LinkSpec(a=port(f"leaf{leaf}"), b=port(f"spine{spine}")))
    for spine in range(1, spines + 1):
        for sup in range(1, supers + 1):
            links.append(
                LinkSpec(a=port(f"spine{spine}"), b=port(f"super{sup}"), capacity_gbps=400.0)
            )
    leaf_names = [f"leaf{i}" for i in range(1, leaves + 1)]
    demands: list[DemandSpec] = []
    for src in leaf_names:
        others = [x for x in rng.sample(leaf_names, min(3, leaves)) if x != src][:2]
        demands += [
            DemandSpec(src=src, dst=d, gbps=round(rng.uniform(2.0, 8.0), 1)) for d in others
        ]
    return Topology(
        name=name, seed=seed, routers=tuple(routers), links=tuple(links), demands=tuple(demands)
    )


PRESETS: dict[str, Callable[[int], Topology]] = {
    "metro-ring": metro_ring,
    "leaf-spine": leaf_spine,
    "ring4": ring4,
    "ring4-wide": ring4_wide,
}
"""Named topologies, each a function of the seed."""


def resolve_topology(spec: str | None, devices: int | None = None, seed: int = 7) -> Topology:
    """A preset name, a topology file path, or (with ``devices``) a generated fabric.

    Raises:
        LabError: an unknown preset or an invalid file.
    """
    if devices is not None:
        if spec not in (None, "generated", "leaf-spine"):
            raise LabError("--devices builds a generated leaf-spine fabric; drop --topology")
        return generate(devices, seed)
    name = spec or "metro-ring"
    if name in PRESETS:
        return PRESETS[name](seed)
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_topology(path)
    known = ", ".join(sorted(PRESETS))
    raise LabError(f"unknown topology {name!r}: use a preset ({known}) or a YAML file path")
