"""The NETCONF datastore's semantics, with a fake backend and a fake clock: no sockets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from lxml import etree

from lab.netconf.backend import OC_INTERFACES_NS, LabNetworkBackend
from lab.netconf.datastore import BASE_NS, Datastore, RpcError, parse_xml
from lab.netconf.openconfig import (
    OC_AMPLIFIER_NS,
    OC_IP_NS,
    OC_LINE_COMMON_NS,
    OC_NETWORK_INSTANCE_NS,
    OC_PLATFORM_NS,
    OC_SYSTEM_NS,
    OC_TERMINAL_DEVICE_NS,
    OC_TRANSCEIVER_NS,
)
from lab.network import LabNetwork
from tests.unit.fakes import FakeClock

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


# OpenConfig by device role, on metro-ring (pure) -------------------------------------

OC_NS = {
    "if": OC_INTERFACES_NS,
    "ip": OC_IP_NS,
    "ni": OC_NETWORK_INSTANCE_NS,
    "sys": OC_SYSTEM_NS,
    "plat": OC_PLATFORM_NS,
    "xcvr": OC_TRANSCEIVER_NS,
    "term": OC_TERMINAL_DEVICE_NS,
    "amp": OC_AMPLIFIER_NS,
    "line": OC_LINE_COMMON_NS,
}
_ISIS_AF = (
    "<af xmlns:oc-isis-types='http://openconfig.net/yang/isis-types'>"
    "<afi-name>oc-isis-types:IPV4</afi-name><safi-name>oc-isis-types:UNICAST</safi-name>"
)
_PROTOCOL = "<protocol xmlns:oc-pol-types='http://openconfig.net/yang/policy-types'>"


def _one(tree: Any, path: str) -> str:
    """The text of the single node ``path`` selects (XPath over :data:`OC_NS`)."""
    found = tree.xpath(path, namespaces=OC_NS)
    assert len(found) == 1, (path, found)
    return str(found[0])


def _edit(body: str) -> Any:
    return _xml(f"<config xmlns='{BASE_NS}'>{body}</config>")


def _isis_metric(ifname: str, metric: int | str) -> Any:
    return _edit(
        f"<network-instances xmlns='{OC_NETWORK_INSTANCE_NS}'><network-instance>"
        f"<name>DEFAULT</name><protocols>{_PROTOCOL}<identifier>oc-pol-types:ISIS</identifier>"
        f"<name>ISIS</name><isis><interfaces><interface><interface-id>{ifname}</interface-id>"
        f"<levels><level><level-number>2</level-number><afi-safi>{_ISIS_AF}"
        f"<config><metric>{metric}</metric></config></af></afi-safi></level></levels>"
        "</interface></interfaces></isis></protocol></protocols></network-instance>"
        "</network-instances>"
    )


def _bgp_neighbor(address: str, body: str) -> Any:
    return _edit(
        f"<network-instances xmlns='{OC_NETWORK_INSTANCE_NS}'><network-instance>"
        f"<name>DEFAULT</name><protocols>{_PROTOCOL}<identifier>oc-pol-types:BGP</identifier>"
        f"<name>BGP</name><bgp><neighbors><neighbor><neighbor-address>{address}"
        f"</neighbor-address><config>{body}</config></neighbor></neighbors></bgp></protocol>"
        "</protocols></network-instance></network-instances>"
    )


def _interface(ifname: str, body: str) -> Any:
    return _edit(
        f"<interfaces xmlns='{OC_INTERFACES_NS}'><interface><name>{ifname}</name>"
        f"<config>{body}</config></interface></interfaces>"
    )


def _amp_gain(amp: str, gain: float | str) -> Any:
    return _edit(
        f"<optical-amplifier xmlns='{OC_AMPLIFIER_NS}'><amplifiers><amplifier><name>{amp}</name>"
        f"<config><target-gain>{gain}</target-gain></config></amplifier></amplifiers>"
        "</optical-amplifier>"
    )


def _optical_channel(port: str, body: str) -> Any:
    return _edit(
        f"<components xmlns='{OC_PLATFORM_NS}'><component><name>{port}</name>"
        f"<optical-channel xmlns='{OC_TERMINAL_DEVICE_NS}'><config>{body}</config>"
        "</optical-channel></component></components>"
    )


_SESSION_STATE = "//ni:neighbor[ni:neighbor-address='{}']/ni:state/ni:session-state/text()"
_AMP_STATE = "//amp:amplifier[amp:name='amp-a-b']/amp:state"


@pytest.fixture
def sim_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metro(sim_clock: FakeClock) -> LabNetwork:
    return LabNetwork.preset("metro-ring", clock=sim_clock)


@pytest.fixture
def lab_backend(metro: LabNetwork) -> LabNetworkBackend:
    return LabNetworkBackend(metro)


def _store(backend: LabNetworkBackend, device: str, clock: FakeScheduler) -> Datastore:
    return Datastore(device, backend, clock)


def test_router_serves_interfaces_bgp_isis_and_system(
    lab_backend: LabNetworkBackend, clock: FakeScheduler, sim_clock: FakeClock
) -> None:
    store = _store(lab_backend, "pe1", clock)
    config = store.get_config("running")
    eth1 = "//if:interface[if:name='eth1']"
    assert _one(config, f"{eth1}/if:config/if:mtu/text()") == "9000"
    assert _one(config, f"{eth1}/if:config/if:description/text()") == "to p1 eth3"
    assert _one(config, f"{eth1}/if:config/if:type/text()") == "ianaift:ethernetCsmacd"
    address = f"{eth1}/if:subinterfaces/if:subinterface/ip:ipv4/ip:addresses/ip:address"
    assert _one(config, f"{address}/ip:config/ip:prefix-length/text()") == "30"
    assert _one(config, "//ni:bgp/ni:global/ni:config/ni:as/text()") == "65001"
    assert _one(config, "//ni:neighbor[ni:neighbor-address='10.0.0.10']//ni:peer-as/text()") == (
        "65005"
    )
    isis_eth2 = "//ni:isis//ni:interface[ni:interface-id='eth2']"
    assert _one(config, f"{isis_eth2}//ni:af/ni:config/ni:metric/text()") == "15"
    assert _one(config, "//sys:system/sys:config/sys:hostname/text()") == "pe1"
    assert not config.xpath("//if:state | //ni:state", namespaces=OC_NS)  # config only

    sim_clock.advance(30)
    state = store.get()
    assert _one(state, f"{eth1}/if:state/if:oper-status/text()") == "UP"
    assert int(_one(state, f"{eth1}/if:state/if:counters/if:out-octets/text()")) > 0
    assert _one(state, _SESSION_STATE.format("10.0.0.10")) == "ESTABLISHED"
    received = "//ni:neighbor[ni:neighbor-address='10.0.0.10']//ni:prefixes/ni:received/text()"
    assert int(_one(state, received)) > 0
    assert _one(state, f"{isis_eth2}//ni:adjacency/ni:state/ni:adjacency-state/text()") == "UP"
    assert 0 < int(_one(state, "//sys:cpu/sys:state/sys:total/sys:instant/text()")) <= 100
    assert int(_one(state, "//sys:memory/sys:state/sys:used/text()")) > 0
    # get-config stays config only after a get.
    assert not store.get_config("running").xpath("//if:state", namespaces=OC_NS)


def test_transponder_serves_optical_channel_transceiver_and_otn(
    lab_backend: LabNetworkBackend, clock: FakeScheduler, metro: LabNetwork
) -> None:
    store = _store(lab_backend, "xp-a1", clock)
    port = metro.optical_snapshot().line_ports["xp-a1:line1"]
    assert port.frequency_thz is not None
    och = "//plat:component[plat:name='xp-a1:line1']/term:optical-channel"
    config = store.get_config("running")
    assert _one(config, f"{och}/term:config/term:frequency/text()") == str(
        round(port.frequency_thz * 1e6)
    )
    assert float(_one(config, f"{och}/term:config/term:target-output-power/text()")) in (
        -8.5,
        -8.0,
        -7.5,
    )
    assert _one(config, "//term:channel[term:index='1']/term:config/term:admin-state/text()") == (
        "ENABLED"
    )

    state = store.get()
    rx = float(_one(state, f"{och}/term:state/term:input-power/term:instant/text()"))
    assert rx == pytest.approx(port.rx_power_dbm, abs=0.3)
    for leaf in ("output-power", "laser-bias-current", "chromatic-dispersion", "osnr"):
        float(_one(state, f"{och}/term:state/term:{leaf}/term:instant/text()"))
    xcvr = "//plat:component[plat:name='xp-a1:line1-transceiver']/plat:state"
    assert 30.0 < float(_one(state, f"{xcvr}/plat:temperature/plat:instant/text()")) < 60.0
    otn = "//term:channel[term:index='1']/term:otn/term:state"
    assert 0.0 < float(_one(state, f"{otn}/term:pre-fec-ber/term:instant/text()")) < 1e-2
    assert float(_one(state, f"{otn}/term:q-value/term:instant/text()")) > 7.0
    assert float(_one(state, f"{otn}/term:esnr/term:instant/text()")) > 10.0
    assert _one(state, f"{otn}/term:fec-uncorrectable-blocks/text()") == "0"
    assert _one(state, "//term:channel/term:state/term:link-state/text()") == "UP"


def test_amplifier_and_roadm_serve_their_power(
    lab_backend: LabNetworkBackend, clock: FakeScheduler, metro: LabNetwork
) -> None:
    snap = metro.optical_snapshot()
    amp = _store(lab_backend, "amp-a-b", clock)
    config = amp.get_config("running")
    assert float(_one(config, "//amp:amplifier/amp:config/amp:target-gain/text()")) == (
        pytest.approx(snap.amplifiers["amp-a-b"].target_gain_db)
    )
    state = amp.get()
    for leaf in ("actual-gain", "input-power-total", "output-power-total", "laser-bias-current"):
        float(_one(state, f"{_AMP_STATE}/amp:{leaf}/amp:instant/text()"))
    assert float(_one(state, f"{_AMP_STATE}/amp:max-gain/text()")) == 27.0

    roadm = _store(lab_backend, "roadm-a", clock)
    assert roadm.get_config("running").xpath("//plat:component/plat:name/text()", namespaces=OC_NS)
    degree = snap.degree("roadm-a", "deg-1")
    optical_port = "//plat:component[plat:name='deg-1']/plat:port/line:optical-port/line:state"
    state = roadm.get()
    power_in = float(_one(state, f"{optical_port}/line:input-power/line:instant/text()"))
    assert power_in == pytest.approx(degree.input_power_dbm, abs=0.3)
    float(_one(state, f"{optical_port}/line:output-power/line:instant/text()"))


def test_isis_metric_commit_moves_traffic_and_rollback_moves_it_back(
    lab_backend: LabNetworkBackend, clock: FakeScheduler, metro: LabNetwork, sim_clock: FakeClock
) -> None:
    store = _store(lab_backend, "pe1", clock)
    sim_clock.advance(30)
    before = metro.interface("pe1", "eth1").out_bps
    assert before > 1e9  # pe1 sends through p1 at metric 1
    store.edit_config(1, "candidate", _isis_metric("eth1", 1000))
    assert metro.interface("pe1", "eth1").igp_metric == 1  # not before the commit
    store.commit(1, confirmed=True, timeout=60)
    sim_clock.advance(30)
    assert metro.interface("pe1", "eth1").igp_metric == 1000
    assert metro.interface("pe1", "eth1").out_bps < before / 100
    assert metro.interface("pe1", "eth2").out_bps > 1e9
    metric = "//ni:isis//ni:interface[ni:interface-id='eth1']//ni:af/ni:config/ni:metric/text()"
    assert _one(store.get(), metric) == "1000"
    clock.advance(60)  # unconfirmed: the rollback puts metric 1 back
    sim_clock.advance(30)
    assert metro.interface("pe1", "eth1").igp_metric == 1
    assert metro.interface("pe1", "eth1").out_bps > 1e9


def test_reenabling_a_bgp_neighbor_brings_the_session_back(
    lab_backend: LabNetworkBackend, clock: FakeScheduler, sim_clock: FakeClock
) -> None:
    store = _store(lab_backend, "pe1", clock)
    store.edit_config(1, "running", _bgp_neighbor("10.0.0.10", "<enabled>false</enabled>"))
    sim_clock.advance(5)
    assert _one(store.get(), _SESSION_STATE.format("10.0.0.10")) == "IDLE"
    p1 = _store(lab_backend, "p1", clock)
    assert _one(p1.get(), _SESSION_STATE.format("10.0.0.9")) == "ACTIVE"  # the far side waits
    store.edit_config(1, "running", _bgp_neighbor("10.0.0.10", "<enabled>true</enabled>"))
    sim_clock.advance(5)
    state = store.get()
    assert _one(state, _SESSION_STATE.format("10.0.0.10")) == "ESTABLISHED"
    transitions = "//ni:neighbor[ni:neighbor-address='10.0.0.10']//ni:established-transitions"
    assert _one(state, f"{transitions}/text()") == "3"


def test_raising_target_gain_raises_output_power(
    lab_backend: LabNetworkBackend, clock: FakeScheduler, metro: LabNetwork
) -> None:
    store = _store(lab_backend, "amp-a-b", clock)
    output = f"{_AMP_STATE}/amp:output-power-total/amp:instant/text()"
    before = float(_one(store.get(), output))
    target = metro.optical_snapshot().amplifiers["amp-a-b"].target_gain_db + 2.0
    store.edit_config(1, "running", _amp_gain("amp-a-b", round(target, 2)))
    state = store.get()
    assert float(_one(state, output)) > before + 1.5
    assert float(_one(state, f"{_AMP_STATE}/amp:target-gain/text()")) == pytest.approx(target)
    assert metro.optical_snapshot().amplifiers["amp-a-b"].target_gain_db == pytest.approx(target)


def test_an_out_of_range_gain_is_rejected_and_changes_nothing(
    lab_backend: LabNetworkBackend, clock: FakeScheduler, metro: LabNetwork
) -> None:
    store = _store(lab_backend, "amp-a-b", clock)
    gain = metro.optical_snapshot().amplifiers["amp-a-b"].target_gain_db
    running = etree.tostring(store.running)
    with pytest.raises(RpcError) as err:
        store.edit_config(1, "running", _amp_gain("amp-a-b", 40))
    assert err.value.tag == "invalid-value"
    assert err.value.path is not None and err.value.path.endswith("/config/target-gain")
    assert "15.0-27.0 dB" in err.value.message
    assert etree.tostring(store.running) == running
    assert metro.optical_snapshot().amplifiers["amp-a-b"].target_gain_db == gain
    # The candidate takes it, but neither validate nor commit let it through.
    store.edit_config(1, "candidate", _amp_gain("amp-a-b", 5))
    with pytest.raises(RpcError):
        store.validate("candidate")
    with pytest.raises(RpcError):
        store.commit(1)
    assert metro.optical_snapshot().amplifiers["amp-a-b"].target_gain_db == gain


@pytest.mark.parametrize(
    ("device", "edit", "leaf"),
    [
        ("pe1", _interface("eth1", "<mtu>100</mtu>"), "mtu"),
        ("pe1", _interface("eth1", "<mtu>9300</mtu>"), "mtu"),
        ("pe1", _interface("lo0", "<mtu>1500</mtu>"), "mtu"),
        ("pe1", _interface("eth1", "<enabled>maybe</enabled>"), "enabled"),
        ("pe1", _interface("eth99", "<enabled>false</enabled>"), "interface"),
        ("pe1", _isis_metric("eth3", 10), "interface"),
        ("pe1", _isis_metric("eth1", 0), "metric"),
        ("pe1", _bgp_neighbor("10.9.9.9", "<enabled>false</enabled>"), "neighbor"),
        ("pe1", _bgp_neighbor("10.0.0.10", "<peer-as>1</peer-as>"), "peer-as"),
        (
            "xp-a1",
            _optical_channel("xp-a1:line1", "<target-output-power>0</target-output-power>"),
            "target-output-power",
        ),
        ("xp-a1", _optical_channel("xp-a1:line1", "<frequency>191000000</frequency>"), "frequency"),
        ("xp-a1", _optical_channel("xp-a1:client1", "<frequency>1</frequency>"), "config"),
        ("amp-a-b", _amp_gain("amp-a-b", "loud"), "target-gain"),
        ("amp-a-b", _amp_gain("amp-b-a", 20), "amplifier"),
    ],
)
def test_validate_refuses_what_the_model_would(
    lab_backend: LabNetworkBackend, clock: FakeScheduler, device: str, edit: Any, leaf: str
) -> None:
    store = _store(lab_backend, device, clock)
    running = etree.tostring(store.running)
    with pytest.raises(RpcError) as err:
        store.edit_config(1, "running", edit)
    assert err.value.tag == "invalid-value"
    assert ("bad-element", leaf) in err.value.info
    assert etree.tostring(store.running) == running
    assert b"<error-path>/" in etree.tostring(err.value.to_xml())


def test_only_changed_leaves_call_knobs(
    lab_backend: LabNetworkBackend,
    clock: FakeScheduler,
    metro: LabNetwork,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    for knob in ("set_admin_status", "set_mtu", "set_description", "set_igp_metric"):
        real = getattr(metro, knob)

        def spy(*args: Any, _real: Any = real, _name: str = knob, **kwargs: Any) -> None:
            calls.append(_name)
            _real(*args, **kwargs)

        monkeypatch.setattr(metro, knob, spy)
    store = _store(lab_backend, "pe1", clock)
    store.edit_config(1, "running", _interface("eth1", "<description>core A</description>"))
    assert calls == ["set_description"]
    assert metro.interface("pe1", "eth1").alias == "core A"
    calls.clear()
    store.edit_config(1, "running", _interface("eth1", "<mtu>9000</mtu><enabled>true</enabled>"))
    assert calls == []  # the same values: nothing to do
    store.edit_config(1, "running", _interface("eth2", "<mtu>1500</mtu>"))
    assert calls == ["set_mtu"]
    assert not metro.interface("pe1", "eth2").igp_up  # p2 still has 9000: no adjacency


def test_target_output_power_sets_the_transmitter(
    lab_backend: LabNetworkBackend, clock: FakeScheduler, metro: LabNetwork
) -> None:
    store = _store(lab_backend, "xp-a1", clock)
    store.edit_config(
        1,
        "running",
        _optical_channel("xp-a1:line1", "<target-output-power>-6.5</target-output-power>"),
    )
    och = "//plat:component[plat:name='xp-a1:line1']/term:optical-channel/term:state"
    state = store.get()
    assert float(_one(state, f"{och}/term:target-output-power/text()")) == -6.5
    assert float(_one(state, f"{och}/term:output-power/term:instant/text()")) == pytest.approx(
        -6.5, abs=0.3
    )
    assert metro.optical_snapshot(noise=False).line_ports["xp-a1:line1"].tx_power_dbm == (
        pytest.approx(-6.5)
    )
