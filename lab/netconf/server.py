"""A NETCONF server over SSH (RFC 6241, RFC 6242) for the lab's devices.

Usage::

    network = LabNetwork.preset("ring4")
    with NetconfRunner.for_network(network) as nc:
        manager.connect(host=nc.host, port=nc.ports["pe1"], username=nc.username,
                        password=nc.password, hostkey_verify=False)

Each device gets its own SSH listener serving the ``netconf`` subsystem
and its own :class:`~lab.netconf.datastore.Datastore`. Messages are framed
with the 1.0 end-of-message marker until both hellos advertise base:1.1,
then with chunked framing. A framing error, a message over the size limit,
or a bad hello ends the session; malformed XML inside a good frame gets a
``malformed-message`` rpc-error. The host key is generated at start and
lives only in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import asyncssh
from lxml import etree

from autonoc.core.errors import LabError
from lab.loop import LoopThread
from lab.netconf.backend import (
    LAB_SYSTEM_MODULE,
    LAB_SYSTEM_NS,
    OC_INTERFACES_NS,
    DeviceBackend,
    LabNetworkBackend,
)
from lab.netconf.datastore import (
    BASE_NS,
    MAX_MESSAGE_BYTES,
    Datastore,
    LoopScheduler,
    RpcError,
    parse_xml,
    qn,
)
from lab.network import LabNetwork

__all__ = ["BASE_1_0", "BASE_1_1", "CAPABILITIES", "NetconfRunner", "NetconfServer"]

log = logging.getLogger(__name__)

BASE_1_0 = "urn:ietf:params:netconf:base:1.0"
BASE_1_1 = "urn:ietf:params:netconf:base:1.1"
CAPABILITIES: tuple[str, ...] = (
    BASE_1_0,
    BASE_1_1,
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
    "urn:ietf:params:netconf:capability:validate:1.1",
    "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
    "urn:ietf:params:netconf:capability:writable-running:1.0",
    f"{OC_INTERFACES_NS}?module=openconfig-interfaces&revision=2021-04-06",
    "http://openconfig.net/yang/interfaces/ip?module=openconfig-if-ip",
    "http://openconfig.net/yang/network-instance?module=openconfig-network-instance",
    "http://openconfig.net/yang/system?module=openconfig-system",
    "http://openconfig.net/yang/platform?module=openconfig-platform",
    "http://openconfig.net/yang/platform/transceiver?module=openconfig-platform-transceiver",
    "http://openconfig.net/yang/terminal-device?module=openconfig-terminal-device",
    # The namespace's spelling is the official module's own.
    "http://openconfig.net/yang/optical-amplfier?module=openconfig-optical-amplifier",
    "http://openconfig.net/yang/transport-line-common?module=openconfig-transport-line-common",
    "http://openconfig.net/yang/optical-transport-line-protection"
    "?module=openconfig-transport-line-protection&revision=2018-07-25",
    "http://openconfig.net/yang/system/procmon?module=openconfig-procmon&revision=2017-01-29",
    f"{LAB_SYSTEM_NS}?module={LAB_SYSTEM_MODULE[0]}&revision={LAB_SYSTEM_MODULE[1]}",
)
"""What every session's hello advertises."""

_EOM = b"]]>]]>"
_READ_SIZE = 65536
_MAX_CHUNK_HEADER = 13  # "\n#" + up to 10 digits + "\n"
_MAX_CHUNK_SIZE = 4294967295
_START_TIMEOUT = 30.0


class _FramingError(Exception):
    """The peer broke RFC 6242 framing, or sent more than the size limit."""


class _Eof(Exception):
    """The peer closed its side of the channel."""


