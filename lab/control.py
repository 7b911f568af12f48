"""The running lab's control socket: fault injection and ground truth, never over device protocols.

A unix stream socket (mode 0600, under ``AUTONOC_HOME/lab/``) carrying one
JSON request and one JSON reply per line::

    {"op": "inject", "kind": "span_loss", "target": "span:roadm-a:roadm-b", "params": {...}}
    {"op": "faults"}            {"op": "clear", "id": 3}      {"op": "clear"}
    {"op": "health"}            {"op": "speed", "speed": 50}

Replies are ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

from autonoc.core.errors import LabError
from lab.faults import FaultInjector
from lab.network import LabNetwork, SimClock

__all__ = ["ControlServer", "control_request"]

_MAX_LINE = 64 * 1024


class ControlServer:
    """Serves the control socket on a daemon thread until :meth:`close`."""

    def __init__(
        self, path: Path, network: LabNetwork, faults: FaultInjector, clock: SimClock | None
    ) -> None:
        self.path = path
        self.network = network
        self.faults = faults
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        handler = self._handler()
        old = os.umask(0o177)
        try:
            self._server = socketserver.ThreadingUnixStreamServer(str(path), handler)
        finally:
            os.umask(old)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="autonoc-lab-control", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one request (also callable in-process)."""
        op = request.get("op")
        try:
            if op == "ping":
                return {"ok": True}
            if op == "faults":
                return {"ok": True, "faults": [f.as_dict() for f in self.faults.faults()]}
            if op == "inject":
                params = request.get("params") or {}
                if not isinstance(params, dict):
                    raise LabError("params must be a mapping")
                fault = self.faults.inject(
                    str(request.get("kind")),
                    str(request.get("target")),
                    {str(k): float(v) for k, v in params.items()},
                )
                return {"ok": True, "fault": fault.as_dict()}
            if op == "clear":
                fid = request.get("id")
                cleared = self.faults.clear(int(fid) if fid is not None else None)
                return {"ok": True, "cleared": [f.as_dict() for f in cleared]}
            if op == "health":
                return {"ok": True, "health": self.network.health().as_dict()}
            if op == "speed":
                if self.clock is None:
                    raise LabError("this lab runs on the wall clock")
                if request.get("speed") is not None:
                    self.clock.set_speed(float(request["speed"]))
                return {"ok": True, "speed": self.clock.speed}
            return {"ok": False, "error": f"unknown op {op!r}"}
        except (LabError, ValueError, TypeError) as exc:
            return {"ok": False, "error": str(exc)}

    def _handler(self) -> type[socketserver.StreamRequestHandler]:
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(_MAX_LINE)
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a request is a JSON object")
                    reply = outer.handle(request)
                except ValueError as exc:
                    reply = {"ok": False, "error": f"bad request: {exc}"}
                self.wfile.write(json.dumps(reply).encode() + b"\n")

        return Handler


def control_request(path: Path, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to the lab at ``path`` and return its reply.

    Raises:
        LabError: no lab listens there, or it answered with an error.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise LabError(
                f"no lab control socket at {path} ({exc.strerror or exc}); "
                "start a lab with `autonoc lab up`"
            ) from exc
        sock.sendall(json.dumps(request).encode() + b"\n")
        with sock.makefile("rb") as f:
            line = f.readline(_MAX_LINE)
    finally:
        with contextlib.suppress(OSError):
            sock.close()
    try:
        reply: dict[str, Any] = json.loads(line)
    except ValueError as exc:
        raise LabError(f"the lab sent an unreadable reply ({exc})") from exc
    if not reply.get("ok"):
        raise LabError(str(reply.get("error", "the lab refused the request")))
    return reply
