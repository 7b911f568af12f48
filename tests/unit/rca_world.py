"""A small hand-built IP-over-DWDM inventory and fault streams for correlation and RCA tests.

Three ROADM sites in a line, an EDFA on each fibre direction::

    roadm-a ══ span a⇄b ══ roadm-b ══ span b⇄c ══ roadm-c
      xp-a1 ─────── och-1 ─────── xp-b1
                                  xp-b2 ─────── och-2 ─────── xp-c1
      xp-a2 ─────────────────── och-3 ─────────────────────── xp-c2

Routers pe1 (site a), p1 (site b), pe2 (site c):

    pe1:eth1 ── p1:eth1   rides och-1    BGP 10.0.0.1 / 10.0.0.2
    p1:eth2  ── pe2:eth1  rides och-2    BGP 10.0.0.5 / 10.0.0.6
    pe1:eth2 ── pe2:eth2  rides och-3    BGP 10.0.0.9 / 10.0.0.10  (a→b→c)
    pe1:eth3 ── p1:eth3   patch cord     BGP 10.0.0.13 / 10.0.0.14

Each fault stream is what the detectors and the trap receiver would report, with
values in the shape the lab's physics gives (``lab/optical``): anomalies per
device per poll (attributions: metric, instance, contribution, value, normal)
and trap alarms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

from autonoc.core.inventory import (
    BgpSession,
    Device,
    Endpoint,
    Inventory,
    Link,
    LinkKind,
    Mgmt,
    Role,
    Service,
    SnmpV2c,
    Span,
    Wavelength,
)
from autonoc.core.types import Alarm, Anomaly, Attribution, Severity

T0 = 1_767_268_800.0
POLL = 10.0


def _device(name: str, role: Role, site: str) -> Device:
    return Device(
        name=name,
        role=role,
        site=site,
        mgmt=Mgmt(host="127.0.0.1", snmp_port=16100),
        snmp=SnmpV2c(community=SecretStr("c")),
    )


def _end(text: str) -> Endpoint:
    device, port = text.split(":")
    return Endpoint(device=device, port=port)


def inventory() -> Inventory:
    devices = [
        _device("pe1", Role.ROUTER, "a"),
        _device("p1", Role.ROUTER, "b"),
        _device("pe2", Role.ROUTER, "c"),
        *(_device(f"roadm-{s}", Role.ROADM, s) for s in "abc"),
        _device("amp-a-b", Role.AMPLIFIER, "b"),
        _device("amp-b-a", Role.AMPLIFIER, "a"),
        _device("amp-b-c", Role.AMPLIFIER, "c"),
        _device("amp-c-b", Role.AMPLIFIER, "b"),
        *(
            _device(x, Role.TRANSPONDER, x[3])
            for x in ("xp-a1", "xp-b1", "xp-b2", "xp-c1", "xp-a2", "xp-c2")
        ),
    ]
    spans = [
        Span(name="span:roadm-a:roadm-b", a=_end("roadm-a:deg-1"), b=_end("roadm-b:deg-1"),
             amplifier="amp-a-b", length_km=70.0),
        Span(name="span:roadm-b:roadm-a", a=_end("roadm-b:deg-1"), b=_end("roadm-a:deg-1"),
             amplifier="amp-b-a", length_km=70.0),
        Span(name="span:roadm-b:roadm-c", a=_end("roadm-b:deg-2"), b=_end("roadm-c:deg-1"),
             amplifier="amp-b-c", length_km=65.0),
        Span(name="span:roadm-c:roadm-b", a=_end("roadm-c:deg-1"), b=_end("roadm-b:deg-2"),
             amplifier="amp-c-b", length_km=65.0),
    ]  # fmt: skip
    ab, ba = "span:roadm-a:roadm-b", "span:roadm-b:roadm-a"
    bc, cb = "span:roadm-b:roadm-c", "span:roadm-c:roadm-b"
    wavelengths = [
        Wavelength(name="och-1", a=_end("xp-a1:line1"), b=_end("xp-b1:line1"), path=(ab,),
                   path_back=(ba,)),
        Wavelength(name="och-2", a=_end("xp-b2:line1"), b=_end("xp-c1:line1"), path=(bc,),
                   path_back=(cb,)),
        Wavelength(name="och-3", a=_end("xp-a2:line1"), b=_end("xp-c2:line1"), path=(ab, bc),
                   path_back=(cb, ba)),
    ]  # fmt: skip
    links = [
        Link(a=_end("pe1:eth1"), b=_end("p1:eth1"), wavelength="och-1"),
        Link(a=_end("p1:eth2"), b=_end("pe2:eth1"), wavelength="och-2"),
        Link(a=_end("pe1:eth2"), b=_end("pe2:eth2"), wavelength="och-3"),
        Link(a=_end("pe1:eth3"), b=_end("p1:eth3")),
        Link(kind=LinkKind.FIBER, a=_end("roadm-a:deg-1"), b=_end("roadm-b:deg-1")),
        Link(kind=LinkKind.FIBER, a=_end("roadm-b:deg-2"), b=_end("roadm-c:deg-1")),
    ]
    sessions = []
    for n, (a, b) in enumerate(
        [("pe1:eth1", "p1:eth1"), ("p1:eth2", "pe2:eth1"), ("pe1:eth2", "pe2:eth2"),
         ("pe1:eth3", "p1:eth3")]
    ):  # fmt: skip
        addr_a, addr_b = f"10.0.0.{4 * n + 1}", f"10.0.0.{4 * n + 2}"
        for near, local, far, remote in ((a, addr_a, b, addr_b), (b, addr_b, a, addr_a)):
            sessions.append(
                BgpSession(
                    device=near.split(":")[0],
                    port=near.split(":")[1],
                    local_address=local,
                    peer_address=remote,
                    peer_device=far.split(":")[0],
                )
            )
    services = [
        Service(name="pe1->pe2", src="pe1", dst="pe2", gbps=8.0),
        Service(name="pe2->pe1", src="pe2", dst="pe1", gbps=6.0),
        Service(name="pe1->p1", src="pe1", dst="p1", gbps=2.0),
    ]
    return Inventory(
        devices=tuple(devices),
        links=tuple(links),
        spans=tuple(spans),
        wavelengths=tuple(wavelengths),
        bgp_sessions=tuple(sessions),
        services=tuple(services),
    )


# ---- streams ----------------------------------------------------------------------------

Attr = tuple[str, str, float, float, float]  # metric, instance, contribution, value, normal


def anomaly(device: str, ts: float, attrs: list[Attr], ratio: float = 6.0) -> Anomaly:
    """An anomaly as the detection service publishes it: score ``ratio`` × threshold."""
    attributions = tuple(
        Attribution(metric=m, instance=i, score=c, value=v, expected=e) for m, i, c, v, e in attrs
    )
    return Anomaly(
        device=device,
        ts=ts,
        score=ratio * 10.0,
        threshold=10.0,
        detector="robust_z",
        attributions=attributions,
        severity=Severity.MAJOR,
        component=attrs[0][1] if attrs else "",
        window_start=ts,
    )


def trap(device: str, kind: str, instance: str, ts: float) -> Alarm:
    return Alarm(device=device, instance=instance, kind=kind, ts=ts, text=f"{kind} {instance}")


@dataclass
class Stream:
    """A fault's observations, in arrival order, and what RCA should find."""

    anomalies: list[Anomaly] = field(default_factory=list)
    events: list[Alarm] = field(default_factory=list)

    def extend(self, other: Stream) -> Stream:
        return Stream(self.anomalies + other.anomalies, self.events + other.events)