class _Framer:
    """RFC 6242 message framing over an asyncssh byte stream."""

    def __init__(self, reader: asyncssh.SSHReader[bytes], max_bytes: int) -> None:
        self._reader = reader
        self._max = max_bytes
        self._buf = bytearray()
        self.chunked = False

    async def read_message(self) -> bytes:
        """The next whole message.

        Raises:
            _Eof: the peer closed the channel.
            _FramingError: bad framing, or a message over the limit.
        """
        return await (self._read_chunked() if self.chunked else self._read_eom())

    def frame(self, data: bytes) -> bytes:
        """``data`` framed for the wire."""
        if self.chunked:
            return b"\n#%d\n%s\n##\n" % (len(data), data)
        return data + _EOM

    async def _fill(self) -> None:
        data = await self._reader.read(_READ_SIZE)
        if not data:
            raise _Eof
        self._buf += data

    async def _need(self, n: int) -> None:
        while len(self._buf) < n:
            await self._fill()

    async def _read_eom(self) -> bytes:
        start = 0
        while (idx := self._buf.find(_EOM, start)) < 0:
            if len(self._buf) > self._max:
                raise _FramingError(f"message exceeds {self._max} bytes")
            # The marker may straddle two reads.
            start = max(0, len(self._buf) - len(_EOM) + 1)
            await self._fill()
        if idx > self._max:
            raise _FramingError(f"message exceeds {self._max} bytes")
        msg = bytes(self._buf[:idx])
        del self._buf[: idx + len(_EOM)]
        return msg

    async def _read_chunked(self) -> bytes:
        msg = bytearray()
        while True:
            await self._need(3)
            if self._buf[:2] != b"\n#":
                raise _FramingError("expected a chunk header")
            if self._buf[2:3] == b"#":
                await self._need(4)
                if self._buf[3:4] != b"\n" or not msg:
                    raise _FramingError("bad end-of-chunks marker")
                del self._buf[:4]
                return bytes(msg)
            while (nl := self._buf.find(b"\n", 2, _MAX_CHUNK_HEADER)) < 0:
                if len(self._buf) >= _MAX_CHUNK_HEADER:
                    raise _FramingError("chunk header too long")
                await self._fill()
            digits = bytes(self._buf[2:nl])
            if not digits.isdigit() or digits.startswith(b"0"):
                raise _FramingError("bad chunk size")
            size = int(digits)
            if size > _MAX_CHUNK_SIZE or len(msg) + size > self._max:
                raise _FramingError(f"message exceeds {self._max} bytes")
            del self._buf[: nl + 1]
            await self._need(size)
            msg += self._buf[:size]
            del self._buf[:size]


@dataclass(eq=False)
class _Session:
    id: int
    device: str
    process: asyncssh.SSHServerProcess[bytes]
    released: bool = False
    killed: bool = False
    task: asyncio.Task[None] | None = field(default=None)


