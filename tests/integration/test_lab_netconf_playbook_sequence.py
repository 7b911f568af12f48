"""The NETCONF sequence the playbook engine runs, end to end, on the lab and on netconfd.

The engine changes a device as: lock the candidate, discard-changes, edit-config
on the candidate (a merge; or, to restore the last known good configuration,
``default-operation=replace`` with the whole of it), commit with
``<confirmed/><confirm-timeout>``, verify, then a confirming ``<commit/>`` or a
``<cancel-commit/>``, get-config of running, unlock. A session lost while its
confirmed commit is pending must roll back at once. A candidate left with
uncommitted changes by a session that is gone cannot be locked (RFC 6241 7.5)
until it is discarded, so the engine discards first when its lock is refused.

Each path runs against the lab's own server (``autonoc-lab``, the ring4 lab's
``pe1``) and yuma123's ``netconfd`` (its ``autonoc-test`` interfaces module, see
:mod:`tests.integration.netconfd`), both driven by unmodified ncclient.
Restoring the last known good configuration undoes a drift made behind the
engine's back: on the lab an MTU pushed into the device model (the
``config_drift`` fault, which takes the IS-IS adjacency down), on netconfd a
description committed by another session. Nothing asserts how long anything took.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from lxml import etree
from ncclient import manager
from ncclient.operations import RPCError
from ncclient.transport import TransportError

from lab.faults import FaultInjector
from lab.netconf import OC_INTERFACES_NS, NetconfRunner
from lab.network import LabNetwork
from tests.integration.netconfd import NAMESPACE, require_netconfd, start_netconfd

pytestmark = pytest.mark.integration

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
DEVICE, IFNAME = "pe1", "eth1"
ORIGINAL = "to p1 eth1"  # pe1:eth1's description on both servers at start
CONFIRM_TIMEOUT = 2  # seconds
LONG_TIMEOUT = 120  # for paths where only something else may roll back
PROMPT = 10.0  # "at once": far inside LONG_TIMEOUT
# Past a confirm timeout, how long a confirmed change must still be there.
# netconfd checks its timer only after a quiet second (see test_netconf_semantics).
STAY_SLACK = 3.0

Manager = Any  # an ncclient.manager.Manager


@dataclass
class Target:
    """One server under test, how to reach it, and how to drift its configuration.

    Attributes:
        name: the test id.
        namespace: the namespace of its interfaces model.
        open_session: logs in and returns a new ncclient manager.
        poll_interval: seconds between reads while waiting for a change.
        drift: changes the running configuration behind the engine's back;
            returns the leaf (under ``interface[eth1]/config``) it changed.
        restored: asserts the device itself runs the restored configuration.
    """

    name: str
    namespace: str
    open_session: Callable[[], Manager]
    poll_interval: float
    drift: Callable[[], str]
    restored: Callable[[], None]
    sessions: list[Manager] = field(default_factory=list)

    def connect(self) -> Manager:
        m = self.open_session()
        self.sessions.append(m)
        return m

    def close_all(self) -> None:
        for m in self.sessions:
            if m.connected:
                with suppress(RPCError, TransportError):
                    m.close_session()

    def leaf(self, m: Manager, source: str, name: str) -> str | None:
        """``interface[eth1]/config/<name>`` in ``source``, or None."""
        flt = (
            f'<interfaces xmlns="{self.namespace}"><interface><name>{IFNAME}</name>'
            "</interface></interfaces>"
        )
        data = m.get_config(source=source, filter=("subtree", flt)).data_ele
        found = data.xpath(
            f"//x:interface[x:name='{IFNAME}']/x:config/x:{name}/text()",
            namespaces={"x": self.namespace},
        )
        return str(found[0]) if found else None

    def description_edit(self, text: str) -> str:
        return (
            f'<config xmlns="{BASE}"><interfaces xmlns="{self.namespace}"><interface>'
            f"<name>{IFNAME}</name><config><description>{text}</description></config>"
            "</interface></interfaces></config>"
        )

    def eventually(self, read: Callable[[], object], want: object, seconds: float) -> object:
        deadline = time.monotonic() + seconds
        value = read()
        while value != want and time.monotonic() < deadline:
            time.sleep(self.poll_interval)
            value = read()
        return value

    def holds(self, read: Callable[[], object], want: object, seconds: float) -> object:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = read()
            if value != want:
                return value
            time.sleep(self.poll_interval)
        return read()


def begin(m: Manager) -> None:
    """The engine's opening: the candidate is ours, and clean."""
    m.lock("candidate")
    m.discard_changes()


def whole_config(data: Any) -> str:
    """A ``<get-config>`` reply's ``<data>`` as an edit-config ``<config>``: every top node."""
    config = etree.Element(f"{{{BASE}}}config", nsmap={None: BASE})
    for child in data:
        if isinstance(child.tag, str):
            config.append(copy.deepcopy(child))
    text: str = etree.tostring(config, encoding="unicode")
    return text


# Fixtures -----------------------------------------------------------------------------


def _lab(network: LabNetwork, runner: NetconfRunner) -> Target:
    faults = FaultInjector(network)

    def open_session() -> Manager:
        return manager.connect(
            host=runner.host,
            port=runner.ports[DEVICE],
            username=runner.username,
            password=runner.password,
            hostkey_verify=False,
            allow_agent=False,
            look_for_keys=False,
            timeout=10,
        )

    def drift() -> str:
        faults.inject("config_drift", f"{DEVICE}:{IFNAME}", {"mtu": 1500})
        assert network.interface(DEVICE, IFNAME).mtu == 1500
        assert not network.interface(DEVICE, IFNAME).igp_up  # p1 still has 9000
        return "mtu"

    def restored() -> None:
        state = network.interface(DEVICE, IFNAME)
        assert state.mtu == 9000 and state.igp_up
        (fault,) = faults.faults()
        assert not fault.present  # the platform fixed it: the ground truth says so

    return Target("autonoc-lab", OC_INTERFACES_NS, open_session, 0.1, drift, restored)


