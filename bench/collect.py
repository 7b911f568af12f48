"""Benchmark: SNMP collectors side by side against N real net-snmp ``snmpd`` agents.

One run, one machine, the same agents for every client:

- agents: N ``snmpd`` listening ports on loopback (spread over a few ``snmpd``
  processes), each serving this host's real IF-MIB;
- workloads: (a) a GETBULK walk of ifTable and ifXTable, (b) a GET of a fixed
  set of 50 instance OIDs (sysUpTime, sysName and per-interface columns);
- clients: autonoc's ``collectors.snmp.SnmpClient`` (its public ``walk`` and
  ``get``, in a child process whose own CPU time is measured), net-snmp
  ``snmpbulkwalk``/``snmpget`` driven by ``xargs -P`` (CPU: the children's
  rusage), and Prometheus ``snmp_exporter`` scraped concurrently (CPU: its
  process, from ``/proc``).

It reports varbinds per second, varbinds per client CPU-second, success rates,
the ratios of autonoc to the other two, and the fleet one autonoc worker
polls within a 60 s cycle at 50 OIDs per device.

Usage::

    .venv/bin/python -m bench.collect [--sizes 50,200,1000] [--repeat 3] [--json]
        [--no-write] [--fleet-check]

The section between ``<!-- bench:collect -->`` and ``<!-- /bench:collect -->``
in docs/benchmarks.md is replaced (appended when absent) unless ``--no-write``.
Linux only (``/proc``, ``prctl``). Needs Debian's ``snmpd``, ``snmp`` and
``prometheus-snmp-exporter`` packages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import http.client
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.progress import Progress

from autonoc.core import procs
from bench.report import cpu_seconds, write_section

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
MARK_BEGIN = "<!-- bench:collect -->"
MARK_END = "<!-- /bench:collect -->"
COMMUNITY = "bench"
HOST = "127.0.0.1"
CYCLE_S = 60.0  # the polling cycle the fleet projection answers
GET_SIZE = 50

IF_TABLE = "1.3.6.1.2.1.2.2"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1"
WALK_ROOTS = (IF_TABLE, IF_X_TABLE)
_IF = IF_TABLE + ".1"
_IFX = IF_X_TABLE + ".1"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"

CLIENTS = ("autonoc", "net-snmp", "snmp_exporter")
WORKLOADS = ("walk", "get")


# ---------------------------------------------------------------------------
# The objects: IF-MIB columns and system scalars, with snmp_exporter's types


@dataclass(frozen=True, slots=True)
class MibObject:
    """One MIB object as snmp_exporter's generator would describe it."""

    name: str
    oid: str  # the column or scalar object, without an instance
    type: str  # snmp_exporter metric type: gauge, counter, DisplayString, PhysAddress48
    indexed: bool = True  # a table column (index ifIndex) rather than a scalar


def _column(table: str, number: int, name: str, kind: str) -> MibObject:
    return MibObject(name, f"{table}.{number}", kind)


IF_MIB_OBJECTS: tuple[MibObject, ...] = (
    _column(_IF, 1, "ifIndex", "gauge"),
    _column(_IF, 2, "ifDescr", "DisplayString"),
    _column(_IF, 3, "ifType", "gauge"),
    _column(_IF, 4, "ifMtu", "gauge"),
    _column(_IF, 5, "ifSpeed", "gauge"),
    _column(_IF, 6, "ifPhysAddress", "PhysAddress48"),
    _column(_IF, 7, "ifAdminStatus", "gauge"),
    _column(_IF, 8, "ifOperStatus", "gauge"),
    _column(_IF, 9, "ifLastChange", "gauge"),
    _column(_IF, 10, "ifInOctets", "counter"),
    _column(_IF, 11, "ifInUcastPkts", "counter"),
    _column(_IF, 12, "ifInNUcastPkts", "counter"),
    _column(_IF, 13, "ifInDiscards", "counter"),
    _column(_IF, 14, "ifInErrors", "counter"),
    _column(_IF, 15, "ifInUnknownProtos", "counter"),
    _column(_IF, 16, "ifOutOctets", "counter"),
    _column(_IF, 17, "ifOutUcastPkts", "counter"),
    _column(_IF, 18, "ifOutNUcastPkts", "counter"),
    _column(_IF, 19, "ifOutDiscards", "counter"),
    _column(_IF, 20, "ifOutErrors", "counter"),
    _column(_IF, 21, "ifOutQLen", "gauge"),
    # An OBJECT IDENTIFIER value: the exporter renders it as a string label.
    _column(_IF, 22, "ifSpecific", "DisplayString"),
    _column(_IFX, 1, "ifName", "DisplayString"),
    _column(_IFX, 2, "ifInMulticastPkts", "counter"),
    _column(_IFX, 3, "ifInBroadcastPkts", "counter"),
    _column(_IFX, 4, "ifOutMulticastPkts", "counter"),
    _column(_IFX, 5, "ifOutBroadcastPkts", "counter"),
    _column(_IFX, 6, "ifHCInOctets", "counter"),
    _column(_IFX, 7, "ifHCInUcastPkts", "counter"),
    _column(_IFX, 8, "ifHCInMulticastPkts", "counter"),
    _column(_IFX, 9, "ifHCInBroadcastPkts", "counter"),
    _column(_IFX, 10, "ifHCOutOctets", "counter"),
    _column(_IFX, 11, "ifHCOutUcastPkts", "counter"),
    _column(_IFX, 12, "ifHCOutMulticastPkts", "counter"),
    _column(_IFX, 13, "ifHCOutBroadcastPkts", "counter"),
    _column(_IFX, 14, "ifLinkUpDownTrapEnable", "gauge"),
    _column(_IFX, 15, "ifHighSpeed", "gauge"),
    _column(_IFX, 16, "ifPromiscuousMode", "gauge"),
    _column(_IFX, 17, "ifConnectorPresent", "gauge"),
    _column(_IFX, 18, "ifAlias", "DisplayString"),
    _column(_IFX, 19, "ifCounterDiscontinuityTime", "gauge"),
)
SYSTEM_OBJECTS: tuple[MibObject, ...] = (
    MibObject("sysDescr", "1.3.6.1.2.1.1.1", "DisplayString", indexed=False),
    MibObject("sysUpTime", "1.3.6.1.2.1.1.3", "gauge", indexed=False),
    MibObject("sysContact", "1.3.6.1.2.1.1.4", "DisplayString", indexed=False),
    MibObject("sysName", "1.3.6.1.2.1.1.5", "DisplayString", indexed=False),
    MibObject("sysLocation", "1.3.6.1.2.1.1.6", "DisplayString", indexed=False),
    MibObject("sysServices", "1.3.6.1.2.1.1.7", "gauge", indexed=False),
    MibObject("ifNumber", "1.3.6.1.2.1.2.1", "gauge", indexed=False),
)
_BY_NAME = {o.name: o for o in (*IF_MIB_OBJECTS, *SYSTEM_OBJECTS)}

