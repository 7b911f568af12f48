"""NETCONF get cost of the lab's server, by device role, beside yuma123's netconfd.

The lab runs in a child process (``--serve``) so its CPU time can be read from
``/proc``; the client is unmodified ncclient, one session per device, ``get``
of everything. Stock ncclient 0.7.1 polls its session thread every 100 ms, so
wall-clock latency per synchronous RPC includes up to 100 ms that is the
client's, not the server's: compare server CPU per get, and read latency as
an upper bound. netconfd (behind OpenSSH) serves a small config-only model,
so its figure is a floor for a real server, not a like-for-like peer.

Usage::

    python bench/netconf_get.py [--gets 30] [--json] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ncclient import manager
from report import cpu_seconds, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MARK_BEGIN = "<!-- bench:netconf_get -->"
MARK_END = "<!-- /bench:netconf_get -->"
DEVICES = {"router": "p1", "transponder": "xp-c1", "amplifier": "amp-a-b", "roadm": "roadm-a"}


def _serve() -> None:
    import signal
    import threading

    from lab.network import LabNetwork
    from lab.runner import LabRunner

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LabRunner(LabNetwork.preset("metro-ring"), netconf=True) as lab:
        assert lab.netconf is not None
        sys.stdout.write(
            json.dumps(
                {
                    "host": lab.host,
                    "ports": lab.netconf.ports,
                    "username": lab.netconf.username,
                    "password": lab.netconf.password,
                }
            )
            + "\n"
        )
        sys.stdout.flush()
        stop.wait()


def _time_gets(session: Any, gets: int, pid: int | None) -> dict[str, float]:
    session.get()  # warm: caches, first state build
    latencies = []
    cpu0 = cpu_seconds(pid) if pid else 0.0
    size = 0
    for _ in range(gets):
        t0 = time.perf_counter()
        reply = session.get()
        latencies.append(time.perf_counter() - t0)
        size = len(reply.data_xml)
    cpu = (cpu_seconds(pid) - cpu0) if pid else float("nan")
    latencies.sort()
    return {
        "median_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1),
        "server_cpu_ms_per_get": round(cpu / gets * 1000, 2) if pid else float("nan"),
        "reply_bytes": size,
    }


def run(gets: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        for role, device in DEVICES.items():
            with manager.connect(
                host=info["host"],
                port=info["ports"][device],
                username=info["username"],
                password=info["password"],
                hostkey_verify=False,
                allow_agent=False,
                look_for_keys=False,
                timeout=30,
            ) as session:
                rows.append(
                    {"server": "autonoc lab", "device": f"{device} ({role})"}
                    | _time_gets(session, gets, proc.pid)
                )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    try:
        from tests.integration.netconfd import start_netconfd

        with (
            tempfile.TemporaryDirectory(prefix="bench-netconfd-") as tmp,
            start_netconfd(Path(tmp)) as server,
            server.connect() as session,
        ):
            rows.append(
                {"server": "yuma123 netconfd", "device": "its own state (netconf-monitoring)"}
                | _time_gets(session, gets, _netconfd_pid())
            )
    except (RuntimeError, OSError, ImportError) as exc:
        rows.append({"server": "yuma123 netconfd", "device": f"not measured: {exc}"})
    return {"gets": gets, "rows": rows}


def _netconfd_pid() -> int | None:
    found = subprocess.run(["pgrep", "-n", "-x", "netconfd"], capture_output=True, text=True)
    return int(found.stdout.strip()) if found.returncode == 0 else None


def markdown(result: dict[str, Any], command: str) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        f"| {r['server']} | {r['device']} | {r.get('median_ms', '')} | {r.get('p95_ms', '')} "
        f"| {r.get('server_cpu_ms_per_get', '')} | {r.get('reply_bytes', '')} |"
        for r in result["rows"]
    ]
    rows = "\n".join(lines)
    return f"""{MARK_BEGIN}
## NETCONF get: the lab's server by device role, beside netconfd

Command: `{command}`
Machine: {machine}. Client: ncclient, one session per device, {result["gets"]} full
`get`s each after one warm-up. Server CPU from `/proc` (the lab in its own process;
netconfd's own process, sshd and netconf-subsystem not counted).

| server | device | median ms | p95 ms | server CPU ms per get | reply bytes |
|---|---|---|---|---|---|
{rows}

Stock ncclient 0.7.1 adds up to 100 ms of its own polling to each synchronous
RPC, so latencies are upper bounds; server CPU per get is the figure that scales.
netconfd serves a tiny config-only test model, so it is a floor, not a peer.
{MARK_END}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gets", type=int, default=30, help="timed gets per device")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--write", type=Path, help="update the report section in this file")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve()
        return 0
    result = run(args.gets)
    command = ("python bench/netconf_get.py " + " ".join(sys.argv[1:])).strip()
    section = markdown(result, command)
    print(json.dumps(result, indent=2) if args.json else section)
    if args.write:
        write_section(args.write, section, MARK_BEGIN, MARK_END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
