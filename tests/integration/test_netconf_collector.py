"""The NETCONF collector over real SSH: the lab's OpenConfig server and yuma123's netconfd.

Against the lab (metro-ring, clock at 10x so rates show within a second) each
device role yields its metrics under the same names and instances the SNMP
mapping gives (checked against the lab's own IF-MIB, BGP4-MIB and ENTITY
tables read over SNMP), faults move them, a session dropped mid-RPC fails one
cycle and the next reconnects, and a wrong password is a clear auth error.
Against netconfd, an independent server, the collector connects, sends its
filtered ``<get>`` and parses what comes back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from autonoc.core.errors import DeviceRejected, DeviceUnreachable
from autonoc.core.inventory import Device, Mgmt, NetconfCredentials, Role
from autonoc.core.settings import SnmpSettings
from collectors.base import CollectRequest, CollectResult
from collectors.netconf import NetconfCollector, NetconfSessionPool
from collectors.snmp import SnmpClient
from collectors.snmp_groups import SnmpCollector
from lab.faults import FaultInjector
from lab.mibs import SENSOR_KINDS
from lab.network import LabNetwork, SimClock
from lab.runner import LabRunner
from tests.integration import netconfd
from tests.integration.netconfd import require_netconfd, start_netconfd

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ALL = CollectRequest(groups=("interfaces", "optics", "bgp", "system"))
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
ENT_NAME = "1.3.6.1.2.1.47.1.1.1.1.7"
SENSOR_STATUS = "1.3.6.1.2.1.99.1.1.1.5"
BGP_PEER_REMOTE_ADDR = "1.3.6.1.2.1.15.3.1.7"
SNMP = SnmpSettings(timeout=2.0, retries=1)
# The element kind of each optical role's sensors in lab.mibs.SENSOR_KINDS.
SENSOR_ELEMENT = {
    Role.TRANSPONDER: "line-port",
    Role.AMPLIFIER: "amplifier",
    Role.ROADM: "roadm-degree",
}
IETF_IF_SIL = Path("/usr/lib/x86_64-linux-gnu/yuma/libietf-interfaces.so")


@pytest.fixture
def lab() -> Iterator[LabRunner]:
    network = LabNetwork.preset("metro-ring", clock=SimClock(speed=10.0))
    with LabRunner(network, netconf=True) as runner:
        yield runner


class Poller:
    """A collector and its pool, polled from one event loop per call."""

    def __init__(self, lab: LabRunner, **pool_args: Any) -> None:
        self.lab = lab
        self.pool = NetconfSessionPool(workers=4, timeout=10.0, **pool_args)
        self.collector = NetconfCollector(self.pool, clock=lab.network.now)

    def poll(self, *names: str, request: CollectRequest = ALL) -> dict[str, CollectResult]:
        inventory = self.lab.inventory

        async def run() -> list[CollectResult]:
            return list(
                await asyncio.gather(
                    *(self.collector.collect(inventory.device(n), request) for n in names)
                )
            )

        return {r.device: r for r in asyncio.run(run())}

    def twice(self, *names: str, request: CollectRequest = ALL) -> dict[str, CollectResult]:
        """Two polls a simulated 5 s apart (rates need a baseline); the second's results."""
        self.poll(*names, request=request)
        _sleep(0.5)  # the lab's clock runs at 10x
        return self.poll(*names, request=request)


def _sleep(seconds: float) -> None:
    threading.Event().wait(seconds)


@pytest.fixture
def poller(lab: LabRunner) -> Iterator[Poller]:
    p = Poller(lab)
    yield p
    p.pool.close_all()


def values(result: CollectResult) -> dict[str, float]:
    assert not result.failed, result.exception
    return {s.key: s.value for s in result.samples}


def snmp_walk(lab: LabRunner, device: str, *columns: str) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with SnmpClient(SNMP) as client:
            return await client.walk(lab.inventory.device(device), columns)

    return asyncio.run(run())


def snmp_optics_keys(lab: LabRunner, device: str, role: Role) -> set[str]:
    """``metric@instance`` of every ok sensor, as the SNMP mapping names them (docs/lab-mibs.md)."""
    walked = snmp_walk(lab, device, ENT_NAME, SENSOR_STATUS)
    keys = set()
    for oid, name in walked.items():
        if not oid.startswith(ENT_NAME + ".") or not isinstance(name, str) or "/" not in name:
            continue
        index = oid[len(ENT_NAME) + 1 :]
        if walked.get(f"{SENSOR_STATUS}.{index}") != 1:
            continue  # not ok: left out, as the brief's sensor rule says
        instance, _, kind = name.rpartition("/")
        sensor = SENSOR_KINDS.get(f"{SENSOR_ELEMENT[role]}/{kind}")
        if sensor is not None and sensor.metric is not None and "/" not in instance:
            keys.add(f"{sensor.metric}@{instance}")
    return keys


