"""The physics of the optical lab, one small pure function per step.

Everything here works in dB and dBm: losses and gains add, powers of several
signals add in milliwatts (:func:`dbm_sum`), noise contributions add as
reciprocal OSNRs (:func:`osnr_cascade`). The constants are typical values from
``OPTICS.md`` (400ZR datasheets, the OIF 400ZR IA, GNPy's equipment library).

One hop of a channel, from one ROADM's output to the next ROADM's input::

    booster ── span (fibre + connectors) ── EDFA preamp ── ROADM (WSS express or drop)

Each EDFA adds ASE noise; at the 0.1 nm reference bandwidth its OSNR is
``58 + P_ch_in − NF`` (:func:`amplifier_osnr_db`), where ``P_ch_in`` is the
per-channel power at the *amplifier's input*. That is why a loss before an
amplifier cannot be fully repaired by raising its gain afterwards: the extra
loss has already lowered the signal relative to the noise the amplifier adds.
Raising the gain only restores the power (and so the OSNR) of the stages
*after* it, which is a partial recovery.
"""

from __future__ import annotations

import math
from statistics import NormalDist

__all__ = [
    "AMP_INPUT_FLOOR_DBM",
    "AMP_LOS_THRESHOLD_DBM",
    "CD_PS_NM_KM",
    "CONNECTOR_LOSS_DB",
    "C_FEC_LIMIT",
    "FEC_BLOCKS_PER_S",
    "FIBRE_LOSS_DB_KM",
    "OSNR_REQUIRED_DB",
    "RX_FLOOR_DBM",
    "RX_LOS_THRESHOLD_DBM",
    "amplifier_gain_db",
    "amplifier_osnr_db",
    "chromatic_dispersion_ps_nm",
    "db_to_lin",
    "dbm_sum",
    "lin_to_db",
    "module_temperature_c",
    "osnr_cascade",
    "post_fec_uncorrectable",
    "pre_fec_ber",
    "pump_current_ma",
    "q_db_from_ber",
    "receiver_osnr_db",
    "span_loss_db",
    "tx_after_ageing",
]

FIBRE_LOSS_DB_KM = 0.22
"""G.652 attenuation at 1550 nm."""
CONNECTOR_LOSS_DB = 0.5
"""One mated connector pair; a span has one at each end."""
CD_PS_NM_KM = 17.0
"""G.652 chromatic dispersion at 1550 nm."""

OSNR_REF_CONSTANT_DB = 58.0
"""10·log10(P / (h·ν·B_ref)) for 1 mW at 1550 nm and B_ref = 0.1 nm (12.5 GHz)."""
REF_BANDWIDTH_GHZ = 12.5
SYMBOL_RATE_GBD = 59.84
"""400ZR: 16QAM, dual polarisation, 59.84 GBd."""
IMPLEMENTATION_PENALTY_DB = 2.67
"""Transceiver penalty on top of the ideal OSNR→SNR conversion, calibrated so
that OSNR 24 dB (400ZR's required OSNR) lands on the C-FEC limit."""
SNR_TRX_DB = 20.5
"""The transceiver's own SNR ceiling (DAC/ADC, phase noise): why BER flattens at
high OSNR instead of falling forever; puts OSNR 30–35 dB at BER ≈ 3e-4 to 1e-5."""
RX_NOISE_FIGURE_DB = 8.0
"""The coherent receiver's thermal noise, written as an amplifier NF so that it
joins the OSNR cascade: negligible at −8 dBm, it matters once rx power sags."""

C_FEC_LIMIT = 1.25e-2
"""400ZR C-FEC pre-FEC BER threshold."""
OSNR_REQUIRED_DB = 24.0
"""400ZR OSNR at the FEC limit (0.1 nm)."""
FEC_BLOCKS_PER_S = 4.0e7
"""FEC blocks per second at 400 Gb/s, counting a block as 10,000 bits."""

AMP_LOS_THRESHOLD_DBM = -30.0
"""Total input below which an EDFA declares loss of signal and shuts its pumps."""
AMP_INPUT_FLOOR_DBM = -50.0
"""What an EDFA's input photodiode reads with no light."""
RX_LOS_THRESHOLD_DBM = -30.0
"""Per-channel rx power below which a 400ZR module declares LOS."""
RX_FLOOR_DBM = -40.0
"""What a 400ZR module's rx monitor reads with no light."""

_MIN_DBM = -99.0
_STD_NORMAL = NormalDist()


def db_to_lin(db: float) -> float:
    """dB (or dBm) to a linear ratio (or mW)."""
    return math.pow(10.0, db / 10.0)


def lin_to_db(lin: float) -> float:
    """A linear ratio (or mW) to dB (or dBm); zero and below read as −99."""
    return 10.0 * math.log10(lin) if lin > 0.0 else _MIN_DBM


def dbm_sum(powers_dbm: list[float]) -> float:
    """Total power of several signals, each in dBm."""
    return lin_to_db(sum(db_to_lin(p) for p in powers_dbm))


def span_loss_db(length_km: float, connectors_db: float, extra_db: float = 0.0) -> float:
    """Loss of one fibre span: attenuation × length + connectors + any injected loss.

    An 80 km span with two 0.5 dB connectors loses 18.6 dB.
    """
    return FIBRE_LOSS_DB_KM * length_km + connectors_db + extra_db


def amplifier_gain_db(target_db: float, input_total_dbm: float, max_output_dbm: float) -> float:
    """The gain an EDFA in constant-gain mode actually achieves.

    It runs at its target unless the total output would exceed its maximum;
    then the pumps are at their limit and the gain compresses (saturation).
    """
    return min(target_db, max_output_dbm - input_total_dbm)


