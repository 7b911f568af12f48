"""The namespace lab's topology file: routers, links between them, traffic demands.

Small on purpose: every router is a network namespace running FRR (zebra,
ospfd, bgpd) and snmpd; every link is a veth pair with a /30, in OSPF area 0
and (``bgp: true``, the default) an eBGP session between its two ends, one AS
per router. Addresses are derived, not written::

    name: ring4
    routers: [{name: r1}, {name: r2}, {name: r3}, {name: r4}]
    links:
      - {a: r1, b: r2}              # link 0: 10.0.0.0/30, r1 .1, r2 .2
      - {a: r2, b: r3, cost: 20}    # OSPF cost at both ends
    demands:
      - {src: r1, dst: r2, rate_kbps: 200}   # UDP to r2's loopback

Link ``i`` gets ``10.0.i.0/30`` (``a`` end ``.1``); router ``n`` (1-based, in
file order) gets loopback ``10.10.10.n/32`` and AS ``65000 + n`` unless it
says otherwise. Each router's interfaces are ``eth1``, ``eth2``, ... in the
order its links appear.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lab.topology import load_yaml_model

__all__ = [
    "DEFAULT_TOPOLOGY",
    "Demand",
    "NetnsLink",
    "NetnsRouter",
    "NetnsTopology",
    "Port",
    "load_netns_topology",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


RouterName = str


class NetnsRouter(_Strict):
    name: RouterName = Field(pattern=r"^[a-z][a-z0-9]{0,7}$")
    """Short: it becomes part of namespace and interface names."""
    asn: int | None = Field(None, ge=1, le=4294967294)


class NetnsLink(_Strict):
    a: RouterName
    b: RouterName
    cost: int = Field(10, ge=1, le=65535)
    """OSPF cost at both ends."""
    bgp: bool = True
    """An eBGP session between the two ends' link addresses."""


class Demand(_Strict):
    src: RouterName
    dst: RouterName
    rate_kbps: float = Field(200.0, gt=0, le=50_000)
    size: int = Field(1000, ge=64, le=1400)
    """UDP payload bytes."""


class NetnsTopology(_Strict):
    name: str = Field("netns", pattern=r"^[a-z][a-z0-9-]{0,31}$")
    routers: tuple[NetnsRouter, ...] = Field(min_length=2, max_length=16)
    links: tuple[NetnsLink, ...] = Field(min_length=1, max_length=64)
    demands: tuple[Demand, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> NetnsTopology:
        names = [r.name for r in self.routers]
        if len(set(names)) != len(names):
            raise ValueError(f"router names repeat: {names}")
        known = set(names)
        for i, link in enumerate(self.links):
            for end in (link.a, link.b):
                if end not in known:
                    raise ValueError(f"links[{i}] names unknown router {end!r}")
            if link.a == link.b:
                raise ValueError(f"links[{i}] joins {link.a} to itself")
        for i, d in enumerate(self.demands):
            for end in (d.src, d.dst):
                if end not in known:
                    raise ValueError(f"demands[{i}] names unknown router {end!r}")
        return self

    # ---- derived addressing -------------------------------------------------------

    def index(self, router: str) -> int:
        """1-based position of ``router`` in the file."""
        return [r.name for r in self.routers].index(router) + 1

    def asn(self, router: str) -> int:
        r = self.routers[self.index(router) - 1]
        return r.asn if r.asn is not None else 65000 + self.index(router)

    def loopback(self, router: str) -> str:
        return f"10.10.10.{self.index(router)}"

    def ports(self, router: str) -> list[Port]:
        """The router's link ports, ``eth1``... in link order."""
        out: list[Port] = []
        for i, link in enumerate(self.links):
            net = ipaddress.ip_network(f"10.0.{i}.0/30")
            a, b = (str(h) for h in net.hosts())
            if link.a == router:
                out.append(Port(f"eth{len(out) + 1}", i, a, link.b, b, link.cost, link.bgp))
            elif link.b == router:
                out.append(Port(f"eth{len(out) + 1}", i, b, link.a, a, link.cost, link.bgp))
        return out

    def port(self, router: str, ifname: str) -> Port:
        for p in self.ports(router):
            if p.ifname == ifname:
                return p
        raise KeyError(f"{router}:{ifname}")

    def peer_port(self, port: Port) -> tuple[str, Port]:
        """The far end of ``port``'s link."""
        for p in self.ports(port.peer):
            if p.link == port.link:
                return port.peer, p
        raise KeyError(port.peer)


@dataclass(frozen=True, slots=True)
class Port:
    ifname: str
    link: int
    address: str
    peer: str
    peer_address: str
    cost: int
    bgp: bool


DEFAULT_TOPOLOGY = NetnsTopology(
    name="ring4",
    routers=tuple(NetnsRouter(name=f"r{i}") for i in range(1, 5)),
    links=(
        NetnsLink(a="r1", b="r2"),
        NetnsLink(a="r2", b="r3"),
        NetnsLink(a="r3", b="r4"),
        NetnsLink(a="r4", b="r1"),
    ),
    demands=(
        Demand(src="r1", dst="r2"),
        Demand(src="r2", dst="r1"),
        Demand(src="r3", dst="r4"),
        Demand(src="r4", dst="r3"),
    ),
)
"""Four routers in a ring, a demand each way between r1 and r2 and between r3 and r4."""


def load_netns_topology(path: Path) -> NetnsTopology:
    """Read and validate a namespace-lab topology file.

    Raises:
        LabError: unreadable, not YAML, or invalid; the message names the file,
            line and field.
    """
    return load_yaml_model(
        Path(path), NetnsTopology, "namespace-lab topology", "a mapping with 'routers:'"
    )