OPTICS = ("opt_", "amp_", "roadm_")


def optics_keys(result: CollectResult) -> set[str]:
    return {k for k in values(result) if k.startswith(OPTICS)}


# The lab ---------------------------------------------------------------------------------


def test_every_role_yields_its_metrics_under_the_snmp_names(lab: LabRunner, poller: Poller) -> None:
    results = poller.twice("pe1", "xp-a1", "amp-a-b", "roadm-a")

    pe1 = values(results["pe1"])
    assert 0 < pe1["if_in_bps@eth1"] < 400e9 and pe1["if_oper_up@eth1"] == 1.0
    assert pe1["if_in_pps@eth1"] > 0 and pe1["if_in_errors_ps@eth1"] == 0.0
    assert 0 < pe1["cpu_util_pct"] <= 100 and 0 < pe1["mem_used_pct"] < 100
    assert pe1["sys_uptime_s"] > 0
    assert results["pe1"].facts["hostname"] == "pe1"
    assert results["pe1"].varbinds >= len(results["pe1"].samples) // 2
    # Interfaces and BGP peers are the instances IF-MIB's ifName and BGP4-MIB name.
    if_names = set(snmp_walk(lab, "pe1", IF_NAME).values())
    assert {k.partition("@")[2] for k in pe1 if k.startswith("if_oper_up@")} == if_names
    peers = set(snmp_walk(lab, "pe1", BGP_PEER_REMOTE_ADDR).values())
    assert {k.partition("@")[2] for k in pe1 if k.startswith("bgp_peer_up@")} == peers
    assert all(pe1[f"bgp_peer_up@{p}"] == 1.0 for p in peers)
    assert all(pe1[f"bgp_prefixes_accepted@{p}"] > 0 for p in peers)

    xp = values(results["xp-a1"])
    assert -15 < xp["opt_tx_power_dbm@line1"] < 5 and -30 < xp["opt_rx_power_dbm@line1"] < 5
    assert 15 < xp["opt_osnr_db@line1"] < 40 and 0 < xp["opt_pre_fec_ber@line1"] < 1e-2
    assert xp["opt_post_fec_uncorrectable@line1"] == 0.0
    amp = values(results["amp-a-b"])
    assert amp["amp_gain_db@edfa"] == pytest.approx(amp["amp_target_gain_db@edfa"], abs=1.0)
    assert amp["amp_output_power_dbm@edfa"] > amp["amp_input_power_dbm@edfa"]
    roadm = values(results["roadm-a"])
    assert -10 < roadm["roadm_output_power_dbm@deg-1"] < 30

    for name, role in (
        ("xp-a1", Role.TRANSPONDER),
        ("amp-a-b", Role.AMPLIFIER),
        ("roadm-a", Role.ROADM),
    ):
        assert optics_keys(results[name]) == snmp_optics_keys(lab, name, role), name


def test_snmp_and_netconf_collectors_give_one_series_per_metric(
    lab: LabRunner, poller: Poller
) -> None:
    names = ("pe1", "xp-a1", "amp-a-b", "roadm-a")
    inventory = lab.inventory

    async def snmp_twice() -> dict[str, CollectResult]:
        async with SnmpClient(SNMP) as client:
            collector = SnmpCollector(client)
            for _ in range(2):
                results = [await collector.collect(inventory.device(n), ALL) for n in names]
                await asyncio.sleep(0.5)
        return {r.device: r for r in results}

    over_snmp = {n: values(r) for n, r in asyncio.run(snmp_twice()).items()}
    over_netconf = {n: values(r) for n, r in poller.twice(*names).items()}

    # pe1: everything but the speed the lab serves over SNMP only (docs/metrics.md).
    snmp_only = {"if_speed_bps", "if_in_util", "if_out_util"}
    snmp_keys = {k for k in over_snmp["pe1"] if k.partition("@")[0] not in snmp_only}
    assert set(over_netconf["pe1"]) == snmp_keys
    # Optical devices: the optics metrics (their IF-MIB port rows have no NETCONF twin).
    for name in names[1:]:
        optical = {k for k in over_snmp[name] if k.startswith(OPTICS)}
        assert {k for k in over_netconf[name] if k.startswith(OPTICS)} == optical, name

    for key in ("bgp_peer_state@10.0.0.10", "bgp_prefixes_accepted@10.0.0.10", "if_oper_up@eth1"):
        assert over_netconf["pe1"][key] == over_snmp["pe1"][key], key
    assert over_netconf["pe1"]["mem_used_bytes"] == pytest.approx(
        over_snmp["pe1"]["mem_used_bytes"], rel=0.05
    )
    assert 0.5 < over_netconf["pe1"]["if_in_bps@eth1"] / over_snmp["pe1"]["if_in_bps@eth1"] < 2
    for name in names[1:]:
        for key, value in over_snmp[name].items():
            if key.endswith(("_dbm@line1", "_dbm@edfa", "_dbm@deg-1", "_db@edfa")):
                assert over_netconf[name][key] == pytest.approx(value, abs=1.0), (name, key)


