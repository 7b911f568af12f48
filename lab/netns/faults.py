"""Faults in the namespace lab, made through the kernel and the routing daemons.

Stateless apart from the registry (:mod:`lab.netns.registry`), so any process
on the host (``autonoc lab fault inject ... `` from another shell, a test)
can inject, list and clear them. Targets: ``r1:eth1`` (an interface),
``r1`` (a router), ``bgp:r1:10.0.0.2`` (r1's session to that neighbour).

========================  ===========================================================
kind                      how
========================  ===========================================================
interface_admin_down      ``ip link set eth1 down`` on the target (admin down)
link_down                 the *far* end set down: the target loses carrier (oper down)
packet_loss               ``tc qdisc netem loss P%``; an nftables ``numgen`` drop rule
                          where the kernel has no sch_netem
delay, corruption         ``tc qdisc netem delay`` / ``corrupt`` (needs sch_netem)
bgp_session_down          ``vtysh: router bgp ASN / neighbor X shutdown``
bgpd_stop                 bgpd killed on the target router (cleared: started again)
ospf_cost                 ``vtysh: interface eth1 / ip ospf cost N`` (pulls traffic away)
mtu                       ``ip link set eth1 mtu N``
========================  ===========================================================

Clearing puts back what was there before (the previous cost, MTU); a config
fault the platform already fixed (``present`` false) clears without touching it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autonoc.core.errors import LabError
from lab.netns.registry import Registry, ip, registry_path
from lab.netns.topology import NetnsTopology

__all__ = ["NETNS_FAULTS", "NetnsFaults", "netem_available"]

#: kind -> (example target, what, default params)
NETNS_FAULTS: dict[str, tuple[str, str, dict[str, float]]] = {
    "interface_admin_down": ("r1:eth1", "ip link set down on the interface", {}),
    "link_down": ("r1:eth1", "far end set down: carrier lost, admin still up", {}),
    "packet_loss": ("r1:eth1", "egress loss (netem, else nftables)", {"percent": 20.0}),
    "delay": ("r1:eth1", "egress delay (netem)", {"ms": 50.0}),
    "corruption": ("r1:eth1", "egress corruption (netem)", {"percent": 5.0}),
    "bgp_session_down": ("bgp:r1:10.0.0.2", "neighbor shutdown in bgpd", {}),
    "bgpd_stop": ("r2", "bgpd killed", {}),
    "ospf_cost": ("r1:eth1", "OSPF cost raised: traffic moves away", {"cost": 1000.0}),
    "mtu": ("r1:eth1", "interface MTU changed", {"mtu": 1000.0}),
}

_NFT_TABLE = "autonoc_faults"


def netem_available(namespace: str) -> bool:
    """True when the kernel has sch_netem (probed on the namespace's loopback)."""
    probe = ip("-n", namespace, "link", "add", "annetemprobe", "type", "dummy", check=False)
    if probe.returncode != 0:
        return False
    try:
        tc = subprocess.run(
            ["ip", "netns", "exec", namespace, "tc", "qdisc", "add", "dev", "annetemprobe",
             "root", "netem", "delay", "1ms"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        return tc.returncode == 0
    finally:
        ip("-n", namespace, "link", "del", "annetemprobe", check=False)


class NetnsFaults:
    """Inject, list and clear faults in the namespace lab recorded for ``home``."""

    def __init__(self, home: Path) -> None:
        reg = Registry.load(registry_path(home))
        if reg is None:
            raise LabError(
                "no namespace lab is running; start one with `autonoc lab up --backend netns`"
            )
        self.registry = reg
        self.topology = NetnsTopology.model_validate(reg.data["topology"])

    # ---- names ----------------------------------------------------------------------

    def namespace(self, router: str) -> str:
        return f"an-{self.registry.data['lab']}-{router}"

    def run_dir(self, router: str) -> Path:
        return Path("/var/run/frr") / self.namespace(router)

    def vtysh(self, router: str, *commands: str) -> str:
        run = str(self.run_dir(router))
        argv = ["vtysh", "--vty_socket", run, "--config_dir", run]
        for c in commands:
            argv += ["-c", c]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        if proc.returncode != 0:
            raise LabError(f"{router}: vtysh: {(proc.stdout + proc.stderr).strip()}")
        return proc.stdout

    def _interface(self, target: str) -> tuple[str, str]:
        router, _, ifname = target.partition(":")
        try:
            self.topology.port(router, ifname)
        except (KeyError, ValueError):
            raise LabError(
                f"{target!r} is not a lab interface (ROUTER:ethN, e.g. r1:eth1)"
            ) from None
        return router, ifname

    # ---- inject / clear ---------------------------------------------------------------

    def inject(
        self, kind: str, target: str, params: Mapping[str, float] | None = None
    ) -> dict[str, Any]:
        """Make fault ``kind`` on ``target``; returns its record (with an ``id``).

        Raises:
            LabError: unknown kind or target, a parameter it does not take, or
                the kernel/daemon refused (netem missing, say).
        """
        if kind not in NETNS_FAULTS:
            raise LabError(f"unknown fault kind {kind!r}; known: {', '.join(NETNS_FAULTS)}")
        defaults = NETNS_FAULTS[kind][2]
        given = dict(params or {})
        unknown = set(given) - set(defaults)
        if unknown:
            raise LabError(
                f"{kind} takes {sorted(defaults) or 'no parameters'}, not {sorted(unknown)}"
            )
        p = {**defaults, **given}
        undo: dict[str, Any] = {}
        if kind in ("interface_admin_down", "link_down", "packet_loss", "delay", "corruption",
                    "ospf_cost", "mtu"):  # fmt: skip
            router, ifname = self._interface(target)
            ns = self.namespace(router)
            if kind == "interface_admin_down":
                ip("-n", ns, "link", "set", ifname, "down")
            elif kind == "link_down":
                far, far_port = self.topology.peer_port(self.topology.port(router, ifname))
                undo = {"router": far, "ifname": far_port.ifname}
                ip("-n", self.namespace(far), "link", "set", far_port.ifname, "down")
            elif kind == "packet_loss":
                undo = self._loss(ns, ifname, p["percent"])
            elif kind in ("delay", "corruption"):
                if not netem_available(ns):
                    raise LabError(
                        f"{kind} needs the kernel's sch_netem (CONFIG_NET_SCH_NETEM), which this "
                        "kernel lacks; packet_loss works without it (nftables)"
                    )
                how = (
                    ["delay", f"{p['ms']:g}ms"]
                    if kind == "delay"
                    else ["corrupt", f"{p['percent']:g}%"]
                )
                self._tc(ns, "qdisc", "replace", "dev", ifname, "root", "netem", *how)
                undo = {"qdisc": True}
            elif kind == "ospf_cost":
                before = self._ospf_cost(router, ifname)
                cost = int(p["cost"])
                if not 1 <= cost <= 65535:
                    raise LabError(f"OSPF cost {cost} is outside 1..65535")
                self.vtysh(router, "configure terminal", f"interface {ifname}",
                           f"ip ospf cost {cost}", "end")  # fmt: skip
                undo = {"cost": before, "set": cost}
            else:
                mtu = int(p["mtu"])
                before_mtu = _mtu(ns, ifname)
                ip("-n", ns, "link", "set", ifname, "mtu", str(mtu))
                undo = {"mtu": before_mtu}
        elif kind == "bgp_session_down":
            router, neighbor = self._bgp_target(target)
            asn = self.topology.asn(router)
            self.vtysh(router, "configure terminal", f"router bgp {asn}",
                       f"neighbor {neighbor} shutdown", "end")  # fmt: skip
        else:  # bgpd_stop
            router = target
            if router not in {r.name for r in self.topology.routers}:
                raise LabError(f"{target!r} is not a lab router")
            pid = self._daemon_pid(router, "bgpd")
            os.kill(pid, signal.SIGKILL)
        faults = self.registry.data["faults"]
        fault = {
            "id": max((f["id"] for f in faults), default=0) + 1,
            "kind": kind,
            "target": target,
            "params": p,
            "undo": undo,
            "since": time.time(),
        }
        faults.append(fault)
        self.registry.save()
        return self._public(fault)

    def active(self) -> list[dict[str, Any]]:
        """Active faults, each with ``present``: whether it still holds on the routers."""
        return [self._public(f) for f in self.registry.data["faults"]]

    def clear(self, fault_id: int | None = None) -> list[dict[str, Any]]:
        """Clear one fault by id, or all; returns those cleared.

        Raises:
            LabError: no active fault has that id.
        """
        faults = self.registry.data["faults"]
        chosen = [f for f in faults if fault_id is None or f["id"] == fault_id]
        if fault_id is not None and not chosen:
            raise LabError(f"no active fault with id {fault_id}")
        cleared = []
        for fault in reversed(chosen):
            self._undo(fault)
            faults.remove(fault)
            self.registry.save()
            cleared.append(self._public(fault))
        return cleared

    # ---- helpers --------------------------------------------------------------------

    def _public(self, fault: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in fault.items() if k != "undo"}
        out["present"] = self._present(fault)
        return out

    def _present(self, fault: dict[str, Any]) -> bool:
        kind, target = fault["kind"], fault["target"]
        try:
            if kind == "interface_admin_down":
                router, ifname = self._interface(target)
                return not _is_up(self.namespace(router), ifname)
            if kind == "bgp_session_down":
                router, neighbor = self._bgp_target(target)
                running = self.vtysh(router, "show running-config")
                return f"neighbor {neighbor} shutdown" in running
            if kind == "ospf_cost":
                router, ifname = self._interface(target)
                return self._ospf_cost(router, ifname) == str(fault["undo"]["set"])
        except LabError:
            return True
        return True

    def _undo(self, fault: dict[str, Any]) -> None:
        kind, target, undo = fault["kind"], fault["target"], fault["undo"]
        if kind == "bgp_session_down":
            router, neighbor = self._bgp_target(target)
            self.vtysh(router, "configure terminal", f"router bgp {self.topology.asn(router)}",
                       f"no neighbor {neighbor} shutdown", "end")  # fmt: skip
            return
        if kind == "bgpd_stop":
            self._restart_daemon(target, "bgpd")
            return
        if kind == "link_down":
            ip("-n", self.namespace(undo["router"]), "link", "set", undo["ifname"], "up")
            return
        router, ifname = self._interface(target)
        ns = self.namespace(router)
        if kind == "interface_admin_down":
            ip("-n", ns, "link", "set", ifname, "up")
        elif kind == "packet_loss" and undo.get("nft"):
            _nft(ns, "delete", "rule", "inet", _NFT_TABLE, "out", "handle", str(undo["handle"]))
        elif kind in ("packet_loss", "delay", "corruption"):
            self._tc(ns, "qdisc", "del", "dev", ifname, "root", check=False)
        elif kind == "ospf_cost":
            if not self._present(fault):
                return  # fixed already (undrain-link): leave the fix alone
            line = "no ip ospf cost" if undo["cost"] is None else f"ip ospf cost {undo['cost']}"
            self.vtysh(router, "configure terminal", f"interface {ifname}", line, "end")
        elif kind == "mtu":
            ip("-n", ns, "link", "set", ifname, "mtu", str(undo["mtu"]))

    def _loss(self, ns: str, ifname: str, percent: float) -> dict[str, Any]:
        if not 0 < percent <= 100:
            raise LabError(f"packet_loss percent must be in (0, 100], not {percent:g}")
        if netem_available(ns):
            self._tc(
                ns, "qdisc", "replace", "dev", ifname, "root", "netem", "loss", f"{percent:g}%"
            )
            return {"qdisc": True}
        # No sch_netem: drop a random share of the packets leaving the interface.
        _nft(ns, "add", "table", "inet", _NFT_TABLE)
        _nft(ns, "add", "chain", "inet", _NFT_TABLE, "out",
             "{ type filter hook postrouting priority 0; }")  # fmt: skip
        per_mille = max(1, round(percent * 10))
        out = _nft(ns, "--echo", "--handle", "add", "rule", "inet", _NFT_TABLE, "out", "oifname",
                   ifname, "numgen", "random", "mod", "1000", "<", str(per_mille), "counter",
                   "drop")  # fmt: skip
        m = re.search(r"# handle (\d+)", out)
        if m is None:
            raise LabError(f"nft added the loss rule but gave no handle: {out!r}")
        return {"nft": True, "handle": int(m.group(1))}

    def _tc(self, ns: str, *args: str, check: bool = True) -> None:
        proc = subprocess.run(["ip", "netns", "exec", ns, "tc", *args], capture_output=True,
                              text=True, timeout=10, check=False)  # fmt: skip
        if check and proc.returncode != 0:
            raise LabError(f"tc {' '.join(args)}: {proc.stderr.strip()}")

    def _bgp_target(self, target: str) -> tuple[str, str]:
        parts = target.split(":")
        if len(parts) != 3 or parts[0] != "bgp":
            raise LabError(
                f"{target!r} is not a BGP session (bgp:ROUTER:NEIGHBOR, e.g. bgp:r1:10.0.0.2)"
            )
        router, neighbor = parts[1], parts[2]
        ports = (
            self.topology.ports(router) if router in {r.name for r in self.topology.routers} else []
        )
        if not any(p.peer_address == neighbor and p.bgp for p in ports):
            raise LabError(f"{router} has no BGP neighbour {neighbor}")
        return router, neighbor

    def _ospf_cost(self, router: str, ifname: str) -> str | None:
        running = self.vtysh(router, "show running-config")
        m = re.search(rf"^interface {re.escape(ifname)}\n((?: .*\n)*?)exit", running, re.M)
        if m is None:
            return None
        c = re.search(r"ip ospf cost (\d+)", m.group(1))
        return c.group(1) if c else None

    def _daemon_pid(self, router: str, daemon: str) -> int:
        try:
            return int((self.run_dir(router) / f"{daemon}.pid").read_text().strip())
        except (OSError, ValueError):
            raise LabError(f"{router}: {daemon} is not running (no pid file)") from None

    def _restart_daemon(self, router: str, daemon: str) -> None:
        procs = [r for r in self.registry.resources("proc")
                 if r["router"] == router and r["name"] == daemon]  # fmt: skip
        if not procs:
            raise LabError(f"{router}: the registry has no {daemon} to restart")
        rec = procs[-1]
        (self.run_dir(router) / f"{daemon}.pid").unlink(missing_ok=True)
        with open(self.run_dir(router) / f"{daemon}.out", "ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace(router), *rec["argv"]],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, **rec["env"]},
            )  # fmt: skip
        fields = {k: v for k, v in rec.items() if k != "kind"}
        self.registry.record("proc", **{**fields, "pid": proc.pid})


def _nft(ns: str, *args: str) -> str:
    try:
        proc = subprocess.run(["ip", "netns", "exec", ns, "nft", *args], capture_output=True,
                              text=True, timeout=10, check=False)  # fmt: skip
    except FileNotFoundError:
        raise LabError("nft is missing (apt-get install nftables)") from None
    if proc.returncode != 0:
        raise LabError(f"nft {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _is_up(ns: str, ifname: str) -> bool:
    out = ip("-n", ns, "-o", "link", "show", "dev", ifname).stdout
    flags = out.split("<", 1)[1].split(">", 1)[0].split(",") if "<" in out else []
    return "UP" in flags


def _mtu(ns: str, ifname: str) -> int:
    m = re.search(r"\bmtu (\d+)", ip("-n", ns, "-o", "link", "show", "dev", ifname).stdout)
    return int(m.group(1)) if m else 1500
