"""The lab devices' MIBs (lab.mibs): what an SNMP poller would read and write, without sockets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from autonoc.core.ber import (
    COUNTER32,
    COUNTER64,
    INTEGER,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    OCTET_STRING,
    encode_value,
)
from autonoc.core.inventory import Role
from lab.mibs import (
    MIB_OBJECTS,
    SENSOR_KINDS,
    LabDeviceMib,
    MibCache,
    device_mib,
    device_mibs,
)
from lab.network import InterfaceState, LabNetwork, counter32
from lab.snmp.mib import (
    NO_CREATION,
    NO_ERROR,
    NOT_WRITABLE,
    WRONG_TYPE,
    WRONG_VALUE,
    Oid,
    Value,
)
from lab.topology import generate
from tests.unit.fakes import FakeClock

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lab-mibs.md"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metro(clock: FakeClock) -> LabNetwork:
    network = LabNetwork.preset("metro-ring", seed=7, clock=clock)
    clock.advance(60.0)
    return network


@pytest.fixture
def mibs(metro: LabNetwork) -> dict[str, LabDeviceMib]:
    return device_mibs(metro)


def oid(name: str, *index: int) -> Oid:
    return (*MIB_OBJECTS[name], *index)


def get(mib: LabDeviceMib, name: str, *index: int) -> Value:
    """A GET of one object instance, as the agent does it: layout, then one reader."""
    layout = mib.layout()
    i = layout.index(oid(name, *index))
    assert i is not None, f"{name}.{'.'.join(map(str, index))} is not served"
    return mib.reader()(i)


def walk(mib: LabDeviceMib, name: str) -> dict[Oid, Value]:
    """Every instance of a column, by index, read through one reader."""
    layout, read = mib.layout(), mib.reader()
    column = MIB_OBJECTS[name]
    return {
        o[len(column) :]: read(i)
        for i, o in enumerate(layout.oids)
        if o[: len(column)] == column and len(o) > len(column)
    }


def sensor_index(mib: LabDeviceMib, name: str) -> int:
    """The entPhysicalIndex of the entity named ``name``, found as a collector would."""
    found = [idx for idx, (_, v) in walk(mib, "entPhysicalName").items() if v == name.encode()]
    assert len(found) == 1, f"{name}: {found}"
    return found[0][0]


def ip_index(address: str) -> tuple[int, ...]:
    return tuple(int(x) for x in address.split("."))


# Shape -----------------------------------------------------------------------


def test_every_device_serves_a_sorted_unique_encodable_mib(
    metro: LabNetwork, mibs: dict[str, LabDeviceMib]
) -> None:
    assert set(mibs) == set(metro.device_names)
    known = set(MIB_OBJECTS.values())
    for name, mib in mibs.items():
        layout = mib.layout()
        assert list(layout.oids) == sorted(set(layout.oids)), name
        read = mib.reader()
        for i, instance in enumerate(layout.oids):
            assert any(instance[:n] in known for n in range(len(instance))), instance
            tag, value = read(i)
            assert tag not in (NO_SUCH_INSTANCE, NO_SUCH_OBJECT), (name, instance)
            encode_value(tag, value)  # every value fits its type
        assert mib.layout() is layout  # reading everything found the shape it expected
        assert get(mib, "sysName", 0) == (OCTET_STRING, name.encode())
        assert get(mib, "sysLocation", 0) == (OCTET_STRING, metro.device(name).site.encode())


def test_objects_tell_no_such_instance_from_no_such_object(mibs: dict[str, LabDeviceMib]) -> None:
    layout = mibs["pe1"].layout()
    assert layout.missing(oid("ifInOctets", 999)) == NO_SUCH_INSTANCE
    assert layout.missing((1, 3, 6, 1, 2, 1, 999, 1)) == NO_SUCH_OBJECT
    # Optical devices do not serve BGP, routers do not serve sensors.
    assert mibs["xp-a1"].layout().missing(oid("bgpLocalAs", 0)) == NO_SUCH_OBJECT
    assert layout.missing(oid("entPhySensorValue", 1)) == NO_SUCH_OBJECT


def test_every_object_is_documented() -> None:
    text = DOCS.read_text()
    missing = [name for name in MIB_OBJECTS if f"`{name}`" not in text]
    assert not missing
    for key in SENSOR_KINDS:
        assert f"`{key.split('/', 1)[1]}`" in text, key


# Routers -----------------------------------------------------------------------


def test_interface_counters_match_the_model_at_the_same_instant(
    metro: LabNetwork, clock: FakeClock, mibs: dict[str, LabDeviceMib]
) -> None:
    mib = mibs["pe1"]
    clock.advance(300.0)
    model = {s.if_index: s for s in metro.interfaces("pe1")}
    hc = walk(mib, "ifHCInOctets")
    assert hc == {(k,): (COUNTER64, s.in_octets) for k, s in model.items()}
    assert any(value > 0 for _, value in hc.values())  # type: ignore[operator]
    assert walk(mib, "ifInOctets") == {
        (k,): (COUNTER32, counter32(s.in_octets)) for k, s in model.items()
    }
    assert walk(mib, "ifName") == {(k,): (OCTET_STRING, s.name.encode()) for k, s in model.items()}
    assert get(mib, "ifNumber", 0) == (INTEGER, len(model))


def test_a_reader_takes_each_snapshot_once_and_only_when_needed(
    metro: LabNetwork, mibs: dict[str, LabDeviceMib], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, int] = {}

    def counting(name: str) -> None:
        real = getattr(metro, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            calls[name] = calls.get(name, 0) + 1
            return real(*args, **kwargs)

        monkeypatch.setattr(metro, name, wrapper)

    for name in ("interfaces", "bgp_sessions", "system", "optical_snapshot"):
        counting(name)
    mib = mibs["pe1"]
    layout, read = mib.layout(), mib.reader()
    read(layout.index(oid("sysName", 0)))  # type: ignore[arg-type]
    assert calls == {}
    for i in range(len(layout)):
        read(i)
    assert calls == {"interfaces": 1, "bgp_sessions": 1, "system": 1}


def test_bgp_peer_state_follows_the_session(
    metro: LabNetwork, mibs: dict[str, LabDeviceMib]
) -> None:
    session = metro.bgp_sessions("pe1")[0]
    row = ip_index(session.peer_address)
    mib = mibs["pe1"]
    assert get(mib, "bgpPeerState", *row) == (INTEGER, 6)
    assert get(mib, "bgpPeerAdminStatus", *row) == (INTEGER, 2)
    assert get(mib, "bgpPeerRemoteAs", *row) == (INTEGER, session.peer_as)
    assert get(mib, "bgpLocalAs", 0) == (INTEGER, session.local_as)
    accepted = get(mib, "cbgpPeer2AcceptedPrefixes", 1, 4, *row, 1, 1)
    assert accepted == (COUNTER32, session.prefixes_received)
    assert session.prefixes_received > 0

    metro.set_bgp_neighbor("pe1", session.peer_address, False)
    assert get(mib, "bgpPeerState", *row) == (INTEGER, 1)  # idle: shut down here
    assert get(mib, "bgpPeerAdminStatus", *row) == (INTEGER, 1)
    assert get(mib, "bgpPeerNegotiatedVersion", *row) == (INTEGER, 0)
    assert get(mib, "cbgpPeer2AcceptedPrefixes", 1, 4, *row, 1, 1) == (COUNTER32, 0)
    # The far end still wants the session: active(3).
    far = metro.bgp_sessions(session.peer_device)
    back = next(s for s in far if s.peer_address == session.local_address)
    far_mib = mibs[session.peer_device]
    assert get(far_mib, "bgpPeerState", *ip_index(back.peer_address)) == (INTEGER, 3)


def test_four_octet_asns_show_as_trans_in_bgp4_mib() -> None:
    network = LabNetwork(generate(600), clock=FakeClock())
    session = network.bgp_sessions("leaf1")[0]
    assert session.local_as > 65535
    mib = device_mib(network, "leaf1")
    row = ip_index(session.peer_address)
    assert get(mib, "bgpLocalAs", 0) == (INTEGER, 23456)
    assert get(mib, "bgpPeerRemoteAs", *row) == (INTEGER, 23456)
    assert get(mib, "cbgpLocalAs", 0)[1] == session.local_as
    assert get(mib, "cbgpPeer2RemoteAs", 1, 4, *row)[1] == session.peer_as


def test_host_resources_report_cpu_and_memory(
    metro: LabNetwork, mibs: dict[str, LabDeviceMib]
) -> None:
    state = metro.system("p1")
    mib = mibs["p1"]
    assert get(mib, "hrProcessorLoad", 1) == (INTEGER, round(state.cpu_pct))
    assert get(mib, "hrStorageType", 1)[1] == MIB_OBJECTS["hrStorageRam"]
    assert get(mib, "hrStorageAllocationUnits", 1) == (INTEGER, 1024)
    assert get(mib, "hrStorageSize", 1) == (INTEGER, state.mem_total_kb)
    assert get(mib, "hrStorageUsed", 1) == (INTEGER, state.mem_used_kb)


# SET ---------------------------------------------------------------------------


def _eth1(metro: LabNetwork, device: str = "pe1") -> InterfaceState:
    return next(s for s in metro.interfaces(device) if s.name == "eth1")


def test_set_if_admin_status_shuts_and_restores_an_interface(
    metro: LabNetwork, mibs: dict[str, LabDeviceMib]
) -> None:
    mib, k = mibs["pe1"], _eth1(metro).if_index
    assert mib.write([(oid("ifAdminStatus", k), (INTEGER, 2))]) == (NO_ERROR, 0)
    assert not _eth1(metro).admin_up
    assert get(mib, "ifAdminStatus", k) == (INTEGER, 2)
    assert get(mib, "ifOperStatus", k) == (INTEGER, 2)
    assert mib.write([(oid("ifAdminStatus", k), (INTEGER, 1))]) == (NO_ERROR, 0)
    assert get(mib, "ifOperStatus", k) == (INTEGER, 1)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ((oid("ifAdminStatus", 2), (OCTET_STRING, b"down")), WRONG_TYPE),
        ((oid("ifAdminStatus", 2), (COUNTER32, 2)), WRONG_TYPE),
        ((oid("ifAdminStatus", 2), (INTEGER, 3)), WRONG_VALUE),
        ((oid("ifAdminStatus", 99), (INTEGER, 2)), NO_CREATION),
        ((oid("ifAdminStatus", 2, 1), (INTEGER, 2)), NO_CREATION),
        ((oid("ifMtu", 2), (INTEGER, 1500)), NOT_WRITABLE),
        ((oid("sysName", 0), (OCTET_STRING, b"x")), NOT_WRITABLE),
        (((1, 3, 6, 1, 4, 1, 99999, 1), (INTEGER, 1)), NOT_WRITABLE),
    ],
)
def test_a_bad_set_changes_nothing_and_says_why(
    metro: LabNetwork,
    mibs: dict[str, LabDeviceMib],
    change: tuple[Oid, Value],
    status: int,
) -> None:
    good = (oid("ifAdminStatus", 2), (INTEGER, 2))
    assert mibs["pe1"].write([good, change]) == (status, 2)
    assert all(s.admin_up for s in metro.interfaces("pe1"))


def test_optical_devices_are_read_only(mibs: dict[str, LabDeviceMib]) -> None:
    assert mibs["xp-a1"].write([(oid("ifAdminStatus", 1), (INTEGER, 2))]) == (NOT_WRITABLE, 1)


# Optics ------------------------------------------------------------------------


def _sensor(mib: LabDeviceMib, name: str) -> tuple[int, int]:
    """(value, oper status) of the sensor entity named ``name``."""
    k = sensor_index(mib, name)
    value, status = get(mib, "entPhySensorValue", k), get(mib, "entPhySensorOperStatus", k)
    return value[1], status[1]  # type: ignore[return-value]


def test_sensor_values_invert_to_the_model(
    metro: LabNetwork, mibs: dict[str, LabDeviceMib]
) -> None:
    mib = mibs["xp-a1"]
    port = metro.optical_snapshot().line_ports["xp-a1:line1"]
    checks: list[tuple[str, float, float]] = [
        ("rx-power", port.rx_power_dbm, 0.005),
        ("tx-power", port.tx_power_dbm, 0.005),
        ("laser-bias", port.laser_bias_ma, 0.05),
        ("temperature", port.module_temp_c, 0.05),
        ("osnr", port.osnr_db, 0.005),
        ("q-factor", port.q_db, 0.005),
        ("pre-fec-ber", port.pre_fec_ber, 0.5e-9),
        ("chromatic-dispersion", port.cd_ps_nm, 0.5),
    ]
    for name, expected, tolerance in checks:
        kind = SENSOR_KINDS[f"line-port/{name}"]
        k = sensor_index(mib, f"line1/{name}")
        assert get(mib, "entPhySensorType", k) == (INTEGER, kind.sensor_type)
        assert get(mib, "entPhySensorScale", k) == (INTEGER, kind.scale)
        assert get(mib, "entPhySensorPrecision", k) == (INTEGER, kind.precision)
        raw, status = _sensor(mib, f"line1/{name}")
        # Back to the quantity: value x 10^-precision in units, then the scale.
        quantity = raw * 10.0**-kind.precision * (1e-9 if name == "pre-fec-ber" else 1.0)
        assert quantity == pytest.approx(expected, abs=tolerance), name
        assert status == 1
    assert get(mib, "entPhySensorValueTimeStamp", sensor_index(mib, "line1/rx-power"))[1] == (
        metro.sys_uptime("xp-a1")
    )


def test_a_fibre_cut_darkens_the_downstream_transponder(
    metro: LabNetwork, mibs: dict[str, LabDeviceMib]
) -> None:
    assert metro.optical is not None
    # och-4 runs xp-b1 <-> xp-a4 over roadm-b - roadm-a: the a->b span feeds xp-b1.
    mib = mibs["xp-b1"]
    rx_before, _ = _sensor(mib, "line1/rx-power")
    assert get(mib, "ifOperStatus", 1) == (INTEGER, 1)
    amp_before = get(mibs["amp-a-b"], "ifOperStatus", 1)
    assert amp_before == (INTEGER, 1)

    metro.optical.fiber_cut("span:roadm-a:roadm-b")
    metro.optical_changed()

    rx_after, rx_status = _sensor(mib, "line1/rx-power")
    assert rx_after < rx_before - 1000  # more than 10 dB down, in hundredths of a dBm
    assert rx_status == 1  # the photodiode works: it sees no light
    assert _sensor(mib, "line1/osnr")[1] == 2  # unavailable without a signal
    assert get(mib, "ifOperStatus", 1) == (INTEGER, 2)  # line port: LOS
    assert get(mib, "ifOperStatus", 2) == (INTEGER, 2)  # its client follows
    assert get(mibs["amp-a-b"], "ifOperStatus", 1) == (INTEGER, 2)
    gain, _ = _sensor(mibs["amp-a-b"], "edfa/gain")
    assert gain == 0
    # A transponder on the other side of the ring is untouched.
    assert get(mibs["xp-d1"], "ifOperStatus", 1) == (INTEGER, 1)


def test_roadm_degrees_have_power_and_per_channel_attenuation(
    metro: LabNetwork, mibs: dict[str, LabDeviceMib]
) -> None:
    mib = mibs["roadm-b"]
    degree = metro.optical_snapshot().degree("roadm-b", "deg-1")
    for channel, db in degree.attenuation_db.items():
        raw, status = _sensor(mib, f"deg-1/{channel}/attenuation")
        assert raw == round(db * 100) and status == 1
    raw, _ = _sensor(mib, "deg-1/input-power")
    assert raw / 100 == pytest.approx(degree.input_power_dbm, abs=0.005)
    names = {v for _, v in walk(mib, "entPhysicalName").values()}
    assert b"deg-1/och-4/drop-attenuation" in names


def test_entities_form_a_tree_under_one_chassis(mibs: dict[str, LabDeviceMib]) -> None:
    for device in ("xp-a1", "amp-a-b", "roadm-a"):
        mib = mibs[device]
        parent = {k[0]: v[1] for k, v in walk(mib, "entPhysicalContainedIn").items()}
        klass = {k[0]: v[1] for k, v in walk(mib, "entPhysicalClass").items()}
        roots = [k for k, p in parent.items() if p == 0]
        assert roots == [1] and klass[1] == 3
        assert all(p in parent for p in parent.values() if p)
        sensors = {k[0] for k in walk(mib, "entPhySensorValue")}
        assert sensors == {k for k, c in klass.items() if c == 8}
        for alias in walk(mib, "entAliasMappingIdentifier").values():
            assert alias[1][: len(MIB_OBJECTS["ifIndex"])] == MIB_OBJECTS["ifIndex"]  # type: ignore[index]


# Sharing and shape changes --------------------------------------------------------


def test_devices_of_one_shape_share_layouts_and_getters(
    metro: LabNetwork, mibs: dict[str, LabDeviceMib]
) -> None:
    for role in (Role.TRANSPONDER, Role.AMPLIFIER):
        layouts = {id(mibs[name].layout()) for name in metro.optical_devices(role)}
        assert len(layouts) == 1, role


def test_a_2000_device_fabric_builds_with_few_shapes() -> None:
    network = LabNetwork(generate(2000), clock=FakeClock())
    cache = MibCache()
    built = device_mibs(network, cache=cache)
    assert len(built) == len(network.device_names) == 2000
    # bgpPeerTable is indexed by peer address, so every router has its own OIDs;
    # the getter tables (what the reader runs) are shared by shape.
    assert cache.getter_tables <= 8
    assert cache.layouts == 2000
    leaf = built["leaf1"]
    assert get(leaf, "bgpPeerState", *ip_index(network.bgp_sessions("leaf1")[0].peer_address)) == (
        INTEGER,
        6,
    )


def test_the_layout_follows_a_change_of_shape(
    metro: LabNetwork, mibs: dict[str, LabDeviceMib], monkeypatch: pytest.MonkeyPatch
) -> None:
    mib = mibs["pe1"]
    before = mib.layout()
    last = metro.interfaces("pe1")[-1].if_index
    real: Callable[..., list[InterfaceState]] = metro.interfaces
    monkeypatch.setattr(metro, "interfaces", lambda device, at=None: real(device)[:-1])
    # The request in flight sees the row gone; the next one gets a new layout.
    layout, read = mib.layout(), mib.reader()
    assert layout is before
    assert read(layout.index(oid("ifHCInOctets", last))) == (NO_SUCH_INSTANCE, None)  # type: ignore[arg-type]
    after = mib.layout()
    assert after is not before
    assert after.index(oid("ifHCInOctets", last)) is None
    assert get(mib, "ifNumber", 0) == (INTEGER, len(metro.interfaces("pe1")))
