"""The NETCONF datastore's semantics, with a fake backend and a fake clock: no sockets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from lxml import etree

from lab.netconf.backend import OC_INTERFACES_NS, LabNetworkBackend
from lab.netconf.datastore import BASE_NS, Datastore, RpcError, parse_xml
from lab.network import LabNetwork

NS = "urn:example:lab"
NSMAP = f'xmlns="{NS}" xmlns:nc="{BASE_NS}"'


class FakeTimer:
    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeScheduler:
    """A clock that only moves when a test advances it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[FakeTimer] = []

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer in sorted(self.timers, key=lambda t: t.due):
            if timer.due <= self.now and not timer.cancelled:
                timer.cancelled = True
                timer.callback()


class FakeBackend:
    """Interfaces keyed by name, each with an mtu and an enabled leaf."""

    def __init__(self) -> None:
        self.changes: list[str] = []
        self.state_calls = 0

    @property
    def list_keys(self) -> Mapping[str, tuple[str, ...]]:
        return {f"{{{NS}}}interface": ("name",)}

    def initial_config(self, device: str) -> Any:
        return _xml(
            f"<data xmlns='{BASE_NS}'><interfaces xmlns='{NS}'>"
            "<interface><name>eth1</name><mtu>1500</mtu><enabled>true</enabled></interface>"
            "<interface><name>eth2</name><mtu>9000</mtu><enabled>true</enabled></interface>"
            "</interfaces><system xmlns='" + NS + "'><hostname>r1</hostname></system></data>"
        )

    def validate(self, device: str, config: Any) -> None:
        for mtu in config.iter(f"{{{NS}}}mtu"):
            if not (mtu.text or "").isdigit():
                raise RpcError("invalid-value", f"mtu {mtu.text!r} is not a number")

    def config_changed(self, device: str, running: Any) -> None:
        self.changes.append(etree.tostring(running).decode())

    def operational(self, device: str) -> Any:
        self.state_calls += 1
        return _xml(
            f"<data xmlns='{BASE_NS}'><interfaces xmlns='{NS}'>"
            "<interface><name>eth1</name><state><oper-status>UP</oper-status></state></interface>"
            "</interfaces></data>"
        )


def _xml(text: str) -> Any:
    return parse_xml(text.encode())


def _config(body: str) -> Any:
    return _xml(f"<config xmlns='{BASE_NS}'><interfaces {NSMAP}>{body}</interfaces></config>")


def _leaf(store_tree: Any, ifname: str, leaf: str) -> str | None:
    for intf in store_tree.iter(f"{{{NS}}}interface"):
        if intf.findtext(f"{{{NS}}}name") == ifname:
            return intf.findtext(f"{{{NS}}}{leaf}")  # type: ignore[no-any-return]
    return None


def _names(tree: Any) -> list[str]:
    return [i.findtext(f"{{{NS}}}name") for i in tree.iter(f"{{{NS}}}interface")]


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def clock() -> FakeScheduler:
    return FakeScheduler()


@pytest.fixture
def store(backend: FakeBackend, clock: FakeScheduler) -> Datastore:
    return Datastore("r1", backend, clock)


# edit-config ------------------------------------------------------------------


def test_merge_changes_a_leaf_on_the_candidate_only(store: Datastore) -> None:
    store.edit_config(
        1, "candidate", _config("<interface><name>eth1</name><mtu>9100</mtu></interface>")
    )
    assert _leaf(store.candidate, "eth1", "mtu") == "9100"
    assert _leaf(store.candidate, "eth1", "enabled") == "true"
    assert _leaf(store.candidate, "eth2", "mtu") == "9000"
    assert _leaf(store.running, "eth1", "mtu") == "1500"


def test_merge_of_a_new_list_entry_creates_it(store: Datastore) -> None:
    store.edit_config(
        1, "candidate", _config("<interface><name>eth3</name><mtu>1400</mtu></interface>")
    )
    assert _names(store.candidate) == ["eth1", "eth2", "eth3"]


def test_replace_swaps_the_whole_entry(store: Datastore) -> None:
    body = "<interface nc:operation='replace'><name>eth1</name><mtu>1600</mtu></interface>"
    store.edit_config(1, "candidate", _config(body))
    assert _leaf(store.candidate, "eth1", "mtu") == "1600"
    assert _leaf(store.candidate, "eth1", "enabled") is None
    assert "operation" not in etree.tostring(store.candidate).decode()


