"""Run a :class:`LabNetwork`'s SNMP agents on a background thread.

Usage::

    with LabRunner(LabNetwork.preset("ring4")) as lab:
        lab.write_inventory(path)
        lab.inject_admin_down("pe1", "eth1")

Every agent gets its own UDP socket on ``host``; the runner binds the
sockets itself (port 0 lets the kernel pick) so the ports are known, and a
port already in use fails :meth:`LabRunner.start` before any thread starts.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import yaml
from pydantic import SecretStr
from pysnmp.error import PySnmpError

from autonoc.core.errors import LabError
from autonoc.core.inventory import Inventory, SnmpV2c, SnmpV3
from lab.agent import LabAgent, V3User
from lab.loop import LoopThread
from lab.network import LabNetwork

__all__ = ["LabRunner"]

_START_TIMEOUT = 30.0


class LabRunner:
    """The lab's SNMP agents, served from one asyncio loop on a daemon thread.

    Args:
        network: the simulated network to serve.
        host: the address every agent binds.
        base_port: the first agent's UDP port, the next device on the next
            port, and so on; 0 lets the system pick free ports.
        community: the read-only community; random when None.
        write_community: the read-write community; random when None.
        snmp_version: the credentials the written inventory uses. Every agent
            serves v1/v2c and an SNMPv3 authPriv user (SHA + AES-128) with
            random keys either way, as real gear serves several versions.
    """

    def __init__(
        self,
        network: LabNetwork,
        host: str = "127.0.0.1",
        base_port: int = 0,
        community: str | None = None,
        write_community: str | None = None,
        snmp_version: Literal["v2c", "v3"] = "v2c",
    ) -> None:
        self.network = network
        self.snmp_version = snmp_version
        self.v3_user = V3User(
            user="autonoc-lab",
            auth_key=secrets.token_urlsafe(16),
            priv_key=secrets.token_urlsafe(16),
        )
        self.host = host
        self.base_port = base_port
        self.community = community if community is not None else secrets.token_urlsafe(12)
        self.write_community = (
            write_community if write_community is not None else secrets.token_urlsafe(12)
        )
        if self.community == self.write_community:
            raise LabError("community and write_community must differ")
        self.ports: dict[str, int] = {}
        self._agents: list[LabAgent] = []
        self._runner = LoopThread("autonoc-lab")

    # Lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Start every agent; returns once all of them are listening.

        Raises:
            LabError: a port cannot be bound, or an agent fails to start.
        """
        if self._runner.started:
            raise LabError("the lab is already running")
        socks = self._bind_sockets()
        self._runner.start()
        agents = [
            LabAgent(self.network, name, self.community, self.write_community, self.v3_user)
            for name in self.network.device_names
        ]
        try:
            self._runner.call(self._start_agents(agents, socks), _START_TIMEOUT)
        except (OSError, PySnmpError, LabError) as exc:
            self.stop()
            for sock in socks.values():
                sock.close()
            raise LabError(f"the lab's SNMP agents failed to start: {exc}") from exc
        self.ports = {name: sock.getsockname()[1] for name, sock in socks.items()}

    def stop(self) -> None:
        """Stop every agent, close their sockets, and end the thread. Idempotent."""
        if self._runner.started:
            self._runner.stop(self._close_agents(), _START_TIMEOUT)
        self._agents = []

    def __enter__(self) -> LabRunner:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._runner.alive

    # Inventory ------------------------------------------------------------

    @property
    def inventory(self) -> Inventory:
        """The inventory that reaches the running agents, with both communities.

        Raises:
            LabError: the lab has not started, so it has no ports yet.
        """
        if not self.ports:
            raise LabError("the lab has no ports until it starts (call start())")
        base = self.network.to_inventory(self.host, self.ports, self.community)
        snmp: SnmpV2c | SnmpV3
        if self.snmp_version == "v3":
            snmp = SnmpV3(
                version="v3",
                user=self.v3_user.user,
                auth_protocol="sha",
                auth_key=SecretStr(self.v3_user.auth_key),
                priv_protocol="aes",
                priv_key=SecretStr(self.v3_user.priv_key),
            )
        else:
            snmp = SnmpV2c(community=self.community, write_community=self.write_community)
        devices = tuple(d.model_copy(update={"snmp": snmp}) for d in base.devices)
        return base.model_copy(update={"devices": devices})

    def write_inventory(self, path: Path) -> None:
        """Write :attr:`inventory` to ``path`` as YAML, atomically.

        The communities are written in clear: this is the lab's own file,
        for autonoc to poll the lab with.
        """
        text = yaml.safe_dump(plain_inventory(self.inventory), sort_keys=False)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o600)  # it holds the communities
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # Faults ---------------------------------------------------------------

    def inject_admin_down(self, device: str, ifname: str) -> None:
        """Shut ``device:ifname`` down, as an operator or a fault would."""
        self.network.set_admin_status(device, ifname, up=False)

    def clear_admin_down(self, device: str, ifname: str) -> None:
        """Bring ``device:ifname`` back admin up."""
        self.network.set_admin_status(device, ifname, up=True)

    # Internals ------------------------------------------------------------

    def _bind_sockets(self) -> dict[str, socket.socket]:
        socks: dict[str, socket.socket] = {}
        try:
            for n, name in enumerate(self.network.device_names):
                port = self.base_port + n if self.base_port else 0
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks[name] = sock
                try:
                    sock.bind((self.host, port))
                except OSError as exc:
                    raise LabError(
                        f"lab device {name!r} cannot listen on udp {self.host}:{port}: "
                        f"{exc.strerror or exc} (free the port, or pick another base_port; "
                        "0 picks free ports)"
                    ) from exc
                sock.setblocking(False)
        except BaseException:
            for sock in socks.values():
                sock.close()
            raise
        return socks

    async def _start_agents(self, agents: list[LabAgent], socks: dict[str, socket.socket]) -> None:
        for agent in agents:
            self._agents.append(agent)
            await agent.start(socks[agent.device])

    async def _close_agents(self) -> None:
        for agent in self._agents:
            agent.close()
        # Let transports finish closing (connection_lost runs on the next turn).
        await asyncio.sleep(0)


def plain_inventory(inventory: Inventory) -> dict[str, Any]:
    """The inventory as plain data, secrets revealed."""
    data: dict[str, Any] = inventory.model_dump(mode="json", exclude_none=True)
    for device, model in zip(data["devices"], inventory.devices, strict=True):
        snmp = model.snmp
        if snmp is None:
            continue
        if snmp.version == "v3":
            for key in ("auth_key", "priv_key"):
                secret = getattr(snmp, key)
                if secret is not None:
                    device["snmp"][key] = secret.get_secret_value()
            continue
        device["snmp"]["community"] = snmp.community.get_secret_value()
        if snmp.write_community is not None:
            device["snmp"]["write_community"] = snmp.write_community.get_secret_value()
    return data
