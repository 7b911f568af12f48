"""Candidate and confirmed-commit semantics (RFC 6241 sections 7, 8.3, 8.4) on two servers.

Every test runs twice: against the lab's own NETCONF server (``autonoc-lab``)
and against Debian's yuma123 ``netconfd`` behind OpenSSH (``netconfd``), an
independent implementation, so our server's semantics are checked against
someone else's rather than against our reading of the RFC alone. Both are
driven by unmodified ncclient.

Each server is edited in its own data model: the lab's OpenConfig
interfaces, and netconfd's ``autonoc-test`` module, which has the same shape
(``interfaces/interface[name]/config/{description,enabled}``) in another
namespace and starts with the same interfaces as the lab's ``pe1``. Where the
RFC leaves a choice (an error tag it does not name, when a candidate is
checked), the tests assert only what it mandates and say so.

Timing: rollbacks are polled for with a deadline; "stays" is observed for a
while past the confirm timeout. Nothing asserts how long anything took. Stock
ncclient 0.7.1 waits up to 100 ms per synchronous RPC, and netconfd looks at
its confirm timer only after a second with no traffic on any session, so it is
polled at most every 1.5 s (faster polling would postpone its rollback for as
long as the polling lasts, and would let a "stays" test pass without a timer
ever having had the chance to fire).
"""

from __future__ import annotations

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

from lab.netconf import OC_INTERFACES_NS, NetconfRunner
from lab.network import LabNetwork
from tests.integration.netconfd import NAMESPACE, require_netconfd, start_netconfd

pytestmark = pytest.mark.integration

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
DEVICE = "pe1"
IFNAME = "eth1"
ORIGINAL = "to p1 eth1"  # eth1's description on both servers at start
CONFIRM_TIMEOUT = 2  # seconds; RFC 6241 allows any positive value
# How long past the confirm timeout a rollback may take: netconfd's clock has
# one-second resolution and waits for a quiet second, polls come every 1.5 s,
# and each costs ncclient up to 100 ms.
ROLLBACK_SLACK = 5.0
# How long a change must survive past its (cancelled) confirm timeout.
STAY_SLACK = 2.0
# A long confirm timeout, for tests where only something else may roll back.
LONG_TIMEOUT = 120
PROMPT = 10.0  # seconds: "at once", far inside LONG_TIMEOUT

Manager = Any  # an ncclient.manager.Manager


@dataclass
class Server:
    """One NETCONF server under test, and the sessions the test opened to it.

    Attributes:
        name: the test id (``autonoc-lab`` or ``netconfd``).
        namespace: the namespace of its ``interfaces`` model.
        open_session: logs in and returns a new ncclient manager.
        poll_interval: seconds between reads while waiting for a change.
    """

    name: str
    namespace: str
    open_session: Callable[[], Manager]
    poll_interval: float
    sessions: list[Manager] = field(default_factory=list)

    def connect(self) -> Manager:
        """A new session, closed at teardown if the test leaves it open."""
        m = self.open_session()
        self.sessions.append(m)
        return m

    def close_all(self) -> None:
        for m in self.sessions:
            if m.connected:
                # A session a test broke on purpose may fail to close cleanly.
                with suppress(RPCError, TransportError):
                    m.close_session()

    def eventually(self, read: Callable[[], object], want: object, seconds: float) -> object:
        """Poll ``read`` until it returns ``want`` or ``seconds`` pass; return its last value."""
        deadline = time.monotonic() + seconds
        value = read()
        while value != want and time.monotonic() < deadline:
            time.sleep(self.poll_interval)
            value = read()
        return value

    def holds(self, read: Callable[[], object], want: object, seconds: float) -> object:
        """Poll ``read`` for ``seconds``; return the first value that is not ``want``, else it."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = read()
            if value != want:
                return value
            time.sleep(self.poll_interval)
        return read()

    def config(self, *interfaces: str) -> str:
        """An edit-config ``<config>`` holding these ``<interface>`` elements."""
        return (
            f'<config xmlns="{BASE}" xmlns:nc="{BASE}">'
            f'<interfaces xmlns="{self.namespace}">{"".join(interfaces)}</interfaces></config>'
        )

    def description(self, m: Manager, source: str, ifname: str = IFNAME) -> str | None:
        """``ifname``'s configured description in ``source``, or None if it has none."""
        return self.leaf(m, source, ifname, "description")

    def leaf(self, m: Manager, source: str, ifname: str, name: str) -> str | None:
        """The text of ``interface[ifname]/config/<name>`` in ``source``, or None."""
        flt = (
            f'<interfaces xmlns="{self.namespace}"><interface><name>{ifname}</name>'
            "</interface></interfaces>"
        )
        data = m.get_config(source=source, filter=("subtree", flt)).data_ele
        found = data.xpath(
            f"//x:interface[x:name='{ifname}']/x:config/x:{name}/text()",
            namespaces={"x": self.namespace},
        )
        return str(found[0]) if found else None

    def has_interface(self, m: Manager, source: str, ifname: str) -> bool:
        """Whether ``source`` has an ``interface`` entry named ``ifname``."""
        flt = f'<interfaces xmlns="{self.namespace}"/>'
        data = m.get_config(source=source, filter=("subtree", flt)).data_ele
        names = data.xpath("//x:interface/x:name/text()", namespaces={"x": self.namespace})
        return ifname in names


