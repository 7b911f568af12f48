"""FRR configuration through ``vtysh``: the ``frr-vtysh`` rendering of playbook operations.

FRR speaks no NETCONF, so its playbook renderings are *settings*: a typed knob
(``ospf-cost``, ``bgp-neighbor-enabled``, ``interface-enabled``) whose current
value is read from ``show running-config`` and whose new value is written by a
few configuration-mode commands in one ``vtysh`` call::

    vtysh -c "configure terminal" -c "interface eth1" -c "ip ospf cost 65535" -c "end"

Why this is not a string template with device text in it: the commands are
built here, by code, one fixed shape per setting; every value that goes into
them is first checked against its type (an interface name of at most 15
characters from ``[A-Za-z0-9_.:-]``, an integer cost within OSPF's 1..65535,
an IP address parsed and written back canonically, an AS number read as an
integer), and each command is one argv element of an ``exec`` (no shell), so
no value can add a command, a keyword or a line. Platform files only *name* a
setting; they cannot change what is sent.

FRR 8.4 has no candidate configuration or confirmed commit for ``ospfd`` and
``bgpd`` (the ``--tcli`` transactional CLI covers only daemons converted to
the northbound layer, and ``vtysh`` has no ``configure exclusive``), so a
change is *applied* by one ``vtysh`` call and *rolled back* by a second call
that writes the values read before; the engine does that on a failed
verification, as it does for SNMP SETs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from autonoc.core.errors import DeviceRejected, DeviceUnreachable, PlaybookValidationError
from autonoc.core.inventory import Device

__all__ = [
    "FRR_RUN_DIR",
    "NETNS_TAG",
    "FrrSetting",
    "NetnsVtysh",
    "Setting",
    "VtyshDriver",
    "parse_running_config",
]

Setting = Literal["ospf-cost", "bgp-neighbor-enabled", "interface-enabled"]

#: Where FRR daemons started with ``-N NAME`` keep their vty sockets: ``FRR_RUN_DIR/NAME``.
FRR_RUN_DIR = Path("/var/run/frr")
#: Inventory tag naming the network namespace (and FRR pathspace) of a namespace-lab router.
NETNS_TAG = "netns:"

_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$")
_PATHSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class VtyshDriver(Protocol):
    """Reaches one FRR instance's ``vtysh`` for the playbook engine."""

    def reaches(self, device: Device) -> bool:
        """True when this driver can configure ``device``."""
        ...

    async def running_config(self, device: Device) -> str:
        """``show running-config``, as text."""
        ...

    async def configure(self, device: Device, commands: Sequence[str]) -> None:
        """Run ``commands`` in configuration mode, in one ``vtysh`` call; raise on any error."""
        ...


# ---- the running configuration ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    header: str
    body: tuple[str, ...]


def parse_running_config(text: str) -> list[Block]:
    """Top-level lines and their indented bodies (``interface eth1`` ... ``exit``)."""
    blocks: list[Block] = []
    header: str | None = None
    body: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("!"):
            continue
        if raw[:1].isspace():
            if header is not None:
                body.append(line.strip())
            continue
        if header is not None:
            blocks.append(Block(header, tuple(body)))
        header, body = (None, []) if line.strip() in ("exit", "end") else (line.strip(), [])
    if header is not None:
        blocks.append(Block(header, tuple(body)))
    return blocks


def _block(blocks: Sequence[Block], header: str) -> Block | None:
    for b in blocks:
        if b.header == header:
            return b
    return None


def _bgp_block(blocks: Sequence[Block]) -> tuple[int, Block] | None:
    for b in blocks:
        m = re.fullmatch(r"router bgp (\d+)", b.header)
        if m:
            return int(m.group(1)), b
    return None


# ---- typed settings -------------------------------------------------------------


def interface_name(text: str) -> str:
    """A Linux interface name, or PlaybookValidationError."""
    if not _IFNAME.match(text):
        raise PlaybookValidationError(
            f"{text!r} is not an interface name FRR can configure "
            "(1-15 characters: letters, digits, _ . : -)"
        )
    return text