class _SshServer(asyncssh.SSHServer):
    """Password authentication, and bookkeeping of live connections."""

    def __init__(self, owner: NetconfServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        user_ok = secrets.compare_digest(username.encode(), self._owner.username.encode())
        pass_ok = secrets.compare_digest(password.encode(), self._owner.password.encode())
        return user_ok and pass_ok


class NetconfServer:
    """NETCONF over SSH for a set of devices, one listener each, on the running loop.

    Args:
        backend: the device model behind every device's datastore.
        devices: the devices to serve.
        host: the address every listener binds.
        base_port: the first device's TCP port, the next device on the next
            port; 0 lets the system pick free ports (read them from :attr:`ports`).
        username: the one SSH user.
        password: its password; random when None (read it from :attr:`password`).
        max_message_bytes: the largest message a client may send; a larger
            one ends its session.
    """

    def __init__(
        self,
        backend: DeviceBackend,
        devices: Iterable[str],
        host: str = "127.0.0.1",
        base_port: int = 0,
        username: str = "admin",
        password: str | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.backend = backend
        self.devices = list(devices)
        self.host = host
        self.base_port = base_port
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(16)
        self.max_message_bytes = max_message_bytes
        self.ports: dict[str, int] = {}
        self.datastores: dict[str, Datastore] = {}
        self._acceptors: list[asyncssh.SSHAcceptor] = []
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._sessions: dict[int, _Session] = {}
        self._ids = itertools.count(1)

    async def start(self) -> None:
        """Build the datastores and start listening on every device's port.

        Raises:
            LabError: a port cannot be bound.
        """
        if self._acceptors:
            raise LabError("the NETCONF server is already running")
        scheduler = LoopScheduler(asyncio.get_running_loop())
        self.datastores = {d: Datastore(d, self.backend, scheduler) for d in self.devices}
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        try:
            for n, device in enumerate(self.devices):
                port = self.base_port + n if self.base_port else 0
                try:
                    acceptor = await asyncssh.create_server(
                        lambda: _SshServer(self),
                        self.host,
                        port,
                        server_host_keys=[host_key],
                        process_factory=lambda p, d=device: self._serve(d, p),
                        encoding=None,
                        allow_pty=False,
                        agent_forwarding=False,
                        x11_forwarding=False,
                        allow_scp=False,
                    )
                except OSError as exc:
                    raise LabError(
                        f"NETCONF for lab device {device!r} cannot listen on tcp "
                        f"{self.host}:{port}: {exc.strerror or exc} (free the port, or pick "
                        "another base_port; 0 picks free ports)"
                    ) from exc
                self._acceptors.append(acceptor)
                self.ports[device] = acceptor.get_port()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop listening, end every session and connection. Idempotent."""
        for acceptor in self._acceptors:
            acceptor.close()
        for acceptor in self._acceptors:
            await acceptor.wait_closed()
        self._acceptors = []
        tasks = [s.task for s in self._sessions.values() if s.task is not None]
        for conn in list(self._connections):
            conn.close()
        for conn in list(self._connections):
            await conn.wait_closed()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        for session in list(self._sessions.values()):
            self._release(session)
        self._sessions.clear()
        self.ports = {}

    @property
    def session_ids(self) -> list[int]:
        """Ids of the sessions now open."""
        return sorted(self._sessions)

    # Sessions -------------------------------------------------------------

    async def _serve(self, device: str, process: asyncssh.SSHServerProcess[bytes]) -> None:
        if process.subsystem != "netconf":
            process.stderr.write(b"this server only serves the netconf subsystem\n")
            process.exit(1)
            return
        session = _Session(id=next(self._ids), device=device, process=process)
        session.task = asyncio.current_task()
        self._sessions[session.id] = session
        try:
            await self._run(session)
        except _Eof:
            pass
        except _FramingError as exc:
            log.info("netconf_framing_error session=%s device=%s: %s", session.id, device, exc)
        except (asyncssh.Error, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._sessions.pop(session.id, None)
            self._release(session)
            with contextlib.suppress(OSError, asyncssh.Error):
                process.exit(0)

    def _release(self, session: _Session) -> None:
        if not session.released:
            session.released = True
            self.datastores[session.device].session_closed(session.id)

    async def _run(self, session: _Session) -> None:
        process = session.process
        framer = _Framer(process.stdin, self.max_message_bytes)
        process.stdout.write(framer.frame(_hello(session.id)))
        try:
            hello = parse_xml(await framer.read_message(), self.max_message_bytes)
        except RpcError as exc:
            raise _FramingError(f"bad hello: {exc.message}") from exc
        caps = _client_capabilities(hello)
        if BASE_1_1 in caps:
            framer.chunked = True
        elif BASE_1_0 not in caps:
            raise _FramingError("the client's hello has no common base capability")
        while not session.killed:
            message = await framer.read_message()
            reply, close = self._handle(session, message)
            process.stdout.write(framer.frame(reply))
            await process.stdout.drain()
            if close:
                return

    def _handle(self, session: _Session, message: bytes) -> tuple[bytes, bool]:
        """The reply to one message, and whether to close the session after it."""
        try:
            rpc = parse_xml(message, self.max_message_bytes)
        except RpcError as exc:
            return _reply({}, error=exc), False
        if rpc.tag != qn("rpc"):
            err = RpcError(
                "unknown-element",
                f"expected <rpc>, got <{etree.QName(rpc).localname}>",
                error_type="rpc",
                info=(("bad-element", etree.QName(rpc).localname),),
            )
            return _reply({}, error=err), False
        attrs = {k: v for k, v in rpc.attrib.items()}
        if "message-id" not in attrs:
            err = RpcError(
                "missing-attribute",
                "<rpc> needs a message-id attribute",
                error_type="rpc",
                info=(("bad-attribute", "message-id"), ("bad-element", "rpc")),
            )
            return _reply(attrs, error=err), False
        ops = [c for c in rpc if isinstance(c.tag, str)]
        if len(ops) != 1:
            err = RpcError(
                "malformed-message", "<rpc> must hold exactly one operation", error_type="rpc"
            )
            return _reply(attrs, error=err), False
        op = ops[0]
        try:
            if op.tag == qn("close-session"):
                return _reply(attrs), True
            if op.tag == qn("kill-session"):
                self._kill(session, op)
                return _reply(attrs), False
            data = self.datastores[session.device].rpc(session.id, op)
        except RpcError as exc:
            return _reply(attrs, error=exc), False
        return _reply(attrs, data=data), False

    def _kill(self, session: _Session, op: Any) -> None:
        text = (op.findtext(qn("session-id")) or "").strip()
        target = self._sessions.get(int(text)) if text.isdigit() else None
        if target is None or target.device != session.device:
            raise RpcError(
                "invalid-value", f"no session {text!r} on this device", error_type="protocol"
            )
        if target is session:
            raise RpcError(
                "invalid-value",
                "a session cannot kill itself (use close-session)",
                error_type="protocol",
            )
        # Release now, so that the reply already reflects the freed locks.
        target.killed = True
        self._release(target)
        target.process.close()


def _hello(session_id: int) -> bytes:
    hello = etree.Element(qn("hello"), nsmap={None: BASE_NS})
    caps = etree.SubElement(hello, qn("capabilities"))
    for cap in CAPABILITIES:
        etree.SubElement(caps, qn("capability")).text = cap
    etree.SubElement(hello, qn("session-id")).text = str(session_id)
    return etree.tostring(hello, xml_declaration=True, encoding="UTF-8")  # type: ignore[no-any-return]


def _client_capabilities(hello: Any) -> set[str]:
    if hello.tag != qn("hello"):
        raise _FramingError("the first message is not a <hello>")
    if hello.find(qn("session-id")) is not None:
        # RFC 6241 8.1: a client hello with a session-id ends the session.
        raise _FramingError("the client's hello carries a session-id")
    return {
        (c.text or "").strip() for c in hello.iterfind(f"{qn('capabilities')}/{qn('capability')}")
    }


def _reply(attrs: dict[str, str], data: Any = None, error: RpcError | None = None) -> bytes:
    reply = etree.Element(qn("rpc-reply"), nsmap={None: BASE_NS})
    for key, value in attrs.items():
        reply.set(key, value)
    if error is not None:
        reply.append(error.to_xml())
    elif data is not None:
        reply.append(data)
    else:
        etree.SubElement(reply, qn("ok"))
    return etree.tostring(reply, xml_declaration=True, encoding="UTF-8")  # type: ignore[no-any-return]


class NetconfRunner:
    """A :class:`NetconfServer` on its own asyncio loop in a daemon thread.

    Takes the same arguments as :class:`NetconfServer`. Use as a context
    manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        backend: DeviceBackend,
        devices: Iterable[str],
        host: str = "127.0.0.1",
        base_port: int = 0,
        username: str = "admin",
        password: str | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.server = NetconfServer(
            backend, devices, host, base_port, username, password, max_message_bytes
        )
        self._runner = LoopThread("autonoc-netconf")

    @classmethod
    def for_network(cls, network: LabNetwork, **kwargs: Any) -> NetconfRunner:
        """A runner serving every device of ``network`` through a :class:`LabNetworkBackend`."""
        return cls(LabNetworkBackend(network), network.device_names, **kwargs)

    @property
    def host(self) -> str:
        """The address the listeners bind."""
        return self.server.host

    @property
    def ports(self) -> dict[str, int]:
        """Each device's TCP port, once started."""
        return dict(self.server.ports)

    @property
    def username(self) -> str:
        """The SSH user."""
        return self.server.username

    @property
    def password(self) -> str:
        """The SSH password."""
        return self.server.password

    def start(self) -> None:
        """Start the loop thread and the server; returns once every device listens.

        Raises:
            LabError: the server cannot start.
        """
        if self._runner.started:
            raise LabError("the NETCONF runner is already running")
        self._runner.start()
        try:
            self._runner.call(self.server.start(), _START_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server and end the thread. Idempotent."""
        if self._runner.started:
            self._runner.stop(self.server.stop(), _START_TIMEOUT)

    def __enter__(self) -> NetconfRunner:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