def test_default_operation_replace_replaces_the_datastore(store: Datastore) -> None:
    body = "<interface><name>eth2</name><mtu>1500</mtu></interface>"
    store.edit_config(1, "candidate", _config(body), default_operation="replace")
    assert _names(store.candidate) == ["eth2"]
    assert store.candidate.find(f"{{{NS}}}system") is None


def test_create_on_an_existing_node_gives_data_exists(store: Datastore) -> None:
    body = "<interface nc:operation='create'><name>eth1</name><mtu>1</mtu></interface>"
    with pytest.raises(RpcError) as err:
        store.edit_config(1, "candidate", _config(body))
    assert err.value.tag == "data-exists"
    assert _leaf(store.candidate, "eth1", "mtu") == "1500"


def test_create_of_a_new_node_adds_it(store: Datastore) -> None:
    body = "<interface nc:operation='create'><name>eth7</name><mtu>1500</mtu></interface>"
    store.edit_config(1, "candidate", _config(body))
    assert "eth7" in _names(store.candidate)


def test_delete_removes_and_delete_of_a_missing_node_gives_data_missing(store: Datastore) -> None:
    store.edit_config(
        1, "candidate", _config("<interface nc:operation='delete'><name>eth2</name></interface>")
    )
    assert _names(store.candidate) == ["eth1"]
    with pytest.raises(RpcError) as err:
        store.edit_config(
            1,
            "candidate",
            _config("<interface nc:operation='delete'><name>eth2</name></interface>"),
        )
    assert err.value.tag == "data-missing"
    assert err.value.error_type == "application"


def test_remove_of_a_missing_node_is_fine(store: Datastore) -> None:
    body = "<interface nc:operation='remove'><name>eth9</name></interface>"
    store.edit_config(1, "candidate", _config(body))
    assert _names(store.candidate) == ["eth1", "eth2"]


def test_delete_of_a_leaf(store: Datastore) -> None:
    body = "<interface><name>eth1</name><mtu nc:operation='delete'/></interface>"
    store.edit_config(1, "candidate", _config(body))
    assert _leaf(store.candidate, "eth1", "mtu") is None
    assert _leaf(store.candidate, "eth1", "enabled") == "true"


def test_default_operation_none_only_applies_explicit_operations(store: Datastore) -> None:
    body = (
        "<interface><name>eth1</name><mtu>1</mtu><enabled nc:operation='replace'>false</enabled>"
        "</interface><interface><name>eth5</name><mtu>1</mtu></interface>"
    )
    store.edit_config(1, "candidate", _config(body), default_operation="none")
    assert _leaf(store.candidate, "eth1", "mtu") == "1500"
    assert _leaf(store.candidate, "eth1", "enabled") == "false"
    assert _names(store.candidate) == ["eth1", "eth2"]


def test_stop_on_error_keeps_earlier_edits_and_rollback_on_error_keeps_none(
    store: Datastore,
) -> None:
    body = (
        "<interface><name>eth1</name><mtu>2000</mtu></interface>"
        "<interface nc:operation='delete'><name>eth9</name></interface>"
    )
    with pytest.raises(RpcError):
        store.edit_config(1, "candidate", _config(body), error_option="rollback-on-error")
    assert _leaf(store.candidate, "eth1", "mtu") == "1500"
    with pytest.raises(RpcError):
        store.edit_config(1, "candidate", _config(body), error_option="stop-on-error")
    assert _leaf(store.candidate, "eth1", "mtu") == "2000"


def test_bad_operation_attribute_is_rejected(store: Datastore) -> None:
    body = "<interface nc:operation='explode'><name>eth1</name></interface>"
    with pytest.raises(RpcError) as err:
        store.edit_config(1, "candidate", _config(body))
    assert err.value.tag == "bad-attribute"


def test_edit_of_running_notifies_the_backend(store: Datastore, backend: FakeBackend) -> None:
    store.edit_config(
        1, "running", _config("<interface><name>eth1</name><mtu>1400</mtu></interface>")
    )
    assert _leaf(store.running, "eth1", "mtu") == "1400"
    assert len(backend.changes) == 1


