"""The optical lab: healthy link budgets, faults, remediation and the BER/Q mapping."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest

from autonoc.core.errors import LabError
from lab.optical import (
    METRICS,
    Element,
    FaultKind,
    LinePortState,
    OpticalNetwork,
    OpticalSnapshot,
    metric_values,
)
from lab.optical import physics as ph
from tests.unit.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def net(clock: FakeClock) -> OpticalNetwork:
    return OpticalNetwork.metro_ring(seed=7, clock=clock)


def _snap(net: OpticalNetwork) -> OpticalSnapshot:
    return net.snapshot(noise=False)


def _rx_ports(net: OpticalNetwork, span: str) -> set[str]:
    """Line ports that receive light which crossed ``span``."""
    snap = _snap(net)
    ports = set()
    for ch in snap.channels.values():
        if span in ch.path_ab:
            ports.add(ch.b_port)
        if span in ch.path_ba:
            ports.add(ch.a_port)
    return ports


def _port_metrics(port: LinePortState) -> dict[str, float]:
    return metric_values(port)


# Preset ---------------------------------------------------------------------


def test_metro_ring_has_the_promised_shape(net: OpticalNetwork) -> None:
    snap = _snap(net)
    assert set(snap.roadms) == {"roadm-a", "roadm-b", "roadm-c", "roadm-d"}
    assert all(len(r.degrees) == 2 for r in snap.roadms.values())
    assert len(snap.spans) == 8
    assert {s.amplifier for s in snap.spans.values()} == set(snap.amplifiers)
    for span in snap.spans.values():
        assert 60.0 <= span.length_km <= 80.0
        assert 13.0 <= span.loss_db <= 22.0
    assert list(snap.channels) == ["och-1", "och-2", "och-3", "och-4"]
    assert any(len(c.path_ab) == 2 for c in snap.channels.values())
    assert snap.channels["och-1"].carries == ("pe1:eth1", "p1:eth1")
    assert all(c.carries is not None for c in snap.channels.values())
    assert all(c.oper_up for c in snap.channels.values())
    assert all(c.oper_up for c in snap.client_ports.values())


def test_metro_ring_is_deterministic(clock: FakeClock) -> None:
    one = OpticalNetwork.metro_ring(seed=7, clock=clock).snapshot()
    two = OpticalNetwork.metro_ring(seed=7, clock=clock).snapshot()
    assert one == two
    other = OpticalNetwork.metro_ring(seed=8, clock=clock).snapshot(noise=False)
    assert set(other.channels) == set(one.channels)
    assert other.spans["span-a-b"].length_km != one.spans["span-a-b"].length_km


def test_an_80_km_span_loses_about_20_db() -> None:
    assert 18.0 <= ph.span_loss_db(80.0, 2 * ph.CONNECTOR_LOSS_DB) <= 22.0


def test_healthy_values_sit_in_the_healthy_ranges(net: OpticalNetwork) -> None:
    snap = _snap(net)
    for port in snap.line_ports.values():
        assert port.oper_up and not port.los
        assert 20.0 <= port.osnr_db <= 35.0, port
        # healthy links sit 1-3 decades below the C-FEC limit
        assert ph.C_FEC_LIMIT * 1e-3 <= port.pre_fec_ber <= ph.C_FEC_LIMIT * 1e-1, port
        assert -12.0 <= port.rx_power_dbm <= 0.0
        assert -10.0 <= port.tx_power_dbm <= -6.0
        assert port.post_fec_uncorrectable == 0.0
        assert 30.0 <= port.module_temp_c <= 55.0
        assert 0.0 < port.cd_ps_nm <= 2400.0
    for amp in snap.amplifiers.values():
        assert 15.0 <= amp.gain_db <= 27.0
        assert amp.gain_db == pytest.approx(amp.target_gain_db)
        assert amp.output_power_dbm <= amp.max_output_dbm
        assert 5.0 <= amp.noise_figure_db <= 6.0
        assert amp.pump_current_ma > 0.0
        assert not (amp.los or amp.shutdown)


def test_cd_is_17_ps_per_nm_per_km(net: OpticalNetwork) -> None:
    snap = _snap(net)
    for ch in snap.channels.values():
        assert snap.line_ports[ch.b_port].cd_ps_nm == pytest.approx(17.0 * ch.length_km)


def test_osnr_follows_the_reference_formula_for_one_amplifier() -> None:
    # 58 + P_ch_in - NF, and 1/OSNR adds over amplifiers
    assert ph.amplifier_osnr_db(1.0 - 20.0, 5.0) == pytest.approx(34.0)
    assert ph.osnr_cascade([34.0, 34.0]) == pytest.approx(34.0 - 10 * math.log10(2))


# BER, Q and the FEC ---------------------------------------------------------


@pytest.mark.parametrize(("ber", "q_db"), [(1.25e-2, 7.0), (3.8e-3, 8.5), (1e-12, 16.9)])
def test_q_factor_matches_the_reference_table(ber: float, q_db: float) -> None:
    assert ph.q_db_from_ber(ber) == pytest.approx(q_db, abs=0.05)


def test_ber_mapping_is_calibrated_and_monotonic() -> None:
    assert ph.pre_fec_ber(ph.OSNR_REQUIRED_DB) == pytest.approx(ph.C_FEC_LIMIT, rel=0.1)
    for osnr in (30.0, 32.5, 35.0):
        assert 1e-5 <= ph.pre_fec_ber(osnr) <= 4e-4
    values = [ph.pre_fec_ber(x / 4) for x in range(0, 200)]
    assert all(a > b for a, b in itertools.pairwise(values))


def test_post_fec_errors_appear_only_above_the_fec_limit() -> None:
    assert ph.post_fec_uncorrectable(1e-3) == 0.0
    assert ph.post_fec_uncorrectable(ph.C_FEC_LIMIT) == 0.0
    above = [ph.post_fec_uncorrectable(b) for b in (2e-2, 5e-2, 0.1, 0.5)]
    assert 0.0 < above[0] < above[1] < above[2] < above[3] == ph.FEC_BLOCKS_PER_S


def test_reported_q_agrees_with_reported_ber(net: OpticalNetwork) -> None:
    for port in net.snapshot().line_ports.values():
        assert port.q_db == pytest.approx(ph.q_db_from_ber(port.pre_fec_ber))


# Faults ---------------------------------------------------------------------


def test_span_loss_degrades_only_the_channels_crossing_the_span(net: OpticalNetwork) -> None:
    healthy = _snap(net)
    span = "span-b-c"
    hit = _rx_ports(net, span)
    assert hit == {"xp-d1:line1"}
    net.span_loss(span, 6.0)
    faulty = _snap(net)
    assert faulty.spans[span].loss_db == pytest.approx(healthy.spans[span].loss_db + 6.0)
    for name, before in healthy.line_ports.items():
        after = faulty.line_ports[name]
        if name in hit:
            assert after.osnr_db <= before.osnr_db - 3.0
            assert after.pre_fec_ber >= 10.0 * before.pre_fec_ber
            assert after.rx_power_dbm == pytest.approx(before.rx_power_dbm - 6.0)
            assert after.q_db < before.q_db
        else:
            assert after == before
    amp = faulty.amplifiers["amp-b-c"]
    assert amp.input_power_dbm == pytest.approx(healthy.amplifiers["amp-b-c"].input_power_dbm - 6.0)


def test_fiber_cut_gives_los_on_exactly_the_crossing_channels(net: OpticalNetwork) -> None:
    healthy = _snap(net)
    span = "span-c-d"
    assert net.channels_on_span(span) == ("och-2", "och-3", "och-4")
    hit = _rx_ports(net, span)
    # och-2 and och-4 run c->d from A to B; och-3 runs it on its way back to A
    assert hit == {"xp-d1:line1", "xp-a2:line1", "xp-d2:line1"}
    net.fiber_cut(span)
    snap = _snap(net)
    amp = snap.amplifiers["amp-c-d"]
    assert amp.input_power_dbm < ph.AMP_LOS_THRESHOLD_DBM
    assert amp.los and amp.shutdown
    for name, port in snap.line_ports.items():
        if name in hit:
            assert port.los and not port.oper_up
            assert port.rx_power_dbm == pytest.approx(-40.0, abs=1.0)
            assert port.pre_fec_ber == 0.5
            assert port.post_fec_uncorrectable > 0.0
        else:
            assert port == healthy.line_ports[name]
    down = {c.name for c in snap.channels.values() if not c.oper_up}
    assert down == {"och-2", "och-3", "och-4"}
    assert snap.line_ports["xp-c1:line1"].oper_up  # och-3's other direction still lit


def test_channels_on_span_lists_both_directions_and_rejects_unknown(net: OpticalNetwork) -> None:
    assert net.channels_on_span("span-a-b") == ("och-1",)
    assert net.channels_on_span("span-b-a") == ("och-1",)
    with pytest.raises(LabError, match="span-x-y"):
        net.channels_on_span("span-x-y")


def test_amplifier_failure_behaves_like_a_cut_downstream(net: OpticalNetwork) -> None:
    net.fiber_cut("span-b-c")
    cut = _snap(net)
    net.reset()
    net.amplifier_failure("amp-b-c")
    failed = _snap(net)
    amp = failed.amplifiers["amp-b-c"]
    assert amp.gain_db == 0.0 and amp.pump_current_ma == 0.0
    assert amp.failed and not amp.los  # light reaches it; it just does not amplify
    assert amp.output_power_dbm < ph.AMP_LOS_THRESHOLD_DBM
    assert failed.line_ports == cut.line_ports
    assert not failed.line_ports["xp-d1:line1"].oper_up


def test_laser_degradation_raises_bias_and_sags_tx_power(net: OpticalNetwork) -> None:
    port = "xp-a1:line1"
    before = _snap(net).line_ports[port]
    net.laser_degradation(port, 0.15)
    after = _snap(net).line_ports[port]
    assert after.laser_bias_ma == pytest.approx(before.laser_bias_ma * 1.15)
    assert -0.5 < after.tx_power_dbm - before.tx_power_dbm < 0.0
    assert after.module_temp_c > before.module_temp_c
    assert after.oper_up


def test_osnr_degradation_raises_noise_figure(net: OpticalNetwork) -> None:
    healthy = _snap(net)
    fault = net.osnr_degradation("span-a-b", 4.0)
    assert fault.target == "amp-a-b"
    snap = _snap(net)
    assert snap.amplifiers["amp-a-b"].noise_figure_db == pytest.approx(
        healthy.amplifiers["amp-a-b"].noise_figure_db + 4.0
    )
    assert snap.line_ports["xp-b1:line1"].osnr_db < healthy.line_ports["xp-b1:line1"].osnr_db - 1.0
    assert snap.line_ports["xp-b1:line1"].rx_power_dbm == pytest.approx(
        healthy.line_ports["xp-b1:line1"].rx_power_dbm
    )


@pytest.mark.parametrize(
    ("inject", "arg"),
    [("span_loss", -1.0), ("laser_degradation", 0.0), ("osnr_degradation", 50.0)],
)
def test_faults_reject_nonsense(net: OpticalNetwork, inject: str, arg: float) -> None:
    target = {"span_loss": "span-a-b", "laser_degradation": "xp-a1:line1"}.get(inject, "amp-a-b")
    with pytest.raises(LabError):
        getattr(net, inject)(target, arg)


def test_clear_restores_the_exact_healthy_values(net: OpticalNetwork) -> None:
    healthy = _snap(net)
    faults = [
        net.span_loss("span-a-b", 6.0),
        net.fiber_cut("span-c-d"),
        net.amplifier_failure("amp-d-a"),
        net.laser_degradation("xp-b2:line1", 0.2),
        net.osnr_degradation("amp-b-c", 3.0),
    ]
    assert {f.kind for f in net.faults()} == set(FaultKind)
    assert _snap(net) != healthy
    for fault in faults:
        net.clear(fault)
    assert net.faults() == ()
    assert _snap(net) == healthy


def test_reset_also_undoes_remediation(net: OpticalNetwork) -> None:
    healthy = _snap(net)
    net.span_loss("span-a-b", 6.0)
    net.set_amplifier_gain("amp-a-b", healthy.amplifiers["amp-a-b"].target_gain_db + 3.0)
    net.set_tx_power("xp-a1:line1", -6.0)
    net.clear_all()
    assert _snap(net) != healthy  # the knobs stay where a playbook put them
    net.reset()
    assert _snap(net) == healthy


# Remediation ----------------------------------------------------------------


def test_gain_bounds_are_enforced(net: OpticalNetwork) -> None:
    amp = _snap(net).amplifiers["amp-a-b"]
    for bad in (amp.min_gain_db - 0.1, amp.max_gain_db + 0.1):
        with pytest.raises(LabError, match="outside its range"):
            net.set_amplifier_gain("amp-a-b", bad)
    net.set_amplifier_gain("amp-a-b", amp.max_gain_db)
    assert _snap(net).amplifiers["amp-a-b"].target_gain_db == amp.max_gain_db
    with pytest.raises(LabError):
        net.set_amplifier_gain("amp-z-z", 20.0)


def test_tx_power_bounds_are_enforced(net: OpticalNetwork) -> None:
    for bad in (-10.5, -5.5):
        with pytest.raises(LabError, match="400ZR range"):
            net.set_tx_power("xp-a1:line1", bad)
    net.set_tx_power("xp-a1:line1", -6.0)
    assert _snap(net).line_ports["xp-a1:line1"].tx_power_dbm == pytest.approx(-6.0)


def test_more_gain_after_a_span_loss_restores_power_and_part_of_the_osnr(
    net: OpticalNetwork,
) -> None:
    healthy = _snap(net)
    port = "xp-d1:line1"  # och-2 crosses span-b-c, then span-c-d
    net.span_loss("span-b-c", 6.0)
    degraded = _snap(net)
    net.set_amplifier_gain("amp-b-c", healthy.amplifiers["amp-b-c"].target_gain_db + 3.0)
    fixed = _snap(net)
    before, after, good = (s.line_ports[port] for s in (degraded, fixed, healthy))
    assert after.rx_power_dbm == pytest.approx(before.rx_power_dbm + 3.0)
    assert after.osnr_db > before.osnr_db + 1.0
    assert after.pre_fec_ber < before.pre_fec_ber
    # Partial: the loss ahead of the amplifier still lowers the signal against its ASE.
    assert after.osnr_db < good.osnr_db - 1.0


def test_gain_saturates_at_the_maximum_output(net: OpticalNetwork) -> None:
    net.set_amplifier_gain("amp-a-b", 27.0)
    amp = _snap(net).amplifiers["amp-a-b"]
    assert amp.output_power_dbm == pytest.approx(amp.max_output_dbm)
    assert amp.gain_db < amp.target_gain_db


def test_pump_current_rises_with_gain(net: OpticalNetwork) -> None:
    before = _snap(net).amplifiers["amp-a-b"]
    net.set_amplifier_gain("amp-a-b", before.target_gain_db + 2.0)
    after = _snap(net).amplifiers["amp-a-b"]
    assert after.pump_current_ma > before.pump_current_ma


# Read API -------------------------------------------------------------------


def test_metric_table_names_every_reported_metric(net: OpticalNetwork) -> None:
    snap = _snap(net)
    for required in (
        "opt_rx_power_dbm",
        "opt_osnr_db",
        "opt_pre_fec_ber",
        "opt_q_db",
        "opt_post_fec_uncorrectable",
        "amp_gain_db",
        "amp_input_power_dbm",
        "amp_output_power_dbm",
        "amp_pump_current_ma",
    ):
        assert required in METRICS
    port = snap.line_ports["xp-a1:line1"]
    values = _port_metrics(port)
    assert set(values) == {m.name for m in METRICS.values() if m.element is Element.LINE_PORT}
    assert values["opt_osnr_db"] == port.osnr_db
    assert set(metric_values(snap.amplifiers["amp-a-b"])) >= {"amp_gain_db", "amp_pump_current_ma"}
    assert set(metric_values(snap.degree("roadm-a", "deg-1"))) == {
        "roadm_input_power_dbm",
        "roadm_output_power_dbm",
    }
    assert dataclasses.is_dataclass(port)
    with pytest.raises(dataclasses.FrozenInstanceError):
        port.osnr_db = 1.0  # type: ignore[misc]


def test_noise_is_small_seeded_and_moves_with_the_clock(
    net: OpticalNetwork, clock: FakeClock
) -> None:
    exact = _snap(net).line_ports["xp-a1:line1"]
    first = net.snapshot().line_ports["xp-a1:line1"]
    assert net.snapshot().line_ports["xp-a1:line1"] == first
    clock.advance(7.0)
    later = net.snapshot().line_ports["xp-a1:line1"]
    assert later != first
    for noisy in (first, later):
        assert noisy.rx_power_dbm == pytest.approx(exact.rx_power_dbm, abs=0.06)
        assert noisy.osnr_db == pytest.approx(exact.osnr_db, abs=0.11)
        # BER follows the noisy OSNR, plus its own wobble of at most 0.02 decades
        assert abs(math.log10(noisy.pre_fec_ber / exact.pre_fec_ber)) < 0.1


def test_add_channel_validates_its_path(net: OpticalNetwork) -> None:
    net.add_transponder("xp-a9", "roadm-a")
    net.add_transponder("xp-c9", "roadm-c")
    with pytest.raises(LabError, match="ends at"):
        net.add_channel("och-9", 9, "xp-a9:line1", "xp-c9:line1", ["span-a-b"])
    with pytest.raises(LabError, match="overlaps"):
        net.add_channel("och-9", 1, "xp-a9:line1", "xp-c9:line1", ["span-a-b", "span-b-c"])
    net.add_channel("och-9", 9, "xp-a9:line1", "xp-c9:line1", ["span-a-b", "span-b-c"])
    net.commission()
    port = _snap(net).line_ports["xp-c9:line1"]
    assert port.oper_up and 20.0 <= port.osnr_db <= 35.0
