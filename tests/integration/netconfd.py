"""A private, throw-away yuma123 ``netconfd`` behind OpenSSH, for integration tests.

Debian's ``netconfd`` (package ``netconfd``, yuma123) is an independent
NETCONF server with the candidate datastore and confirmed commit 1.0/1.1.
It does not speak SSH itself: OpenSSH's ``sshd`` runs ``netconf-subsystem``
for each session, which relays it over a unix socket to ``netconfd``::

    ncclient ─ssh→ sshd -D -f WORK/sshd_config            127.0.0.1:PORT, key auth only
                     └─ netconf-subsystem --ncxserver-sockname=PORT@SOCK
                          └─unix→ netconfd --ncxserver-sockname=SOCK --port=PORT

:func:`start_netconfd` runs that pair in the foreground on a free loopback
port with every file in a directory of its own: host and client keys, the
sshd configuration, the ``autonoc-test`` YANG module, netconfd's data
directory and both logs. The SSH user is whoever runs the tests, let in by a
generated ed25519 key; sshd as root also needs ``/run/sshd``, made if missing.
On exit both servers and every session process under sshd are ended.

Usage::

    with start_netconfd(tmp_path) as nc:
        m = nc.connect()
        m.edit_config(target="candidate", config=...)
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import psutil
from ncclient import manager
from ncclient.transport import TransportError

from tests.integration.conftest import require_programs

__all__ = [
    "APT_PACKAGES",
    "MODULE_NAME",
    "NAMESPACE",
    "NetconfdError",
    "NetconfdServer",
    "missing_programs",
    "require_netconfd",
    "start_netconfd",
]

NETCONFD = Path("/usr/sbin/netconfd")
NETCONF_SUBSYSTEM = Path("/usr/sbin/netconf-subsystem")
SSHD = Path("/usr/sbin/sshd")

# The Debian package that ships each program.
_PACKAGE_OF = {NETCONFD: "netconfd", NETCONF_SUBSYSTEM: "netconfd", SSHD: "openssh-server"}
APT_PACKAGES: tuple[str, ...] = ("netconfd", "openssh-server")
"""What ``apt-get install`` needs for these tests."""

MODULE_NAME = "autonoc-test"
NAMESPACE = "urn:autonoc:test"

# Config only (netconfd has no instrumentation for state data without SIL code),
# and shaped like the part of openconfig-interfaces the lab server serves, so one
# edit differs between the two servers only in its namespace. The must statement
# is checked when the candidate is validated or committed, like the lab's check
# that an interface exists on the device.
MODULE_YANG = f"""\
module {MODULE_NAME} {{
  yang-version 1;
  namespace "{NAMESPACE}";
  prefix at;
  description
    "Interfaces, config only: the part of openconfig-interfaces that autonoc's
     lab NETCONF server serves, for checking NETCONF semantics against netconfd.";
  revision 2024-01-01 {{
    description "First revision.";
  }}
  container interfaces {{
    list interface {{
      key name;
      must "starts-with(name, 'eth') or starts-with(name, 'lo')" {{
        error-message "no such interface on this device";
      }}
      leaf name {{
        type string;
      }}
      container config {{
        leaf name {{
          type string;
        }}
        leaf description {{
          type string;
        }}
        leaf enabled {{
          type boolean;
          default true;
        }}
      }}
    }}
  }}
}}
"""

_HOST = "127.0.0.1"
_STOP_TIMEOUT = 5.0
_PORT_TRIES = 3
# sockaddr_un.sun_path holds 108 bytes, and netconf-subsystem truncates a longer
# path without a word, so the socket lives in a short directory of its own.
_MAX_SOCKET_PATH = 100


class NetconfdError(RuntimeError):
    """netconfd or its sshd did not start; the message carries both logs' tails."""