def test_an_invalid_edit_of_running_is_refused_by_the_model_hook(
    store: Datastore, backend: FakeBackend
) -> None:
    body = "<interface><name>eth1</name><mtu>big</mtu></interface>"
    with pytest.raises(RpcError) as err:
        store.edit_config(1, "running", _config(body))
    assert err.value.tag == "invalid-value"
    assert _leaf(store.running, "eth1", "mtu") == "1500"
    assert backend.changes == []


# Filters ----------------------------------------------------------------------


def _filter(body: str) -> Any:
    return _xml(f"<filter xmlns='{BASE_NS}' type='subtree'>{body}</filter>")


def test_no_filter_returns_everything_and_an_empty_filter_nothing(store: Datastore) -> None:
    assert _names(store.get_config("running")) == ["eth1", "eth2"]
    assert len(store.get_config("running", _filter(""))) == 0


def test_containment_with_content_match_selects_one_entry(store: Datastore) -> None:
    data = store.get_config(
        "running",
        _filter(f"<interfaces xmlns='{NS}'><interface><name>eth2</name></interface></interfaces>"),
    )
    assert _names(data) == ["eth2"]
    # Only content-match nodes at that level: the whole entry comes back.
    assert _leaf(data, "eth2", "mtu") == "9000"
    assert data.find(f"{{{NS}}}system") is None


def test_selection_node_picks_one_leaf_of_every_entry(store: Datastore) -> None:
    data = store.get_config(
        "running", _filter(f"<interfaces xmlns='{NS}'><interface><mtu/></interface></interfaces>")
    )
    entries = list(data.iter(f"{{{NS}}}interface"))
    assert len(entries) == 2
    assert [e.findtext(f"{{{NS}}}mtu") for e in entries] == ["1500", "9000"]
    assert all(e.find(f"{{{NS}}}enabled") is None for e in entries)


def test_content_match_plus_selection(store: Datastore) -> None:
    flt = (
        f"<interfaces xmlns='{NS}'><interface><name>eth1</name><enabled/></interface></interfaces>"
    )
    data = store.get_config("running", _filter(flt))
    assert _names(data) == ["eth1"]
    assert _leaf(data, "eth1", "enabled") == "true"
    assert _leaf(data, "eth1", "mtu") is None


def test_content_match_that_fails_selects_nothing(store: Datastore) -> None:
    flt = f"<interfaces xmlns='{NS}'><interface><name>eth9</name></interface></interfaces>"
    assert len(store.get_config("running", _filter(flt))) == 0


def test_filter_namespaces_must_match(store: Datastore) -> None:
    assert len(store.get_config("running", _filter("<system xmlns='urn:other'/>"))) == 0
    data = store.get_config("running", _filter(f"<system xmlns='{NS}'/>"))
    assert data.findtext(f"{{{NS}}}system/{{{NS}}}hostname") == "r1"


def test_get_merges_state_into_config(store: Datastore) -> None:
    flt = f"<interfaces xmlns='{NS}'><interface><name>eth1</name></interface></interfaces>"
    data = store.get(_filter(flt))
    assert data.findtext(f".//{{{NS}}}oper-status") == "UP"
    assert _leaf(data, "eth1", "mtu") == "1500"


# Locks ----------------------------------------------------------------------


def test_lock_denied_names_the_holder_and_closing_releases(store: Datastore) -> None:
    store.lock(1, "running")
    with pytest.raises(RpcError) as err:
        store.lock(2, "running")
    assert err.value.tag == "lock-denied"
    assert ("session-id", "1") in err.value.info
    with pytest.raises(RpcError) as err:
        store.edit_config(2, "running", _config("<interface><name>eth1</name></interface>"))
    assert err.value.tag == "in-use"
    store.session_closed(1)
    store.lock(2, "running")
    assert store.lock_holder("running") == 2


def test_unlock_by_another_session_fails(store: Datastore) -> None:
    store.lock(1, "candidate")
    with pytest.raises(RpcError):
        store.unlock(2, "candidate")
    store.unlock(1, "candidate")
    assert store.lock_holder("candidate") is None


