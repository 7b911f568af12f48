"""The optical network: ROADMs, spans, EDFAs, transponders and wavelengths, with faults.

A wavelength (channel) joins two 400ZR line ports and runs both ways: A→B
over its given spans and B→A over the opposite spans. Each direction is
propagated hop by hop (:meth:`OpticalNetwork._propagate`) with the step
functions of :mod:`lab.optical.physics`::

    tx ─ add (mux+WSS, attenuation) ─ booster ─ span ─ EDFA ─ express (WSS, attenuation)
       ─ booster ─ span ─ EDFA ─ … ─ drop (demux, attenuation) ─ rx

ROADM degrees fill unused spectrum with ASE idlers up to :data:`FULL_LOAD`
channels, as modern line systems do, so an amplifier's total power (hence its
gain and saturation) barely depends on how many real channels it carries.
WSS attenuations are set once by :meth:`OpticalNetwork.commission` and then
held: there is no automatic power control, so a loss upstream shows downstream.

State is computed from configuration on demand; faults only change
configuration, so clearing them restores the exact healthy values.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable

from autonoc.core.errors import LabError
from lab.optical import physics as ph
from lab.optical.elements import (
    ADD_LOSS_DB,
    BOOSTER_GAIN_DB,
    BOOSTER_NF_DB,
    C_BAND_THZ,
    DROP_LOSS_DB,
    EXPRESS_LOSS_DB,
    FULL_LOAD,
    LAUNCH_TARGET_DBM,
    NOISE_AMPLITUDE,
    PREAMP_OUT_TARGET_DBM,
    RX_TARGET_DBM,
    TX_MAX_DBM,
    TX_MIN_DBM,
    Amp,
    AmpRun,
    Channel,
    Degree,
    Direction,
    Fault,
    FaultKind,
    LinePort,
    Span,
)
from lab.optical.presets import build_metro_ring
from lab.optical.state import (
    AmplifierState,
    ChannelState,
    ClientPortState,
    DegreeState,
    LinePortState,
    OpticalSnapshot,
    RoadmState,
    SpanState,
)

__all__ = ["FULL_LOAD", "Fault", "FaultKind", "OpticalNetwork"]


class OpticalNetwork:
    """A DWDM line system with injectable faults; build one with :meth:`metro_ring`.

    Time comes from ``clock`` (epoch seconds) and only moves the small seeded
    noise on reported values. Every method is thread-safe.
    """

    def __init__(self, clock: Callable[[], float] = time.time, seed: int = 7) -> None:
        self.clock = clock
        self.seed = seed
        self._lock = threading.RLock()
        self._roadms: dict[str, dict[str, Degree]] = {}
        self._spans: dict[str, Span] = {}
        self._amps: dict[str, Amp] = {}
        self._transponders: dict[str, str] = {}  # name -> roadm
        self._line_ports: dict[str, LinePort] = {}
        self._clients: dict[str, tuple[str, str]] = {}  # name -> (line port, rate)
        self._channels: dict[str, Channel] = {}
        self._noise_params: dict[str, tuple[float, float, float, float]] = {}

    # Construction ---------------------------------------------------------

    @classmethod
    def metro_ring(cls, seed: int = 7, clock: Callable[[], float] = time.time) -> OpticalNetwork:
        """Four ROADMs in a ring carrying the ``ring4`` IP links; see :mod:`lab.optical.presets`."""
        network = cls(clock=clock, seed=seed)
        build_metro_ring(network)
        return network

    def add_roadm(self, name: str) -> None:
        """Add a ROADM; its degrees appear as spans connect it to neighbours."""
        with self._lock:
            if name in self._roadms:
                raise LabError(f"optical lab ROADM {name!r} already exists")
            self._roadms[name] = {}

    def add_span(
        self,
        name: str,
        src: str,
        dst: str,
        length_km: float,
        *,
        connectors_db: float = 2 * ph.CONNECTOR_LOSS_DB,
        amplifier: str | None = None,
        noise_figure_db: float = 5.5,
        tilt_db: float = 0.0,
        gain_range_db: tuple[float, float] = (15.0, 27.0),
        max_output_dbm: float = 22.0,
    ) -> None:
        """Add one direction of fibre from ROADM ``src`` to ``dst``, with its EDFA.

        The degree facing the neighbour is created on each ROADM when first
        needed; the amplifier (default name: ``span-`` → ``amp-``) sits at ``dst``.
        """
        with self._lock:
            if name in self._spans:
                raise LabError(f"optical lab span {name!r} already exists")
            if not 1.0 <= length_km <= 200.0:
                raise LabError(f"span {name!r}: length {length_km} km is outside 1–200 km")
            amp_name = amplifier or name.replace("span-", "amp-", 1)
            if amp_name in self._amps:
                raise LabError(f"optical lab amplifier {amp_name!r} already exists")
            span = Span(
                name=name,
                src=self._degree_toward(src, dst),
                dst=self._degree_toward(dst, src),
                amp=amp_name,
                length_km=length_km,
                connectors_db=connectors_db,
            )
            lo, hi = gain_range_db
            self._spans[name] = span
            self._amps[amp_name] = Amp(
                name=amp_name,
                span=name,
                target_gain_db=lo,
                min_gain_db=lo,
                max_gain_db=hi,
                tilt_db=tilt_db,
                nf_db=noise_figure_db,
                max_output_dbm=max_output_dbm,
            )

    def add_transponder(
        self,
        name: str,
        roadm: str,
        *,
        line_ports: int = 1,
        tx_power_dbm: float = -8.0,
        bias_ma: float = 120.0,
        temp_c: float = 45.0,
    ) -> None:
        """Add a transponder at ``roadm`` with ``lineN`` ports and one ``clientN`` per line."""
        with self._lock:
            self._roadm(roadm)
            if name in self._transponders:
                raise LabError(f"optical lab transponder {name!r} already exists")
            self._check_tx(tx_power_dbm)
            self._transponders[name] = roadm
            for n in range(1, line_ports + 1):
                line = f"{name}:line{n}"
                self._line_ports[line] = LinePort(
                    name=line,
                    transponder=name,
                    roadm=roadm,
                    tx_set_dbm=tx_power_dbm,
                    commissioned_tx_dbm=tx_power_dbm,
                    bias_nominal_ma=bias_ma,
                    temp_base_c=temp_c,
                )
                self._clients[f"{name}:client{n}"] = (line, "400GE")

    def add_channel(
        self,
        name: str,
        index: int,
        a_port: str,
        b_port: str,
        path: list[str],
        *,
        grid_ghz: float = 100.0,
        carries: tuple[str, str] | None = None,
        protection: list[str] | None = None,
    ) -> None:
        """Add a wavelength from line port A to B over ``path`` (ordered spans, A→B).

        The way back uses the opposite span of each hop. The frequency is
        193.1 THz + ``index`` × grid spacing. ``protection`` is an optional 1:1
        protection path (ordered spans, A→B) sharing no span with ``path`` in
        either direction; the channel starts on ``path`` and moves only when
        :meth:`set_protection` says so. Its spectrum is reserved on both paths.

        Raises:
            LabError: unknown ports or spans, a path that does not join A's ROADM
                to B's, a protection path that shares a span with the working
                one, a port already in use, or a frequency already used on a span.
        """
        with self._lock:
            if name in self._channels:
                raise LabError(f"optical lab channel {name!r} already exists")
            if grid_ghz not in (75.0, 100.0):
                raise LabError(f"channel {name!r}: grid {grid_ghz} GHz (use 75 or 100)")
            a, b = self._line_port(a_port), self._line_port(b_port)
            for port in (a, b):
                if port.channel is not None:
                    raise LabError(f"line port {port.name!r} already carries {port.channel!r}")
            spans = self._path(name, "path", path, a, b)
            back = tuple(self._reverse_span(s).name for s in reversed(spans))
            protect_ab: tuple[str, ...] = ()
            protect_ba: tuple[str, ...] = ()
            if protection is not None:
                p_spans = self._path(name, "protection path", protection, a, b)
                p_back = [self._reverse_span(s) for s in reversed(p_spans)]
                working = spans + [self._spans[s] for s in back]
                shared = {s.name for s in working} & {s.name for s in p_spans + p_back}
                if shared:
                    raise LabError(
                        f"channel {name!r}: the protection path shares span "
                        f"{sorted(shared)[0]!r} with the working path; route it the other way"
                    )
                protect_ab = tuple(protection)
                protect_ba = tuple(s.name for s in p_back)
            channel = Channel(
                name,
                index,
                grid_ghz,
                a.name,
                b.name,
                tuple(path),
                back,
                carries,
                protect_ab=protect_ab,
                protect_ba=protect_ba,
            )
            f = channel.frequency_thz()
            if not C_BAND_THZ[0] <= f <= C_BAND_THZ[1]:
                raise LabError(f"channel {name!r}: {f:.3f} THz is outside the C band")
            for other in self._channels.values():
                shared = set(other.all_spans()) & set(channel.all_spans())
                gap_ghz = abs(other.frequency_thz() - f) * 1000.0
                if shared and gap_ghz < (grid_ghz + other.grid_ghz) / 2.0 - 1e-6:
                    raise LabError(
                        f"channel {name!r} overlaps {other.name!r} on {sorted(shared)[0]!r}"
                    )
            self._channels[name] = channel
            a.channel = b.channel = name

    def _path(
        self, channel: str, what: str, path: list[str], a: LinePort, b: LinePort
    ) -> list[Span]:
        """The spans of ``path``, checked to run from ``a``'s ROADM to ``b``'s."""
        spans = [self._span(s) for s in path]
        if not spans:
            raise LabError(f"channel {channel!r}: the {what} has no spans")
        here = a.roadm
        for span in spans:
            if span.src.roadm != here:
                raise LabError(
                    f"channel {channel!r}: {what} span {span.name!r} does not leave {here!r}"
                )
            here = span.dst.roadm
        if here != b.roadm:
            raise LabError(f"channel {channel!r}: the {what} ends at {here!r}, not {b.roadm!r}")
        return spans

    def commission(self) -> None:
        """Set EDFA gains and WSS attenuations for the current topology, as at turn-up.

        Each EDFA gets the gain that brings a channel launched at +1 dBm back to
        +3 dBm; each channel's attenuations land it at +1 dBm per channel into
        every span and at −8 dBm on the drop port. Faults are cleared first.
        """
        with self._lock:
            self._clear_faults()
            for amp in self._amps.values():
                gain = self._spans[amp.span].loss_db() + PREAMP_OUT_TARGET_DBM - LAUNCH_TARGET_DBM
                amp.target_gain_db = min(max(round(gain, 1), amp.min_gain_db), amp.max_gain_db)
                amp.commissioned_gain_db = amp.target_gain_db
            for port in self._line_ports.values():
                port.commissioned_tx_dbm = port.tx_set_dbm
            for ch in self._channels.values():
                # The protection path is commissioned too, so a switch lands on set powers.
                for tx, _rx, path in self._directions(ch, every=True):
                    p_wss = self._line_ports[tx].tx()[0] - ADD_LOSS_DB
                    for name in path:
                        span = self._spans[name]
                        amp = self._amps[span.amp]
                        atten = p_wss + BOOSTER_GAIN_DB - LAUNCH_TARGET_DBM
                        span.src.atten[ch.name] = max(0.0, round(atten, 2))
                        launch = p_wss - span.src.atten[ch.name] + BOOSTER_GAIN_DB
                        p_out = launch - span.loss_db() + amp.target_gain_db + self._tilt(amp, ch)
                        p_wss = p_out - EXPRESS_LOSS_DB
                    drop = self._spans[path[-1]].dst
                    drop_atten = p_out - DROP_LOSS_DB - RX_TARGET_DBM
                    drop.drop_atten[ch.name] = max(0.0, round(drop_atten, 2))

    # Queries --------------------------------------------------------------

    def channels_on_span(self, span: str) -> tuple[str, ...]:
        """Channels whose light crosses ``span`` in either direction now, in creation order.

        A channel switched to its protection path crosses that path's spans, not its
        working path's.
        """
        with self._lock:
            self._span(span)
            return self._channels_through(span)

    def channels_on_amplifier(self, amp: str) -> tuple[str, ...]:
        """Channels through EDFA ``amp`` (those on its span)."""
        with self._lock:
            return self.channels_on_span(self._amp(amp).span)

    @property
    def span_names(self) -> tuple[str, ...]:
        """Span names in creation order."""
        with self._lock:
            return tuple(self._spans)

    @property
    def amplifier_names(self) -> tuple[str, ...]:
        """Amplifier names in creation order."""
        with self._lock:
            return tuple(self._amps)

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Channel names in creation order."""
        with self._lock:
            return tuple(self._channels)

    def faults(self) -> tuple[Fault, ...]:
        """Every active fault."""
        with self._lock:
            out: list[Fault] = []
            for s in self._spans.values():
                if s.extra_db:
                    out.append(Fault(FaultKind.SPAN_LOSS, s.name, s.extra_db))
                if s.cut:
                    out.append(Fault(FaultKind.FIBER_CUT, s.name))
            for a in self._amps.values():
                if a.failed:
                    out.append(Fault(FaultKind.AMPLIFIER_FAILURE, a.name))
                if a.extra_nf_db:
                    out.append(Fault(FaultKind.OSNR_DEGRADATION, a.name, a.extra_nf_db))
            for p in self._line_ports.values():
                if p.drift:
                    out.append(Fault(FaultKind.LASER_DEGRADATION, p.name, p.drift))
            return tuple(out)

    def snapshot(self, at: float | None = None, *, noise: bool = True) -> OpticalSnapshot:
        """Every element's state at ``at`` (default: the clock's now).

        With ``noise=False`` values are the exact model outputs; otherwise each
        carries a small, seeded, time-varying wobble (±0.05 dB on powers,
        ±0.1 dB on OSNR, ±0.02 decades on BER, with Q recomputed from it).
        """
        with self._lock:
            t = self.clock() if at is None else at
            return self._snapshot(t, noise)

    # Faults ---------------------------------------------------------------

    def span_loss(self, span: str, extra_db: float) -> Fault:
        """Add ``extra_db`` of loss to ``span`` (a bend, a bad splice); replaces any earlier."""
        with self._lock:
            if not 0.0 < extra_db <= 60.0 or not math.isfinite(extra_db):
                raise LabError(f"span loss must be in (0, 60] dB, got {extra_db}")
            self._span(span).extra_db = extra_db
            return Fault(FaultKind.SPAN_LOSS, span, extra_db)

    def fiber_cut(self, span: str) -> Fault:
        """Cut ``span``: no light reaches its EDFA, which declares LOS and shuts down."""
        with self._lock:
            self._span(span).cut = True
            return Fault(FaultKind.FIBER_CUT, span)

    def amplifier_failure(self, amp: str) -> Fault:
        """Fail EDFA ``amp``: pumps off, gain 0, no light downstream (like a cut after it)."""
        with self._lock:
            self._amp(amp).failed = True
            return Fault(FaultKind.AMPLIFIER_FAILURE, amp)

    def laser_degradation(self, transponder_port: str, drift: float) -> Fault:
        """Age ``transponder_port``'s laser: bias up by ``drift`` (0.15 = +15 %), tx power sags."""
        with self._lock:
            if not 0.0 < drift <= 1.0:
                raise LabError(f"laser drift must be in (0, 1] (0.15 = +15 %), got {drift}")
            self._line_port(transponder_port).drift = drift
            return Fault(FaultKind.LASER_DEGRADATION, transponder_port, drift)

    def osnr_degradation(self, span_or_amp: str, extra_nf_db: float) -> Fault:
        """Raise the noise figure of an EDFA (named, or by its span) by ``extra_nf_db``."""
        with self._lock:
            if not 0.0 < extra_nf_db <= 20.0:
                raise LabError(f"extra noise figure must be in (0, 20] dB, got {extra_nf_db}")
            name = self._spans[span_or_amp].amp if span_or_amp in self._spans else span_or_amp
            self._amp(name).extra_nf_db = extra_nf_db
            return Fault(FaultKind.OSNR_DEGRADATION, name, extra_nf_db)

    def clear(self, fault: Fault) -> None:
        """Clear one fault (its kind on its target), whatever its value."""
        with self._lock:
            kind, target = fault.kind, fault.target
            if kind is FaultKind.SPAN_LOSS:
                self._span(target).extra_db = 0.0
            elif kind is FaultKind.FIBER_CUT:
                self._span(target).cut = False
            elif kind is FaultKind.AMPLIFIER_FAILURE:
                self._amp(target).failed = False
            elif kind is FaultKind.LASER_DEGRADATION:
                self._line_port(target).drift = 0.0
            else:
                name = self._spans[target].amp if target in self._spans else target
                self._amp(name).extra_nf_db = 0.0

    def clear_all(self) -> None:
        """Clear every fault; remediation settings (gain, tx power) stay as set."""
        with self._lock:
            self._clear_faults()

    def reset(self) -> None:
        """Clear every fault, restore commissioned gains and tx powers, and put every
        protected channel back on its working path."""
        with self._lock:
            self._clear_faults()
            for amp in self._amps.values():
                amp.target_gain_db = amp.commissioned_gain_db
            for port in self._line_ports.values():
                port.tx_set_dbm = port.commissioned_tx_dbm
            for ch in self._channels.values():
                ch.on_protection = False

    # Remediation knobs ----------------------------------------------------

    def set_amplifier_gain(self, amp: str, db: float) -> None:
        """Set EDFA ``amp``'s target gain.

        Raising it after a loss on its span restores the power downstream, but
        only part of the OSNR: the loss came before the amplifier, so its own
        ASE is still added to a weaker signal (see :mod:`lab.optical.physics`).

        Raises:
            LabError: ``db`` is outside the amplifier's gain range.
        """
        with self._lock:
            a = self._amp(amp)
            if not a.min_gain_db <= db <= a.max_gain_db:
                raise LabError(
                    f"gain {db} dB for {amp!r} is outside its range "
                    f"[{a.min_gain_db}, {a.max_gain_db}] dB"
                )
            a.target_gain_db = db

    def set_protection(self, port: str, secondary: bool) -> str:
        """Switch the channel whose head end is line port ``port`` to its protection path
        (``secondary``) or back to its working path; returns the channel's name.

        1:1 bidirectional protection, switched by hand only: the head-end (A)
        transponder holds the switch and the far end follows over APS signalling,
        so both directions move together. Nothing switches by itself, not even
        on a fibre cut: that is an operator's (or a playbook's) call.

        Raises:
            LabError: ``port`` carries no channel, is not its head end, or the
                channel has no protection path.
        """
        with self._lock:
            ch = self._head_end(port)
            ch.on_protection = secondary
            return ch.name

    def protection(self, port: str) -> tuple[str, bool] | None:
        """``(channel, on protection)`` for the protected channel whose head end is ``port``,
        else None (no channel, not the head end, or no protection path)."""
        with self._lock:
            p = self._line_port(port)
            ch = self._channels.get(p.channel) if p.channel else None
            if ch is None or ch.a_port != port or not ch.protect_ab:
                return None
            return ch.name, ch.on_protection

    def set_tx_power(self, port: str, dbm: float) -> None:
        """Set line port ``port``'s tx power.

        Raises:
            LabError: ``dbm`` is outside the module's −10 to −6 dBm range.
        """
        with self._lock:
            p = self._line_port(port)
            self._check_tx(dbm)
            p.tx_set_dbm = dbm

    # Internals (call with the lock held) ----------------------------------

    def _clear_faults(self) -> None:
        for s in self._spans.values():
            s.extra_db, s.cut = 0.0, False
        for a in self._amps.values():
            a.failed, a.extra_nf_db = False, 0.0
        for p in self._line_ports.values():
            p.drift = 0.0

    @staticmethod
    def _check_tx(dbm: float) -> None:
        if not TX_MIN_DBM <= dbm <= TX_MAX_DBM:
            raise LabError(
                f"tx power {dbm} dBm is outside the 400ZR range [{TX_MIN_DBM}, {TX_MAX_DBM}] dBm"
            )

    def _roadm(self, name: str) -> dict[str, Degree]:
        try:
            return self._roadms[name]
        except KeyError:
            raise LabError(f"no optical lab ROADM named {name!r}") from None

    def _degree_toward(self, roadm: str, neighbour: str) -> Degree:
        degrees = self._roadm(roadm)
        self._roadm(neighbour)
        for d in degrees.values():
            if d.toward == neighbour:
                return d
        d = Degree(roadm=roadm, name=f"deg-{len(degrees) + 1}", toward=neighbour)
        degrees[d.name] = d
        return d

    def _span(self, name: str) -> Span:
        try:
            return self._spans[name]
        except KeyError:
            known = ", ".join(self._spans)
            raise LabError(f"no optical lab span {name!r} (known: {known})") from None

    def _reverse_span(self, span: Span) -> Span:
        for s in self._spans.values():
            if s.src is span.dst and s.dst is span.src:
                return s
        raise LabError(f"span {span.name!r} has no span back; add one for the return direction")

    def _amp(self, name: str) -> Amp:
        try:
            return self._amps[name]
        except KeyError:
            known = ", ".join(self._amps)
            raise LabError(f"no optical lab amplifier {name!r} (known: {known})") from None

    def _line_port(self, name: str) -> LinePort:
        try:
            return self._line_ports[name]
        except KeyError:
            raise LabError(f"no optical lab line port {name!r} (use 'transponder:lineN')") from None

    def _head_end(self, port: str) -> Channel:
        p = self._line_port(port)
        ch = self._channels.get(p.channel) if p.channel else None
        if ch is None:
            raise LabError(f"line port {port!r} carries no channel: nothing to protect")
        if ch.a_port != port:
            raise LabError(
                f"{port!r} is the far end of {ch.name!r}; its protection switch is at the "
                f"head end {ch.a_port!r}"
            )
        if not ch.protect_ab:
            raise LabError(f"channel {ch.name!r} has no protection path to switch to")
        return ch

    def _directions(
        self, ch: Channel, *, every: bool = False
    ) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
        """``(tx port, rx port, spans)`` of each way the light goes now; with ``every``,
        of the protection path's two ways as well."""
        out: tuple[tuple[str, str, tuple[str, ...]], ...] = (
            (ch.a_port, ch.b_port, ch.active_ab()),
            (ch.b_port, ch.a_port, ch.active_ba()),
        )
        if every and ch.protect_ab:
            other = (ch.path_ab, ch.path_ba) if ch.on_protection else (ch.protect_ab, ch.protect_ba)
            out += ((ch.a_port, ch.b_port, other[0]), (ch.b_port, ch.a_port, other[1]))
        return out

    @staticmethod
    def _tilt(amp: Amp, ch: Channel) -> float:
        # Linear tilt across the C band, zero at its centre: blue channels gain ``tilt_db/2`` more.
        lo, hi = C_BAND_THZ
        return amp.tilt_db * (ch.frequency_thz() - (lo + hi) / 2.0) / (hi - lo)

    def _propagate(
        self, ch: Channel, tx: str, path: tuple[str, ...], amps: dict[str, AmpRun]
    ) -> Direction:
        p_wss = self._line_ports[tx].tx()[0] - ADD_LOSS_DB
        terms: list[float] = []
        launch: dict[str, float] = {}
        amp_in: dict[str, float] = {}
        lit = True
        p_out = p_wss
        for name in path:
            span = self._spans[name]
            amp = self._amps[span.amp]
            p_booster_in = p_wss - span.src.atten.get(ch.name, 0.0)
            terms.append(ph.amplifier_osnr_db(p_booster_in, BOOSTER_NF_DB))
            p_launch = p_booster_in + BOOSTER_GAIN_DB
            if lit:
                launch[name] = p_launch
            lit = lit and not span.cut
            p_in = p_launch - span.loss_db()
            if lit:
                amp_in[name] = p_in
            run = amps[amp.name]
            lit = lit and not run.shutdown
            terms.append(ph.amplifier_osnr_db(p_in, amp.nf_db + amp.extra_nf_db))
            p_out = p_in + run.gain_db + self._tilt(amp, ch)
            p_wss = p_out - EXPRESS_LOSS_DB
        drop = self._spans[path[-1]].dst
        rx = p_out - DROP_LOSS_DB - drop.drop_atten.get(ch.name, 0.0)
        terms.append(ph.receiver_osnr_db(rx))
        lit = lit and rx >= ph.RX_LOS_THRESHOLD_DBM
        return Direction(rx, ph.osnr_cascade(terms), lit, launch, amp_in)

    def _run(self) -> tuple[dict[tuple[str, str], Direction], dict[str, AmpRun]]:
        """Propagate every channel both ways, iterating amplifier states to a fixed point.

        An EDFA's gain depends on its total input (saturation, LOS), which
        depends on upstream EDFAs; a few rounds settle it.
        """
        amps = {
            a.name: AmpRun(a.target_gain_db, 0.0, 0.0, False, a.failed or self._spans[a.span].cut)
            for a in self._amps.values()
        }
        idle_in = {
            s.name: FULL_LOAD - len(self._channels_through(s.name)) for s in self._spans.values()
        }
        dirs: dict[tuple[str, str], Direction] = {}
        for _ in range(20):
            dirs = {
                (ch.name, tx): self._propagate(ch, tx, path, amps)
                for ch in self._channels.values()
                for tx, _rx, path in self._directions(ch)
            }
            new: dict[str, AmpRun] = {}
            for amp in self._amps.values():
                span = self._spans[amp.span]
                if span.cut:
                    total_in = ph.AMP_INPUT_FLOOR_DBM
                else:
                    powers = [
                        d.amp_in_dbm[span.name] for d in dirs.values() if span.name in d.amp_in_dbm
                    ]
                    idler = LAUNCH_TARGET_DBM - span.loss_db()
                    powers += [idler] * idle_in[span.name]
                    total_in = max(ph.dbm_sum(powers), ph.AMP_INPUT_FLOOR_DBM)
                los = total_in < ph.AMP_LOS_THRESHOLD_DBM
                shutdown = los or amp.failed
                gain = (
                    0.0
                    if shutdown
                    else ph.amplifier_gain_db(amp.target_gain_db, total_in, amp.max_output_dbm)
                )
                out = ph.AMP_INPUT_FLOOR_DBM if shutdown else total_in + gain
                new[amp.name] = AmpRun(gain, total_in, out, los, shutdown)
            settled = all(
                abs(new[n].gain_db - amps[n].gain_db) < 1e-9 and new[n].shutdown == amps[n].shutdown
                for n in new
            )
            amps = new
            if settled:
                break
        return dirs, amps

    def _channels_through(self, span: str) -> tuple[str, ...]:
        return tuple(
            c.name
            for c in self._channels.values()
            if span in c.active_ab() or span in c.active_ba()
        )

    def _noise(self, key: str, t: float, amplitude: float, enabled: bool) -> float:
        if not enabled:
            return 0.0
        params = self._noise_params.get(key)
        if params is None:
            rng = random.Random(f"{self.seed}/{key}")
            params = (
                2.0 * math.pi / rng.uniform(20.0, 60.0),
                rng.uniform(0.0, 2.0 * math.pi),
                2.0 * math.pi / rng.uniform(3.0, 9.0),
                rng.uniform(0.0, 2.0 * math.pi),
            )
            self._noise_params[key] = params
        w1, p1, w2, p2 = params
        return amplitude * (0.6 * math.sin(w1 * t + p1) + 0.4 * math.sin(w2 * t + p2))

    def _snapshot(self, t: float, noise: bool) -> OpticalSnapshot:
        dirs, amps = self._run()

        def nz(key: str, kind: str) -> float:
            return self._noise(key, t, NOISE_AMPLITUDE[kind], noise)

        rx_dir = {
            rx: (dirs[(ch.name, tx)], path)
            for ch in self._channels.values()
            for tx, rx, path in self._directions(ch)
        }
        line_ports: dict[str, LinePortState] = {}
        for p in self._line_ports.values():
            tx_dbm, bias = p.tx()
            ch = self._channels.get(p.channel) if p.channel else None
            d, path = rx_dir.get(p.name, (None, ()))
            if d is not None and d.lit:
                rx = max(d.rx_dbm, ph.RX_FLOOR_DBM) + nz(p.name + "/rx", "power")
                osnr = d.osnr_db + nz(p.name + "/osnr", "osnr")
                ber = ph.pre_fec_ber(osnr) * 10.0 ** nz(p.name + "/ber", "ber_decades")
            else:
                rx = ph.RX_FLOOR_DBM + nz(p.name + "/rx", "power")
                osnr, ber = 0.0, 0.5
            km = sum(self._spans[s].length_km for s in path)
            bias_n = bias + nz(p.name + "/bias", "ma")
            line_ports[p.name] = LinePortState(
                name=p.name,
                transponder=p.transponder,
                roadm=p.roadm,
                channel=p.channel,
                frequency_thz=ch.frequency_thz() if ch is not None else None,
                tx_power_dbm=tx_dbm + nz(p.name + "/tx", "power"),
                laser_bias_ma=bias_n,
                module_temp_c=ph.module_temperature_c(p.temp_base_c, bias, p.bias_nominal_ma)
                + nz(p.name + "/temp", "c"),
                rx_power_dbm=rx,
                osnr_db=osnr,
                pre_fec_ber=ber,
                q_db=ph.q_db_from_ber(ber),
                post_fec_uncorrectable=ph.post_fec_uncorrectable(ber),
                cd_ps_nm=ph.chromatic_dispersion_ps_nm(km),
                los=not (d is not None and d.lit),
                oper_up=d is not None and d.lit,
            )

        channels = {
            c.name: ChannelState(
                name=c.name,
                index=c.index,
                grid_ghz=c.grid_ghz,
                frequency_thz=c.frequency_thz(),
                a_port=c.a_port,
                b_port=c.b_port,
                path_ab=c.path_ab,
                path_ba=c.path_ba,
                length_km=sum(self._spans[s].length_km for s in c.active_ab()),
                carries=c.carries,
                oper_up=line_ports[c.a_port].oper_up and line_ports[c.b_port].oper_up,
                protection_ab=c.protect_ab,
                protection_ba=c.protect_ba,
                on_protection=c.on_protection,
            )
            for c in self._channels.values()
        }
        clients = {}
        for name, (line, rate) in self._clients.items():
            chan = line_ports[line].channel
            clients[name] = ClientPortState(
                name=name,
                transponder=line_ports[line].transponder,
                line_port=line,
                rate=rate,
                oper_up=chan is not None and channels[chan].oper_up,
            )

        amp_states: dict[str, AmplifierState] = {}
        for a in self._amps.values():
            run = amps[a.name]
            span = self._spans[a.span]
            amp_states[a.name] = AmplifierState(
                name=a.name,
                span=a.span,
                roadm=span.dst.roadm,
                degree=span.dst.name,
                target_gain_db=a.target_gain_db,
                min_gain_db=a.min_gain_db,
                max_gain_db=a.max_gain_db,
                gain_db=run.gain_db + (0.0 if run.shutdown else nz(a.name + "/gain", "power")),
                tilt_db=a.tilt_db,
                noise_figure_db=a.nf_db + a.extra_nf_db,
                input_power_dbm=run.input_dbm + nz(a.name + "/in", "power"),
                output_power_dbm=run.output_dbm + nz(a.name + "/out", "power"),
                max_output_dbm=a.max_output_dbm,
                pump_current_ma=0.0
                if run.shutdown
                else ph.pump_current_ma(run.output_dbm) + nz(a.name + "/pump", "pump"),
                los=run.los,
                failed=a.failed,
                shutdown=run.shutdown,
            )

        spans = {
            s.name: SpanState(
                name=s.name,
                src_roadm=s.src.roadm,
                src_degree=s.src.name,
                dst_roadm=s.dst.roadm,
                dst_degree=s.dst.name,
                amplifier=s.amp,
                length_km=s.length_km,
                loss_db=s.loss_db(),
                extra_loss_db=s.extra_db,
                cut=s.cut,
            )
            for s in self._spans.values()
        }

        roadms: dict[str, RoadmState] = {}
        for rname, degrees in self._roadms.items():
            states = []
            for deg in degrees.values():
                out_span = next((s for s in self._spans.values() if s.src is deg), None)
                in_span = next((s for s in self._spans.values() if s.dst is deg), None)
                out_dbm = ph.AMP_INPUT_FLOOR_DBM
                if out_span is not None:
                    powers = [
                        d.launch_dbm[out_span.name]
                        for d in dirs.values()
                        if out_span.name in d.launch_dbm
                    ]
                    idlers = FULL_LOAD - len(self._channels_through(out_span.name))
                    out_dbm = ph.dbm_sum(powers + [LAUNCH_TARGET_DBM] * idlers)
                in_dbm = ph.AMP_INPUT_FLOOR_DBM
                if in_span is not None:
                    in_dbm = amps[in_span.amp].output_dbm
                key = f"{rname}/{deg.name}"
                states.append(
                    DegreeState(
                        roadm=rname,
                        name=deg.name,
                        toward=deg.toward,
                        input_power_dbm=in_dbm + nz(key + "/in", "power"),
                        output_power_dbm=out_dbm + nz(key + "/out", "power"),
                        attenuation_db=dict(deg.atten),
                        drop_attenuation_db=dict(deg.drop_atten),
                    )
                )
            roadms[rname] = RoadmState(name=rname, degrees=tuple(states))

        return OpticalSnapshot(
            at=t,
            roadms=roadms,
            spans=spans,
            amplifiers=amp_states,
            line_ports=line_ports,
            client_ports=clients,
            channels=channels,
        )
