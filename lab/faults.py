"""Injectable faults: the lab's ground truth of what is broken, and where.

Targets:

- a device: ``pe1``, ``amp-a-b``, ``xp-a1``; a router's process: ``pe1:bgpd``;
- an interface: ``pe1:eth3``; a transponder line port: ``xp-a1:line1``;
- a fibre span (one direction, A to B): ``span:roadm-a:roadm-b``;
- a BGP session, from one router to a neighbour address: ``bgp:pe1:10.0.0.2``.

The ground truth (:meth:`FaultInjector.faults`) is for the scenario runner and
the lab's control socket only; devices never report it over SNMP or NETCONF,
they only show its symptoms.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from autonoc.core.errors import LabError
from lab.network import DEFAULT_RUNAWAY_PROCESS, LabNetwork, span_name

__all__ = ["FAULT_HELP", "ActiveFault", "FaultInjector", "FaultKind", "parse_params"]


class FaultKind(StrEnum):
    LINK_DOWN = "link_down"
    INTERFACE_FLAP = "interface_flap"
    FIBER_CUT = "fiber_cut"
    SPAN_LOSS = "span_loss"
    AMPLIFIER_FAILURE = "amplifier_failure"
    LASER_DEGRADATION = "laser_degradation"
    OSNR_DEGRADATION = "osnr_degradation"
    CRC_ERRORS = "crc_errors"
    CONGESTION = "congestion"
    CPU_RUNAWAY = "cpu_runaway"
    BGP_SESSION_DOWN = "bgp_session_down"
    CONFIG_DRIFT = "config_drift"


FAULT_HELP: dict[FaultKind, tuple[str, str, dict[str, float]]] = {
    FaultKind.LINK_DOWN: ("pe1:eth1", "interface hardware failure: oper down, admin up", {}),
    FaultKind.INTERFACE_FLAP: (
        "pe1:eth1",
        "interface bounces, down half of each period",
        {"period_s": 20.0},
    ),
    FaultKind.FIBER_CUT: ("span:roadm-a:roadm-b", "both fibres of the pair cut: LOS", {}),
    FaultKind.SPAN_LOSS: (
        "span:roadm-a:roadm-b",
        "extra loss on one span direction",
        {"extra_db": 6.0},
    ),
    FaultKind.AMPLIFIER_FAILURE: ("amp-a-b", "EDFA pumps off: no light downstream", {}),
    FaultKind.LASER_DEGRADATION: (
        "xp-a1:line1",
        "ageing laser: bias up, tx power down",
        {"drift": 0.6},
    ),
    FaultKind.OSNR_DEGRADATION: (
        "amp-a-b",
        "EDFA noise figure up: OSNR down",
        {"extra_nf_db": 8.0},
    ),
    FaultKind.CRC_ERRORS: ("pe1:eth1", "corrupted frames received (dirty optic)", {"rate": 0.002}),
    FaultKind.CONGESTION: ("pe1:eth1", "traffic surge out of the port", {"extra_gbps": 100.0}),
    FaultKind.CPU_RUNAWAY: (
        "pe1",
        f"a process ({DEFAULT_RUNAWAY_PROCESS}, or name it: pe1:bgpd) pins the CPU, leaks memory",
        {},
    ),
    FaultKind.BGP_SESSION_DOWN: ("bgp:pe1:10.0.0.10", "neighbour shut down in config", {}),
    FaultKind.CONFIG_DRIFT: ("pe1:eth1", "MTU changed: IGP adjacency drops", {"mtu": 1500.0}),
}
"""Per kind: an example target, what it does, and its parameters with defaults."""


@dataclass(slots=True)
class ActiveFault:
    """One injected fault. ``cleared_at`` is set when it is cleared (simulated time)."""

    id: int
    kind: FaultKind
    target: str
    params: dict[str, float]
    injected_at: float
    cleared_at: float | None = None
    _undo: Callable[[], None] | None = field(default=None, repr=False)
    _present: Callable[[], bool] | None = field(default=None, repr=False)

    @property
    def present(self) -> bool:
        """Whether its condition still holds (a config fault can be fixed by the platform)."""
        if self.cleared_at is not None:
            return False
        return self._present() if self._present is not None else True

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "target": self.target,
            "params": self.params,
            "injected_at": self.injected_at,
            "cleared_at": self.cleared_at,
            "present": self.present,
        }


def parse_params(items: list[str] | tuple[str, ...]) -> dict[str, float]:
    """``["extra_db=9", "period_s=30"]`` → ``{"extra_db": 9.0, "period_s": 30.0}``.

    Raises:
        LabError: an item is not ``key=number``.
    """
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not key or not math.isfinite(number):
            raise LabError(f"--param {item!r}: use key=number (e.g. extra_db=9)")
        out[key.strip()] = number
    return out


class FaultInjector:
    """Injects and clears faults on a :class:`LabNetwork`, keeping the ground truth."""

    def __init__(self, network: LabNetwork) -> None:
        self.network = network
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._faults: list[ActiveFault] = []

    def faults(self, include_cleared: bool = False) -> list[ActiveFault]:
        with self._lock:
            return [f for f in self._faults if include_cleared or f.cleared_at is None]

    def inject(
        self, kind: str, target: str, params: Mapping[str, float] | None = None
    ) -> ActiveFault:
        """Inject fault ``kind`` on ``target``.

        Raises:
            LabError: unknown kind, bad target or parameter; nothing changes then.
        """
        try:
            fk = FaultKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise LabError(f"unknown fault kind {kind!r} (known: {known})") from None
        defaults = FAULT_HELP[fk][2]
        given = dict(params or {})
        unknown = set(given) - set(defaults)
        if unknown:
            allowed = ", ".join(defaults) or "none"
            raise LabError(
                f"{fk.value} takes no parameter {sorted(unknown)[0]!r} (allowed: {allowed})"
            )
        p = {**defaults, **given}
        undo, present = self._apply(fk, target, p)
        with self._lock:
            fault = ActiveFault(
                id=next(self._ids),
                kind=fk,
                target=target,
                params=p,
                injected_at=self.network.now(),
                _undo=undo,
                _present=present,
            )
            self._faults.append(fault)
        return fault

    def clear(self, fault_id: int | None = None) -> list[ActiveFault]:
        """Clear one fault by id, or every active fault; returns those cleared.

        Raises:
            LabError: no active fault has that id.
        """
        with self._lock:
            chosen = [
                f
                for f in self._faults
                if f.cleared_at is None and (fault_id is None or f.id == fault_id)
            ]
            if fault_id is not None and not chosen:
                raise LabError(f"no active fault with id {fault_id}")
        for fault in reversed(chosen):
            if fault._undo is not None:
                fault._undo()
            fault.cleared_at = self.network.now()
        return chosen

    # Internals -------------------------------------------------------------

    def _apply(
        self, kind: FaultKind, target: str, p: dict[str, float]
    ) -> tuple[Callable[[], None], Callable[[], bool] | None]:
        net = self.network
        K = FaultKind
        if kind in (K.LINK_DOWN, K.INTERFACE_FLAP, K.CRC_ERRORS, K.CONGESTION, K.CONFIG_DRIFT):
            dev, ifname = _interface_target(target)
            state = net.interface(dev, ifname)  # validates the target
            if kind is K.LINK_DOWN:
                net.fail_interface(dev, ifname, True)
                return lambda: net.fail_interface(dev, ifname, False), None
            if kind is K.INTERFACE_FLAP:
                net.flap_interface(dev, ifname, _positive(p, "period_s"))
                return lambda: net.flap_interface(dev, ifname, 0.0), None
            if kind is K.CRC_ERRORS:
                net.set_crc_errors(dev, ifname, p["rate"])
                return lambda: net.set_crc_errors(dev, ifname, 0.0), None
            if kind is K.CONGESTION:
                net.set_extra_traffic(dev, ifname, _positive(p, "extra_gbps"))
                return lambda: net.set_extra_traffic(dev, ifname, 0.0), None
            original, drift = state.mtu, int(p["mtu"])
            if drift == original:
                raise LabError(f"{target} already has MTU {original}; pick another mtu=")
            net.set_mtu(dev, ifname, drift)

            def present() -> bool:
                return net.interface(dev, ifname).mtu == drift

            def undo() -> None:
                if present():
                    net.set_mtu(dev, ifname, original)

            return undo, present
        if kind is K.CPU_RUNAWAY:
            dev, _, process = target.partition(":")
            process = process or DEFAULT_RUNAWAY_PROCESS
            pid = net.process(dev, process).pid  # validates: a router running it
            net.set_cpu_runaway(dev, True, process=process)

            def cpu_present() -> bool:
                # Restarting the process (a new pid) ends the runaway: the platform fixed it.
                return net.process(dev, process).pid == pid and net.process_runaway(dev, process)

            def cpu_undo() -> None:
                if cpu_present():
                    net.set_cpu_runaway(dev, False, process=process)

            return cpu_undo, cpu_present
        if kind is K.BGP_SESSION_DOWN:
            parts = target.split(":")
            if len(parts) != 3 or parts[0] != "bgp":
                raise LabError(f"bgp_session_down targets 'bgp:DEVICE:NEIGHBOUR', not {target!r}")
            _, dev, addr = parts
            net.set_bgp_neighbor(dev, addr, False)

            def bgp_present() -> bool:
                return any(s.peer_address == addr and not s.enabled for s in net.bgp_sessions(dev))

            def bgp_undo() -> None:
                net.set_bgp_neighbor(dev, addr, True)

            return bgp_undo, bgp_present
        return self._optical(kind, target, p)

    def _optical(
        self, kind: FaultKind, target: str, p: dict[str, float]
    ) -> tuple[Callable[[], None], Callable[[], bool] | None]:
        net = self.network
        optical = net.optical
        if optical is None:
            raise LabError(f"{kind.value} needs an optical layer; this topology has none")
        K = FaultKind
        done: list[Any] = []

        def undo() -> None:
            for fault in done:
                optical.clear(fault)
            net.optical_changed()

        if kind in (K.FIBER_CUT, K.SPAN_LOSS):
            span = _span_target(target, optical.span_names)
            if kind is K.FIBER_CUT:
                a, b = span.split(":")[1:]
                done.append(optical.fiber_cut(span))
                done.append(optical.fiber_cut(span_name(b, a)))
            else:
                done.append(optical.span_loss(span, p["extra_db"]))
        elif kind in (K.AMPLIFIER_FAILURE, K.OSNR_DEGRADATION):
            amp = target
            if target.startswith("span:"):
                span = _span_target(target, optical.span_names)
                amp = optical.snapshot(noise=False).spans[span].amplifier
            if amp not in optical.amplifier_names:
                known = ", ".join(optical.amplifier_names)
                raise LabError(f"no amplifier {target!r} (known: {known})")
            if kind is K.AMPLIFIER_FAILURE:
                done.append(optical.amplifier_failure(amp))
            else:
                done.append(optical.osnr_degradation(amp, p["extra_nf_db"]))
        else:  # laser degradation
            port = target if ":" in target else f"{target}:line1"
            done.append(optical.laser_degradation(port, p["drift"]))
        net.optical_changed()
        return undo, None


def _interface_target(target: str) -> tuple[str, str]:
    dev, sep, ifname = target.partition(":")
    if not sep or not dev or not ifname or ":" in ifname:
        raise LabError(
            f"target {target!r} should name an interface as DEVICE:IFNAME (e.g. pe1:eth1)"
        )
    return dev, ifname


def _span_target(target: str, spans: tuple[str, ...]) -> str:
    if target not in spans:
        known = ", ".join(spans[:8])
        raise LabError(f"no span {target!r}: spans are named span:ROADM:ROADM (e.g. {known})")
    return target


def _positive(p: dict[str, float], key: str) -> float:
    if p[key] <= 0:
        raise LabError(f"{key} must be positive, got {p[key]}")
    return p[key]