def test_candidate_with_changes_cannot_be_locked(store: Datastore) -> None:
    store.edit_config(
        1, "candidate", _config("<interface><name>eth1</name><mtu>1</mtu></interface>")
    )
    with pytest.raises(RpcError) as err:
        store.lock(2, "candidate")
    assert err.value.tag == "lock-denied"
    store.discard_changes(1)
    store.lock(2, "candidate")


# Commit, discard, validate ------------------------------------------------------


def _disable_eth1(store: Datastore, session: int = 1) -> None:
    body = "<interface><name>eth1</name><enabled>false</enabled></interface>"
    store.edit_config(session, "candidate", _config(body))


def test_commit_copies_candidate_and_discard_resets(store: Datastore, backend: FakeBackend) -> None:
    _disable_eth1(store)
    store.discard_changes(1)
    assert _leaf(store.candidate, "eth1", "enabled") == "true"
    _disable_eth1(store)
    store.commit(1)
    assert _leaf(store.running, "eth1", "enabled") == "false"
    assert len(backend.changes) == 1


def test_commit_of_an_invalid_candidate_fails(store: Datastore) -> None:
    store.edit_config(
        1, "candidate", _config("<interface><name>eth1</name><mtu>x</mtu></interface>")
    )
    with pytest.raises(RpcError) as err:
        store.validate("candidate")
    assert err.value.tag == "invalid-value"
    with pytest.raises(RpcError):
        store.commit(1)
    assert _leaf(store.running, "eth1", "mtu") == "1500"


# Confirmed commit -----------------------------------------------------------------


def test_confirmed_commit_rolls_back_when_the_timeout_elapses(
    store: Datastore, backend: FakeBackend, clock: FakeScheduler
) -> None:
    before = etree.tostring(store.running)
    _disable_eth1(store)
    store.commit(1, confirmed=True, timeout=2)
    assert _leaf(store.running, "eth1", "enabled") == "false"
    clock.advance(1.9)
    assert store.confirmed_commit_pending
    clock.advance(0.2)
    assert not store.confirmed_commit_pending
    assert _leaf(store.running, "eth1", "enabled") == "true"
    assert _leaf(store.candidate, "eth1", "enabled") == "true"
    assert etree.tostring(store.running) == before
    assert len(backend.changes) == 2
    assert "false" not in backend.changes[-1]


def test_confirming_commit_makes_it_permanent(store: Datastore, clock: FakeScheduler) -> None:
    _disable_eth1(store)
    store.commit(1, confirmed=True, timeout=2)
    store.commit(1)
    clock.advance(10)
    assert _leaf(store.running, "eth1", "enabled") == "false"


def test_cancel_commit_rolls_back(store: Datastore, backend: FakeBackend) -> None:
    before = etree.tostring(store.running)
    _disable_eth1(store)
    store.commit(1, confirmed=True, timeout=60)
    store.cancel_commit(1)
    assert etree.tostring(store.running) == before
    with pytest.raises(RpcError):
        store.cancel_commit(1)


def test_session_drop_rolls_back_unless_persisted(store: Datastore, clock: FakeScheduler) -> None:
    _disable_eth1(store)
    store.commit(1, confirmed=True, timeout=60)
    store.session_closed(1)
    assert _leaf(store.running, "eth1", "enabled") == "true"

    _disable_eth1(store, session=2)
    store.commit(2, confirmed=True, timeout=60, persist="tok")
    store.session_closed(2)
    assert _leaf(store.running, "eth1", "enabled") == "false"
    with pytest.raises(RpcError) as err:
        store.commit(3, persist_id="wrong")
    assert err.value.tag == "invalid-value"
    store.commit(3, persist_id="tok")
    clock.advance(120)
    assert _leaf(store.running, "eth1", "enabled") == "false"


def test_persisted_commit_can_be_cancelled_from_another_session(store: Datastore) -> None:
    _disable_eth1(store)
    store.commit(1, confirmed=True, timeout=60, persist="tok")
    store.cancel_commit(2, persist_id="tok")
    assert _leaf(store.running, "eth1", "enabled") == "true"


def test_unpersisted_commit_belongs_to_its_session(store: Datastore) -> None:
    _disable_eth1(store)
    store.commit(1, confirmed=True, timeout=60)
    with pytest.raises(RpcError) as err:
        store.commit(2)
    assert err.value.tag == "in-use"


