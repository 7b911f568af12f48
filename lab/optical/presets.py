"""Named optical topologies.

``metro_ring`` puts the ``ring4`` IP routers on four ROADM sites: pe1 at
roadm-a, p1 at roadm-b, pe2 at roadm-c, p2 at roadm-d. Each IP link rides one
400ZR wavelength; two of them cross two spans::

    roadm-a ── roadm-b ── roadm-c ── roadm-d ── (back to roadm-a)

    och-1  pe1:eth1 ↔ p1:eth1    a→b      protection a→d→c→b
    och-2  p1:eth2  ↔ p2:eth1    b→c→d    protection b→a→d
    och-3  p2:eth2  ↔ pe2:eth1   d→c      protection d→a→b→c
    och-4  pe2:eth2 ↔ pe1:eth2   c→d→a    protection c→b→a

Every channel has a 1:1 protection path the other way round the ring,
switched by hand at its head end (the first transponder named).
"""

from __future__ import annotations

import itertools
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.optical.model import OpticalNetwork

__all__ = ["build_metro_ring", "other_way"]

_SITES = ("a", "b", "c", "d")

# (channel, grid index, (transponder A, B), path as sites, IP link carried)
_CHANNELS = (
    ("och-1", 1, ("xp-a1", "xp-b1"), "ab", ("pe1:eth1", "p1:eth1")),
    ("och-2", 2, ("xp-b2", "xp-d1"), "bcd", ("p1:eth2", "p2:eth1")),
    ("och-3", 3, ("xp-d2", "xp-c1"), "dc", ("p2:eth2", "pe2:eth1")),
    ("och-4", 4, ("xp-c2", "xp-a2"), "cda", ("pe2:eth2", "pe1:eth2")),
)


def build_metro_ring(network: OpticalNetwork) -> None:
    """Build the four-ROADM metro ring on an empty ``network`` and commission it.

    Span lengths (60–80 km, the same both ways), connector losses, noise
    figures and tilts come from ``network.seed``, so names and values are stable.
    """
    rng = random.Random(f"metro_ring/{network.seed}")
    for site in _SITES:
        network.add_roadm(f"roadm-{site}")
    for i, here in enumerate(_SITES):
        there = _SITES[(i + 1) % len(_SITES)]
        length = round(rng.uniform(60.0, 80.0), 1)
        for src, dst in ((here, there), (there, here)):
            network.add_span(
                f"span-{src}-{dst}",
                f"roadm-{src}",
                f"roadm-{dst}",
                length,
                connectors_db=round(rng.uniform(0.8, 1.4), 2),
                noise_figure_db=round(rng.uniform(5.0, 6.0), 2),
                tilt_db=round(rng.uniform(-0.5, 0.5), 2),
            )
    for _name, _index, ends, _path, _carries in _CHANNELS:
        for xp in ends:
            network.add_transponder(
                xp,
                f"roadm-{xp[3]}",
                tx_power_dbm=rng.choice((-8.5, -8.0, -7.5)),
                bias_ma=round(rng.uniform(45.0, 75.0), 1),
                temp_c=round(rng.uniform(38.0, 48.0), 1),
            )
    for name, index, (a, b), sites, carries in _CHANNELS:
        path = [f"span-{s}-{t}" for s, t in itertools.pairwise(sites)]
        protection = [f"span-{s}-{t}" for s, t in itertools.pairwise(other_way(sites, _SITES))]
        network.add_channel(
            name, index, f"{a}:line1", f"{b}:line1", path, carries=carries, protection=protection
        )
    network.commission()


def other_way(path: str | tuple[str, ...], ring: str | tuple[str, ...]) -> tuple[str, ...]:
    """The sites from ``path``'s first to its last going the other way round ``ring``.

    ``other_way("ab", "abcd")`` is ``("a", "d", "c", "b")``.
    """
    n = len(ring)
    start, end = ring.index(path[0]), ring.index(path[-1])
    step = -1 if ring[(start + 1) % n] == path[1] else 1
    sites = [ring[start]]
    i = start
    while i != end:
        i = (i + step) % n
        sites.append(ring[i])
    return tuple(sites)