def _down(device: str, port: str, addr_local_peer: str, t: float) -> tuple[Anomaly, list[Alarm]]:
    """A router port and its BGP session down: an anomaly and the two traps."""
    a = anomaly(
        device,
        t,
        [
            ("if_oper_up", port, 40.0, 0.0, 1.0),
            ("if_out_bps", port, 30.0, 6.4e4, 4.0e9),
            ("bgp_peer_up", addr_local_peer, 25.0, 0.0, 1.0),
            ("bgp_prefixes_accepted", addr_local_peer, 20.0, 0.0, 300.0),
        ],
    )
    return a, [
        trap(device, "link_down", port, t - 3.0),
        trap(device, "bgp_down", addr_local_peer, t - 2.0),
    ]


def fibre_cut_a_b(t: float = T0) -> Stream:
    s = Stream()
    for amp in ("amp-a-b", "amp-b-a"):
        s.anomalies.append(
            anomaly(amp, t, [
                ("amp_input_power_dbm", "edfa", 60.0, -50.0, 1.0),
                ("amp_output_power_dbm", "edfa", 55.0, -50.0, 19.0),
                ("amp_gain_db", "edfa", 50.0, 0.0, 18.0),
                ("amp_pump_current_ma", "edfa", 45.0, 0.0, 229.0),
            ])
        )  # fmt: skip
    for roadm in ("roadm-a", "roadm-b"):
        s.anomalies.append(
            anomaly(roadm, t, [("roadm_input_power_dbm", "deg-1", 50.0, -50.0, 19.0)])
        )
    for xp in ("xp-a1", "xp-b1", "xp-a2", "xp-c2"):
        s.anomalies.append(
            anomaly(xp, t, [
                ("opt_rx_power_dbm", "line1", 40.0, -40.0, -8.0),
                ("if_oper_up", "client1", 30.0, 0.0, 1.0),
            ])
        )  # fmt: skip
    for device, port, peer in (
        ("pe1", "eth1", "10.0.0.2"), ("p1", "eth1", "10.0.0.1"),
        ("pe1", "eth2", "10.0.0.10"), ("pe2", "eth2", "10.0.0.9"),
    ):  # fmt: skip
        a, traps = _down(device, port, peer, t + 2.0)
        s.anomalies.append(a)
        s.events.extend(traps)
    # Traffic moves onto what is left: the patch cord and och-2.
    moved = [("if_in_bps", "eth3", 12.0, 9e9, 3e9), ("if_out_bps", "eth2", 10.0, 8e9, 3e9)]
    s.anomalies.append(anomaly("p1", t + POLL, moved, 3.5))
    s.anomalies.append(anomaly("pe2", t + POLL, [("if_in_bps", "eth1", 10.0, 8e9, 3e9)], 3.2))
    return s


