"""Benchmark: SNMP agent cost, varbinds served per agent CPU-second, three agents side by side.

Each agent runs in its own process, so its CPU time (user + system, from
``/proc/PID/stat``) is all agent work. The same client drives all three in
the same run: net-snmp ``snmpbulkwalk -v2c -Cr50`` of IF-MIB ifTable and
ifXTable, many walks in parallel from a thread pool, over loopback:

- ``lab.snmp`` (fast): :class:`lab.snmp.SnmpAgentServer` serving ``--devices``
  devices, each a :class:`lab.snmp.StaticMib` of 40 interfaces (25 IF-MIB
  columns: 1,000 varbinds per device);
- ``lab.agent`` (pysnmp): the pysnmp-based :class:`lab.agent.LabAgent` over
  the ``ring4-wide`` preset (two PEs of 40 interfaces, two Ps of 3);
- ``snmpd``: net-snmp's agent on a high loopback port, serving this host's
  real interfaces (so few varbinds per walk; only varbinds actually returned count).

Usage::

    .venv/bin/python bench/snmp_agent.py [--devices 200] [--rounds 3] [--json]
        [--write docs/benchmarks.md]

``--write`` replaces the section between ``<!-- bench:snmp_agent -->`` and
``<!-- /bench:snmp_agent -->`` (appending it when absent) and leaves the rest
of the file alone. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from report import cpu_seconds, write_section
from rich.progress import Progress

from autonoc.core import ber, procs
from lab.snmp import SnmpAgentServer, StaticMib
from lab.snmp.mib import MibLayout, Oid, Value

COMMUNITY = "bench"
WRITE_COMMUNITY = "bench-rw"
IF_TABLE = (1, 3, 6, 1, 2, 1, 2, 2)
IF_X_TABLE = (1, 3, 6, 1, 2, 1, 31, 1, 1)
WALK_ROOTS = (IF_TABLE, IF_X_TABLE)
INTERFACES = 40
MARK_BEGIN = "<!-- bench:snmp_agent -->"
MARK_END = "<!-- /bench:snmp_agent -->"
# The target the projection answers: 2,000 devices, 400 varbinds each, every 60 s.
PROJECTED_DEVICES, PROJECTED_VARBINDS, PROJECTED_INTERVAL_S = 2000, 400, 60

_IF_ENTRY = (*IF_TABLE, 1)
_IFX_ENTRY = (*IF_X_TABLE, 1)
_C32, _C64, _G32, _INT, _STR, _TT = (
    ber.COUNTER32,
    ber.COUNTER64,
    ber.GAUGE32,
    ber.INTEGER,
    ber.OCTET_STRING,
    ber.TIMETICKS,
)
# The columns lab.agent serves: ifTable 17, ifXTable 8; 25 x 40 interfaces = 1,000 varbinds.
_IF_COLUMNS = {
    1: _INT,
    2: _STR,
    3: _INT,
    4: _INT,
    5: _G32,
    6: _STR,
    7: _INT,
    8: _INT,
    9: _TT,
    10: _C32,
    11: _C32,
    13: _C32,
    14: _C32,
    16: _C32,
    17: _C32,
    19: _C32,
    20: _C32,
}
_IFX_COLUMNS = {1: _STR, 6: _C64, 7: _C64, 10: _C64, 11: _C64, 15: _G32, 18: _STR, 19: _TT}


def if_mib_values(device: int, interfaces: int = INTERFACES) -> dict[Oid, Value]:
    """IF-MIB-like values of one simulated device: system group, ifTable, ifXTable."""
    values: dict[Oid, Value] = {
        (1, 3, 6, 1, 2, 1, 1, 1, 0): (_STR, b"autonoc lab router"),
        (1, 3, 6, 1, 2, 1, 1, 3, 0): (_TT, 100 * device),
        (1, 3, 6, 1, 2, 1, 1, 5, 0): (_STR, f"r{device}".encode()),
        (1, 3, 6, 1, 2, 1, 2, 1, 0): (_INT, interfaces),
    }
    for n in range(1, interfaces + 1):
        for columns, entry in ((_IF_COLUMNS, _IF_ENTRY), (_IFX_COLUMNS, _IFX_ENTRY)):
            for column, tag in columns.items():
                value: object
                if tag == _STR:
                    value = (
                        f"eth{n}".encode() if column != 6 else bytes((2, 0, 0, 0, device % 256, n))
                    )
                elif tag == _C64:
                    value = 10**12 * n + device * 7919 + column
                elif tag in (_C32, _G32, _TT):
                    value = (10**6 * n + device * 7919 + column) % 2**32
                else:
                    value = n if column == 1 else 1
                values[(*entry, column, n)] = (tag, value)
    return values


# Agent processes (re-run this script with --serve)


def _serve_fast(devices: int) -> None:
    async def main() -> None:
        server = SnmpAgentServer()
        first = if_mib_values(0)
        layout = MibLayout(list(first), {oid[:-1] for oid in first})  # one shape, shared
        for d in range(devices):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            mib = StaticMib(if_mib_values(d), layout=layout, writable=(*_IF_ENTRY, 7))
            server.add(f"r{d}", sock, mib, COMMUNITY, WRITE_COMMUNITY)
        await server.start()
        _announce({name: server.port(name) for name in server.devices})
        await _until_terminated()
        server.close()

    asyncio.run(main())


def _serve_pysnmp() -> None:
    from lab.agent import LabAgent
    from lab.network import LabNetwork

    async def main() -> None:
        network = LabNetwork.preset("ring4-wide")
        agents: dict[str, LabAgent] = {}
        for name in network.device_names:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            agents[name] = LabAgent(network, name, COMMUNITY, WRITE_COMMUNITY)
            await agents[name].start(sock)
        _announce({name: int(agent.port or 0) for name, agent in agents.items()})
        await _until_terminated()
        for agent in agents.values():
            agent.close()

    asyncio.run(main())


def _serve_lab(devices: int) -> None:
    from lab.network import LabNetwork
    from lab.runner import LabRunner
    from lab.topology import generate

    async def main() -> None:
        network = LabNetwork(generate(devices))
        with LabRunner(network, community=COMMUNITY, write_community=WRITE_COMMUNITY) as lab:
            _announce(lab.ports)
            await _until_terminated()

    asyncio.run(main())


def _announce(ports: dict[str, int]) -> None:
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()


async def _until_terminated() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


@dataclass
class _Agent:
    name: str
    process: subprocess.Popen[str]
    targets: list[str]  # host:port per device


@contextmanager
def _python_agent(name: str, serve: str, devices: int) -> Iterator[_Agent]:
    cmd = [sys.executable, __file__, "--serve", serve, "--devices", str(devices)]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{name}: the agent process exited before listening")
        ports: dict[str, int] = json.loads(line)
        yield _Agent(name, process, [f"127.0.0.1:{p}" for p in ports.values()])
    finally:
        procs.stop(process, timeout=10)


@contextmanager
def _snmpd_agent() -> Iterator[_Agent]:
    snmpd = shutil.which("snmpd") or (
        "/usr/sbin/snmpd" if Path("/usr/sbin/snmpd").exists() else None
    )
    if snmpd is None:
        raise RuntimeError("snmpd not found: apt-get install snmpd")
    with tempfile.TemporaryDirectory(prefix="bench-snmpd-") as tmp:
        port = _free_udp_port()
        conf = Path(tmp) / "snmpd.conf"
        conf.write_text(f"rocommunity {COMMUNITY} 127.0.0.1\n")
        env = {**os.environ, "SNMP_PERSISTENT_DIR": tmp}
        process = subprocess.Popen(
            [snmpd, "-f", "-Lo", "-C", "-c", str(conf), f"udp:127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        try:
            target = f"127.0.0.1:{port}"
            _wait_until_answering(target, process)
            yield _Agent("snmpd", process, [target])
        finally:
            procs.stop(process, timeout=10)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_answering(target: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"snmpd exited with status {process.returncode}")
        probe = subprocess.run(
            [
                "snmpget",
                "-v2c",
                "-c",
                COMMUNITY,
                "-t",
                "0.5",
                "-r",
                "0",
                target,
                "1.3.6.1.2.1.1.3.0",
            ],
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return
    raise RuntimeError(f"snmpd on {target} did not answer within 15 s")


# The client


def _walk(target: str, root: Oid) -> int:
    """One snmpbulkwalk; the number of varbinds it printed."""
    result = subprocess.run(
        [
            "snmpbulkwalk",
            "-v2c",
            "-Cr50",
            "-c",
            COMMUNITY,
            "-On",
            "-Oq",
            "-t",
            "5",
            "-r",
            "1",
            target,
            "." + ".".join(map(str, root)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"snmpbulkwalk {target}: {result.stderr.strip()}")
    # An agent's endOfMibView after the last column prints as one more line: not a value.
    return sum(
        1
        for line in result.stdout.splitlines()
        if line.startswith(".") and "No more variables left" not in line
    )


@dataclass
class Figures:
    """One agent's run: what was served, in what time, for what CPU."""

    agent: str
    devices: int
    walks: int
    varbinds: int
    wall_s: float
    agent_cpu_s: float

    @property
    def varbinds_per_s(self) -> float:
        return self.varbinds / self.wall_s

    @property
    def varbinds_per_cpu_s(self) -> float:
        return self.varbinds / max(self.agent_cpu_s, 1e-9)