def amplifier_osnr_db(p_ch_in_dbm: float, noise_figure_db: float) -> float:
    """OSNR (0.1 nm) of the ASE one amplifier adds: 58 + P_ch_in − NF.

    ``p_ch_in_dbm`` is the per-channel power at the amplifier's *input*, after
    the span loss: a lossier span means a weaker signal against the same ASE.
    """
    return OSNR_REF_CONSTANT_DB + p_ch_in_dbm - noise_figure_db


def receiver_osnr_db(rx_power_dbm: float) -> float:
    """The receiver's thermal noise as an equivalent OSNR, with :data:`RX_NOISE_FIGURE_DB`."""
    return amplifier_osnr_db(rx_power_dbm, RX_NOISE_FIGURE_DB)


def osnr_cascade(contributions_db: list[float]) -> float:
    """Total OSNR of independent noise sources: 1/OSNR_total = Σ 1/OSNR_i (linear)."""
    inverse = sum(1.0 / db_to_lin(o) for o in contributions_db)
    return lin_to_db(1.0 / inverse) if inverse > 0.0 else float("inf")


def pre_fec_ber(osnr_db: float) -> float:
    """Pre-FEC BER of a 400ZR (DP-16QAM) signal from its OSNR (0.1 nm).

    Three steps, each monotonic, so the mapping is monotonic (falling with OSNR):

    1. OSNR → SNR per symbol: SNR = OSNR · B_ref / R_s (12.5 GHz / 59.84 GBd,
       −6.8 dB), less an implementation penalty of 2.67 dB.
    2. Cap by the transceiver's own SNR: 1/SNR = 1/SNR_line + 1/SNR_trx (20.5 dB).
    3. Gray-coded 16QAM in Gaussian noise: BER = 3/8 · erfc(√(SNR / 10)).

    Calibration: OSNR 24 dB → 1.27e-2 (the C-FEC limit, 1.25e-2); 30 dB → 3e-4;
    32.5 dB → 6e-5; 35 dB → 1.4e-5.
    """
    penalty_db = 10.0 * math.log10(REF_BANDWIDTH_GHZ / SYMBOL_RATE_GBD) - IMPLEMENTATION_PENALTY_DB
    snr_line = db_to_lin(osnr_db + penalty_db)
    snr = 1.0 / (1.0 / snr_line + 1.0 / db_to_lin(SNR_TRX_DB))
    return 3.0 / 8.0 * math.erfc(math.sqrt(snr / 10.0))


def q_db_from_ber(ber: float) -> float:
    """Q-factor in dB, 20·log10(Q), with Q = √2 · erfc⁻¹(2 · BER).

    √2 · erfc⁻¹(2p) is the standard normal quantile of 1 − p. BER 1.25e-2 gives
    7.0 dB and 1e-12 gives 16.9 dB. Q is floored at 1 (0 dB): modules do not
    report a negative Q, and BER 0.5 (no signal) would give −∞.
    """
    p = min(max(ber, 1e-300), 0.5)
    q = _STD_NORMAL.inv_cdf(1.0 - p) if p > 1e-15 else math.sqrt(2.0) * _erfcinv_tail(2.0 * p)
    return 20.0 * math.log10(max(q, 1.0))


def _erfcinv_tail(y: float) -> float:
    # Below 1e-15, 1 − p rounds to 1.0 in floating point; Newton on erfc itself.
    x = math.sqrt(-math.log(y))
    for _ in range(50):
        step = (math.erfc(x) - y) / (-2.0 / math.sqrt(math.pi) * math.exp(-x * x))
        x -= step
        if abs(step) < 1e-12:
            break
    return x


def post_fec_uncorrectable(ber: float) -> float:
    """Uncorrectable FEC blocks per second: zero up to the C-FEC limit, then rising.

    Above the limit the fraction of blocks the FEC cannot fix grows with the
    decades of excess BER, reaching every block at BER 0.5 (no signal).
    """
    if ber <= C_FEC_LIMIT:
        return 0.0
    excess = math.log10(ber / C_FEC_LIMIT) / math.log10(0.5 / C_FEC_LIMIT)
    return FEC_BLOCKS_PER_S * min(1.0, excess) ** 2


def chromatic_dispersion_ps_nm(path_km: float) -> float:
    """Accumulated CD of a path over G.652 fibre: 17 ps/nm/km × length."""
    return CD_PS_NM_KM * path_km


def pump_current_ma(output_total_dbm: float) -> float:
    """980 nm pump current for a given total output power.

    Pump power ≈ signal output / power-conversion efficiency (50 %); the pump
    diode needs a 30 mA threshold and gives 0.8 mW per mA above it. More gain
    at the same input means more output, so more current.
    """
    pump_mw = db_to_lin(output_total_dbm) / 0.5
    return 30.0 + pump_mw / 0.8


def tx_after_ageing(tx_set_dbm: float, bias_nominal_ma: float, drift: float) -> tuple[float, float]:
    """Tx power and bias current of an ageing laser, as ``(tx_dbm, bias_ma)``.

    Ageing lowers the laser's slope efficiency; the module's power control
    raises the bias current by ``drift`` (0.15 = +15 %) to hold the output,
    and makes up only part of it, so tx power sags by 10·log10(1 + drift) / 2 dB.
    """
    return tx_set_dbm - 5.0 * math.log10(1.0 + drift), bias_nominal_ma * (1.0 + drift)


def module_temperature_c(base_c: float, bias_ma: float, bias_nominal_ma: float) -> float:
    """Module case temperature: a seeded base plus TEC heat from extra bias (0.1 °C/mA)."""
    return base_c + 0.1 * (bias_ma - bias_nominal_ma)