def _description(ifname: str, text: str, op: str | None = None) -> str:
    """An ``<interface>`` setting ``config/description``, with an optional operation on it."""
    attr = f' nc:operation="{op}"' if op else ""
    return (
        f"<interface><name>{ifname}</name>"
        f"<config><description{attr}>{text}</description></config></interface>"
    )


# Fixtures -------------------------------------------------------------------------


def _lab_server(runner: NetconfRunner) -> Server:
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

    return Server("autonoc-lab", OC_INTERFACES_NS, open_session, poll_interval=0.1)


def _mirror_of(network: LabNetwork, device: str, namespace: str) -> str:
    """A netconfd startup config with ``device``'s interfaces as the lab starts them."""
    entries = "".join(
        f"<interface><name>{i.name}</name><config><name>{i.name}</name>"
        f"<description>{escape(i.alias)}</description>"
        f"<enabled>{'true' if i.admin_up else 'false'}</enabled></config></interface>"
        for i in network.interfaces(device)
    )
    return f'<config xmlns="{BASE}"><interfaces xmlns="{namespace}">{entries}</interfaces></config>'


@pytest.fixture(params=["autonoc-lab", "netconfd"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A fresh server of each kind, its interfaces as the lab's ``pe1`` starts them."""
    network = LabNetwork.preset("ring4")
    if request.param == "autonoc-lab":
        with NetconfRunner.for_network(network) as runner:
            srv = _lab_server(runner)
            try:
                yield srv
            finally:
                srv.close_all()
        return
    require_netconfd()
    with start_netconfd(tmp_path / "netconfd", _mirror_of(network, DEVICE, NAMESPACE)) as nc:
        # netconfd checks the confirm timeout only after a whole second with no
        # traffic on any session (its select() timeout): polling faster would
        # hold a rollback off for as long as the polling lasts.
        srv = Server("netconfd", nc.namespace, nc.connect, poll_interval=1.5)
        try:
            yield srv
        finally:
            srv.close_all()


def _error_session_id(err: RPCError) -> str | None:
    return err.xml.findtext(f"{{{BASE}}}error-info/{{{BASE}}}session-id")  # type: ignore[no-any-return]


# Tests ----------------------------------------------------------------------------


def test_capabilities(server: Server) -> None:
    caps = set(server.connect().server_capabilities)
    for cap in ("candidate:1.0", "confirmed-commit:1.1", "validate:1.1"):
        assert f"urn:ietf:params:netconf:capability:{cap}" in caps


def test_commit_copies_the_candidate_to_running(server: Server) -> None:
    m = server.connect()
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "edited")))
    assert server.description(m, "candidate") == "edited"
    assert server.description(m, "running") == ORIGINAL  # not before the commit
    m.commit()
    assert server.description(m, "running") == "edited"
    assert server.description(server.connect(), "running") == "edited"  # for everyone


def test_discard_changes_resets_the_candidate(server: Server) -> None:
    m = server.connect()
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "scratch")))
    m.discard_changes()
    assert server.description(m, "candidate") == ORIGINAL
    m.commit()  # nothing left to commit
    assert server.description(m, "running") == ORIGINAL


def test_unconfirmed_commit_rolls_back_after_its_timeout(server: Server) -> None:
    m, observer = server.connect(), server.connect()
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "trial")))
    m.commit(confirmed=True, timeout=str(CONFIRM_TIMEOUT))
    assert server.description(observer, "running") == "trial"
    # m stays open: only the timer may undo the commit.
    running = server.eventually(
        lambda: server.description(observer, "running"), ORIGINAL, CONFIRM_TIMEOUT + ROLLBACK_SLACK
    )
    assert running == ORIGINAL
    assert m.connected


