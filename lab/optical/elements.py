"""The line system's building blocks: constants, faults and mutable element records.

The records are internal to :mod:`lab.optical`; :class:`~lab.optical.model.OpticalNetwork`
owns them and reports them as the frozen states of :mod:`lab.optical.state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lab.optical import physics as ph

__all__ = [
    "ADD_LOSS_DB",
    "BOOSTER_GAIN_DB",
    "BOOSTER_NF_DB",
    "C_BAND_THZ",
    "DROP_LOSS_DB",
    "EXPRESS_LOSS_DB",
    "FULL_LOAD",
    "GRID_ANCHOR_THZ",
    "LAUNCH_TARGET_DBM",
    "NOISE_AMPLITUDE",
    "PREAMP_OUT_TARGET_DBM",
    "RX_TARGET_DBM",
    "TX_MAX_DBM",
    "TX_MIN_DBM",
    "Amp",
    "AmpRun",
    "Channel",
    "Degree",
    "Direction",
    "Fault",
    "FaultKind",
    "LinePort",
    "Span",
]

FULL_LOAD = 40
"""Channel slots each degree fills (real channels plus ASE idlers)."""
LAUNCH_TARGET_DBM = 1.0
"""Per-channel launch power into every span, set by commissioning."""
PREAMP_OUT_TARGET_DBM = 3.0
"""Per-channel EDFA output: the gain covers the span and 2 dB of ROADM margin."""
RX_TARGET_DBM = -8.0
"""Per-channel power delivered to a drop port by commissioning."""
ADD_LOSS_DB = 5.0
"""Transponder to degree: colourless mux plus the WSS, before per-channel attenuation."""
EXPRESS_LOSS_DB = 6.0
"""Degree to degree: two WSS passes."""
DROP_LOSS_DB = 7.0
"""Degree to transponder: WSS plus demux."""
BOOSTER_GAIN_DB = 15.0
"""Each degree's output booster, part of the ROADM line card rather than a span EDFA;
without it a 400ZR's −8 dBm could not reach the +1 dBm launch."""
BOOSTER_NF_DB = 5.5
TX_MIN_DBM, TX_MAX_DBM = -10.0, -6.0
C_BAND_THZ = (191.35, 196.10)
GRID_ANCHOR_THZ = 193.1

NOISE_AMPLITUDE = {
    "power": 0.05,  # dB
    "osnr": 0.1,  # dB
    "ber_decades": 0.02,
    "ma": 0.05,
    "pump": 0.5,  # mA
    "c": 0.2,  # °C
}
"""Peak amplitude of the reported values' seeded wobble, by kind."""


class FaultKind(StrEnum):
    """The faults the optical lab can inject."""

    SPAN_LOSS = "span_loss"
    FIBER_CUT = "fiber_cut"
    AMPLIFIER_FAILURE = "amplifier_failure"
    LASER_DEGRADATION = "laser_degradation"
    OSNR_DEGRADATION = "osnr_degradation"


@dataclass(frozen=True, slots=True)
class Fault:
    """One active fault: what, where, and how much (dB, fraction, or 0 when not graded)."""

    kind: FaultKind
    target: str
    value: float = 0.0


@dataclass(slots=True)
class Degree:
    roadm: str
    name: str
    toward: str
    atten: dict[str, float] = field(default_factory=dict)
    drop_atten: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Span:
    name: str
    src: Degree
    dst: Degree
    amp: str
    length_km: float
    connectors_db: float
    extra_db: float = 0.0
    cut: bool = False

    def loss_db(self) -> float:
        return ph.span_loss_db(self.length_km, self.connectors_db, self.extra_db)


@dataclass(slots=True)
class Amp:
    name: str
    span: str
    target_gain_db: float
    min_gain_db: float
    max_gain_db: float
    tilt_db: float
    nf_db: float
    max_output_dbm: float
    commissioned_gain_db: float = 0.0
    extra_nf_db: float = 0.0
    failed: bool = False


@dataclass(slots=True)
class LinePort:
    name: str
    transponder: str
    roadm: str
    tx_set_dbm: float
    commissioned_tx_dbm: float
    bias_nominal_ma: float
    temp_base_c: float
    drift: float = 0.0
    channel: str | None = None

    def tx(self) -> tuple[float, float]:
        return ph.tx_after_ageing(self.tx_set_dbm, self.bias_nominal_ma, self.drift)


@dataclass(slots=True)
class Channel:
    """A wavelength. ``path_*`` is its working path, ``protect_*`` its 1:1 protection path
    (empty when it has none); ``on_protection`` says which one the light takes."""

    name: str
    index: int
    grid_ghz: float
    a_port: str
    b_port: str
    path_ab: tuple[str, ...]
    path_ba: tuple[str, ...]
    carries: tuple[str, str] | None
    protect_ab: tuple[str, ...] = ()
    protect_ba: tuple[str, ...] = ()
    on_protection: bool = False

    def frequency_thz(self) -> float:
        return GRID_ANCHOR_THZ + self.index * self.grid_ghz / 1000.0

    def active_ab(self) -> tuple[str, ...]:
        """The spans the light crosses from A to B now."""
        return self.protect_ab if self.on_protection else self.path_ab

    def active_ba(self) -> tuple[str, ...]:
        """The spans the light crosses from B to A now."""
        return self.protect_ba if self.on_protection else self.path_ba

    def all_spans(self) -> tuple[str, ...]:
        """Every span the channel may use: working and protection, both ways."""
        return self.path_ab + self.path_ba + self.protect_ab + self.protect_ba


@dataclass(slots=True)
class Direction:
    """The result of propagating one channel one way."""

    rx_dbm: float
    osnr_db: float
    lit: bool
    launch_dbm: dict[str, float]  # span -> per-channel launch, only while lit
    amp_in_dbm: dict[str, float]  # span -> per-channel EDFA input, only while lit


@dataclass(slots=True)
class AmpRun:
    gain_db: float
    input_dbm: float
    output_dbm: float
    los: bool
    shutdown: bool