def _measure(agent: _Agent, rounds: int, repeat: int, workers: int, progress: Progress) -> Figures:
    jobs = [(t, root) for t in agent.targets for root in WALK_ROOTS] * repeat
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda job: _walk(*job), jobs[: max(len(WALK_ROOTS), workers)]))  # warm
        task = progress.add_task(agent.name, total=rounds * len(jobs))
        cpu0, t0 = cpu_seconds(agent.process.pid), time.perf_counter()
        varbinds = 0
        for _ in range(rounds):
            for count in pool.map(lambda job: _walk(*job), jobs):
                varbinds += count
                progress.advance(task)
        wall, cpu = time.perf_counter() - t0, cpu_seconds(agent.process.pid) - cpu0
    return Figures(agent.name, len(agent.targets), rounds * len(jobs), varbinds, wall, cpu)


def run(
    devices: int, rounds: int, pysnmp_repeat: int, workers: int, quiet: bool, lab_devices: int
) -> dict[str, Any]:
    """Measure the agents in turn; the figures as a JSON-ready dict."""
    results: list[Figures] = []
    with Progress(transient=True, disable=quiet) as progress:
        with _python_agent("lab.snmp (fast)", "fast", devices) as agent:
            results.append(_measure(agent, rounds, 1, workers, progress))
        with _python_agent(f"lab (live model, {lab_devices} routers)", "lab", lab_devices) as agent:
            results.append(_measure(agent, 1, 1, workers, progress))
        with _python_agent("lab.agent (pysnmp)", "pysnmp", 0) as agent:
            results.append(_measure(agent, rounds, pysnmp_repeat, workers, progress))
        with _snmpd_agent() as agent:
            # As many walks as the fast agent got, so the client load is alike.
            results.append(_measure(agent, rounds, devices, workers, progress))
    fast, lab, _, snmpd = results
    demand = PROJECTED_DEVICES * PROJECTED_VARBINDS / PROJECTED_INTERVAL_S
    return {
        "devices": devices,
        "rounds": rounds,
        "workers": workers,
        "agents": [
            {
                **asdict(f),
                "wall_s": round(f.wall_s, 2),
                "agent_cpu_s": round(f.agent_cpu_s, 2),
                "varbinds_per_s": round(f.varbinds_per_s),
                "varbinds_per_cpu_s": round(f.varbinds_per_cpu_s),
                "us_per_varbind": round(1e6 / f.varbinds_per_cpu_s, 2),
                "cpu_efficiency_vs_snmpd": round(
                    f.varbinds_per_cpu_s / snmpd.varbinds_per_cpu_s, 2
                ),
            }
            for f in results
        ],
        "projection": {
            "devices": PROJECTED_DEVICES,
            "varbinds_per_device": PROJECTED_VARBINDS,
            "interval_s": PROJECTED_INTERVAL_S,
            "varbinds_per_s": round(demand),
            "fast_agent_cores": round(demand / fast.varbinds_per_cpu_s, 3),
            "lab_cores": round(demand / lab.varbinds_per_cpu_s, 3),
        },
    }


