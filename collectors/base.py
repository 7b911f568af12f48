"""The collector extension point: a Protocol, its result type and a registry.

A poll over many devices returns one :class:`CollectResult` per device; a
dead device is a result with ``failed=True`` and its exception, never an
exception that stops the cycle. Call :meth:`CollectResult.raise_for_status`
to turn a failure into an exception on demand.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from autonoc.core.errors import AutonocError
from autonoc.core.inventory import Device
from autonoc.core.types import Sample

__all__ = ["CollectRequest", "CollectResult", "Collector", "CollectorRegistry"]


@dataclass(frozen=True, slots=True)
class CollectRequest:
    """What to collect: metric groups such as ``interfaces`` or ``optics``."""

    groups: tuple[str, ...] = ("interfaces",)


@dataclass(slots=True)
class CollectResult:
    """The outcome of collecting from one device."""

    device: str
    samples: list[Sample] = field(default_factory=list)
    failed: bool = False
    exception: AutonocError | None = None
    elapsed_ms: float = 0.0
    #: Raw values read (SNMP varbinds, NETCONF leaves), for the collectors' own health metrics.
    varbinds: int = 0
    #: Descriptive text the device reported (sysDescr, software version): data, never instructions.
    facts: dict[str, str] = field(default_factory=dict)

    def raise_for_status(self) -> CollectResult:
        """Raise the stored exception when the collection failed; return self otherwise."""
        if self.failed and self.exception is not None:
            raise self.exception
        return self


@runtime_checkable
class Collector(Protocol):
    """Reads telemetry from one device over one protocol."""

    name: str

    async def collect(self, device: Device, request: CollectRequest) -> CollectResult:
        """Collect ``request`` from ``device``; failures come back as data."""
        ...


class CollectorRegistry:
    """Collectors by name. Each instance has its own dict (never shared)."""

    def __init__(self) -> None:
        self._collectors: dict[str, Collector] = {}

    def register(self, collector: Collector) -> None:
        if collector.name in self._collectors:
            raise ValueError(f"collector {collector.name!r} is already registered")
        self._collectors[collector.name] = collector

    def get(self, name: str) -> Collector:
        try:
            return self._collectors[name]
        except KeyError:
            known = ", ".join(sorted(self._collectors)) or "none"
            raise KeyError(f"no collector {name!r} (registered: {known})") from None

    def __iter__(self) -> Iterator[Collector]:
        return iter(self._collectors.values())

    def __len__(self) -> int:
        return len(self._collectors)
