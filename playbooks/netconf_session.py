"""One NETCONF session for one change: candidate, confirmed commit, confirm or cancel.

The engine opens a session of its own per change (not the collectors' pool):
the confirmed commit belongs to this session, so when the session goes (the
worker is killed, the network drops) the device rolls the change back by
itself (RFC 6241 section 8.4). The session therefore stays open from the
commit through verification to the confirming commit.

ncclient blocks; every call here runs in a worker thread (``asyncio.to_thread``)
and replies are parsed by the collectors' safe parser (no DTD, no entities).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

import structlog
from lxml import etree
from ncclient import manager

from autonoc.core.errors import AutonocError, DeviceRejected
from autonoc.core.inventory import Device
from collectors.netconf import (
    close_manager,
    connect_args,
    map_netconf_errors,
    parse_reply,
    reply_data,
)

__all__ = ["CANDIDATE", "CONFIRMED_COMMIT", "ConfigSession"]

log = structlog.get_logger(__name__)

Element = Any
CANDIDATE = "urn:ietf:params:netconf:capability:candidate:1.0"
CONFIRMED_COMMIT = "urn:ietf:params:netconf:capability:confirmed-commit:1.1"
_CONFIRMED_COMMIT_10 = "urn:ietf:params:netconf:capability:confirmed-commit:1.0"


class ConfigSession:
    """A blocking NETCONF session that changes a device's configuration safely.

    Args:
        device: the inventory device (its ``netconf`` credentials).
        timeout: seconds to wait for each reply.
        connect_timeout: seconds to connect and exchange hellos.
        connect: ``ncclient.manager.connect``; tests pass another.
    """

    def __init__(
        self,
        device: Device,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        connect: Callable[..., Any] = manager.connect,
    ) -> None:
        self.device = device
        self.timeout = timeout
        self._locked: list[str] = []
        with map_netconf_errors(device, timeout):
            self._mgr = connect(
                **connect_args(device, connect_timeout=connect_timeout, timeout=timeout)
            )
            self._mgr.async_mode = True
        caps = {str(c).split("?")[0] for c in self._mgr.server_capabilities}
        self.has_candidate = CANDIDATE in caps
        self.has_confirmed_commit = bool(caps & {CONFIRMED_COMMIT, _CONFIRMED_COMMIT_10})

    # ---- RPCs ------------------------------------------------------------------

    def _call(self, send: Callable[[Any], Any]) -> Element:
        with map_netconf_errors(self.device, self.timeout):
            rpc = send(self._mgr)
            if not rpc.event.wait(self.timeout):
                raise TimeoutError(f"no NETCONF reply within {self.timeout:g} s")
            if rpc.error is not None:
                raise rpc.error
            return reply_data(parse_reply(rpc.reply.xml))

    def require_confirmed_commit(self) -> None:
        if not (self.has_candidate and self.has_confirmed_commit):
            raise DeviceRejected(
                self.device.name,
                "its NETCONF server lacks :candidate or :confirmed-commit, which autonoc "
                "requires for NETCONF changes (set confirmed_commit: false in its platform file "
                "only for a device you accept changing without automatic rollback)",
            )

    def lock(self, target: str = "candidate") -> None:
        """Lock ``target``. A candidate left dirty by a session that is gone cannot be
        locked (RFC 6241 7.5): its changes are discarded and the lock tried once more."""
        try:
            self._call(lambda m: m.lock(target))
        except DeviceRejected:
            if target != "candidate":
                raise
            log.info("netconf_candidate_dirty", device=self.device.name)
            self.discard_changes()
            self._call(lambda m: m.lock(target))
        self._locked.append(target)

    def locked(self, target: str) -> bool:
        return target in self._locked

    def _unlock(self, target: str) -> None:
        self._call(lambda m: m.unlock(target))

    def discard_changes(self) -> None:
        self._call(lambda m: m.discard_changes())

    def get_config(self, filter_: Element | None = None, source: str = "running") -> Element:
        if filter_ is None:
            return self._call(lambda m: m.get_config(source=source))
        return self._call(lambda m: m.get_config(source=source, filter=filter_))

    def edit_candidate(self, config: Element, *, replace: bool = False) -> None:
        if replace:
            self._call(
                lambda m: m.edit_config(
                    target="candidate", config=config, default_operation="replace"
                )
            )
        else:
            self._call(lambda m: m.edit_config(target="candidate", config=config))

    def commit_confirmed(self, timeout_s: int) -> None:
        """Commit the candidate; the device rolls it back unless confirmed within ``timeout_s``."""
        self._call(lambda m: m.commit(confirmed=True, timeout=str(int(timeout_s))))

    def commit(self) -> None:
        """Confirm a pending confirmed commit (or commit the candidate)."""
        self._call(lambda m: m.commit())

    def cancel_commit(self) -> None:
        self._call(lambda m: m.cancel_commit())

    def dispatch(self, rpc: Element) -> Element:
        return self._call(lambda m: m.dispatch(rpc))

    # ---- ending ------------------------------------------------------------------

    def close(self) -> None:
        """Unlock what this session locked and end it politely."""
        for target in reversed(self._locked):
            with suppress(AutonocError):
                self._unlock(target)
        self._locked.clear()
        close_manager(self._mgr, polite=True)

    def drop(self) -> None:
        """End the transport without a word, as a crash would (tests: lost sessions)."""
        close_manager(self._mgr, polite=False)

    @property
    def connected(self) -> bool:
        return bool(self._mgr.connected)


def xml_text(element: Element) -> str:
    """Canonical, pretty XML text of a configuration for diffs and archives."""
    clean = etree.fromstring(etree.tostring(element))
    etree.indent(clean, space="  ")
    return str(etree.tostring(clean, encoding="unicode"))