def neighbor_address(text: str) -> str:
    """An IP address in canonical form, or PlaybookValidationError."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise PlaybookValidationError(f"{text!r} is not a BGP neighbour address") from None


def ospf_cost(value: str) -> int:
    """An OSPF interface cost (1..65535), or PlaybookValidationError."""
    try:
        cost = int(value)
    except ValueError:
        raise PlaybookValidationError(f"OSPF cost {value!r} is not an integer") from None
    if not 1 <= cost <= 65535:
        raise PlaybookValidationError(
            f"OSPF cost {cost} is outside 1..65535 (FRR's OSPF interface cost); "
            "for drain-link on FRR pass metric=65535"
        )
    return cost


def _flag(value: str) -> bool:
    if value not in ("true", "false"):
        raise PlaybookValidationError(f"expected true or false, not {value!r}")
    return value == "true"


@dataclass(frozen=True, slots=True)
class FrrSetting:
    """One configuration knob of an FRR router: how it reads and how it is written.

    Values are text, as the engine journals them: a cost as digits, a flag as
    ``true``/``false``; ``None`` means "not configured" (FRR's default).
    """

    setting: Setting
    target: str

    def describe(self) -> str:
        where = {
            "ospf-cost": f"interface {self.target} / ip ospf cost",
            "interface-enabled": f"interface {self.target} / shutdown",
            "bgp-neighbor-enabled": f"router bgp / neighbor {self.target} shutdown",
        }[self.setting]
        return f"frr:{where}"

    def read(self, running: str) -> str | None:
        blocks = parse_running_config(running)
        if self.setting == "ospf-cost":
            block = _block(blocks, f"interface {interface_name(self.target)}")
            for line in block.body if block else ():
                m = re.fullmatch(r"ip ospf cost (\d+)", line)
                if m:
                    return m.group(1)
            return None
        if self.setting == "interface-enabled":
            block = _block(blocks, f"interface {interface_name(self.target)}")
            return "false" if block is not None and "shutdown" in block.body else "true"
        bgp = _bgp_block(blocks)
        address = neighbor_address(self.target)
        if bgp is None:
            return None
        body = bgp[1].body
        if not any(line.startswith(f"neighbor {address} ") for line in body):
            return None
        shut = any(re.fullmatch(rf"neighbor {re.escape(address)} shutdown( .*)?", x) for x in body)
        return "false" if shut else "true"

    def commands(self, value: str | None, running: str) -> list[str]:
        """Configuration-mode commands that set this knob to ``value`` (None: FRR's default)."""
        if self.setting == "ospf-cost":
            ifname = interface_name(self.target)
            line = "no ip ospf cost" if value is None else f"ip ospf cost {ospf_cost(value)}"
            return [f"interface {ifname}", line, "exit"]
        if self.setting == "interface-enabled":
            ifname = interface_name(self.target)
            up = True if value is None else _flag(value)
            return [f"interface {ifname}", "no shutdown" if up else "shutdown", "exit"]
        address = neighbor_address(self.target)
        bgp = _bgp_block(parse_running_config(running))
        if bgp is None:
            raise PlaybookValidationError("the router runs no BGP (no 'router bgp' in its config)")
        enabled = True if value is None else _flag(value)
        line = f"no neighbor {address} shutdown" if enabled else f"neighbor {address} shutdown"
        return [f"router bgp {bgp[0]}", line, "exit"]


# ---- the driver for the namespace lab ---------------------------------------------------


class NetnsVtysh:
    """``vtysh`` of an FRR instance on this host, found by its pathspace.

    A namespace-lab router carries the inventory tag ``netns:NAME``; its
    daemons run with ``-N NAME``, so their vty sockets are in
    ``/var/run/frr/NAME``. ``vtysh`` talks to them over those unix sockets,
    so it needs no ``ip netns exec``; it must run as root or in group frrvty.
    """

    def __init__(self, run_dir: Path = FRR_RUN_DIR, timeout: float = 20.0) -> None:
        self.run_dir = run_dir
        self.timeout = timeout

    def pathspace(self, device: Device) -> str | None:
        for tag in device.tags:
            if tag.startswith(NETNS_TAG):
                name = tag[len(NETNS_TAG) :]
                return name if _PATHSPACE.match(name) else None
        return None

    def reaches(self, device: Device) -> bool:
        space = self.pathspace(device)
        return space is not None and (self.run_dir / space).is_dir()

    async def running_config(self, device: Device) -> str:
        return await self._vtysh(device, ["show running-config"])

    async def configure(self, device: Device, commands: Sequence[str]) -> None:
        for c in commands:
            if "\n" in c or "\r" in c:
                raise PlaybookValidationError(f"a vtysh command holds a line break: {c!r}")
        await self._vtysh(device, ["configure terminal", *commands, "end"])

    async def _vtysh(self, device: Device, commands: Sequence[str]) -> str:
        space = self.pathspace(device)
        if space is None:
            raise DeviceUnreachable(device.name, "no netns:NAME tag: vtysh cannot find its FRR")
        where = str(self.run_dir / space)
        argv = ["vtysh", "--vty_socket", where, "--config_dir", where]
        for c in commands:
            argv += ["-c", c]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise DeviceUnreachable(
                device.name, "vtysh is not installed (apt-get install frr)"
            ) from None
        try:
            out, errb = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise DeviceUnreachable(
                device.name, f"vtysh gave no answer in {self.timeout:g} s"
            ) from None
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            why = (errb.decode(errors="replace") + text).strip().splitlines()
            detail = "; ".join(x for x in why if x.startswith("%"))[:300] or f"rc {proc.returncode}"
            if "failed to connect" in " ".join(why):
                raise DeviceUnreachable(device.name, f"vtysh cannot reach FRR in {where}")
            raise DeviceRejected(device.name, f"vtysh refused the change: {detail}")
        return text
