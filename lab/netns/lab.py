"""Routers as Linux network namespaces running FRR and net-snmp.

Usage::

    with NetnsLab(DEFAULT_TOPOLOGY, home) as lab:      # torn down on exit, even on error
        lab.write_inventory(path)
        lab.vtysh("r1", "show ip ospf neighbor")

Each router is a namespace ``an-<lab>-<router>`` with:

- ``lo`` (its loopback address), ``eth1``... (one end of a veth pair per link,
  a /30 each), ``mgmt0`` (a veth to the host, ``100.127.K.4i+2/30``; the host
  end has ``.4i+1``), IPv4 forwarding on;
- ``snmpd`` bound to the management address: IF-MIB from the kernel's own
  interfaces, ``ifAdminStatus`` writable with the rw community, and an AgentX
  master that ``bgpd``'s SNMP module serves BGP4-MIB through;
- FRR ``zebra``, ``ospfd`` (every link in area 0, hello 1 s, dead 4 s) and
  ``bgpd`` (eBGP per link, one AS per router, 1/3 s timers), started with the
  pathspace ``-N <namespace>`` so their vty sockets are in
  ``/var/run/frr/<namespace>`` and ``vtysh --vty_socket`` reaches them;
- a UDP sender per traffic demand that starts there.

The collectors on the host poll each router's snmpd over its management
veth, exactly as they would poll a router on a management network. Every
resource is recorded in the registry before it is made (:mod:`lab.netns.registry`);
``stop()``, ``autonoc lab down --backend netns`` and the context manager undo it.
Needs root, ``ip`` (iproute2), ``frr`` + ``frr-snmp`` and ``snmpd``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from pydantic import SecretStr

from autonoc.core.errors import LabError
from autonoc.core.inventory import Device, Endpoint, Inventory, Link, LinkKind, Mgmt, Role, SnmpV2c
from collectors.inventory import dump_inventory
from lab.netns.registry import Registry, ip, registry_path, teardown
from lab.netns.topology import NetnsTopology

__all__ = ["FRR_DAEMONS", "FRR_LIB", "NetnsLab", "missing_prerequisites", "running_lab"]

log = structlog.get_logger(__name__)

FRR_LIB = Path("/usr/lib/frr")
FRR_RUN = Path("/var/run/frr")
FRR_DAEMONS = ("zebra", "ospfd", "bgpd")
SNMP_MODULE = Path("/usr/lib/x86_64-linux-gnu/frr/modules/bgpd_snmp.so")
TRAFFIC = Path(__file__).with_name("traffic.py")


def missing_prerequisites() -> list[str]:
    """What this host lacks to run the namespace lab (empty: it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces need CAP_NET_ADMIN)")
    for tool in ("ip", "snmpd", "vtysh"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            missing.append(tool)
    for daemon in FRR_DAEMONS:
        if not (FRR_LIB / daemon).exists():
            missing.append(f"{FRR_LIB / daemon} (apt-get install frr)")
    if not any(Path("/usr/lib").glob("*/frr/modules/bgpd_snmp.so")):
        missing.append("bgpd_snmp.so (apt-get install frr-snmp)")
    return missing


def _snmpd() -> str:
    return shutil.which("snmpd") or "/usr/sbin/snmpd"


class NetnsLab:
    """A namespace lab: start it, reach it, tear it down.

    Args:
        topology: routers, links and demands.
        home: ``AUTONOC_HOME``; the registry lives under ``home/lab/netns``.
        community, write_community: snmpd's v2c communities (random when None).
        ready_timeout: seconds for OSPF, BGP and snmpd to come up.
    """

    def __init__(
        self,
        topology: NetnsTopology,
        home: Path,
        *,
        community: str | None = None,
        write_community: str | None = None,
        ready_timeout: float = 90.0,
    ) -> None:
        self.topology = topology
        self.home = Path(home)
        self.community = community or secrets.token_hex(8)
        self.write_community = write_community or secrets.token_hex(8)
        self.ready_timeout = ready_timeout
        self.lab_id = secrets.token_hex(2)
        self.registry: Registry | None = None
        self._mgmt_net = 0

    # ---- names -------------------------------------------------------------------

    def namespace(self, router: str) -> str:
        return f"an-{self.lab_id}-{router}"

    def run_dir(self, router: str) -> Path:
        return FRR_RUN / self.namespace(router)

    def mgmt_address(self, router: str) -> str:
        return f"100.127.{self._mgmt_net}.{4 * (self.topology.index(router) - 1) + 2}"

    def _host_mgmt(self, router: str) -> str:
        return f"100.127.{self._mgmt_net}.{4 * (self.topology.index(router) - 1) + 1}"

    # ---- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> NetnsLab:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Create every namespace, link and daemon; wait for OSPF, BGP and snmpd.

        Raises:
            LabError: a prerequisite is missing, a lab is already recorded for
                this home, or the network did not come up; whatever was
                created has been torn down.
        """
        missing = missing_prerequisites()
        if missing:
            raise LabError("the namespace lab cannot run here: missing " + ", ".join(missing))
        self._mgmt_net = _free_mgmt_net()
        self.registry = Registry.create(
            registry_path(self.home),
            {
                "lab": self.lab_id,
                "topology": self.topology.model_dump(mode="json"),
                "mgmt_net": self._mgmt_net,
                "community": self.community,
                "write_community": self.write_community,
            },
        )
        try:
            self._build()
            self._wait_ready()
            self._start_traffic()
        except BaseException:
            self.stop()
            raise
        log.info("netns_lab_up", lab=self.lab_id, routers=len(self.topology.routers))

    def stop(self) -> None:
        """Tear down everything the registry records (idempotent)."""
        if self.registry is None:
            return
        left = teardown(self.registry)
        self.registry = None
        if left:
            raise LabError("namespace lab teardown left: " + "; ".join(left))

    # ---- building -----------------------------------------------------------------

    def _build(self) -> None:
        reg = self.registry
        assert reg is not None
        topo = self.topology
        for r in topo.routers:
            ns = self.namespace(r.name)
            reg.record("netns", name=ns, router=r.name)
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", f"{topo.loopback(r.name)}/32", "dev", "lo")
            _sysctl(ns, "net.ipv4.ip_forward", "1")
        for i, link in enumerate(topo.links):
            a_name, b_name = f"an{self.lab_id}x{i}a", f"an{self.lab_id}x{i}b"
            reg.record("link", name=a_name)
            reg.record("link", name=b_name)
            ip("link", "add", a_name, "type", "veth", "peer", "name", b_name)
            for router, tmp in ((link.a, a_name), (link.b, b_name)):
                port = next(p for p in topo.ports(router) if p.link == i)
                ns = self.namespace(router)
                ip("link", "set", tmp, "netns", ns, "name", port.ifname)
                ip("-n", ns, "addr", "add", f"{port.address}/30", "dev", port.ifname)
                ip("-n", ns, "link", "set", port.ifname, "up")
        for r in topo.routers:
            host_end, tmp = f"an{self.lab_id}m{topo.index(r.name)}", f"an{self.lab_id}n"
            ns = self.namespace(r.name)
            reg.record("link", name=host_end)
            reg.record("link", name=tmp)
            ip("link", "add", host_end, "type", "veth", "peer", "name", tmp)
            ip("link", "set", tmp, "netns", ns, "name", "mgmt0")
            ip("addr", "add", f"{self._host_mgmt(r.name)}/30", "dev", host_end)
            ip("link", "set", host_end, "up")
            ip("-n", ns, "addr", "add", f"{self.mgmt_address(r.name)}/30", "dev", "mgmt0")
            ip("-n", ns, "link", "set", "mgmt0", "up")
        for r in topo.routers:
            self._start_router(r.name)

    def _start_router(self, router: str) -> None:
        reg = self.registry
        assert reg is not None
        ns, run = self.namespace(router), self.run_dir(router)
        reg.record("dir", path=str(run))
        run.mkdir(parents=True, exist_ok=True)
        (run / "snmp").mkdir(exist_ok=True)
        (run / "persist").mkdir(exist_ok=True)
        for name, text in self._configs(router).items():
            (run / name).write_text(text, encoding="utf-8")
        shutil.chown(run, "frr", "frr")
        for p in run.rglob("*"):
            shutil.chown(p, "frr", "frr")
        os.chmod(run, 0o750)
        os.chmod(run / "snmpd.conf", 0o600)  # communities: root only
        self._spawn(
            router,
            "snmpd",
            [_snmpd(), "-f", "-C", "-c", str(run / "snmpd.conf"), "-Lf", str(run / "snmpd.log"),
             "-p", str(run / "snmpd.pid"), f"udp:{self.mgmt_address(router)}:161"],
            env={"SNMP_PERSISTENT_DIR": str(run / "persist")},
        )  # fmt: skip
        _wait_for(lambda: (run / "agentx").exists(), 15, f"{router}: snmpd's AgentX socket")
        for daemon in FRR_DAEMONS:
            argv = [str(FRR_LIB / daemon), "-N", ns, "-f", str(run / f"{daemon}.conf"),
                    "-i", str(run / f"{daemon}.pid"),
                    "--log", f"file:{run / daemon}.log"]  # fmt: skip
            if daemon == "bgpd":
                argv += ["-M", "snmp"]
            self._spawn(router, daemon, argv, env={"SNMPCONFPATH": str(run / "snmp")})
            if daemon == "zebra":
                _wait_for(lambda: (run / "zserv.api").exists(), 15, f"{router}: zebra")
        reg.data.setdefault("argv", {})[router] = {}
        reg.save()

    def _spawn(self, router: str, name: str, argv: list[str], env: dict[str, str]) -> None:
        reg = self.registry
        assert reg is not None
        ns = self.namespace(router)
        run = self.run_dir(router)
        with open(run / f"{name}.out", "ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives `autonoc lab up`
                env={**os.environ, **env},
            )
        reg.record(
            "proc", pid=proc.pid, router=router, name=name, argv0=argv[0], argv=argv, env=env
        )

    def _configs(self, router: str) -> dict[str, str]:
        topo = self.topology
        run = self.run_dir(router)
        ports = topo.ports(router)
        rid = topo.loopback(router)
        zebra = [f"hostname {router}", "!"]
        for p in ports:
            zebra += [f"interface {p.ifname}", f" description link {p.link} to {p.peer}", "exit"]
        ospf = [f"hostname {router}", "!", "interface lo", " ip ospf area 0", "exit"]
        for p in ports:
            ospf += [f"interface {p.ifname}", " ip ospf area 0", " ip ospf network point-to-point",
                     " ip ospf hello-interval 1", " ip ospf dead-interval 4",
                     f" ip ospf cost {p.cost}", "exit"]  # fmt: skip
        ospf += ["router ospf", f" ospf router-id {rid}", "exit"]
        bgp = [f"hostname {router}", "agentx", f"router bgp {topo.asn(router)}",
               f" bgp router-id {rid}", " no bgp ebgp-requires-policy"]  # fmt: skip
        for p in ports:
            if p.bgp:
                bgp += [f" neighbor {p.peer_address} remote-as {topo.asn(p.peer)}",
                        f" neighbor {p.peer_address} timers 1 3",
                        f" neighbor {p.peer_address} timers connect 1"]  # fmt: skip
        # OSPF carries the traffic (so a cost change moves it): BGP's routes rank below it.
        bgp += [" address-family ipv4 unicast", f"  network {rid}/32",
                "  distance bgp 150 200 200", " exit-address-family", "exit"]  # fmt: skip
        snmpd = [
            f"rocommunity {self.community} default",
            f"rwcommunity {self.write_community} default",
            f"sysName {router}",
            f"sysLocation autonoc namespace lab {self.lab_id}",
            "master agentx",
            f"agentXSocket {run / 'agentx'}",
            "agentXPerms 0770 0755 frr frr",
        ]
        return {
            "zebra.conf": "\n".join(zebra) + "\n",
            "ospfd.conf": "\n".join(ospf) + "\n",
            "bgpd.conf": "\n".join(bgp) + "\n",
            "snmpd.conf": "\n".join(snmpd) + "\n",
            "snmp/frr.conf": f"agentXSocket {run / 'agentx'}\n",
            "vtysh.conf": "",
        }

    def _wait_ready(self) -> None:
        topo = self.topology
        deadline = time.monotonic() + self.ready_timeout
        for r in topo.routers:
            ports = topo.ports(r.name)
            bgp = sum(1 for p in ports if p.bgp)
            while True:
                ospf_full, bgp_up = self._adjacencies(r.name)
                if ospf_full >= len(ports) and bgp_up >= bgp and self._snmpd_bound(r.name):
                    break
                if time.monotonic() > deadline:
                    raise LabError(
                        f"{r.name} did not come up within {self.ready_timeout:g} s: OSPF "
                        f"{ospf_full}/{len(ports)} full, BGP {bgp_up}/{bgp} established; "
                        f"logs in {self.run_dir(r.name)}"
                    )
                time.sleep(0.5)

    def _adjacencies(self, router: str) -> tuple[int, int]:
        try:
            ospf = self.vtysh(router, "show ip ospf neighbor json")
            bgp = json.loads(self.vtysh(router, "show bgp summary json") or "{}")
        except (LabError, ValueError):
            return 0, 0
        peers = bgp.get("ipv4Unicast", {}).get("peers", {})
        up = sum(1 for p in peers.values() if p.get("state") == "Established")
        return ospf.count('"Full'), up

    def _snmpd_bound(self, router: str) -> bool:
        port = f"{_hex_ip(self.mgmt_address(router))}:00A1"
        out = ip("netns", "exec", self.namespace(router), "cat", "/proc/net/udp", check=False)
        return port in out.stdout.upper()

    def _start_traffic(self) -> None:
        for d in self.topology.demands:
            argv = [sys.executable, str(TRAFFIC), self.topology.loopback(d.dst),
                    f"{d.rate_kbps:g}", str(d.size)]  # fmt: skip
            self._spawn(d.src, f"traffic-{d.dst}", argv, env={})

    # ---- reaching the routers ---------------------------------------------------------

    def vtysh(self, router: str, *commands: str) -> str:
        """Run vtysh commands on ``router``; LabError when vtysh fails."""
        run = str(self.run_dir(router))
        argv = ["vtysh", "--vty_socket", run, "--config_dir", run]
        for c in commands:
            argv += ["-c", c]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        if proc.returncode != 0:
            raise LabError(f"{router}: vtysh {commands}: {(proc.stdout + proc.stderr).strip()}")
        return proc.stdout

    def netns_exec(self, router: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return ip("netns", "exec", self.namespace(router), *argv)

    @property
    def inventory(self) -> Inventory:
        """Every router, reached over its management veth, platform ``frr-netns``."""
        topo = self.topology
        snmp = SnmpV2c(
            community=SecretStr(self.community), write_community=SecretStr(self.write_community)
        )
        devices = tuple(
            Device(
                name=r.name,
                role=Role.ROUTER,
                vendor="frr",
                platform="frr-netns",
                site=topo.name,
                mgmt=Mgmt(host=self.mgmt_address(r.name), snmp_port=161),
                snmp=snmp,
                tags=(f"netns:{self.namespace(r.name)}", "frr"),
            )
            for r in topo.routers
        )
        links = []
        for i, link in enumerate(topo.links):
            a = next(p for p in topo.ports(link.a) if p.link == i)
            b = next(p for p in topo.ports(link.b) if p.link == i)
            links.append(
                Link(
                    kind=LinkKind.IP,
                    a=Endpoint(device=link.a, port=a.ifname),
                    b=Endpoint(device=link.b, port=b.ifname),
                )
            )
        return Inventory(devices=devices, links=tuple(links))

    def write_inventory(self, path: Path) -> None:
        """Write :attr:`inventory` (communities in clear, mode 0600) and note it in the registry."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        dump_inventory(self.inventory, path, reveal_secrets=True)
        if self.registry is not None:
            self.registry.data["inventory"] = str(path)
            self.registry.record("file", path=str(path))


def running_lab(home: Path) -> Registry | None:
    """The registry of the namespace lab recorded for ``home``, if any."""
    return Registry.load(registry_path(home))


def _sysctl(ns: str, key: str, value: str) -> None:
    ip("netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}")


def _hex_ip(address: str) -> str:
    """An IPv4 address as /proc/net/udp writes it (little-endian hex)."""
    return "".join(f"{int(x):02X}" for x in reversed(address.split(".")))


def _free_mgmt_net() -> int:
    """A ``100.127.K.0/24`` no host interface uses (several labs may share a host)."""
    used = ip("-4", "-o", "addr", "show").stdout
    for k in range(256):
        if f" 100.127.{k}." not in used:
            return k
    raise LabError("no free 100.127.K.0/24 management subnet on this host")


def _wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabError(f"{what} did not come up within {timeout:g} s")
        time.sleep(0.1)


def _install_stop_signals() -> dict[int, Any]:
    """SIGTERM raises KeyboardInterrupt, so ``lab up`` tears down what it built."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    return {signal.SIGTERM: signal.signal(signal.SIGTERM, on_term)}