def test_confirming_commit_keeps_the_change(server: Server) -> None:
    m = server.connect()
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "kept")))
    m.commit(confirmed=True, timeout=str(CONFIRM_TIMEOUT))
    m.commit()  # the confirming commit
    read = lambda: server.description(m, "running")  # noqa: E731
    assert server.holds(read, "kept", CONFIRM_TIMEOUT + STAY_SLACK) == "kept"


def test_persisted_commit_outlives_its_session_and_another_confirms_it(server: Server) -> None:
    m1 = server.connect()
    m1.edit_config(target="candidate", config=server.config(_description(IFNAME, "persisted")))
    timeout = 2 * CONFIRM_TIMEOUT  # room for one session to close and another to open
    m1.commit(confirmed=True, timeout=str(timeout), persist="change-42")
    armed = time.monotonic()
    m1.close_session()

    m2 = server.connect()
    assert server.description(m2, "running") == "persisted"  # the close did not undo it
    with pytest.raises(RPCError) as err:
        m2.commit(persist_id="change-41")
    # ietf-netconf.yang (RFC 6241 8.3.4.1): a persist-id that does not match fails
    # with invalid-value.
    assert err.value.tag == "invalid-value"
    m2.commit(persist_id="change-42")
    left = timeout - (time.monotonic() - armed)
    read = lambda: server.description(m2, "running")  # noqa: E731
    assert server.holds(read, "persisted", max(left, 0) + STAY_SLACK) == "persisted"


def test_cancel_commit_rolls_back(server: Server) -> None:
    m = server.connect()
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "cancelled")))
    m.commit(confirmed=True, timeout=str(LONG_TIMEOUT))
    assert server.description(m, "running") == "cancelled"
    m.cancel_commit()
    assert server.eventually(lambda: server.description(m, "running"), ORIGINAL, PROMPT) == ORIGINAL


def test_follow_up_confirmed_commit_extends_and_cancel_goes_back_before_the_first(
    server: Server,
) -> None:
    """RFC 6241 8.4.1: a follow-up confirmed commit resets the timer; a rollback
    restores the configuration from before the first confirmed commit."""
    m = server.connect()
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "first")))
    m.commit(confirmed=True, timeout=str(CONFIRM_TIMEOUT))
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "second")))
    m.commit(confirmed=True, timeout=str(LONG_TIMEOUT))
    read = lambda: server.description(m, "running")  # noqa: E731
    assert server.holds(read, "second", CONFIRM_TIMEOUT + STAY_SLACK) == "second"
    m.cancel_commit()
    assert server.eventually(read, ORIGINAL, PROMPT) == ORIGINAL


def test_only_its_session_may_confirm_an_unpersisted_commit(server: Server) -> None:
    """RFC 6241 8.4.1: without persist, follow-up commits must come from the same session."""
    m1, m2 = server.connect(), server.connect()
    m1.edit_config(target="candidate", config=server.config(_description(IFNAME, "mine")))
    m1.commit(confirmed=True, timeout=str(LONG_TIMEOUT))
    with pytest.raises(RPCError):  # both servers say in-use; the RFC names no tag
        m2.commit()
    with pytest.raises(RPCError):
        m2.cancel_commit()
    m1.cancel_commit()  # still pending, and still m1's to end
    assert server.eventually(lambda: server.description(m2, "running"), ORIGINAL, PROMPT) == (
        ORIGINAL
    )


@pytest.mark.parametrize("ending", ["dropped", "closed"])
def test_session_end_rolls_back_an_unpersisted_commit(server: Server, ending: str) -> None:
    """RFC 6241 8.4.1: the confirmed commit's session ending, however, undoes it at once."""
    m, observer = server.connect(), server.connect()
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "fragile")))
    m.commit(confirmed=True, timeout=str(LONG_TIMEOUT))
    assert server.description(observer, "running") == "fragile"
    if ending == "dropped":
        m._session.close()  # the transport goes, as on a lost link: no close-session
    else:
        m.close_session()
    read = lambda: server.description(observer, "running")  # noqa: E731
    assert server.eventually(read, ORIGINAL, PROMPT) == ORIGINAL


