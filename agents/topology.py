"""The network as layers: what rides on what, from the fibre up to the services.

Alarm correlation and root-cause analysis reason over one question: *if this
component failed, what else would show it?* This module answers it from the
inventory (:mod:`autonoc.core.inventory`), with these layers, lowest first
(:class:`Layer`)::

    fibre span ──► amplifier (EDFA) ──► ROADM degree
         │                                   │
         └──────► optical channel ◄── transponder line ports
                        │
                  router interfaces (the two ends of an IP link)
                        │
                  BGP sessions over the link
                        │
                  services (traffic demands between edge routers)

Components are typed (:class:`Component`: layer, kind, device, instance) and
named by stable string ids:

==========================  ===========================  ==================================
kind                        id                           what
==========================  ===========================  ==================================
``fibre_pair``              ``fibre:roadm-a:roadm-b``    both directions of one fibre pair
``span``                    ``span:roadm-a:roadm-b``     one direction (light from a to b)
``amplifier``               ``amp-a-b``                  the EDFA at a span's far end
``degree``                  ``roadm-b:deg-1``            the ROADM port a span arrives at
``line_port``               ``xp-a1:line1``              a transponder's DWDM port
``channel``                 ``och-1``                    a wavelength between two line ports
``interface``               ``pe1:eth1``                 a router port (one end of an IP link)
``bgp_session``             ``bgp:pe1:10.0.0.10``        pe1's session to neighbour 10.0.0.10
``service``                 ``svc:pe1->pe2``             the demand from pe1 to pe2
``device``                  ``pe1``                      a device as a whole (CPU, memory)
==========================  ===========================  ==================================

The public API, which the policy gate uses for blast radius and so keeps
stable: :meth:`Topology.parents` (what a component rides on),
:meth:`Topology.children` (what rides on it), :meth:`Topology.devices_touched`
and :meth:`Topology.services_over`. Correlation and RCA add
:meth:`Topology.causes` (every component whose failure can show at this
one, including the light path *into* a line port, direction-aware) and
:meth:`Topology.effects` (its converse).

Services ride the BGP sessions (and so the interfaces) of every shortest
path, by hop count with ECMP, between their two routers: the inventory has no
IGP metrics, so this is the set of paths the service is *likely* on, which is
what a blast radius needs. A wavelength rides the path it was on when the
inventory was written (its working path, or its protection path when
``active_protection`` is set).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from autonoc.core.inventory import Inventory, LinkKind, Role

__all__ = ["Component", "Kind", "Layer", "Topology"]


class Layer(IntEnum):
    """Layers, lowest first: a fault low down explains symptoms higher up, never the reverse."""

    FIBRE = 0
    AMPLIFIER = 1
    LINE_PORT = 2
    CHANNEL = 3
    INTERFACE = 4
    BGP = 5
    SERVICE = 6
    #: A device as a whole (CPU, memory): beside the riding layers, not under them.
    DEVICE = 7


class Kind(StrEnum):
    FIBRE_PAIR = "fibre_pair"
    SPAN = "span"
    AMPLIFIER = "amplifier"
    DEGREE = "degree"
    LINE_PORT = "line_port"
    CHANNEL = "channel"
    INTERFACE = "interface"
    BGP_SESSION = "bgp_session"
    SERVICE = "service"
    DEVICE = "device"


_LAYER = {
    Kind.FIBRE_PAIR: Layer.FIBRE,
    Kind.SPAN: Layer.FIBRE,
    Kind.AMPLIFIER: Layer.AMPLIFIER,
    Kind.DEGREE: Layer.AMPLIFIER,
    Kind.LINE_PORT: Layer.LINE_PORT,
    Kind.CHANNEL: Layer.CHANNEL,
    Kind.INTERFACE: Layer.INTERFACE,
    Kind.BGP_SESSION: Layer.BGP,
    Kind.SERVICE: Layer.SERVICE,
    Kind.DEVICE: Layer.DEVICE,
}

#: Service paths are computed while (sources × (routers + link ends)) stays under this.
SERVICE_PATH_BUDGET = 20_000_000
#: Components that report no telemetry of their own: only what rides on them shows a fault.
UNOBSERVABLE = frozenset({Kind.FIBRE_PAIR, Kind.SPAN, Kind.CHANNEL, Kind.SERVICE})


@dataclass(frozen=True, slots=True)
class Component:
    """One thing that can fail. ``device``/``instance`` say where its telemetry lives
    (``""`` when nowhere: a span, a channel, a service)."""

    id: str
    kind: Kind
    device: str = ""
    instance: str = ""

    @property
    def layer(self) -> Layer:
        return _LAYER[self.kind]

    @property
    def observable(self) -> bool:
        """Whether the component reports telemetry of its own."""
        return self.kind not in UNOBSERVABLE


class Topology:
    """The layered topology of one inventory; immutable once built.

    Build it with :meth:`from_inventory`. Unknown ids raise ``KeyError`` except in
    :meth:`component`, which also resolves ``device`` and ``device:instance`` ids of
    inventory devices that no link names (an access port, a process), with no relations.
    """

    def __init__(self) -> None:
        self._components: dict[str, Component] = {}
        self._parents: dict[str, list[str]] = {}
        self._children: dict[str, list[str]] = {}
        self._feeds: dict[str, list[str]] = {}  # the light path into a line port, amp, degree
        self._peer: dict[str, str] = {}
        self._devices: dict[str, Role] = {}
        self._by_place: dict[tuple[str, str], str] = {}
        self._pairs: dict[frozenset[str], str] = {}
        self._pair_of: dict[str, str] = {}
        self._canonical: dict[str, str] = {}  # fibre pair -> its first-listed direction
        self._order: dict[str, int] = {}  # interface -> position in the inventory (a end first)
        self._causes: dict[str, frozenset[str]] = {}
        self._effects: dict[str, frozenset[str]] = {}

    # -- building ---------------------------------------------------------------------

    @classmethod
    def from_inventory(cls, inventory: Inventory) -> Topology:
        """The layers the inventory describes; sections it lacks give no components."""
        t = cls()
        for device in inventory.devices:
            t._devices[device.name] = device.role
            if device.role is Role.AMPLIFIER:
                t._add(Component(device.name, Kind.AMPLIFIER, device.name, "edfa"))
            else:
                t._add(Component(device.name, Kind.DEVICE, device.name, ""))
        for span in inventory.spans:
            t._add_span(span.name, span.a.device, span.b.device, span.b.port, span.amplifier)
        span_amp = {s.name: s.amplifier for s in inventory.spans}
        for wave in inventory.wavelengths:
            t._add(Component(wave.name, Kind.CHANNEL))
            forward = wave.protection if wave.active_protection else wave.path
            back = wave.protection_back if wave.active_protection else wave.path_back
            ends = []
            for end in (wave.a, wave.b):
                port = f"{end.device}:{end.port}"
                ends.append(port)
                t._add(Component(port, Kind.LINE_PORT, end.device, end.port))
                t._by_place[(end.device, end.port)] = port
                t._relate(port, wave.name)
            for span_name in (*forward, *back):
                t._relate(span_name, wave.name)
                amp = span_amp.get(span_name)
                if amp is not None:
                    t._relate(amp, wave.name)
            # Light reaches b from a over ``forward``, and a from b over ``back``.
            for rx, tx, hops in ((ends[1], ends[0], forward), (ends[0], ends[1], back)):
                feed = [tx]
                for span_name in hops:
                    feed.append(span_name)
                    amp = span_amp.get(span_name)
                    if amp is not None:
                        feed.append(amp)
                t._feeds[rx] = feed
        for link in inventory.links:
            if link.kind is not LinkKind.IP:
                continue
            a, b = f"{link.a.device}:{link.a.port}", f"{link.b.device}:{link.b.port}"
            for end, comp in ((link.a, a), (link.b, b)):
                t._add(Component(comp, Kind.INTERFACE, end.device, end.port))
                t._by_place[(end.device, end.port)] = comp
                t._order.setdefault(comp, len(t._order))
                if link.wavelength is not None:
                    t._relate(link.wavelength, comp)
            t._peer[a], t._peer[b] = b, a
        for session in inventory.bgp_sessions:
            sid = f"bgp:{session.device}:{session.peer_address}"
            t._add(Component(sid, Kind.BGP_SESSION, session.device, session.peer_address))
            t._by_place[(session.device, session.peer_address)] = sid
            near = f"{session.device}:{session.port}"
            if near in t._components:
                t._relate(near, sid)
                far = t._peer.get(near)
                if far is not None:
                    t._relate(far, sid)
        for session_comp in list(t._components.values()):
            if session_comp.kind is not Kind.BGP_SESSION:
                continue
            port = t._parents.get(session_comp.id, [""])[0]
            for sibling in t._children.get(port, []):
                other = t._components[sibling]
                if other.kind is Kind.BGP_SESSION and other.device != session_comp.device:
                    t._peer[session_comp.id] = sibling
        t._add_services(inventory)
        return t

    def _add_span(self, name: str, src: str, dst: str, port: str, amp: str | None) -> None:
        key = frozenset((src, dst))
        pair = self._pairs.get(key)
        if pair is None:
            pair = "fibre:" + name.removeprefix("span:")
            self._pairs[key] = pair
            self._canonical[pair] = name
            self._add(Component(pair, Kind.FIBRE_PAIR))
        self._add(Component(name, Kind.SPAN))
        self._relate(pair, name)
        self._pair_of[name] = pair
        degree = f"{dst}:{port}"
        self._add(Component(degree, Kind.DEGREE, dst, port))
        self._by_place[(dst, port)] = degree
        if amp is not None and amp in self._components:
            self._relate(name, amp)
            self._relate(amp, degree)
            self._feeds[amp] = [name]
            self._feeds[degree] = [amp, name]
        else:
            self._relate(name, degree)
            self._feeds[degree] = [name]

    def _add_services(self, inventory: Inventory) -> None:
        adjacency: dict[str, list[tuple[str, str, str]]] = {}
        for link in inventory.links:
            if link.kind is not LinkKind.IP:
                continue
            a, b = f"{link.a.device}:{link.a.port}", f"{link.b.device}:{link.b.port}"
            adjacency.setdefault(link.a.device, []).append((link.b.device, a, b))
            adjacency.setdefault(link.b.device, []).append((link.a.device, b, a))
        sessions_on: dict[str, list[str]] = {}
        for comp in self._components.values():
            if comp.kind is Kind.BGP_SESSION:
                for parent in self._parents.get(comp.id, []):
                    sessions_on.setdefault(parent, []).append(comp.id)
        size = len(adjacency) + sum(len(v) for v in adjacency.values())
        sources = len({s.src for s in inventory.services})
        # Paths cost one BFS per source; past the budget (fabrics of thousands of
        # routers) services are listed without paths rather than stall a diagnosis.
        routed = sources * size <= SERVICE_PATH_BUDGET
        dist_from: dict[str, dict[str, int]] = {}
        for service in inventory.services:
            sid = f"svc:{service.name}"
            self._add(Component(sid, Kind.SERVICE, service.src, ""))
            if not routed:
                continue
            if service.src not in dist_from:
                dist_from[service.src] = _hops(adjacency, service.src)
            for port in _path_ports(adjacency, dist_from[service.src], service.dst):
                riding = sessions_on.get(port)
                for parent in riding if riding else [port]:
                    self._relate(parent, sid)

    def _add(self, component: Component) -> None:
        self._components.setdefault(component.id, component)

    def _relate(self, parent: str, child: str) -> None:
        if parent not in self._components or child not in self._components:
            return
        kids = self._children.setdefault(parent, [])
        if child not in kids:
            kids.append(child)
            self._parents.setdefault(child, []).append(parent)

    # -- the public API ---------------------------------------------------------------

    def component(self, component_id: str) -> Component:
        """The component called ``component_id``.

        Besides the inventory's components, ``DEVICE`` and ``DEVICE:INSTANCE`` of any
        inventory device resolve (a port no link names: an interface, with no relations).

        Raises:
            KeyError: nothing in the inventory has that name.
        """
        found = self._components.get(component_id)
        if found is not None:
            return found
        device, sep, instance = component_id.partition(":")
        if sep and device in self._devices and instance:
            kind = {Role.TRANSPONDER: Kind.LINE_PORT, Role.ROADM: Kind.DEGREE}.get(
                self._devices[device], Kind.INTERFACE
            )
            return Component(component_id, kind, device, instance)
        raise KeyError(f"no component {component_id!r} in the topology")

    def __contains__(self, component_id: object) -> bool:
        return isinstance(component_id, str) and component_id in self._components

    def components(self, layer: Layer | None = None) -> tuple[Component, ...]:
        """Every component, in the order the inventory gave them; of one ``layer`` if given."""
        return tuple(c for c in self._components.values() if layer is None or c.layer == layer)

    def parents(self, component_id: str) -> tuple[str, ...]:
        """What ``component_id`` rides on directly (its channel, its span, its link's ports)."""
        self.component(component_id)
        return tuple(self._parents.get(component_id, ()))

    def children(self, component_id: str) -> tuple[str, ...]:
        """What rides on ``component_id`` directly."""
        self.component(component_id)
        return tuple(self._children.get(component_id, ()))

    def devices_touched(self, component_id: str) -> tuple[str, ...]:
        """Devices that host ``component_id`` or anything riding on it, sorted.

        A span touches the ROADMs and EDFA at its ends and every transponder and router
        whose wavelengths, links or sessions ride it: what acting on it can disturb.
        """
        found: set[str] = set()
        for cid in (component_id, *self.effects(component_id)):
            found.update(self._hosts(cid))
            if self.component(cid).kind is Kind.CHANNEL:
                for port in self._parents.get(cid, ()):
                    if self._components[port].kind is Kind.LINE_PORT:
                        found.update(self._hosts(port))
        return tuple(sorted(found))

    def services_over(self, component_id: str) -> tuple[str, ...]:
        """Services (``svc:...`` ids) that ride on ``component_id``, sorted."""
        ids = (component_id, *self.effects(component_id))
        return tuple(sorted(c for c in ids if self.component(c).kind is Kind.SERVICE))

    # -- for correlation and RCA ------------------------------------------------------

    def causes(self, component_id: str) -> frozenset[str]:
        """Every component whose failure can show at ``component_id``: what it rides on,
        transitively, and for optical receivers the light path into them (the far
        transmitter, the spans and EDFAs on the way), direction-aware."""
        cached = self._causes.get(component_id)
        if cached is not None:
            return cached
        self.component(component_id)
        # The light path into a receiver counts from the receiver only: the far
        # transmitter's own receive path is not this receiver's problem.
        seen: set[str] = set(self._feeds.get(component_id, ()))
        queue = deque([component_id, *seen])
        while queue:
            cur = queue.popleft()
            for up in self._parents.get(cur, ()):
                if up not in seen and up != component_id:
                    seen.add(up)
                    queue.append(up)
        result = frozenset(seen)
        self._causes[component_id] = result
        return result

    def effects(self, component_id: str) -> frozenset[str]:
        """Everything that rides on ``component_id``, transitively."""
        cached = self._effects.get(component_id)
        if cached is not None:
            return cached
        self.component(component_id)
        seen: set[str] = set()
        queue = deque([component_id])
        while queue:
            cur = queue.popleft()
            for down in self._children.get(cur, ()):
                if down not in seen:
                    seen.add(down)
                    queue.append(down)
        result = frozenset(seen)
        self._effects[component_id] = result
        return result

    def feeds(self, component_id: str) -> tuple[str, ...]:
        """The light path into an optical receiver, nearest the transmitter first; () else."""
        return tuple(self._feeds.get(component_id, ()))

    def peer(self, component_id: str) -> str | None:
        """The far end of an interface's IP link, or the same BGP session seen from the
        neighbour (``bgp:p1:10.0.0.9`` for ``bgp:pe1:10.0.0.10``); None if none."""
        return self._peer.get(component_id)

    def is_a_end(self, component_id: str) -> bool:
        """Whether an interface is listed first on its inventory link: the tie-break when
        telemetry cannot tell the two ends of a link apart."""
        peer = self._peer.get(component_id)
        if peer is None:
            return False
        return self._order.get(component_id, 0) < self._order.get(peer, 0)

    def fibre_pair(self, span: str) -> str | None:
        """The fibre pair a span direction belongs to."""
        return self._pair_of.get(span)

    def canonical_span(self, pair: str) -> str:
        """The first-listed direction of a fibre pair: the name a cut of the pair goes by."""
        return self._canonical[pair]

    def role(self, device: str) -> Role | None:
        return self._devices.get(device)

    def component_for(self, device: str, instance: str) -> Component:
        """The component a telemetry key names: ``(device, instance)`` as samples carry it.

        A router's ``eth1`` is ``pe1:eth1``, its ``10.0.0.10`` the BGP session
        ``bgp:pe1:10.0.0.10``, ``""`` the router itself; a transponder's ``line1`` (and
        ``client1``, which follows it) is ``xp-a1:line1``; anything of an amplifier is the
        amplifier; a ROADM's ``deg-1`` is ``roadm-b:deg-1``.

        Raises:
            KeyError: ``device`` is not in the inventory.
        """
        role = self._devices.get(device)
        if role is None:
            raise KeyError(f"no device {device!r} in the topology")
        if role is Role.AMPLIFIER or not instance:
            return self._components[device]
        if role is Role.TRANSPONDER and instance.startswith("client"):
            instance = "line" + instance.removeprefix("client")
        known = self._by_place.get((device, instance))
        if known is not None:
            return self._components[known]
        if role is Role.ROUTER and _looks_like_address(instance):
            return Component(f"bgp:{device}:{instance}", Kind.BGP_SESSION, device, instance)
        return self.component(f"{device}:{instance}")

    def _hosts(self, component_id: str) -> tuple[str, ...]:
        comp = self.component(component_id)
        if comp.kind is Kind.SPAN:
            hosts = [d for d in self.devices_at(component_id) if d]
            return tuple(hosts)
        if comp.kind is Kind.SERVICE:
            return ()
        return (comp.device,) if comp.device else ()

    def devices_at(self, component_id: str) -> tuple[str, ...]:
        """The devices a span direction joins (source ROADM, far ROADM, its EDFA)."""
        comp = self.component(component_id)
        if comp.kind is not Kind.SPAN:
            return (comp.device,) if comp.device else ()
        _, src, dst = component_id.split(":", 2)
        kids = [
            c
            for c in self._children.get(component_id, ())
            if self._components[c].kind is Kind.AMPLIFIER
        ]
        return (src, dst, *kids)


def _looks_like_address(text: str) -> bool:
    return text.count(".") == 3 or ":" in text


def _hops(adjacency: dict[str, list[tuple[str, str, str]]], src: str) -> dict[str, int]:
    dist = {src: 0}
    queue = deque([src])
    while queue:
        cur = queue.popleft()
        for nxt, _, _ in adjacency.get(cur, ()):
            if nxt not in dist:
                dist[nxt] = dist[cur] + 1
                queue.append(nxt)
    return dist


def _path_ports(
    adjacency: dict[str, list[tuple[str, str, str]]], dist: dict[str, int], dst: str
) -> list[str]:
    """The interfaces (both ends) of every hop-count shortest path ending at ``dst``."""
    if dst not in dist:
        return []
    ports: list[str] = []
    on_path = {dst}
    frontier = [dst]
    while frontier:
        following = []
        for node in frontier:
            for prev, near, far in adjacency.get(node, ()):
                if dist.get(prev) == dist[node] - 1:
                    for port in (far, near):
                        if port not in ports:
                            ports.append(port)
                    if prev not in on_path:
                        on_path.add(prev)
                        following.append(prev)
        frontier = following
    return ports