def test_follow_up_confirmed_commit_keeps_the_first_backup(
    store: Datastore, clock: FakeScheduler
) -> None:
    _disable_eth1(store)
    store.commit(1, confirmed=True, timeout=10)
    store.edit_config(
        1, "candidate", _config("<interface><name>eth2</name><mtu>1</mtu></interface>")
    )
    clock.advance(8)
    store.commit(1, confirmed=True, timeout=10)
    clock.advance(8)  # past the first timer: it must not fire any more
    assert _leaf(store.running, "eth2", "mtu") == "1"
    clock.advance(3)
    assert _leaf(store.running, "eth1", "enabled") == "true"
    assert _leaf(store.running, "eth2", "mtu") == "9000"


# RPC dispatch and parsing -----------------------------------------------------------


def test_rpc_dispatches_commit_parameters(store: Datastore, clock: FakeScheduler) -> None:
    _disable_eth1(store)
    commit = (
        f"<commit xmlns='{BASE_NS}'><confirmed/><confirm-timeout>5</confirm-timeout>"
        "<persist>p1</persist></commit>"
    )
    store.rpc(1, _xml(commit))
    assert store.confirmed_commit_pending
    store.rpc(
        2, _xml(f"<cancel-commit xmlns='{BASE_NS}'><persist-id>p1</persist-id></cancel-commit>")
    )
    assert not store.confirmed_commit_pending


def test_unknown_rpc_is_operation_not_supported(store: Datastore) -> None:
    with pytest.raises(RpcError) as err:
        store.rpc(1, _xml(f"<reboot-everything xmlns='{BASE_NS}'/>"))
    assert err.value.tag == "operation-not-supported"
    with pytest.raises(RpcError) as err:
        store.rpc(1, _xml("<get xmlns='urn:not-netconf'/>"))
    assert err.value.tag == "operation-not-supported"


def test_get_config_rpc_with_filter(store: Datastore) -> None:
    op = _xml(
        f"<get-config xmlns='{BASE_NS}'><source><candidate/></source>"
        f"<filter type='subtree'><system xmlns='{NS}'/></filter></get-config>"
    )
    data = store.rpc(1, op)
    assert data is not None
    assert data.findtext(f"{{{NS}}}system/{{{NS}}}hostname") == "r1"


def test_parser_refuses_entities_doctype_and_oversize() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(RpcError) as err:
        parse_xml(bomb)
    assert err.value.tag == "malformed-message"
    with pytest.raises(RpcError):
        parse_xml(b"<rpc>", max_bytes=100)
    with pytest.raises(RpcError):
        parse_xml(b"<x>" + b"a" * 200 + b"</x>", max_bytes=100)


# The LabNetwork backend (pure) ------------------------------------------------------


def test_lab_backend_drives_admin_status_and_rollback_restores(clock: FakeScheduler) -> None:
    network = LabNetwork.preset("ring4")
    store = Datastore("pe1", LabNetworkBackend(network), clock)
    oc = f"xmlns='{OC_INTERFACES_NS}'"
    body = (
        f"<interfaces {oc}><interface><name>eth1</name>"
        "<config><enabled>false</enabled></config></interface></interfaces>"
    )
    store.edit_config(1, "candidate", _xml(f"<config xmlns='{BASE_NS}'>{body}</config>"))
    store.commit(1, confirmed=True, timeout=3)
    assert not network.interface("pe1", "eth1").admin_up
    assert not network.interface("p1", "eth1").oper_up
    clock.advance(3)
    assert network.interface("pe1", "eth1").admin_up
    assert network.interface("p1", "eth1").oper_up
    bad = f"<interfaces {oc}><interface><name>eth99</name></interface></interfaces>"
    with pytest.raises(RpcError) as err:
        store.edit_config(1, "running", _xml(f"<config xmlns='{BASE_NS}'>{bad}</config>"))
    assert err.value.tag == "invalid-value"
    flt = (
        f"<filter xmlns='{BASE_NS}'><interfaces {oc}><interface><name>eth1</name>"
        "<state><counters/></state></interface></interfaces></filter>"
    )
    state = store.get(_xml(flt))
    assert int(state.findtext(f".//{{{OC_INTERFACES_NS}}}in-octets")) >= 0