def amplifier_failure_b_c(t: float = T0) -> Stream:
    s = Stream()
    s.anomalies.append(
        anomaly("amp-b-c", t, [
            ("amp_output_power_dbm", "edfa", 60.0, -50.0, 19.0),
            ("amp_gain_db", "edfa", 55.0, 0.0, 20.3),
            ("amp_pump_current_ma", "edfa", 50.0, 0.0, 230.5),
        ])
    )  # fmt: skip
    s.anomalies.append(
        anomaly("roadm-c", t, [("roadm_input_power_dbm", "deg-1", 50.0, -50.0, 19.0)])
    )
    for xp in ("xp-c1", "xp-c2"):
        s.anomalies.append(anomaly(xp, t, [("opt_rx_power_dbm", "line1", 40.0, -40.0, -8.0)]))
    for device, port, peer in (
        ("p1", "eth2", "10.0.0.6"), ("pe2", "eth1", "10.0.0.5"),
        ("pe1", "eth2", "10.0.0.10"), ("pe2", "eth2", "10.0.0.9"),
    ):  # fmt: skip
        a, traps = _down(device, port, peer, t + 2.0)
        s.anomalies.append(a)
        s.events.extend(traps)
    return s


def link_down(device: str, port: str, peer_device: str, peer_port: str, addrs: tuple[str, str],
              t: float = T0) -> Stream:  # fmt: skip
    """``device:port`` fails (oper down, admin up); both ends and both sessions drop."""
    s = Stream()
    for dev, prt, peer_addr in ((device, port, addrs[1]), (peer_device, peer_port, addrs[0])):
        a, traps = _down(dev, prt, peer_addr, t)
        s.anomalies.append(a)
        s.events.extend(traps)
    return s