# The per-interface columns of the GET set, most wanted first: what an
# interface poller reads (traffic, errors, status, speed, name), then more.
GET_COLUMNS = (
    "ifHCInOctets",
    "ifHCOutOctets",
    "ifInErrors",
    "ifOutErrors",
    "ifInDiscards",
    "ifOutDiscards",
    "ifOperStatus",
    "ifAdminStatus",
    "ifHCInUcastPkts",
    "ifHCOutUcastPkts",
    "ifHighSpeed",
    "ifName",
    "ifInUcastPkts",
    "ifOutUcastPkts",
    "ifHCInMulticastPkts",
    "ifHCOutMulticastPkts",
    "ifHCInBroadcastPkts",
    "ifHCOutBroadcastPkts",
    "ifLastChange",
    "ifSpeed",
    "ifMtu",
    "ifType",
    "ifDescr",
    "ifAlias",
)
PRIMARY_COLUMNS = 12  # traffic, errors, discards, status, unicast packets, speed, name
# Scalars that fill the set on a host with too few interfaces for 50 OIDs.
_FILL_SCALARS = ("sysDescr", "sysContact", "sysLocation", "sysServices", "ifNumber")


def get_oid_set(if_indexes: Sequence[int], size: int = GET_SIZE) -> tuple[str, ...]:
    """The targeted GET set: sysUpTime.0, sysName.0, then whole interfaces.

    Interface by interface, the first :data:`PRIMARY_COLUMNS` of
    :data:`GET_COLUMNS` (what an interface poller reads) until ``size`` OIDs;
    on a host with too few interfaces the other columns follow, then system
    scalars, and the set may stay smaller than ``size``.
    """
    primary, rest = GET_COLUMNS[:PRIMARY_COLUMNS], GET_COLUMNS[PRIMARY_COLUMNS:]
    oids = [SYS_UPTIME, SYS_NAME]
    oids += [f"{_BY_NAME[c].oid}.{i}" for i in if_indexes for c in primary]
    oids += [f"{_BY_NAME[c].oid}.{i}" for i in if_indexes for c in rest]
    oids += [f"{_BY_NAME[s].oid}.0" for s in _FILL_SCALARS]
    return tuple(oids[:size])


def exporter_config(
    *,
    community: str,
    walk_roots: Sequence[str],
    get_oids: Sequence[str],
    max_repetitions: int,
    timeout_s: float,
    retries: int,
) -> str:
    """An snmp_exporter 0.21 ``snmp.yml`` with two modules, as its generator would write it.

    ``if_walk`` walks ``walk_roots``; ``get50`` GETs ``get_oids``. Every object
    under a root and every GET OID has exactly one metric and no lookups, so
    one scraped sample is one varbind. (0.21 keeps ``auth`` inside each
    module; 0.23 and later moved it to a top-level ``auths`` section.)
    """

    def metric(obj: MibObject) -> dict[str, Any]:
        out: dict[str, Any] = {"name": obj.name, "oid": obj.oid, "type": obj.type}
        if obj.indexed:
            out["indexes"] = [{"labelname": "ifIndex", "type": "gauge"}]
        return out

    def module(objects: Sequence[MibObject], **what: list[str]) -> dict[str, Any]:
        return {
            **what,
            "metrics": [metric(o) for o in objects],
            "version": 2,
            "max_repetitions": max_repetitions,
            "retries": retries,
            "timeout": f"{timeout_s:g}s",
            "auth": {"community": community},
        }

    objects = (*SYSTEM_OBJECTS, *IF_MIB_OBJECTS)
    walked = [o for o in objects if any(_under(o.oid, r) for r in walk_roots)]
    got = [o for o in objects if any(_under(g, o.oid) for g in get_oids)]
    config = {
        "if_walk": module(walked, walk=list(walk_roots)),
        "get50": module(got, get=list(get_oids)),
    }
    header = "# Written by bench/collect.py in the format of snmp_exporter 0.21's generator.\n"
    return header + yaml.safe_dump(config, sort_keys=False)


def _under(oid: str, root: str) -> bool:
    return oid == root or oid.startswith(root + ".")


def count_exporter_samples(body: bytes) -> tuple[int, int | None]:
    """Samples in one snmp_exporter scrape that come from varbinds, and its own PDU count.

    Comment lines and the exporter's ``snmp_scrape_*`` self-metrics are not
    varbinds. Returns ``(samples, snmp_scrape_pdus_returned or None)``.
    """
    samples, pdus = 0, None
    for line in body.split(b"\n"):
        if not line or line.startswith(b"#"):
            continue
        if line.startswith(b"snmp_scrape_"):
            if line.startswith(b"snmp_scrape_pdus_returned"):
                pdus = int(float(line.rsplit(b" ", 1)[1]))
            continue
        samples += 1
    return samples, pdus


# ---------------------------------------------------------------------------
# Processes: every child dies with us, whatever happens