@dataclass(frozen=True)
class NetconfdServer:
    """Where a running :func:`start_netconfd` pair listens, and how to log in.

    Attributes:
        host: the loopback address sshd listens on.
        port: its TCP port.
        username: the SSH user (whoever runs the tests).
        key_file: the user's private key (OpenSSH format, no passphrase).
        namespace: the test YANG module's namespace, for config and filters.
        workdir: where the configuration, keys and logs are.
    """

    host: str
    port: int
    username: str
    key_file: Path
    namespace: str
    workdir: Path

    def connect(self, timeout: float = 10.0) -> Any:
        """An ncclient manager logged in with the generated key (the caller closes it)."""
        return manager.connect(
            host=self.host,
            port=self.port,
            username=self.username,
            key_filename=str(self.key_file),
            hostkey_verify=False,
            allow_agent=False,
            look_for_keys=False,
            timeout=timeout,
        )

    def logs(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the sshd and netconfd logs."""
        return _log_tails(self.workdir, lines)


def missing_programs() -> list[str]:
    """The programs these tests need that are not installed, with their packages."""
    return [
        f"{path} (apt-get install {_PACKAGE_OF[path]})"
        for path in (NETCONFD, NETCONF_SUBSYSTEM, SSHD)
        if not os.access(path, os.X_OK)
    ]


def require_netconfd() -> None:
    """Skip the calling test unless netconfd and sshd are installed; with ``CI=true``, fail."""
    require_programs(missing_programs(), "apt-get install netconfd openssh-server")


@contextmanager
def start_netconfd(
    workdir: Path,
    startup: str | None = None,
    timeout: float = 30.0,
    modules: Sequence[str] = (),
) -> Iterator[NetconfdServer]:
    """Run a private netconfd behind sshd on a free loopback port until the block ends.

    Args:
        workdir: an empty directory for every file of this pair (keys,
            configuration, logs); left in place for post-mortems.
        startup: a ``<config>`` document (NETCONF base namespace) loaded as the
            initial running configuration; None starts empty.
        timeout: how long to wait for a NETCONF session to open.
        modules: more YANG modules to load (``--module=NAME``), e.g. ``ietf-interfaces``.

    Yields:
        Where the pair listens, once ncclient can open a session through it.

    Raises:
        NetconfdError: a server exits or no session opens within ``timeout``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    username = pwd.getpwuid(os.geteuid()).pw_name
    key_file = _write_keys(workdir)
    module = workdir / f"{MODULE_NAME}.yang"
    module.write_text(MODULE_YANG)
    startup_file: Path | None = None
    if startup is not None:
        startup_file = workdir / "startup-cfg.xml"
        startup_file.write_text(startup)
    yuma_home = workdir / "yuma-home"
    (yuma_home / "data").mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # sshd run as root chroots its pre-auth child there and will not start without it.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    sockdir = Path(tempfile.mkdtemp(prefix="autonoc-ncx-"))
    sock = sockdir / "ncxserver.sock"
    try:
        if len(str(sock)) >= _MAX_SOCKET_PATH:
            raise NetconfdError(
                f"netconfd's socket path {sock} is too long for a unix socket "
                "(point TMPDIR at a shorter directory, e.g. TMPDIR=/tmp)"
            )
        for attempt in range(1, _PORT_TRIES + 1):
            port = _free_port()
            server = NetconfdServer(_HOST, port, username, key_file, NAMESPACE, workdir)
            with ExitStack() as stack:
                sshd_config = _write_sshd_config(workdir, port, sock)
                sshd = stack.enter_context(
                    _process([str(SSHD), "-D", "-e", "-f", str(sshd_config)], workdir / "sshd.log")
                )
                netconfd = stack.enter_context(
                    _process(
                        [
                            *_netconfd_argv(sock, port, module, startup_file, yuma_home),
                            *(f"--module={m}" for m in modules),
                        ],
                        workdir / "netconfd.log",
                    )
                )
                try:
                    _wait_ready(server, sshd, netconfd, sock, timeout)
                except _PortTaken:
                    if attempt == _PORT_TRIES:
                        raise NetconfdError(
                            f"sshd found {_PORT_TRIES} free ports taken before it bound them\n"
                            + server.logs()
                        ) from None
                    continue
                yield server
                return
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


# Setup ---------------------------------------------------------------------------


def _write_keys(workdir: Path) -> Path:
    """Write the sshd host key, the client key and authorized_keys; return the client key."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    host_file = workdir / "ssh_host_ed25519_key"
    key_file = workdir / "client_ed25519_key"
    for path, key in ((host_file, host_key), (key_file, client_key)):
        # sshd refuses a host key that others can read; so would ssh a client key.
        path.touch(mode=0o600)
        path.write_bytes(key.export_private_key("openssh"))
    (workdir / "authorized_keys").write_bytes(client_key.export_public_key("openssh"))
    return key_file


def _write_sshd_config(workdir: Path, port: int, sock: Path) -> Path:
    """An sshd_config for key login to the netconf subsystem only, on loopback."""
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {_HOST}",
                f"Port {port}",
                f"HostKey {workdir / 'ssh_host_ed25519_key'}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
                # The key files sit under /tmp, which is world-writable: StrictModes
                # would refuse them, and the keys are throw-away anyway.
                "StrictModes no",
                "UsePAM no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "AllowTcpForwarding no",
                "X11Forwarding no",
                "PermitTTY no",
                # netconf-subsystem picks the socket whose PORT@ prefix matches the
                # port the client came in on (from SSH_CONNECTION).
                f"Subsystem netconf {NETCONF_SUBSYSTEM} --ncxserver-sockname={port}@{sock}",
                "",
            ]
        )
    )
    return config


def _netconfd_argv(
    sock: Path, port: int, module: Path, startup: Path | None, yuma_home: Path
) -> list[str]:
    return [
        str(NETCONFD),
        f"--ncxserver-sockname={sock}",
        # netconfd drops sessions that arrive on a port it was not told about.
        f"--port={port}",
        f"--module={module}",
        "--target=candidate",
        # NACM's default denies writes to anyone but a superuser; these tests are
        # about commit semantics, not access control.
        "--access-control=off",
        # :url would let a session read and write files as the user running the tests.
        "--with-url=false",
        # Keeps the startup transaction id and the saved running config in workdir.
        f"--yuma-home={yuma_home}",
        f"--startup={startup}" if startup is not None else "--no-startup",
    ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_HOST, 0))
        return int(s.getsockname()[1])


# Processes -----------------------------------------------------------------------


@contextmanager
def _process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` with output to ``log``; on exit end it and all its descendants."""
    # "wb": a retry on another port starts a fresh log, so an old bind error in it
    # cannot be taken for a new one.
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            yield proc
        finally:
            _terminate_tree(proc)


def _terminate_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``proc`` and its descendants, SIGKILL what is left after a grace period.

    sshd's per-connection children call setsid() and outlive the listener, so
    they are found before it goes (afterwards they would belong to init).
    """
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    for child in descendants:
        with suppress(psutil.NoSuchProcess):
            child.terminate()
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(_STOP_TIMEOUT)
    _, alive = psutil.wait_procs(descendants, timeout=_STOP_TIMEOUT)
    for child in alive:
        with suppress(psutil.NoSuchProcess):
            child.kill()


class _PortTaken(Exception):
    """Another process bound the free port before sshd did."""


def _wait_ready(
    server: NetconfdServer,
    sshd: subprocess.Popen[bytes],
    netconfd: subprocess.Popen[bytes],
    sock: Path,
    timeout: float,
) -> None:
    """Return once ncclient opens (and closes) a session through the pair.

    Raises:
        _PortTaken: sshd could not bind its port.
        NetconfdError: a server exited, or no session opened in time.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if sshd.poll() is not None:
            log = (server.workdir / "sshd.log").read_text(errors="replace")
            if "Address already in use" in log or "Cannot bind any address" in log:
                raise _PortTaken
            raise NetconfdError(f"sshd exited with status {sshd.returncode}\n" + server.logs())
        if netconfd.poll() is not None:
            raise NetconfdError(
                f"netconfd exited with status {netconfd.returncode}\n" + server.logs()
            )
        if sock.exists():
            try:
                session = server.connect(timeout=5.0)
            except (OSError, TransportError) as exc:
                last_error = exc
            else:
                session.close_session()
                return
        time.sleep(0.1)
    raise NetconfdError(
        f"no NETCONF session opened on {server.host}:{server.port} within {timeout:g} s "
        f"(last error: {last_error!r})\n" + server.logs()
    )


def _log_tails(workdir: Path, lines: int) -> str:
    parts = []
    for name in ("sshd.log", "netconfd.log"):
        path = workdir / name
        text = path.read_text(errors="replace") if path.exists() else "(none)"
        tail = "\n".join(text.splitlines()[-lines:])
        parts.append(f"--- {path} (last {lines} lines) ---\n{tail}")
    return "\n".join(parts)
