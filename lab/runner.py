"""Serve a :class:`LabNetwork` on loopback: SNMP for every device, NETCONF on request, traps.

Usage::

    with LabRunner(LabNetwork.preset("metro-ring"), netconf=True) as lab:
        lab.write_inventory(path)
        lab.network.set_admin_status("pe1", "eth1", up=False)

Every device gets its own UDP socket on ``host``; the runner binds the
sockets itself (port 0 lets the kernel pick) so the ports are known, and a
port already in use fails :meth:`LabRunner.start` before any thread starts.
All devices are served by one :class:`lab.snmp.SnmpAgentServer` on one
asyncio loop in a daemon thread. Link and BGP state changes become SNMPv2c
notifications (linkDown/linkUp, bgpBackwardTransNotification /
bgpEstablishedNotification) sent from the device's own port to
``trap_target`` when one is given.
"""

from __future__ import annotations

import asyncio
import resource
import secrets
import socket
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from pydantic import SecretStr
from pysnmp.error import PySnmpError

from autonoc.core import ber
from autonoc.core.errors import LabError
from autonoc.core.inventory import Inventory, NetconfCredentials, SnmpV2c, SnmpV3
from collectors.inventory import dump_inventory
from lab.loop import LoopThread
from lab.mibs import device_mib
from lab.netconf.server import NetconfRunner
from lab.network import Event, LabNetwork
from lab.snmp.agent import (
    BGP_BACKWARD_TRANSITION,
    BGP_ESTABLISHED,
    LINK_DOWN,
    LINK_UP,
    SnmpAgentServer,
    V3Credentials,
)
from lab.snmp.mib import Oid, Value

__all__ = ["LabRunner", "V3User"]

_START_TIMEOUT = 60.0
_IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
_BGP_PEER_ENTRY = (1, 3, 6, 1, 2, 1, 15, 3, 1)

V3User = V3Credentials
"""An SNMPv3 authPriv user (HMAC-SHA-96 + AES-128); the old name, kept for callers."""