def interface_flap(t: float = T0, times: int = 5, period: float = 20.0) -> Stream:
    """pe1:eth3 bounces: down half of each period, traps each way, from both ends."""
    s = Stream()
    for k in range(times):
        down, up = t + k * period, t + k * period + period / 2
        for dev, port, peer in (("pe1", "eth3", "10.0.0.14"), ("p1", "eth3", "10.0.0.13")):
            s.events += [
                trap(dev, "link_down", port, down),
                trap(dev, "bgp_down", peer, down + 0.5),
            ]
            s.events += [trap(dev, "link_up", port, up), trap(dev, "bgp_up", peer, up + 3.0)]
    bounced = [
        ("if_oper_up", "eth3", 40.0, 0.0, 1.0),
        ("bgp_transitions_ps", "10.0.0.14", 20.0, 0.1, 0.0),
    ]
    s.anomalies.append(anomaly("pe1", t + 5.0, bounced))
    s.anomalies.append(anomaly("p1", t + 65.0, [("cpu_util_pct", "", 10.0, 25.0, 10.0)], 2.0))
    return s


def crc_errors_p1_eth3(t: float = T0, polls: int = 3) -> Stream:
    s = Stream()
    for k in range(polls):
        s.anomalies.append(
            anomaly("p1", t + k * 60.0, [("if_in_errors_ps", "eth3", 50.0, 1200.0, 0.0)], 2.5)
        )
    return s


def congestion_pe1_eth3(t: float = T0) -> Stream:
    s = Stream()
    s.anomalies.append(
        anomaly("pe1", t, [
            ("if_out_discards_ps", "eth3", 50.0, 2.0e6, 0.0),
            ("if_out_util", "eth3", 40.0, 1.0, 0.3),
            ("if_out_bps", "eth3", 30.0, 1.0e11, 3.0e10),
        ])
    )  # fmt: skip
    s.anomalies.append(
        anomaly("p1", t, [("if_in_bps", "eth3", 30.0, 1.0e11, 3.0e10),
                          ("if_in_util", "eth3", 25.0, 1.0, 0.3)])
    )  # fmt: skip
    return s


def bgp_shut_pe1(t: float = T0) -> Stream:
    """pe1's neighbour 10.0.0.14 (p1, over the patch cord) shut in config on pe1."""
    s = Stream()
    s.anomalies.append(
        anomaly("pe1", t, [
            ("bgp_peer_up", "10.0.0.14", 40.0, 0.0, 1.0),
            ("bgp_peer_state", "10.0.0.14", 35.0, 1.0, 6.0),
            ("bgp_prefixes_accepted", "10.0.0.14", 30.0, 0.0, 300.0),
        ])
    )  # fmt: skip
    s.anomalies.append(
        anomaly("p1", t, [
            ("bgp_peer_up", "10.0.0.13", 40.0, 0.0, 1.0),
            ("bgp_peer_state", "10.0.0.13", 35.0, 3.0, 6.0),
        ])
    )  # fmt: skip
    s.events += [
        trap("pe1", "bgp_down", "10.0.0.14", t - 4.0),
        trap("p1", "bgp_down", "10.0.0.13", t - 4.0),
    ]
    return s