def _netconfd_startup(network: LabNetwork) -> str:
    entries = "".join(
        f"<interface><name>{i.name}</name><config><name>{i.name}</name>"
        f"<description>{escape(i.alias)}</description>"
        f"<enabled>{'true' if i.admin_up else 'false'}</enabled></config></interface>"
        for i in network.interfaces(DEVICE)
    )
    return f'<config xmlns="{BASE}"><interfaces xmlns="{NAMESPACE}">{entries}</interfaces></config>'


@pytest.fixture(params=["autonoc-lab", "netconfd"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    network = LabNetwork.preset("ring4")
    if request.param == "autonoc-lab":
        with NetconfRunner.for_network(network) as runner:
            srv = _lab(network, runner)
            try:
                yield srv
            finally:
                srv.close_all()
        return
    require_netconfd()
    with start_netconfd(tmp_path / "netconfd", _netconfd_startup(network)) as nc:
        holder: list[Target] = []

        def drift() -> str:
            other = holder[0].connect()
            other.edit_config(target="candidate", config=holder[0].description_edit("drifted"))
            other.commit()
            other.close_session()
            return "description"

        srv = Target("netconfd", nc.namespace, nc.connect, 1.5, drift, lambda: None)
        holder.append(srv)
        try:
            yield srv
        finally:
            srv.close_all()


# The engine's paths ------------------------------------------------------------------------


def test_confirm_path(target: Target) -> None:
    m, observer = target.connect(), target.connect()
    begin(m)
    m.edit_config(target="candidate", config=target.description_edit("engine change"))
    m.commit(confirmed=True, timeout=str(CONFIRM_TIMEOUT))
    assert target.leaf(observer, "running", "description") == "engine change"
    m.commit()  # verified: confirm
    assert target.leaf(m, "running", "description") == "engine change"
    m.unlock("candidate")
    read = lambda: target.leaf(observer, "running", "description")  # noqa: E731
    assert target.holds(read, "engine change", CONFIRM_TIMEOUT + STAY_SLACK) == "engine change"
    observer.lock("candidate")  # the engine let go of it


def test_cancel_path(target: Target) -> None:
    m = target.connect()
    begin(m)
    m.edit_config(target="candidate", config=target.description_edit("not verified"))
    m.commit(confirmed=True, timeout=str(LONG_TIMEOUT))
    assert target.leaf(m, "running", "description") == "not verified"
    m.cancel_commit()  # verification failed: back out now
    read = lambda: target.leaf(m, "running", "description")  # noqa: E731
    assert target.eventually(read, ORIGINAL, PROMPT) == ORIGINAL
    assert target.leaf(m, "candidate", "description") == ORIGINAL
    m.unlock("candidate")


def test_dropped_session_path(target: Target) -> None:
    m, observer = target.connect(), target.connect()
    begin(m)
    m.edit_config(target="candidate", config=target.description_edit("in flight"))
    m.commit(confirmed=True, timeout=str(LONG_TIMEOUT))
    assert target.leaf(observer, "running", "description") == "in flight"
    m._session.close()  # the SSH transport goes, as on a lost link: no close-session
    read = lambda: target.leaf(observer, "running", "description")  # noqa: E731
    assert target.eventually(read, ORIGINAL, PROMPT) == ORIGINAL
    # Its lock went with it, and nothing of its edit is left in the candidate.
    observer.lock("candidate")
    assert target.leaf(observer, "candidate", "description") == ORIGINAL
    observer.unlock("candidate")


def test_replace_whole_config_restores_the_last_known_good(target: Target) -> None:
    m = target.connect()
    good = m.get_config(source="running").data_ele
    last_known_good = whole_config(good)
    leaf = target.drift()
    # No read between the drift and the restore: the engine's next step is the lock.
    begin(m)
    m.edit_config(target="candidate", config=last_known_good, default_operation="replace")
    m.commit(confirmed=True, timeout=str(CONFIRM_TIMEOUT))
    m.commit()
    running = m.get_config(source="running").data_ele
    m.unlock("candidate")
    want = good.xpath(
        f"//x:interface[x:name='{IFNAME}']/x:config/x:{leaf}/text()",
        namespaces={"x": target.namespace},
    )
    got = running.xpath(
        f"//x:interface[x:name='{IFNAME}']/x:config/x:{leaf}/text()",
        namespaces={"x": target.namespace},
    )
    assert got == want
    target.restored()
    read = lambda: target.leaf(m, "running", leaf)  # noqa: E731
    assert target.holds(read, want[0], CONFIRM_TIMEOUT + STAY_SLACK) == want[0]
    target.restored()


def test_a_candidate_left_dirty_is_taken_back_with_discard_then_lock(target: Target) -> None:
    """RFC 6241 7.5: no lock on a candidate with uncommitted changes. A session that edited
    without a lock and went away leaves them behind; the engine's lock then fails (the lab
    says lock-denied with session-id 0, netconfd resource-denied) until it discards first."""
    abandoned = target.connect()
    abandoned.edit_config(target="candidate", config=target.description_edit("abandoned"))
    abandoned.close_session()
    m = target.connect()
    with pytest.raises(RPCError) as err:
        m.lock("candidate")
    assert err.value.tag in {"lock-denied", "resource-denied"}
    m.discard_changes()
    begin(m)
    assert target.leaf(m, "candidate", "description") == ORIGINAL
    m.unlock("candidate")