def test_a_span_loss_moves_amplifier_input_and_osnr(lab: LabRunner, poller: Poller) -> None:
    transponders = [d.name for d in lab.inventory.devices if d.role is Role.TRANSPONDER]
    optics = CollectRequest(groups=("optics",))
    before = {
        n: values(r) for n, r in poller.poll("amp-a-b", *transponders, request=optics).items()
    }
    FaultInjector(lab.network).inject("span_loss", "span:roadm-a:roadm-b", {"extra_db": 9.0})
    _sleep(0.3)  # the optical layer is re-measured every simulated half second
    after = {n: values(r) for n, r in poller.poll("amp-a-b", *transponders, request=optics).items()}

    drop = (
        before["amp-a-b"]["amp_input_power_dbm@edfa"] - after["amp-a-b"]["amp_input_power_dbm@edfa"]
    )
    assert drop == pytest.approx(9.0, abs=1.0)
    osnr_drops = [
        before[n]["opt_osnr_db@line1"] - after[n]["opt_osnr_db@line1"]
        for n in transponders
        if "opt_osnr_db@line1" in before[n] and "opt_osnr_db@line1" in after[n]
    ]
    assert max(osnr_drops) > 1.0  # the wavelengths crossing the span
    assert min(osnr_drops) < 0.5  # and not the others


def test_a_fibre_cut_leaves_out_what_snmp_leaves_out(lab: LabRunner, poller: Poller) -> None:
    transponders = [d.name for d in lab.inventory.devices if d.role is Role.TRANSPONDER]
    FaultInjector(lab.network).inject("fiber_cut", "span:roadm-a:roadm-b")
    _sleep(0.3)
    results = poller.twice(*transponders, request=CollectRequest(groups=("optics",)))
    dark = [n for n in transponders if "opt_osnr_db@line1" not in values(results[n])]
    assert dark, "a fibre cut must darken some line port"
    for name in transponders:
        assert optics_keys(results[name]) == snmp_optics_keys(lab, name, Role.TRANSPONDER), name
    assert all(values(results[n])["opt_rx_power_dbm@line1"] < -30 for n in dark)


def test_an_interface_down_shows_in_status_and_bgp(lab: LabRunner, poller: Poller) -> None:
    peer = next(s.peer_address for s in lab.network.bgp_sessions("pe1") if s.ifname == "eth1")
    up = values(poller.poll("pe1")["pe1"])
    assert up["if_oper_up@eth1"] == 1.0 and up[f"bgp_peer_up@{peer}"] == 1.0
    FaultInjector(lab.network).inject("link_down", "pe1:eth1")
    down = values(poller.poll("pe1")["pe1"])
    assert down["if_oper_up@eth1"] == 0.0 and down["if_admin_up@eth1"] == 1.0
    assert down[f"bgp_peer_up@{peer}"] == 0.0
    assert down[f"bgp_peer_state@{peer}"] < 6


