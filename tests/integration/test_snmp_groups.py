"""The SNMP metric groups over real sockets: the lab's metro ring, and a real net-snmp snmpd.

The lab runs its clock 10x faster than the wall clock, as ``autonoc lab up
--speed 10`` does, so rates are only right if they are measured on the
device's clock (sysUpTime) rather than the collector's. The snmpd tests read
the real kernel's interfaces, CPU and memory, and restart the agent on the
same port to play a reboot.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from autonoc.core.errors import DeviceError, DeviceRejected, DeviceUnreachable
from autonoc.core.inventory import Device, Mgmt, Role, SnmpV2c, SnmpV3
from autonoc.core.settings import SnmpSettings
from autonoc.core.types import Sample
from collectors.base import CollectRequest, CollectResult
from collectors.snmp import SnmpClient, poll_many
from collectors.snmp_groups import DEFAULT_INTERVALS, SnmpCollector
from lab.faults import FaultInjector, FaultKind
from lab.network import LabNetwork, SimClock
from lab.runner import LabRunner
from tests.integration.conftest import require_programs

pytestmark = pytest.mark.integration

SETTINGS = SnmpSettings(timeout=2.0, retries=1)
ALL_GROUPS = CollectRequest(groups=tuple(DEFAULT_INTERVALS))
SPEED = 10.0


def _values(result: CollectResult) -> dict[str, float]:
    return {s.key: s.value for s in result.samples}


def _metric(result: CollectResult, metric: str) -> dict[str, float]:
    """``{instance: value}`` of one metric."""
    return {s.instance: s.value for s in result.samples if s.metric == metric}


# The lab ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRunner]:
    with LabRunner(LabNetwork.preset("metro-ring", clock=SimClock(speed=SPEED))) as runner:
        yield runner


async def _poll_all(
    collector: SnmpCollector, devices: tuple[Device, ...], request: CollectRequest = ALL_GROUPS
) -> dict[str, CollectResult]:
    results = await poll_many(collector, devices, request, concurrency=64)
    for result in results:
        result.raise_for_status()
    return {r.device: r for r in results}


@pytest.fixture(scope="module")
def two_polls(lab: LabRunner) -> tuple[dict[str, CollectResult], dict[str, CollectResult]]:
    """Every group of every device, polled twice one wall-clock second apart."""
    devices = lab.inventory.devices

    async def run() -> tuple[dict[str, CollectResult], dict[str, CollectResult]]:
        async with SnmpClient(SETTINGS) as client:
            collector = SnmpCollector(client)
            first = await _poll_all(collector, devices)
            await asyncio.sleep(1.0)
            return first, await _poll_all(collector, devices)

    return asyncio.run(run())


@pytest.mark.timeout(120)
def test_routers_yield_interface_system_and_bgp_metrics(
    lab: LabRunner, two_polls: tuple[dict[str, CollectResult], dict[str, CollectResult]]
) -> None:
    first, second = two_polls
    routers = [d.name for d in lab.inventory.devices if d.role is Role.ROUTER]
    assert routers
    for name in routers:
        result = second[name]
        got = _values(result)
        assert result.varbinds > 0 and result.facts["sysName"] == name
        assert result.facts["sysObjectID"].startswith("1.3.6.1.4.1.32473.1.")
        assert 0.0 <= got["cpu_util_pct"] <= 100.0
        assert 0.0 < got["mem_used_pct"] < 100.0 and got["mem_used_bytes"] > 0
        assert got["sys_uptime_s"] > 0
        up = _metric(result, "bgp_peer_up")
        assert up and all(v == 1.0 for v in up.values()), (name, up)
        assert set(_metric(result, "bgp_peer_state").values()) == {6.0}
        assert all(v > 0 for v in _metric(result, "bgp_prefixes_accepted").values())
        assert set(_metric(result, "bgp_updates_in_ps")) == set(up)  # rates on the 2nd poll
        assert "if_in_bps" not in {s.metric for s in first[name].samples}  # not on the 1st
        for ifname, oper in _metric(result, "if_oper_up").items():
            assert oper == 1.0
            if ifname == "lo0":
                continue
            assert got[f"if_in_bps@{ifname}"] >= 0 and got[f"if_speed_bps@{ifname}"] > 0
            assert 0.0 <= got[f"if_in_util@{ifname}"] < 1.0
    # Somewhere traffic flows, in packets too.
    assert any(v > 1e6 for r in routers for v in _metric(second[r], "if_in_bps").values())
    assert any(v > 1e3 for r in routers for v in _metric(second[r], "if_out_pps").values())


@pytest.mark.timeout(120)
def test_rates_are_per_device_second_when_the_lab_runs_fast(
    lab: LabRunner, two_polls: tuple[dict[str, CollectResult], dict[str, CollectResult]]
) -> None:
    # The model's own rate vs what the collector derived from the counters: a
    # wall-clock time base would read 10x too high.
    _, second = two_polls
    checked = 0
    for state in lab.network.interfaces("pe1"):
        if state.in_bps < 1e6:
            continue
        measured = _values(second["pe1"])[f"if_in_bps@{state.name}"]
        assert 0.5 < measured / state.in_bps < 2.0, (state.name, measured, state.in_bps)
        checked += 1
    assert checked


@pytest.mark.timeout(120)
def test_optical_devices_yield_their_metrics_in_plausible_ranges(
    lab: LabRunner, two_polls: tuple[dict[str, CollectResult], dict[str, CollectResult]]
) -> None:
    _, second = two_polls
    by_role: dict[Role, list[str]] = {}
    for device in lab.inventory.devices:
        by_role.setdefault(device.role, []).append(device.name)
    for name in by_role[Role.TRANSPONDER]:
        got = _values(second[name])
        assert -30.0 < got["opt_rx_power_dbm@line1"] < 5.0
        assert -15.0 < got["opt_tx_power_dbm@line1"] < 5.0
        assert 20.0 < got["opt_osnr_db@line1"] < 40.0
        assert 0.0 < got["opt_pre_fec_ber@line1"] < 1e-2
        assert got["opt_q_db@line1"] > 5.0
        assert 10.0 < got["opt_laser_bias_ma@line1"] < 200.0
        assert 0.0 < got["opt_module_temp_c@line1"] < 90.0
        assert "opt_cd_ps_nm@line1" in got and got["opt_post_fec_uncorrectable@line1"] >= 0
        assert got["if_oper_up@line1"] == 1.0
    for name in by_role[Role.AMPLIFIER]:
        got = _values(second[name])
        assert -30.0 < got["amp_input_power_dbm@edfa"] < 10.0
        assert got["amp_output_power_dbm@edfa"] > got["amp_input_power_dbm@edfa"]
        assert got["amp_gain_db@edfa"] == pytest.approx(got["amp_target_gain_db@edfa"], abs=1.0)
        assert got["amp_pump_current_ma@edfa"] > 0 and "amp_gain_tilt_db@edfa" in got
    for name in by_role[Role.ROADM]:
        inputs = _metric(second[name], "roadm_input_power_dbm")
        assert inputs and all(k.startswith("deg-") for k in inputs)
        assert all(-30.0 < v < 30.0 for v in inputs.values())
        assert set(_metric(second[name], "roadm_output_power_dbm")) == set(inputs)
        # Per-channel attenuation sensors are served but map to nothing.
        assert {s.metric for s in second[name].samples} <= {
            "roadm_input_power_dbm", "roadm_output_power_dbm", "if_admin_up", "if_oper_up",
            "if_speed_bps", "sys_uptime_s",
        }  # fmt: skip


@pytest.mark.timeout(120)
def test_span_loss_moves_the_optics_metrics(lab: LabRunner) -> None:
    span = "span:roadm-b:roadm-c"
    amp = next(n for n, a in lab.network.optical_snapshot().amplifiers.items() if a.span == span)
    devices = tuple(lab.inventory.device(n) for n in (amp, "xp-c1"))
    optics = CollectRequest(groups=("optics",))

    async def run() -> tuple[dict[str, CollectResult], dict[str, CollectResult]]:
        async with SnmpClient(SETTINGS) as client:
            collector = SnmpCollector(client)
            before = await _poll_all(collector, devices, optics)
            faults = FaultInjector(lab.network)
            faults.inject(FaultKind.SPAN_LOSS.value, span, {"extra_db": 9.0})
            try:
                await asyncio.sleep(0.5)  # the optical layer re-measures each simulated second
                return before, await _poll_all(collector, devices, optics)
            finally:
                faults.clear()

    before, after = asyncio.run(run())
    amp_in = [_values(r[amp])["amp_input_power_dbm@edfa"] for r in (before, after)]
    assert amp_in[1] < amp_in[0] - 6.0, amp_in
    osnr = [_values(r["xp-c1"])["opt_osnr_db@line1"] for r in (before, after)]
    assert osnr[1] < osnr[0] - 1.0, osnr


# A real net-snmp snmpd on loopback -------------------------------------------


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Snmpd:
    """One ``snmpd`` on 127.0.0.1, restartable on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_udp_port()
        self.community = secrets.token_urlsafe(12)
        self.conf = workdir / "snmpd.conf"
        self.auth_key = secrets.token_urlsafe(12)
        self.priv_key = secrets.token_urlsafe(12)
        self.conf.write_text(
            f"rocommunity {self.community} 127.0.0.1\n"
            f'createUser autonoc SHA "{self.auth_key}" AES "{self.priv_key}"\n'
            "rouser autonoc priv\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        snmpd = shutil.which("snmpd") or "/usr/sbin/snmpd"
        self.proc = subprocess.Popen(
            [snmpd, "-f", "-C", "-c", str(self.conf), "-Lf", str(self.workdir / "snmpd.log"),
             f"--persistentDir={self.workdir / 'persist'}", "-I", "-smux",
             f"udp:127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "MIBS": "", "MIBDIRS": str(self.workdir)},
        )  # fmt: skip
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.workdir / "snmpd.log").read_text(errors="replace")
                pytest.fail(f"snmpd exited with {self.proc.returncode}: {log[-2000:]}")
            if self._answers():
                return
            time.sleep(0.1)
        pytest.fail("snmpd did not answer within 15 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def device(self, version: str = "v2c") -> Device:
        return Device(
            name="host",
            role=Role.ROUTER,
            mgmt=Mgmt(host="127.0.0.1", snmp_port=self.port),
            snmp=SnmpV2c.model_validate(
                {"version": version, "community": SecretStr(self.community)}
            ),
        )

    def v3_device(self, *, auth_key: str | None = None, priv_key: str | None = None) -> Device:
        return Device(
            name="host",
            role=Role.ROUTER,
            mgmt=Mgmt(host="127.0.0.1", snmp_port=self.port),
            snmp=SnmpV3(
                version="v3",
                user="autonoc",
                auth_protocol="sha",
                auth_key=SecretStr(auth_key or self.auth_key),
                priv_protocol="aes",
                priv_key=SecretStr(priv_key or self.priv_key),
            ),
        )

    def _answers(self) -> bool:
        async def ask() -> bool:
            async with SnmpClient(SnmpSettings(timeout=0.3, retries=0)) as client:
                try:
                    got = await client.get(self.device(), ["1.3.6.1.2.1.1.3.0"])
                except DeviceError:
                    return False  # not up yet
                return isinstance(got.get("1.3.6.1.2.1.1.3.0"), int)

        return asyncio.run(ask())


@pytest.fixture
def snmpd(tmp_path: Path) -> Iterator[Snmpd]:
    require_programs([] if shutil.which("snmpd") else ["snmpd"], "apt-get install snmpd")
    agent = Snmpd(tmp_path)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def _rates(result: CollectResult) -> list[Sample]:
    """The samples derived from counters (the speed is a gauge)."""
    return [
        s
        for s in result.samples
        if s.metric.endswith(("_bps", "_pps", "_ps", "_util")) and s.metric != "if_speed_bps"
    ]


# snmpd re-reads the kernel's interface counters at most every ~3 s (its ifTable
# cache): polls closer than that see the same values.
CACHE_S = 3.5


async def _poll_until(
    collector: SnmpCollector, device: Device, request: CollectRequest, metric: str
) -> CollectResult:
    """Poll until ``metric`` appears: snmpd loads its UCD CPU counters a few seconds in."""
    deadline = time.monotonic() + 20.0
    while True:
        result = (await collector.collect(device, request)).raise_for_status()
        if any(s.metric == metric for s in result.samples) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(1.0)


@pytest.mark.timeout(90)
def test_snmpd_interfaces_and_system_from_the_real_kernel(snmpd: Snmpd) -> None:
    request = CollectRequest(groups=("interfaces", "system", "inventory"))
    device = snmpd.device()

    async def run() -> tuple[CollectResult, CollectResult]:
        async with SnmpClient(SETTINGS) as client:
            collector = SnmpCollector(client)
            await collector.collect(device, request)
            await asyncio.sleep(CACHE_S)
            second = (await collector.collect(device, request)).raise_for_status()
            return second, await _poll_until(collector, device, request, "cpu_util_pct")

    second, result = asyncio.run(run())
    # Our own SNMP traffic crosses lo, so its counters moved between the polls.
    assert _values(second)["if_in_bps@lo"] > 0 and _values(second)["if_in_pps@lo"] > 0
    got = _values(result)
    assert result.facts["sysObjectID"].startswith("1.3.6.1.4.1.8072.")  # net-snmp
    assert result.facts["sysName"] and result.facts["sysDescr"]
    assert 0.0 <= got["cpu_util_pct"] <= 100.0
    assert 0.0 < got["mem_used_pct"] < 100.0 and got["mem_used_bytes"] > 1e6
    assert got["if_oper_up@lo"] == 1.0
    assert all(s.value >= 0 for s in [*_rates(second), *_rates(result)])


@pytest.mark.timeout(90)
def test_snmpd_restart_is_a_reboot_without_spike_then_rates_return(snmpd: Snmpd) -> None:
    request = CollectRequest(groups=("interfaces",))
    device = snmpd.device()

    async def poll(collector: SnmpCollector) -> CollectResult:
        return (await collector.collect(device, request)).raise_for_status()

    async def run() -> list[CollectResult]:
        async with SnmpClient(SETTINGS) as client:
            collector = SnmpCollector(client)
            results = [await poll(collector)]
            await asyncio.sleep(CACHE_S)
            results.append(await poll(collector))
            await asyncio.to_thread(snmpd.stop)
            await asyncio.to_thread(snmpd.start)  # same port: sysUpTime starts again
            results.append(await poll(collector))
            await asyncio.sleep(CACHE_S)
            results.append(await poll(collector))
            return results

    first, running, rebooted, after = asyncio.run(run())
    assert _rates(first) == []
    assert _values(running)["if_in_bps@lo"] > 0
    assert _values(rebooted)["sys_uptime_s"] < _values(running)["sys_uptime_s"]
    # The kernel's counters kept counting while the agent's uptime restarted: no
    # rate across that (neither a spike nor a negative), then rates from the new baseline.
    assert _rates(rebooted) == []
    assert _values(rebooted)["if_oper_up@lo"] == 1.0
    assert _values(after)["if_in_bps@lo"] > 0
    assert all(s.value >= 0 for s in _rates(after))


@pytest.mark.timeout(90)
def test_snmpd_over_v1_uses_32_bit_counters(snmpd: Snmpd) -> None:
    device = snmpd.device(version="v1")
    request = CollectRequest(groups=("interfaces",))

    async def run() -> CollectResult:
        async with SnmpClient(SETTINGS) as client:
            collector = SnmpCollector(client)
            await collector.collect(device, request)
            await asyncio.sleep(CACHE_S)
            return (await collector.collect(device, request)).raise_for_status()

    got = _values(asyncio.run(run()))
    assert got["if_in_bps@lo"] > 0 and got["if_oper_up@lo"] == 1.0


def test_snmpd_v3_authpriv_polls_and_wrong_keys_are_auth_errors(snmpd: Snmpd) -> None:
    """v3 (SHA + AES) against net-snmp: right keys read the same tables as v2c; a wrong
    key is a DeviceRejected naming the security problem at once, never a timeout."""
    request = CollectRequest(groups=("interfaces", "system"))

    silent = snmpd.v3_device().model_copy(
        update={"mgmt": Mgmt(host="127.0.0.1", snmp_port=_free_udp_port())}
    )

    async def run() -> tuple[CollectResult, ...]:
        async with SnmpClient(SnmpSettings(timeout=1.0, retries=1)) as client:
            collector = SnmpCollector(client)
            good = await collector.collect(snmpd.v3_device(), request)
            bad_auth = await collector.collect(snmpd.v3_device(auth_key="not-the-key"), request)
            bad_priv = await collector.collect(snmpd.v3_device(priv_key="not-the-key"), request)
            dead = await collector.collect(silent, request)
            return good, bad_auth, bad_priv, dead

    good, bad_auth, bad_priv, dead = asyncio.run(run())
    # Nobody there: still unreachable, not blamed on the keys.
    assert dead.failed and isinstance(dead.exception, DeviceUnreachable), dead.exception
    assert not good.failed, good.exception
    assert "if_oper_up@lo" in _values(good)
    assert "sys_uptime_s" in _values(good)
    for result in (bad_auth, bad_priv):
        assert result.failed
        assert isinstance(result.exception, DeviceRejected), result.exception
        assert "check the SNMPv3 user, protocols and keys" in str(result.exception)
        assert snmpd.auth_key not in str(result.exception)
        assert snmpd.priv_key not in str(result.exception)