def config_drift_pe1_eth2(t: float = T0) -> Stream:
    """An MTU pushed on pe1:eth2: the IGP adjacency drops, the link stays up, traffic
    drains from it at both ends and moves to the other paths."""
    s = Stream()
    for dev, port in (("pe1", "eth2"), ("pe2", "eth2")):
        s.anomalies.append(
            anomaly(dev, t, [("if_out_bps", port, 30.0, 6.4e4, 4.0e9),
                             ("if_in_bps", port, 28.0, 6.4e4, 4.0e9)], 4.0)
        )  # fmt: skip
    s.anomalies.append(anomaly("pe1", t + 60.0, [("if_out_bps", "eth1", 12.0, 8e9, 4e9)], 2.0))
    return s


def cpu_runaway_p1(t: float = T0) -> Stream:
    s = Stream()
    for k in range(2):
        s.anomalies.append(
            anomaly("p1", t + 60.0 * k, [("cpu_util_pct", "", 80.0, 97.0, 9.0),
                                         ("mem_used_pct", "", 20.0, 24.0, 20.0)], 8.0)
        )  # fmt: skip
    return s


def laser_degradation_xp_a1(t: float = T0) -> Stream:
    s = Stream()
    s.anomalies.append(
        anomaly("xp-a1", t, [("opt_laser_bias_ma", "line1", 50.0, 109.8, 68.6),
                             ("opt_tx_power_dbm", "line1", 30.0, -9.5, -8.5)], 5.0)
    )  # fmt: skip
    s.anomalies.append(
        anomaly("xp-b1", t + POLL, [("opt_rx_power_dbm", "line1", 12.0, -9.0, -8.0),
                                    ("opt_osnr_db", "line1", 8.0, 30.9, 31.9)], 2.0)
    )  # fmt: skip
    return s


def osnr_degradation_amp_b_c(t: float = T0) -> Stream:
    s = Stream()
    for xp, osnr in (("xp-c1", 30.1), ("xp-c2", 28.9)):
        s.anomalies.append(
            anomaly(xp, t, [("opt_osnr_db", "line1", 30.0, osnr, osnr + 3.0),
                            ("opt_pre_fec_ber", "line1", 25.0, 6.4e-4, 8.0e-5),
                            ("opt_q_db", "line1", 20.0, 10.1, 11.5)], 4.0)
        )  # fmt: skip
    return s


def span_loss_b_c(t: float = T0) -> Stream:
    s = Stream()
    s.anomalies.append(
        anomaly("amp-b-c", t, [
            ("amp_input_power_dbm", "edfa", 50.0, -6.7, 2.3),
            ("amp_output_power_dbm", "edfa", 45.0, 10.0, 19.0),
            ("amp_pump_current_ma", "edfa", 40.0, 55.0, 228.5),
        ])
    )  # fmt: skip
    s.anomalies.append(
        anomaly("roadm-c", t, [("roadm_input_power_dbm", "deg-1", 40.0, 10.0, 19.0)])
    )
    for xp in ("xp-c1", "xp-c2"):
        s.anomalies.append(
            anomaly(xp, t + POLL, [("opt_rx_power_dbm", "line1", 40.0, -17.0, -8.0),
                                   ("opt_osnr_db", "line1", 30.0, 27.1, 31.9),
                                   ("opt_pre_fec_ber", "line1", 20.0, 2.1e-3, 8.0e-5)])
        )  # fmt: skip
    return s


def healthy_noise(t: float = T0) -> Stream:
    """A healthy network's false alarms: single, weak, unrelated, minutes apart."""
    s = Stream()
    s.anomalies.append(anomaly("pe2", t, [("if_in_bps", "eth1", 3.0, 4.9e9, 4.0e9)], 1.2))
    s.anomalies.append(
        anomaly("xp-b2", t + 400.0, [("opt_module_temp_c", "line1", 2.0, 44.1, 43.0)], 1.1)
    )
    s.anomalies.append(anomaly("p1", t + 900.0, [("cpu_util_pct", "", 2.0, 14.0, 10.0)], 1.3))
    s.anomalies.append(
        anomaly("roadm-a", t + 1400.0, [("roadm_output_power_dbm", "deg-2", 2.0, 16.6, 17.0)], 1.1)
    )
    return s
