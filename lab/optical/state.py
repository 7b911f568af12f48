"""What the optical lab reports: frozen per-element states and the metric table.

Every number an element reports has one canonical metric name, listed in
:data:`METRICS` with its unit and the state field that holds it. Collectors map
SNMP (ENTITY-SENSOR-MIB) and NETCONF (OpenConfig) values onto the same names,
so detectors never see a vendor's spelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "METRICS",
    "AmplifierState",
    "ChannelState",
    "ClientPortState",
    "DegreeState",
    "Element",
    "LinePortState",
    "MetricSpec",
    "OpticalSnapshot",
    "RoadmState",
    "SpanState",
    "metric_values",
]


class Element(StrEnum):
    """The kinds of element a metric belongs to."""

    LINE_PORT = "line_port"
    AMPLIFIER = "amplifier"
    DEGREE = "degree"
    SPAN = "span"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One canonical metric: its name, unit, element kind and the state field holding it."""

    name: str
    unit: str
    element: Element
    field: str
    description: str


_L, _A, _D, _S = Element.LINE_PORT, Element.AMPLIFIER, Element.DEGREE, Element.SPAN
# (name, unit, element, state field, description)
_TABLE: tuple[tuple[str, str, Element, str, str], ...] = (
    ("opt_tx_power_dbm", "dBm", _L, "tx_power_dbm", "launched optical power of the line port"),
    ("opt_rx_power_dbm", "dBm", _L, "rx_power_dbm", "received power of its channel"),
    ("opt_laser_bias_ma", "mA", _L, "laser_bias_ma", "transmit laser bias current"),
    ("opt_module_temp_c", "°C", _L, "module_temp_c", "module case temperature"),
    ("opt_osnr_db", "dB", _L, "osnr_db", "OSNR at the receiver, 0.1 nm reference bandwidth"),
    ("opt_pre_fec_ber", "BER", _L, "pre_fec_ber", "bit error ratio before FEC"),
    ("opt_q_db", "dB", _L, "q_db", "Q-factor, 20·log10(√2·erfc⁻¹(2·BER))"),
    ("opt_post_fec_uncorrectable", "blocks/s", _L, "post_fec_uncorrectable", "FEC blocks lost"),
    ("opt_cd_ps_nm", "ps/nm", _L, "cd_ps_nm", "chromatic dispersion of the path"),
    ("amp_gain_db", "dB", _A, "gain_db", "actual gain (0 when shut down or failed)"),
    ("amp_target_gain_db", "dB", _A, "target_gain_db", "configured gain in constant-gain mode"),
    ("amp_gain_tilt_db", "dB", _A, "tilt_db", "gain tilt across the C band"),
    ("amp_noise_figure_db", "dB", _A, "noise_figure_db", "noise figure"),
    ("amp_input_power_dbm", "dBm", _A, "input_power_dbm", "total input power"),
    ("amp_output_power_dbm", "dBm", _A, "output_power_dbm", "total output power"),
    ("amp_pump_current_ma", "mA", _A, "pump_current_ma", "pump laser bias current"),
    ("roadm_input_power_dbm", "dBm", _D, "input_power_dbm", "total power in from the line"),
    ("roadm_output_power_dbm", "dBm", _D, "output_power_dbm", "total power out to the line"),
    ("span_loss_db", "dB", _S, "loss_db", "span loss, fibre and connectors"),
)

METRICS: dict[str, MetricSpec] = {row[0]: MetricSpec(*row) for row in _TABLE}
"""Every canonical optical metric by name."""


@dataclass(frozen=True, slots=True)
class DegreeState:
    """One ROADM degree: the line toward one neighbour, both directions.

    ``attenuation_db`` holds the WSS attenuation of each channel launched out of
    this degree; ``drop_attenuation_db`` that of each channel dropped from it.
    """

    roadm: str
    name: str
    toward: str
    input_power_dbm: float
    output_power_dbm: float
    attenuation_db: Mapping[str, float]
    drop_attenuation_db: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class RoadmState:
    """A ROADM and its degrees."""

    name: str
    degrees: tuple[DegreeState, ...]