class BenchError(Exception):
    """Something the benchmark needs is missing or misbehaves; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Tools:
    snmpd: str
    snmpbulkwalk: str
    snmpget: str
    exporter: str
    xargs: str


def find_tools() -> Tools:
    """The external programs, or a :class:`BenchError` naming the package to install."""

    def need(names: Sequence[str], package: str) -> str:
        for name in names:
            path = shutil.which(name) or next(
                (f"{d}/{name}" for d in ("/usr/sbin", "/usr/bin") if Path(d, name).exists()),
                None,
            )
            if path:
                return path
        raise BenchError(f"{names[0]} not found: apt-get install {package}")

    return Tools(
        snmpd=need(["snmpd"], "snmpd"),
        snmpbulkwalk=need(["snmpbulkwalk"], "snmp"),
        snmpget=need(["snmpget"], "snmp"),
        exporter=need(["prometheus-snmp-exporter", "snmp_exporter"], "prometheus-snmp-exporter"),
        xargs=need(["xargs"], "findutils"),
    )


def _free_ports(count: int, kind: int = socket.SOCK_DGRAM) -> list[int]:
    """``count`` distinct ports the kernel considers free on loopback right now."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, kind)
            sock.bind((HOST, 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _answers(snmpget: str, port: int) -> bool:
    probe = subprocess.run(
        [snmpget, "-v2c", "-c", COMMUNITY, "-t", "0.5", "-r", "0", f"{HOST}:{port}", SYS_UPTIME],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


# SNMPv2c GetRequest for sysUpTime.0, community "bench", request-id 1: the readiness probe.
_PROBE = bytes.fromhex(
    "3025020101" + "0405" + COMMUNITY.encode().hex() + "a019020101020100020100"
    "300e300c06082b060102010103000500"
)


def unanswered(ports: Sequence[int], tries: int = 3, wait_s: float = 1.0) -> list[int]:
    """The ports among ``ports`` that do not answer an SNMP GET (one socket, all at once)."""
    silent = set(ports)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        for _ in range(tries):
            for port in sorted(silent):
                sock.sendto(_PROBE, (HOST, port))
            deadline = time.monotonic() + wait_s
            while silent and (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    _, (_, port) = sock.recvfrom(4096)
                except TimeoutError:
                    break
                silent.discard(port)
            if not silent:
                break
    return sorted(silent)


@dataclass
class SnmpdFarm:
    """``ports`` snmpd listening ports spread round-robin over ``processes`` snmpd processes."""

    tools: Tools
    devices: int
    processes: int
    ports: list[int] = field(default_factory=list)
    _procs: list[subprocess.Popen[Any]] = field(default_factory=list)

    @contextlib.contextmanager
    def running(self) -> Iterator[SnmpdFarm]:
        with tempfile.TemporaryDirectory(prefix="bench-collect-snmpd-") as tmp:
            try:
                for attempt in range(3):
                    if self._start(Path(tmp)):
                        break
                    self.stop()
                    if attempt == 2:
                        raise BenchError(
                            "snmpd did not start on the chosen loopback ports three times "
                            "(ports taken by another program, or too many open files: "
                            "raise ulimit -n)"
                        )
                yield self
            finally:
                self.stop()

    def _start(self, tmp: Path) -> bool:
        self.ports = _free_ports(self.devices)
        for k in range(self.processes):
            mine = self.ports[k :: self.processes]
            if not mine:
                continue
            # No system config (-C -c conf) and state only in a private directory
            # that goes away with the run (snmpd writes its snmpd.conf there at exit).
            state = tmp / f"state-{k}"
            state.mkdir(exist_ok=True)
            env = {**os.environ, "SNMP_PERSISTENT_DIR": str(state), "MIBS": ""}
            conf = tmp / f"snmpd-{k}.conf"
            conf.write_text(f"rocommunity {COMMUNITY} {HOST}\n")
            # Addresses on the command line: snmpd truncates an agentaddress
            # setting at 2,560 characters (128 udp:127.0.0.1:PORT entries).
            cmd = [self.tools.snmpd, "-f", "-Lf", "/dev/null", "-C", "-c", str(conf)]
            cmd += [f"udp:{HOST}:{p}" for p in mine]
            self._procs.append(
                procs.spawn(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        deadline = time.monotonic() + 20
        for k, process in enumerate(self._procs):
            while not _answers(self.tools.snmpget, self.ports[k]):
                if process.poll() is not None or time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
        silent = unanswered(self.ports)
        if silent:
            raise BenchError(
                f"{len(silent)} of {len(self.ports)} snmpd ports do not answer "
                f"(e.g. {HOST}:{silent[0]}); try fewer ports per process (--agent-processes)"
            )
        return True

    def stop(self) -> None:
        for process in self._procs:
            procs.stop(process, timeout=10)
        self._procs.clear()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]


@contextlib.contextmanager
def snmp_exporter(tools: Tools, config: str) -> Iterator[tuple[subprocess.Popen[Any], int]]:
    """Run snmp_exporter with ``config`` on a free loopback TCP port; (process, port)."""
    with tempfile.TemporaryDirectory(prefix="bench-collect-exporter-") as tmp:
        path = Path(tmp) / "snmp.yml"
        path.write_text(config)
        check = subprocess.run(
            [tools.exporter, f"--config.file={path}", "--dry-run"],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise BenchError(f"snmp_exporter refused the generated config: {check.stderr.strip()}")
        port = _free_ports(1, socket.SOCK_STREAM)[0]
        process = procs.spawn(
            [
                tools.exporter,
                f"--config.file={path}",
                f"--web.listen-address={HOST}:{port}",
                "--log.level=error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                if process.poll() is not None:
                    raise BenchError(f"snmp_exporter exited with status {process.returncode}")
                with contextlib.suppress(OSError):
                    socket.create_connection((HOST, port), timeout=0.5).close()
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"snmp_exporter did not listen on {HOST}:{port} in 15 s")
                time.sleep(0.1)
            yield process, port
        finally:
            procs.stop(process, timeout=10)


# ---------------------------------------------------------------------------
# Figures


@dataclass
class Round:
    """One pass of one client over the devices."""

    devices: int
    ok: int
    varbinds: int
    wall_s: float
    cpu_s: float
    agent_cpu_s: float = 0.0  # all snmpd processes together, same interval


@dataclass
class Figures:
    """One client, one workload, one fleet size: its rounds and what they add up to."""

    client: str
    workload: str
    devices: int
    rounds: list[Round]
    notes: dict[str, Any] = field(default_factory=dict)

    def total(self, attr: str) -> float:
        return float(sum(getattr(r, attr) for r in self.rounds))

    @property
    def varbinds_per_s(self) -> float:
        return self.total("varbinds") / max(self.total("wall_s"), 1e-9)

    @property
    def varbinds_per_cpu_s(self) -> float:
        return self.total("varbinds") / max(self.total("cpu_s"), 1e-9)

    @property
    def success(self) -> float:
        return self.total("ok") / max(self.total("devices"), 1)

    def summary(self) -> dict[str, Any]:
        per_round = [r.varbinds for r in self.rounds]
        return {
            "client": self.client,
            "workload": self.workload,
            "devices": self.devices,
            "rounds": len(self.rounds),
            "varbinds_per_round": round(statistics.median(per_round)),
            "success": round(self.success, 4),
            "wall_s": round(self.total("wall_s"), 3),
            "cpu_s": round(self.total("cpu_s"), 3),
            "varbinds_per_s": round(self.varbinds_per_s),
            "varbinds_per_cpu_s": round(self.varbinds_per_cpu_s),
            "cpu_ms_per_device": round(1000 * self.total("cpu_s") / self.total("devices"), 3),
            "agent_cpu_s": round(self.total("agent_cpu_s"), 3),
            "notes": self.notes,
        }


def agents_cpu(pids: Sequence[int]) -> float:
    """CPU seconds the agent processes have used so far."""
    return sum(cpu_seconds(pid) for pid in pids)


def rcvbuf_errors() -> int:
    """UDP RcvbufErrors of this network namespace, from /proc/net/snmp."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()]
    header, values = (ln for ln in lines if ln[0] == "Udp:")
    return int(values[header.index("RcvbufErrors")])


# ---------------------------------------------------------------------------
# Client 1: autonoc's SnmpClient, in a child process (python -m bench.collect --child)


@dataclass
class AutonocJob:
    """What the child polls; sent as JSON on its stdin."""

    ports: list[int]
    workload: str
    oids: list[str]
    rounds: int
    warmup: bool
    settings: dict[str, Any]
    device_timeout_s: float
    agent_pids: list[int]


def _child_main() -> int:
    """Poll as the job on stdin says; one JSON line per round, then the result line."""
    from pydantic import SecretStr

    from autonoc.core.errors import ConfigError, DeviceError
    from autonoc.core.inventory import Device, Mgmt, Role, SnmpV2c
    from autonoc.core.logging import configure_logging
    from autonoc.core.settings import SnmpSettings
    from collectors.snmp import SnmpClient

    configure_logging("WARNING")
    job = AutonocJob(**json.loads(sys.stdin.read()))
    creds = SnmpV2c(community=SecretStr(COMMUNITY))
    devices = [
        Device(name=f"d{i}", role=Role.ROUTER, mgmt=Mgmt(host=HOST, snmp_port=port), snmp=creds)
        for i, port in enumerate(job.ports)
    ]
    settings = SnmpSettings(**job.settings)
    errors: dict[str, int] = {}

    async def main() -> dict[str, Any]:
        client = SnmpClient(settings)
        semaphore = asyncio.Semaphore(settings.concurrency)

        async def one(device: Device) -> int | None:
            async with semaphore:
                try:
                    if job.workload == "walk":
                        coro = client.walk(device, list(WALK_ROOTS))
                    else:
                        coro = client.get(device, job.oids)
                    values = await asyncio.wait_for(coro, job.device_timeout_s)
                except (DeviceError, ConfigError, TimeoutError) as exc:
                    kind = type(exc).__name__
                    errors[kind] = errors.get(kind, 0) + 1
                    return None
                return sum(1 for v in values.values() if v is not None)

        async def cycle(batch: Sequence[Device]) -> Round:
            agents0 = agents_cpu(job.agent_pids)
            cpu0, t0 = _self_cpu(), time.perf_counter()
            counts = await asyncio.gather(*(one(d) for d in batch))
            wall, cpu = time.perf_counter() - t0, _self_cpu() - cpu0
            agents = agents_cpu(job.agent_pids) - agents0
            done = [c for c in counts if c is not None]
            return Round(len(batch), len(done), sum(done), wall, cpu, agents)

        try:
            if job.warmup:  # targets, engine and caches, once per distinct agent
                await cycle(list({d.mgmt.snmp_port: d for d in devices}.values()))
                errors.clear()
            drops0, stats0 = rcvbuf_errors(), _client_stats(client)
            rounds = []
            for i in range(job.rounds):
                rounds.append(await cycle(devices))
                _emit({"round": i + 1})
            drops, stats1 = rcvbuf_errors() - drops0, _client_stats(client)
        finally:
            client.close()
        stats = None
        if stats0 is not None and stats1 is not None:  # counters over the measured rounds
            stats = {
                k: v if k in _GAUGES else v - stats0.get(k, 0)
                for k, v in stats1.items()
                if isinstance(v, int | float)
            }
        return {
            "rounds": [dataclasses.asdict(r) for r in rounds],
            "errors": errors,
            "udp_rcvbuf_errors": drops,
            "client_stats": stats,
        }

    _emit({"result": asyncio.run(main())})
    return 0


_GAUGES = {"in_flight", "rcvbuf"}  # wire statistics that are levels, not counters


def _client_stats(client: object) -> dict[str, Any] | None:
    """The client's wire statistics as a dict, if it offers them (``stats()`` or ``stats``)."""
    stats = getattr(client, "stats", None)
    if callable(stats):
        stats = stats()
    if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        return dataclasses.asdict(stats)
    if isinstance(stats, Mapping):
        return dict(stats)
    return None


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(obj: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run_autonoc(job: AutonocJob, advance: Callable[[], None]) -> Figures:
    """Run ``job`` in a fresh child process; its CPU is measured inside, around the rounds."""
    process = procs.spawn(
        [sys.executable, "-m", "bench.collect", "--child"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(dataclasses.asdict(job)).encode())
        process.stdin.close()
        result: dict[str, Any] | None = None
        for line in process.stdout:
            message = json.loads(line)
            if "round" in message:
                advance()
            else:
                result = message["result"]
        if process.wait() != 0 or result is None:
            raise BenchError(f"the autonoc child failed (exit status {process.returncode})")
    finally:
        procs.stop(process, timeout=10)
    notes = {"udp_rcvbuf_errors": result["udp_rcvbuf_errors"]}
    if result["errors"]:
        notes["errors"] = result["errors"]
    if result["client_stats"] is not None:
        notes["client_stats"] = result["client_stats"]
    rounds = [Round(**r) for r in result["rounds"]]
    return Figures("autonoc", job.workload, len(job.ports), rounds, notes)


# ---------------------------------------------------------------------------
# Client 2: net-snmp's command-line tools under xargs -P


def run_netsnmp(
    tools: Tools,
    ports: Sequence[int],
    workload: str,
    oids: Sequence[str],
    *,
    rounds: int,
    concurrency: int,
    timeout_s: float,
    retries: int,
    max_repetitions: int,
    agent_pids: Sequence[int],
    advance: Callable[[], None],
) -> Figures:
    """``snmpbulkwalk`` per device and table (or one ``snmpget`` of the set) via ``xargs -P``.

    Varbinds are the newlines on stdout (``-Oq -On``: one line per varbind;
    the processes' output interleaves in pipe-sized chunks, but the number of
    newlines stays exact). A failed walk or get prints one ``Timeout`` or
    ``Error`` line on stderr. CPU is this process's RUSAGE_CHILDREN delta:
    xargs and every tool process it reaped.
    """
    common = ["-v2c", "-c", COMMUNITY, "-On", "-Oq", "-t", f"{timeout_s:g}", "-r", str(retries)]
    if workload == "walk":
        cmd = [tools.xargs, "-P", str(concurrency), "-L", "1", tools.snmpbulkwalk, *common]
        cmd.append(f"-Cr{max_repetitions}")
        lines = [f"{HOST}:{p} {root}" for p in ports for root in WALK_ROOTS]
    else:
        cmd = [tools.xargs, "-P", str(concurrency), "-L", "1", tools.snmpget, *common]
        lines = [f"{HOST}:{p} {' '.join(oids)}" for p in ports]
    jobs_per_device = len(lines) // len(ports)
    stdin = "\n".join(lines) + "\n"
    out: list[Round] = []
    for _ in range(rounds):
        agents0 = agents_cpu(agent_pids)
        cpu0, t0 = _children_cpu(), time.perf_counter()
        xargs = procs.spawn(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            stdout, stderr = xargs.communicate(stdin.encode())
        finally:
            procs.stop(xargs)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        agents = agents_cpu(agent_pids) - agents0
        failed_jobs = sum(
            1
            for ln in stderr.decode(errors="replace").splitlines()
            if ln.startswith(("Timeout", "Error"))
        )
        if xargs.returncode not in (0, 123) and not failed_jobs:
            raise BenchError(f"xargs failed ({xargs.returncode}): {stderr[-300:]!r}")
        failed_devices = min(len(ports), -(-failed_jobs // jobs_per_device))
        ok = len(ports) - failed_devices
        out.append(Round(len(ports), ok, stdout.count(b"\n"), wall, cpu, agents))
        advance()
    return Figures("net-snmp", workload, len(ports), out)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------
# Client 3: snmp_exporter, scraped concurrently


def run_exporter(
    exporter_pid: int,
    exporter_port: int,
    ports: Sequence[int],
    workload: str,
    *,
    rounds: int,
    concurrency: int,
    agent_pids: Sequence[int],
    advance: Callable[[], None],
) -> Figures:
    """One ``/snmp?target=…&module=…`` scrape per device, ``concurrency`` at once.

    CPU is the exporter process's own (``/proc``); the scraping threads here
    are not counted, as Prometheus's would not be.
    """
    module = "if_walk" if workload == "walk" else "get50"
    local = threading.local()
    mismatches: list[tuple[int, int | None]] = []

    def scrape(port: int) -> int | None:
        path = f"/snmp?target={HOST}:{port}&module={module}"
        for attempt in range(2):  # one reconnect if a kept-alive connection was closed
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(HOST, exporter_port, timeout=60)
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                local.conn = None
                if attempt:
                    return None
                continue
            if response.status != 200:
                return None
            samples, pdus = count_exporter_samples(body)
            if pdus is not None and pdus != samples:
                mismatches.append((samples, pdus))
            return samples
        return None

    out: list[Round] = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in range(rounds):
            agents0 = agents_cpu(agent_pids)
            cpu0, t0 = cpu_seconds(exporter_pid), time.perf_counter()
            counts = list(pool.map(scrape, ports))
            wall, cpu = time.perf_counter() - t0, cpu_seconds(exporter_pid) - cpu0
            agents = agents_cpu(agent_pids) - agents0
            done = [c for c in counts if c is not None]
            out.append(Round(len(ports), len(done), sum(done), wall, cpu, agents))
            advance()
    notes: dict[str, Any] = {}
    if mismatches:
        notes["samples_vs_pdus_returned"] = mismatches[:3]
    return Figures("snmp_exporter", workload, len(ports), out, notes)


# ---------------------------------------------------------------------------
# The run


@dataclass(frozen=True, slots=True)
class Options:
    sizes: tuple[int, ...]
    repeat: int
    concurrency: int
    timeout_s: float
    retries: int
    max_repetitions: int
    agent_processes: int
    fleet_check: bool
    quiet: bool
    interfaces: int = 0  # veth interfaces made in a private network namespace; 0: the host's


def discover(tools: Tools, port: int) -> tuple[list[int], dict[str, int], tuple[str, ...]]:
    """ifIndexes, varbinds per walked table, and the GET set (only OIDs the agent serves)."""

    def walk(root: str) -> list[str]:
        done = subprocess.run(
            [tools.snmpbulkwalk, "-v2c", "-c", COMMUNITY, "-On", "-Oq", f"{HOST}:{port}", root],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.splitlines()

    indexes = [int(line.split()[1]) for line in walk(f"{_IF}.1")]
    per_table = {root: len(walk(root)) for root in WALK_ROOTS}
    candidates = get_oid_set(indexes, size=GET_SIZE + 20)
    done = subprocess.run(
        [tools.snmpget, "-v2c", "-c", COMMUNITY, "-On", "-Oq", f"{HOST}:{port}", *candidates],
        capture_output=True,
        text=True,
        check=True,
    )
    served = {
        line.split()[0].lstrip(".")
        for line in done.stdout.splitlines()
        if "No Such" not in line and line.startswith(".")
    }
    oids = tuple(o for o in candidates if o in served)[:GET_SIZE]
    return indexes, per_table, oids


def run(options: Options) -> dict[str, Any]:
    """Start the agents and the exporter, measure every client at every size; JSON-ready."""
    from autonoc.core.settings import SnmpSettings

    tools = find_tools()
    settings = SnmpSettings(
        timeout=options.timeout_s,
        retries=options.retries,
        concurrency=options.concurrency,
        max_repetitions=options.max_repetitions,
    )
    device_timeout = 10 * options.timeout_s * (options.retries + 1)
    farm = SnmpdFarm(tools, max(options.sizes), options.agent_processes)
    figures: list[Figures] = []
    fleet: dict[str, Any] = {}
    with farm.running():
        indexes, per_table, oids = discover(tools, farm.ports[0])
        config = exporter_config(
            community=COMMUNITY,
            walk_roots=WALK_ROOTS,
            get_oids=oids,
            max_repetitions=options.max_repetitions,
            timeout_s=options.timeout_s,
            retries=options.retries,
        )
        with (
            snmp_exporter(tools, config) as (exporter, exporter_port),
            Progress(transient=True, disable=options.quiet) as progress,
        ):
            for n in options.sizes:
                ports = farm.ports[:n]
                for workload in WORKLOADS:
                    for client in CLIENTS:
                        task = progress.add_task(f"N={n} {workload} {client}", total=options.repeat)

                        def advance(task: Any = task) -> None:
                            progress.advance(task)

                        if client == "autonoc":
                            job = AutonocJob(
                                list(ports),
                                workload,
                                list(oids),
                                options.repeat,
                                True,
                                settings.model_dump(),
                                device_timeout,
                                farm.pids,
                            )
                            figures.append(run_autonoc(job, advance))
                        elif client == "net-snmp":
                            figures.append(
                                run_netsnmp(
                                    tools,
                                    ports,
                                    workload,
                                    oids,
                                    rounds=options.repeat,
                                    concurrency=options.concurrency,
                                    timeout_s=options.timeout_s,
                                    retries=options.retries,
                                    max_repetitions=options.max_repetitions,
                                    agent_pids=farm.pids,
                                    advance=advance,
                                )
                            )
                        else:
                            figures.append(
                                run_exporter(
                                    exporter.pid,
                                    exporter_port,
                                    ports,
                                    workload,
                                    rounds=options.repeat,
                                    concurrency=options.concurrency,
                                    agent_pids=farm.pids,
                                    advance=advance,
                                )
                            )
                        progress.remove_task(task)
            fleet = fleet_projection(figures, max(options.sizes))
            if options.fleet_check:
                size = int(fleet["devices"])
                task = progress.add_task(f"fleet check: {size} devices, one cycle", total=1)
                job = AutonocJob(
                    [farm.ports[i % len(farm.ports)] for i in range(size)],
                    "get",
                    list(oids),
                    1,
                    True,
                    settings.model_dump(),
                    device_timeout,
                    farm.pids,
                )
                checked = run_autonoc(job, lambda: progress.advance(task))
                fleet["check"] = {
                    "devices": size,
                    "agents": len(farm.ports),
                    "wall_s": round(checked.total("wall_s"), 2),
                    "cpu_s": round(checked.total("cpu_s"), 2),
                    "success": round(checked.success, 4),
                    "within_cycle": checked.total("wall_s") <= CYCLE_S,
                    "devices_per_cycle": int(size * CYCLE_S / checked.total("wall_s")),
                }
    return {
        "machine": machine(tools),
        "options": {
            **dataclasses.asdict(options),
            "sizes": list(options.sizes),
        },
        "agents": {
            "snmpd_processes": min(options.agent_processes, max(options.sizes)),
            "namespace_interfaces": options.interfaces,
            "ports": max(options.sizes),
            "if_indexes": indexes,
            "varbinds_per_walk": sum(per_table.values()),
            "varbinds_per_table": per_table,
            "get_oids": len(oids),
        },
        "results": [f.summary() for f in figures],
        "ratios": ratios(figures),
        "fleet": fleet,
    }


def ratios(figures: Sequence[Figures]) -> list[dict[str, Any]]:
    """autonoc ÷ snmp_exporter and autonoc ÷ net-snmp, per size and workload."""
    by_key = {(f.devices, f.workload, f.client): f for f in figures}
    out = []
    for (n, workload, client), mine in by_key.items():
        if client != "autonoc":
            continue
        row: dict[str, Any] = {"devices": n, "workload": workload}
        for peer in ("snmp_exporter", "net-snmp"):
            other = by_key.get((n, workload, peer))
            if other is None:
                continue
            row[f"per_cpu_vs_{peer}"] = round(
                mine.varbinds_per_cpu_s / max(other.varbinds_per_cpu_s, 1e-9), 2
            )
            row[f"per_s_vs_{peer}"] = round(
                mine.varbinds_per_s / max(other.varbinds_per_s, 1e-9), 2
            )
        out.append(row)
    return out


def fleet_projection(figures: Sequence[Figures], size: int) -> dict[str, Any]:
    """The fleet one autonoc process polls in one cycle at the GET set, from the biggest run.

    CPU-bound: one core busy for the whole cycle over the measured CPU per
    device; wall-bound: the measured devices per second here times the cycle
    (on this box the agents share the cores). The projection is the smaller.
    """
    get = next(f for f in figures if (f.client, f.workload, f.devices) == ("autonoc", "get", size))
    cpu_per_device = get.total("cpu_s") / get.total("devices")
    devices_per_s = get.total("devices") / get.total("wall_s")
    by_cpu = int(CYCLE_S / max(cpu_per_device, 1e-9))
    by_wall = int(CYCLE_S * devices_per_s)
    return {
        "cycle_s": CYCLE_S,
        "from_devices": size,
        "cpu_ms_per_device": round(1000 * cpu_per_device, 3),
        "devices_per_s": round(devices_per_s, 1),
        "cpu_bound_devices": by_cpu,
        "wall_bound_devices": by_wall,
        "devices": min(by_cpu, by_wall),
    }


def machine(tools: Tools) -> dict[str, str]:
    """What the figures were measured on."""

    def version(cmd: Sequence[str]) -> str:
        done = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
        found = re.search(r"version:?\s+(\S+)", done.stdout + done.stderr)
        return found.group(1) if found else "?"

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pysnmp": importlib.metadata.version("pysnmp"),
        "net-snmp": version([tools.snmpget, "--version"]),
        "snmp_exporter": version([tools.exporter, "--version"]),
    }


# ---------------------------------------------------------------------------
# The report


_WIRE_KEYS = ("requests", "retries", "timeouts", "malformed", "unmatched", "wrong_source")
_CLIENT_LABEL = {
    ("autonoc", "walk"): "autonoc `SnmpClient.walk`",
    ("autonoc", "get"): "autonoc `SnmpClient.get`",
    ("net-snmp", "walk"): "net-snmp `snmpbulkwalk` × xargs -P",
    ("net-snmp", "get"): "net-snmp `snmpget` × xargs -P",
    ("snmp_exporter", "walk"): "snmp_exporter",
    ("snmp_exporter", "get"): "snmp_exporter",
}


def markdown(result: dict[str, Any], command: str) -> str:
    """The report section, markers included."""
    m, o, a, f = result["machine"], result["options"], result["agents"], result["fleet"]
    if a["namespace_interfaces"]:
        served = (
            "the IF-MIB of a private network namespace made for the run (unprivileged "
            f"user namespace: `lo` and {a['namespace_interfaces']} veth interfaces `eth1…`)"
        )
    else:
        served = "this host's real IF-MIB"
    rows = "\n".join(
        f"| {r['devices']} | {r['workload']} | {_CLIENT_LABEL[(r['client'], r['workload'])]} "
        f"| {r['varbinds_per_round']:,} | {100 * r['success']:.1f}% | {r['wall_s']} "
        f"| {r['cpu_s']} | {r['varbinds_per_s']:,} | **{r['varbinds_per_cpu_s']:,}** "
        f"| {r['cpu_ms_per_device']} | {r['agent_cpu_s']} |"
        for r in result["results"]
    )
    ratio_rows = "\n".join(
        f"| {r['devices']} | {r['workload']} | **{r.get('per_cpu_vs_snmp_exporter', '–')}×** "
        f"| {r.get('per_cpu_vs_net-snmp', '–')}× | {r.get('per_s_vs_snmp_exporter', '–')}× "
        f"| {r.get('per_s_vs_net-snmp', '–')}× |"
        for r in result["ratios"]
    )
    mine = [r for r in result["results"] if r["client"] == "autonoc"]
    keys = [k for k in _WIRE_KEYS if any(k in r["notes"].get("client_stats", {}) for r in mine)]
    wire_rows = "\n".join(
        f"| {r['devices']} | {r['workload']} | "
        + " | ".join(str(r["notes"].get("client_stats", {}).get(k, "–")) for k in keys)
        + f" | {r['notes'].get('udp_rcvbuf_errors', 0)} | "
        + (", ".join(f"{k} {v}" for k, v in r["notes"].get("errors", {}).items()) or "none")
        + " |"
        for r in mine
    )
    wire_table = (
        f"| N | workload | {' | '.join(keys)} | UDP RcvbufErrors | failures |\n"
        f"|---|---|{'---|' * len(keys)}---|---|\n{wire_rows}"
    )
    check = f.get("check")
    check_line = (
        f"Checked directly: one cycle of **{check['devices']:,} devices** (round-robin over the "
        f"{check['agents']:,} agents) took {check['wall_s']} s wall and {check['cpu_s']} s CPU, "
        f"success {100 * check['success']:.1f}% "
        f"({'within' if check['within_cycle'] else 'NOT within'} the {f['cycle_s']:g} s cycle): "
        f"at that rate one worker polls **{check['devices_per_cycle']:,} devices** per cycle."
        if check
        else "Not checked directly in this run (`--fleet-check` runs one such cycle)."
    )
    return f"""{MARK_BEGIN}
## SNMP collectors side by side: autonoc, net-snmp, snmp_exporter

Command: `{command}`
Machine: {m["cpu"]}, {m["cores"]} cores, Linux {m["kernel"]}; Python {m["python"]},
pysnmp {m["pysnmp"]}, net-snmp {m["net-snmp"]}, snmp_exporter {m["snmp_exporter"]}.

Agents: {a["ports"]:,} net-snmp `snmpd` UDP ports on {HOST}, round-robin over
{a["snmpd_processes"]} `snmpd` processes (private config, `-C -c`, no persistent
state), each serving {served}: {len(a["if_indexes"])} interfaces, so
**{a["varbinds_per_walk"]} varbinds per ifTable+ifXTable walk**
({", ".join(f"{k}: {v}" for k, v in a["varbinds_per_table"].items())}). The GET
set is {a["get_oids"]} instance OIDs (sysUpTime.0, sysName.0, then interface by
interface ifHCIn/OutOctets, ifIn/OutErrors, ifIn/OutDiscards, ifOper/AdminStatus,
ifHCIn/OutUcastPkts, ifHighSpeed, ifName: {PRIMARY_COLUMNS} columns of the first
interfaces), in one request per device. N is the
number of agents polled; each of {o["repeat"]} rounds polls every one of them once.
"agents' CPU s" is what all snmpd processes used meanwhile (they must not be the bottleneck).
All clients: v2c, {o["concurrency"]} devices in flight, timeout {o["timeout_s"]:g} s,
{o["retries"]} retry, max-repetitions {o["max_repetitions"]}; the agents share the
same cores.

| N | workload | client | varbinds per round | success | wall s | client CPU s \
| varbinds/s | varbinds per CPU-s | CPU ms per device | agents' CPU s |
|---|---|---|---|---|---|---|---|---|---|---|
{rows}

Ratios, autonoc ÷ peer (above 1: autonoc better):

| N | workload | per CPU-s vs snmp_exporter | per CPU-s vs net-snmp \
| per s vs snmp_exporter | per s vs net-snmp |
|---|---|---|---|---|---|
{ratio_rows}

How each is measured:
- autonoc: `collectors.snmp.SnmpClient` (`walk(device, [ifTable, ifXTable])`,
  `get(device, oids)`) over inventory `Device` objects, an asyncio semaphore
  of {o["concurrency"]}, in a child process whose CPU is its own `getrusage` around
  the measured rounds (after one warm-up pass; imports not counted). Varbinds =
  values returned.
- net-snmp: `xargs -P {o["concurrency"]} -L 1 snmpbulkwalk -Cr{o["max_repetitions"]} -On -Oq`
  (one process per device and table: it walks one root) or `snmpget` of the set
  (one process per device); CPU = the `RUSAGE_CHILDREN` delta (xargs and the
  tools, process start included: that is how it runs); varbinds = output lines.
- snmp_exporter: one `/snmp?target=…&module=…` scrape per device, {o["concurrency"]}
  at once from a thread pool here; CPU = the exporter process's own (`/proc`),
  the scraping client not counted. Module written by the benchmark in the
  generator's format (`walk` of the two tables, `get` of the set, one metric
  per column without lookups), so one sample is one varbind; checked against
  the exporter's own `snmp_scrape_pdus_returned` on every scrape.

**One worker, {f["cycle_s"]:g} s cycle, {a["get_oids"]} OIDs per device** (projection from
N={f["from_devices"]}): {f["cpu_ms_per_device"]} ms of CPU per device → {f["cpu_bound_devices"]:,}
devices with one core saturated; {f["devices_per_s"]} devices/s measured here →
{f["wall_bound_devices"]:,} devices per cycle; so about **{f["devices"]:,} devices** per
worker process on this machine (keep headroom; more workers shard the fleet).
{check_line}

autonoc's wire over the measured rounds (`SnmpClient.stats()` where it has it; UDP
RcvbufErrors from `/proc/net/snmp` of the namespace the run is in, all sockets):

{wire_table}
{MARK_END}
"""


def _unshare(interfaces: int) -> int:
    """Run this command again inside a new user and network namespace; never returns on success.

    No root needed where unprivileged user namespaces are allowed (most Linux
    distributions); the agents, the exporter and every client then share that
    namespace's loopback.
    """
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or "/usr/sbin/ip"
    if unshare is None or not Path(ip).exists():
        raise BenchError("--interfaces needs unshare (util-linux) and ip (iproute2)")
    ns = [unshare, "--user", "--map-root-user", "--net"]
    probe = subprocess.run([*ns, "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise BenchError(
            f"cannot make a user and network namespace ({probe.stderr.strip()}): "
            "run without --interfaces to measure against this host's own interfaces"
        )
    os.chdir(REPO)
    args = [a for a in sys.argv[1:] if a != "--in-netns"]
    os.execv(unshare, [*ns, "--", sys.executable, "-m", "bench.collect", *args, "--in-netns"])
    return 1  # not reached


def _make_interfaces(interfaces: int) -> None:
    """Inside the namespace: loopback up, and ``interfaces`` veth interfaces eth1… (in pairs)."""
    ip = shutil.which("ip") or "/usr/sbin/ip"
    pairs = (interfaces + 1) // 2
    batch = ["link set lo up"]
    batch += [f"link add eth{2 * i + 1} type veth peer name eth{2 * i + 2}" for i in range(pairs)]
    batch += [f"link set eth{n} up" for n in range(1, 2 * pairs + 1)]
    done = subprocess.run(
        [ip, "-batch", "-"], input="\n".join(batch) + "\n", capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BenchError(f"could not make the namespace's interfaces: {done.stderr.strip()}")


def _parse_sizes(text: str) -> tuple[int, ...]:
    sizes = tuple(int(s) for s in text.split(",") if s.strip())
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes: comma-separated positive integers, e.g. 50,200")
    return sizes


def main() -> int:
    from autonoc.core.settings import SnmpSettings

    defaults = SnmpSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=_parse_sizes, default=(50, 200, 1000), help="agent counts, e.g. 50,200"
    )
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds per client")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=defaults.concurrency,
        help="devices in flight, every client",
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per attempt")
    parser.add_argument("--retries", type=int, default=defaults.retries)
    parser.add_argument("--max-repetitions", type=int, default=defaults.max_repetitions)
    parser.add_argument(
        "--agent-processes",
        type=int,
        default=min(16, max(2, 2 * (os.cpu_count() or 1))),
        help="snmpd processes the agents' ports are spread over",
    )
    parser.add_argument(
        "--fleet-check", action="store_true", help="also poll the projected fleet for one cycle"
    )
    parser.add_argument(
        "--interfaces",
        type=int,
        default=24,
        help="the agents serve lo and this many veth interfaces (rounded up to even) from a "
        "private user+network namespace (no root needed); 0: this host's own interfaces",
    )
    parser.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child_main()
    if not sys.platform.startswith("linux"):
        parser.error("this benchmark reads /proc and uses prctl: Linux only")
    # SIGTERM unwinds like Ctrl-C, so every agent and the exporter are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if args.interfaces > 0 and not args.in_netns:
            return _unshare(args.interfaces)
        if args.in_netns:
            _make_interfaces(args.interfaces)
    except BenchError as exc:
        print(f"bench.collect: {exc}", file=sys.stderr)
        return 2
    options = Options(
        sizes=args.sizes,
        repeat=args.repeat,
        concurrency=args.concurrency,
        timeout_s=args.timeout,
        retries=args.retries,
        max_repetitions=args.max_repetitions,
        agent_processes=args.agent_processes,
        fleet_check=args.fleet_check,
        quiet=args.json,
        interfaces=args.interfaces if args.in_netns else 0,
    )
    try:
        result = run(options)
    except BenchError as exc:
        print(f"bench.collect: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "bench.collect: interrupted; the agents and the exporter are stopped", file=sys.stderr
        )
        return 130
    args_text = " ".join(a for a in sys.argv[1:] if a != "--in-netns")
    command = f"python -m bench.collect {args_text}".strip()
    section = markdown(result, command)
    print(json.dumps(result, indent=2) if args.json else section)
    if not args.no_write:
        write_section(DOC, section, MARK_BEGIN, MARK_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