def test_locks_keep_other_sessions_out(server: Server) -> None:
    m1, m2 = server.connect(), server.connect()
    edit = server.config(_description(IFNAME, "from m2"))
    m1.lock("candidate")
    m1.lock("running")

    with pytest.raises(RPCError) as err:
        m2.lock("candidate")
    # RFC 6241 7.5: lock-denied, with the holder's session-id in error-info.
    assert err.value.tag == "lock-denied"
    assert _error_session_id(err.value) == str(m1.session_id)

    # RFC 6241 names no tag for writing a datastore another session locked; both
    # servers answer in-use (appendix A: "the request requires a resource that
    # already is in use"), lock-denied would be as fair.
    for attempt in (
        lambda: m2.edit_config(target="candidate", config=edit),
        m2.discard_changes,
        m2.commit,
    ):
        with pytest.raises(RPCError) as err:
            attempt()
        assert err.value.tag in {"in-use", "lock-denied"}
    assert server.description(m1, "candidate") == ORIGINAL
    assert server.description(m1, "running") == ORIGINAL

    m1.unlock("running")
    m1.unlock("candidate")
    m2.edit_config(target="candidate", config=edit)
    # RFC 6241 7.5: a lock MUST NOT be granted on a candidate with uncommitted
    # changes, but no tag is named for it (only for a lock already held). The lab
    # answers lock-denied with session-id 0, netconfd resource-denied.
    with pytest.raises(RPCError):
        m1.lock("candidate")
    m2.commit()
    assert server.description(m1, "running") == "from m2"
    m1.lock("candidate")  # committed: the lock is free again


def test_edit_config_merge_replace_delete_on_the_candidate(server: Server) -> None:
    m = server.connect()

    # merge (the default operation) changes the leaf it names and nothing else.
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "merged")))
    assert server.description(m, "candidate") == "merged"
    assert server.leaf(m, "candidate", IFNAME, "enabled") == "true"

    # replace swaps a whole subtree: enabled, not given, goes.
    m.edit_config(
        target="candidate",
        config=server.config(
            f"<interface><name>{IFNAME}</name><config nc:operation='replace'>"
            f"<name>{IFNAME}</name><description>replaced</description></config></interface>"
        ),
    )
    assert server.description(m, "candidate") == "replaced"
    assert server.leaf(m, "candidate", IFNAME, "enabled") is None

    # delete removes the node; deleting it again is data-missing (RFC 6241 7.2).
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "", "delete")))
    assert server.description(m, "candidate") is None
    with pytest.raises(RPCError) as err:
        m.edit_config(target="candidate", config=server.config(_description(IFNAME, "", "delete")))
    assert err.value.tag == "data-missing"
    # remove of what is absent is no error (RFC 6241 7.2).
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "", "remove")))

    # create of what exists is data-exists (RFC 6241 7.2).
    with pytest.raises(RPCError) as err:
        m.edit_config(
            target="candidate",
            config=server.config("<interface nc:operation='create'><name>eth2</name></interface>"),
        )
    assert err.value.tag == "data-exists"

    assert server.description(m, "running") == ORIGINAL  # all of it on the candidate only
    m.discard_changes()
    assert server.description(m, "candidate") == ORIGINAL


def test_validate(server: Server) -> None:
    m = server.connect()
    m.edit_config(target="candidate", config=server.config(_description(IFNAME, "valid")))
    m.validate(source="candidate")

    # An interface the device does not have: the lab checks that a node names
    # a real interface, netconfd the module's must statement.
    bogus = server.config("<interface><name>bogus0</name></interface>")
    with pytest.raises(RPCError):
        m.validate(source=etree.fromstring(bogus))
    not_boolean = server.config(
        f"<interface><name>{IFNAME}</name><config><enabled>maybe</enabled></config></interface>"
    )
    with pytest.raises(RPCError):
        m.validate(source=etree.fromstring(not_boolean))

    # RFC 6241 leaves open when a candidate is checked: netconfd refuses the edit
    # itself, the lab takes it and refuses validate and commit. Either way the
    # invalid config must not reach running.
    try:
        m.edit_config(target="candidate", config=bogus)
    except RPCError:
        pass
    else:
        with pytest.raises(RPCError):
            m.validate(source="candidate")
        with pytest.raises(RPCError):
            m.commit()
    assert not server.has_interface(m, "running", "bogus0")
    assert server.description(m, "running") == ORIGINAL