@dataclass(frozen=True, slots=True)
class SpanState:
    """One direction of fibre between two ROADM degrees."""

    name: str
    src_roadm: str
    src_degree: str
    dst_roadm: str
    dst_degree: str
    amplifier: str
    length_km: float
    loss_db: float
    extra_loss_db: float
    cut: bool


@dataclass(frozen=True, slots=True)
class AmplifierState:
    """The EDFA at a span's receive end.

    ``los`` is input loss of signal; ``shutdown`` is pumps off (LOS or failure).
    """

    name: str
    span: str
    roadm: str
    degree: str
    target_gain_db: float
    min_gain_db: float
    max_gain_db: float
    gain_db: float
    tilt_db: float
    noise_figure_db: float
    input_power_dbm: float
    output_power_dbm: float
    max_output_dbm: float
    pump_current_ma: float
    los: bool
    failed: bool
    shutdown: bool


@dataclass(frozen=True, slots=True)
class LinePortState:
    """A 400ZR line port: its transmitter, and the channel it receives."""

    name: str
    transponder: str
    roadm: str
    channel: str | None
    frequency_thz: float | None
    tx_power_dbm: float
    laser_bias_ma: float
    module_temp_c: float
    rx_power_dbm: float
    osnr_db: float
    pre_fec_ber: float
    q_db: float
    post_fec_uncorrectable: float
    cd_ps_nm: float
    los: bool
    oper_up: bool


@dataclass(frozen=True, slots=True)
class ClientPortState:
    """A transponder client port (400GE); up while its line channel is up both ways."""

    name: str
    transponder: str
    line_port: str
    rate: str
    oper_up: bool


@dataclass(frozen=True, slots=True)
class ChannelState:
    """A bidirectional wavelength between two line ports.

    ``path_ab`` is the ordered spans of its working path from A to B; ``path_ba``
    the way back. ``protection_ab``/``protection_ba`` are its 1:1 protection path
    (empty when it has none) and ``on_protection`` says the light takes it now
    (:attr:`active_ab`, :attr:`active_ba`); ``length_km`` is that of the path in
    use. ``carries`` names the IP link riding it, as two ``device:ifname`` ends.
    """

    name: str
    index: int
    grid_ghz: float
    frequency_thz: float
    a_port: str
    b_port: str
    path_ab: tuple[str, ...]
    path_ba: tuple[str, ...]
    length_km: float
    carries: tuple[str, str] | None
    oper_up: bool
    protection_ab: tuple[str, ...] = ()
    protection_ba: tuple[str, ...] = ()
    on_protection: bool = False

    @property
    def active_ab(self) -> tuple[str, ...]:
        """The spans the light crosses from A to B now."""
        return self.protection_ab if self.on_protection else self.path_ab

    @property
    def active_ba(self) -> tuple[str, ...]:
        """The spans the light crosses from B to A now."""
        return self.protection_ba if self.on_protection else self.path_ba


@dataclass(frozen=True, slots=True)
class OpticalSnapshot:
    """The whole optical network at one instant (``at``, seconds from the clock)."""

    at: float
    roadms: Mapping[str, RoadmState]
    spans: Mapping[str, SpanState]
    amplifiers: Mapping[str, AmplifierState]
    line_ports: Mapping[str, LinePortState]
    client_ports: Mapping[str, ClientPortState]
    channels: Mapping[str, ChannelState]

    def degree(self, roadm: str, degree: str) -> DegreeState:
        """The state of ``roadm``'s degree ``degree``; KeyError when unknown."""
        for d in self.roadms[roadm].degrees:
            if d.name == degree:
                return d
        raise KeyError(f"{roadm}:{degree}")


_STATE_ELEMENT: dict[type, Element] = {
    LinePortState: Element.LINE_PORT,
    AmplifierState: Element.AMPLIFIER,
    DegreeState: Element.DEGREE,
    SpanState: Element.SPAN,
}


def metric_values(
    state: LinePortState | AmplifierState | DegreeState | SpanState,
) -> dict[str, float]:
    """The canonical metrics of one element state, as ``{metric name: value}``."""
    element = _STATE_ELEMENT[type(state)]
    return {
        m.name: float(getattr(state, m.field)) for m in METRICS.values() if m.element is element
    }