def markdown(result: dict[str, Any], command: str) -> str:
    """The report section, markers included."""
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    rows = "\n".join(
        f"| {a['agent']} | {a['devices']} | {a['walks']} | {a['varbinds']} | {a['wall_s']} "
        f"| {a['agent_cpu_s']} | {a['varbinds_per_s']} | {a['varbinds_per_cpu_s']} "
        f"| {a['us_per_varbind']} | {a['cpu_efficiency_vs_snmpd']}× |"
        for a in result["agents"]
    )
    p = result["projection"]
    return f"""{MARK_BEGIN}
## SNMP agent cost: varbinds per agent CPU-second

Command: `{command}`
Machine: {machine}. Each agent in its own process; agent CPU = its user + system
time from `/proc`. Client for all three, same run: `snmpbulkwalk -v2c -Cr50` of
ifTable and ifXTable, {result["workers"]} walks in parallel, {result["rounds"]} rounds.

| agent | devices | walks | varbinds | wall s | agent CPU s | varbinds/s \
| varbinds per CPU-s | µs per varbind | vs snmpd |
|---|---|---|---|---|---|---|---|---|---|
{rows}

- `lab.snmp (fast)`: `SnmpAgentServer`, one process, one UDP socket per device,
  each a 40-interface `StaticMib` (1,000 IF-MIB varbinds per device).
- `lab (live model)`: `autonoc lab up --devices N` as it runs: a generated Clos
  fabric, every value computed from the network model at request time
  (counters integrated, routing, BGP), each router walked once.
- `lab.agent (pysnmp)`: the pysnmp-based agents over `ring4-wide` (values come
  from the live network model, which adds its own cost to pysnmp's).
- `snmpd`: net-snmp's agent serving this host's interfaces (few per walk, so its
  per-request cost weighs more per varbind).

varbinds/s is bounded by the client (one `snmpbulkwalk` process per walk, on
the same cores); varbinds per agent CPU-second is the figure to compare.
"vs snmpd" is varbinds per CPU-second relative to snmpd (above 1: cheaper).

**Projection**: {p["devices"]:,} devices × {p["varbinds_per_device"]} varbinds every
{p["interval_s"]} s = {p["varbinds_per_s"]:,} varbinds/s, which costs the fast agent
**{p["fast_agent_cores"]} of one core** with static values, and the lab serving its
live network model **{p["lab_cores"]} of one core** (target: under 1).
{MARK_END}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200, help="devices the fast agent serves")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per agent")
    parser.add_argument(
        "--pysnmp-repeat",
        type=int,
        default=3,
        help="walks of each pysnmp device per round (it has only 4)",
    )
    parser.add_argument("--workers", type=int, default=8, help="walks run in parallel")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--write", type=Path, help="update the report section in this file")
    parser.add_argument(
        "--lab-devices", type=int, default=2000, help="routers in the live-model lab run"
    )
    parser.add_argument("--serve", choices=["fast", "pysnmp", "lab"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "fast":
        _serve_fast(args.devices)
        return 0
    if args.serve == "pysnmp":
        _serve_pysnmp()
        return 0
    if args.serve == "lab":
        _serve_lab(args.devices)
        return 0
    if not sys.platform.startswith("linux"):
        parser.error("this benchmark reads agent CPU time from /proc: Linux only")
    for tool in ("snmpbulkwalk", "snmpget"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} not found: apt-get install snmp")
    result = run(
        args.devices,
        args.rounds,
        args.pysnmp_repeat,
        args.workers,
        quiet=args.json,
        lab_devices=args.lab_devices,
    )
    command = ("python bench/snmp_agent.py " + " ".join(sys.argv[1:])).strip()
    section = markdown(result, command)
    print(json.dumps(result, indent=2) if args.json else section)
    if args.write:
        write_section(args.write, section, MARK_BEGIN, MARK_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