class LabRunner:
    """The lab's agents, served from one asyncio loop on a daemon thread.

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
        netconf: also serve every device over NETCONF (SSH, random password).
        trap_target: ``(host, port)`` that receives the devices' notifications.
    """

    def __init__(
        self,
        network: LabNetwork,
        host: str = "127.0.0.1",
        base_port: int = 0,
        community: str | None = None,
        write_community: str | None = None,
        snmp_version: Literal["v2c", "v3"] = "v2c",
        netconf: bool = False,
        trap_target: tuple[str, int] | None = None,
    ) -> None:
        self.network = network
        self.snmp_version = snmp_version
        self.v3_user = V3Credentials(
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
        self.trap_target = trap_target
        self.traps_sent = 0
        self.ports: dict[str, int] = {}
        self.netconf: NetconfRunner | None = (
            NetconfRunner.for_network(network, host=host) if netconf else None
        )
        self._server: SnmpAgentServer | None = None
        self._runner = LoopThread("autonoc-lab")

    # Lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Start every agent; returns once all of them are listening.

        Raises:
            LabError: a port cannot be bound, or a server fails to start.
        """
        if self._runner.started:
            raise LabError("the lab is already running")
        _raise_fd_limit(2 * len(self.network.device_names) + 256)
        socks = self._bind_sockets()
        server = SnmpAgentServer()
        try:
            for name, sock in socks.items():
                server.add(
                    name,
                    sock,
                    device_mib(self.network, name),
                    self.community,
                    self.write_community,
                    self.v3_user,
                )
        except (LabError, ValueError) as exc:
            for sock in socks.values():
                sock.close()
            raise LabError(f"the lab's SNMP agents failed to start: {exc}") from exc
        self._runner.start()
        try:
            self._runner.call(server.start(), _START_TIMEOUT)
        except (OSError, PySnmpError, LabError) as exc:
            self._runner.stop(None, _START_TIMEOUT)
            server.close()
            raise LabError(f"the lab's SNMP agents failed to start: {exc}") from exc
        self._server = server
        self.ports = {name: sock.getsockname()[1] for name, sock in socks.items()}
        self.network.subscribe(self._on_event)
        if self.netconf is not None:
            try:
                self.netconf.start()
            except LabError:
                self.stop()
                raise

    def stop(self) -> None:
        """Stop every server, close their sockets, and end the thread. Idempotent."""
        self.network.unsubscribe(self._on_event)
        if self.netconf is not None:
            self.netconf.stop()
        server, self._server = self._server, None
        if self._runner.started:
            self._runner.stop(self._close(server), _START_TIMEOUT)

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

    @property
    def stats(self) -> dict[str, int]:
        """The SNMP server's counters (requests, varbinds, malformed, ...)."""
        if self._server is None:
            return {}
        s = self._server.stats
        return {
            "requests": s.requests,
            "varbinds": s.varbinds,
            "malformed": s.malformed,
            "bad_community": s.bad_community,
            "v3_messages": s.v3_messages,
            "traps_sent": self.traps_sent,
        }

    # Inventory ------------------------------------------------------------

    @property
    def inventory(self) -> Inventory:
        """The inventory that reaches the running agents, with their credentials.

        Raises:
            LabError: the lab has not started, so it has no ports yet.
        """
        if not self.ports:
            raise LabError("the lab has no ports until it starts (call start())")
        netconf_ports = self.netconf.ports if self.netconf is not None else None
        base = self.network.to_inventory(self.host, self.ports, self.community, netconf_ports)
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
        update: dict[str, Any] = {"snmp": snmp}
        if self.netconf is not None:
            update["netconf"] = NetconfCredentials(
                username=self.netconf.username, password=self.netconf.password, hostkey_verify=False
            )
        devices = tuple(d.model_copy(update=update) for d in base.devices)
        return base.model_copy(update={"devices": devices})

    def write_inventory(self, path: Path) -> None:
        """Write :attr:`inventory` to ``path`` as YAML, atomically, mode 0600.

        The credentials are written in clear: this is the lab's own file,
        for autonoc to poll the lab with.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        dump_inventory(self.inventory, path, reveal_secrets=True)

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

    def _on_event(self, event: Event) -> None:
        """Network state changed (any thread): send the notification from the loop."""
        if self.trap_target is None or self._server is None or not self._runner.alive:
            return
        built = _notification(event)
        if built is None:
            return
        trap_oid, varbinds = built
        ticks = self.network.sys_uptime(event.device, at=event.at)
        server, target = self._server, self.trap_target

        async def send() -> None:
            try:
                await server.send_trap(
                    event.device, target, self.community, trap_oid, varbinds, ticks
                )
                self.traps_sent += 1
            except LabError:
                pass  # the device closed under us: the lab is stopping

        self._runner.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(send()))

    @staticmethod
    async def _close(server: SnmpAgentServer | None) -> None:
        if server is not None:
            server.close()
        # Let transports finish closing (connection_lost runs on the next turn).
        await asyncio.sleep(0)


def _notification(event: Event) -> tuple[Oid, list[tuple[Oid, Value]]] | None:
    if event.kind in ("link_down", "link_up") and event.if_index is not None:
        i = event.if_index
        oper = 2 if event.kind == "link_down" else 1
        return (LINK_DOWN if event.kind == "link_down" else LINK_UP), [
            ((*_IF_ENTRY, 1, i), (ber.INTEGER, i)),
            ((*_IF_ENTRY, 7, i), (ber.INTEGER, 1 if event.admin_up else 2)),
            ((*_IF_ENTRY, 8, i), (ber.INTEGER, oper)),
        ]
    if event.kind in ("bgp_down", "bgp_up") and event.peer_address is not None:
        addr = tuple(int(p) for p in event.peer_address.split("."))
        state = event.bgp_state or (6 if event.kind == "bgp_up" else 1)
        return (BGP_ESTABLISHED if event.kind == "bgp_up" else BGP_BACKWARD_TRANSITION), [
            ((*_BGP_PEER_ENTRY, 7, *addr), (ber.IP_ADDRESS, bytes(addr))),
            (
                (*_BGP_PEER_ENTRY, 14, *addr),
                (ber.OCTET_STRING, b"\x06\x02" if state != 6 else b"\x00\x00"),
            ),
            ((*_BGP_PEER_ENTRY, 2, *addr), (ber.INTEGER, state)),
        ]
    return None


def _raise_fd_limit(wanted: int) -> None:
    """A lab of thousands of devices needs more file descriptors than the default 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        raise LabError(
            f"the lab needs {wanted} file descriptors but the hard limit is {hard}; "
            "raise it (ulimit -n) or serve fewer devices"
        )