def test_a_session_dropped_mid_rpc_fails_one_cycle_and_the_next_reconnects(
    lab: LabRunner, poller: Poller, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lab.netconf is not None
    server = lab.netconf.server
    original = server._handle
    dropped = threading.Event()

    def drop_on_get(session: Any, message: bytes) -> tuple[bytes, bool]:
        if b"get>" in message and not dropped.is_set():
            dropped.set()
            # The request arrived; the reply never will: the TCP connection goes.
            session.process.channel.get_connection().abort()
        return original(session, message)

    assert not poller.poll("pe1")["pe1"].failed
    monkeypatch.setattr(server, "_handle", drop_on_get)
    failed = poller.poll("pe1")["pe1"]
    assert dropped.is_set()
    assert failed.failed and isinstance(failed.exception, DeviceUnreachable)
    assert "closed the NETCONF session" in str(failed.exception)
    assert poller.pool.open_sessions() == 0

    again = poller.poll("pe1")["pe1"]
    assert values(again)["if_oper_up@eth1"] == 1.0
    assert poller.pool.connects == 2


def test_a_wrong_password_is_a_clear_auth_error(
    lab: LabRunner,
    poller: Poller,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    pe1 = lab.inventory.device("pe1")
    assert pe1.netconf is not None
    wrong = "not-the-" + pe1.netconf.password.get_secret_value()  # type: ignore[union-attr]
    bad = pe1.model_copy(
        update={"netconf": pe1.netconf.model_copy(update={"password": SecretStr(wrong)})}
    )
    result = asyncio.run(poller.collector.collect(bad, ALL))
    assert result.failed and isinstance(result.exception, DeviceRejected)
    assert "login to 127.0.0.1" in str(result.exception) and "refused" in str(result.exception)
    assert wrong not in str(result.exception)
    assert wrong not in caplog.text and wrong not in capsys.readouterr().out
    good = pe1.netconf.password.get_secret_value()  # type: ignore[union-attr]
    assert good not in caplog.text


def test_a_closed_port_is_unreachable(lab: LabRunner, poller: Poller) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        pe1 = lab.inventory.device("pe1")
        gone = pe1.model_copy(update={"mgmt": pe1.mgmt.model_copy(update={"netconf_port": port})})
        result = asyncio.run(poller.collector.collect(gone, ALL))
    assert result.failed and isinstance(result.exception, DeviceUnreachable)
    assert f"127.0.0.1:{port}" in str(result.exception)


# yuma123 netconfd -----------------------------------------------------------------------


def _netconfd_device(nc: netconfd.NetconfdServer) -> Device:
    return Device(
        name="netconfd",
        role=Role.ROUTER,
        mgmt=Mgmt(host=nc.host, netconf_port=nc.port),
        netconf=NetconfCredentials(
            username=nc.username, key_file=str(nc.key_file), hostkey_verify=False
        ),
    )


def _collect_twice(device: Device, request: CollectRequest) -> CollectResult:
    async def run() -> CollectResult:
        async with NetconfSessionPool(workers=2, timeout=10.0) as pool:
            collector = NetconfCollector(pool)
            await collector.collect(device, request)
            await asyncio.sleep(1.0)
            return await collector.collect(device, request)

    return asyncio.run(run())


def test_netconfd_without_the_models_is_an_ok_result_naming_what_is_missing(
    tmp_path: Path,
) -> None:
    require_netconfd()
    with start_netconfd(tmp_path / "netconfd") as nc:
        result = _collect_twice(_netconfd_device(nc), ALL)
    assert not result.failed, result.exception
    assert result.samples == []
    missing = result.facts["netconf_missing"]
    for group in ("interfaces", "optics", "bgp"):
        assert f"{group}: " in missing
    # netconfd carries ietf-system, so the system group asks for the boot time;
    # without its instrumentation module there is none to read.
    assert "system" not in missing
    assert result.facts["netconf_models"] == "ietf-system"


def test_netconfd_ietf_interfaces(tmp_path: Path) -> None:
    require_netconfd()
    request = CollectRequest(groups=("interfaces",))
    with start_netconfd(tmp_path / "netconfd", modules=["ietf-interfaces"]) as nc:
        result = _collect_twice(_netconfd_device(nc), request)
        logs = nc.logs()
    assert not result.failed, f"{result.exception}\n{logs}"
    assert "ietf-interfaces" in result.facts["netconf_models"].split(", ")
    got = {s.key: s.value for s in result.samples}
    if not os.access(IETF_IF_SIL, os.R_OK):
        # Without Debian's netconfd-module-ietf-interfaces the module has no
        # instrumentation: the get succeeds and holds no state.
        assert got == {}
        return
    # The SIL reads the host's /proc/net/dev: the loopback carries this very session.
    assert got["if_oper_up@lo"] in (0.0, 1.0)  # yuma123 reports "unknown" for lo
    assert got["if_in_bps@lo"] > 0 and got["if_in_pps@lo"] > 0
    assert got["if_in_errors_ps@lo"] == 0.0
    assert all(v >= 0 for k, v in got.items() if k.startswith("if_in_"))
    assert result.varbinds >= len(got) // 2
