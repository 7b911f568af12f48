"""The NETCONF collector's pure parts and its session pool over fake ncclient managers. No sockets.

The replies below were recorded from the lab's NETCONF server (metro-ring:
pe1, xp-a1, amp-a-b, roadm-a) and from yuma123's netconfd with its
ietf-interfaces module, then trimmed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from ncclient.transport.errors import AuthenticationError, SessionCloseError, SSHError
from pydantic import SecretStr

from autonoc.core.errors import ConfigError, DeviceError, DeviceRejected, DeviceUnreachable
from autonoc.core.inventory import Device, Mgmt, NetconfCredentials, Role
from collectors.base import Collector, CollectRequest
from collectors.netconf import (
    IETF_IF,
    OC_AMP,
    OC_IF,
    OC_LINE,
    OC_NI,
    OC_PLAT,
    OC_SYS,
    OC_TERM,
    NetconfCollector,
    NetconfSessionPool,
    UnsafeReply,
    advertised_modules,
    filters_for,
    parse_reply,
    samples_from_data,
)
from collectors.rates import RateTracker

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
PASSWORD = "pa55-w0rd-never-logged"
BOOT_NS = 1_795_434_977_247_215_360
T0 = BOOT_NS / 1e9 + 100.0

OC_CAPS = (
    f"{BASE}",
    f"{OC_IF}?module=openconfig-interfaces&revision=2021-04-06",
    f"{OC_NI}?module=openconfig-network-instance",
    f"{OC_SYS}?module=openconfig-system",
    f"{OC_PLAT}?module=openconfig-platform",
    f"{OC_TERM}?module=openconfig-terminal-device",
    f"{OC_AMP}?module=openconfig-optical-amplifier",
    f"{OC_LINE}?module=openconfig-transport-line-common",
)
IETF_CAPS = (
    f"{BASE}",
    f"{IETF_IF}?module=ietf-interfaces&revision=2014-05-08&features=arbitrary-names,if-mib",
)


def reply(body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<rpc-reply xmlns="{BASE}" message-id="urn:uuid:1"><data>{body}</data></rpc-reply>'
    )


def oc_system(boot_ns: int = BOOT_NS) -> str:
    return f'<system xmlns="{OC_SYS}"><state><boot-time>{boot_ns}</boot-time></state></system>'


def oc_interfaces(
    in_octets: int, *, oper: str = "UP", last_clear: str | None = None, boot_ns: int = BOOT_NS
) -> str:
    clear = f"<last-clear>{last_clear}</last-clear>" if last_clear is not None else ""
    return reply(
        f"""<interfaces xmlns="{OC_IF}">
          <interface><name>lo0</name><state><name>lo0</name><admin-status>UP</admin-status>
            <oper-status>UP</oper-status><counters><in-octets>0</in-octets></counters></state>
          </interface>
          <interface><name>eth1</name><state><name>eth1</name>
            <admin-status>UP</admin-status><oper-status>{oper}</oper-status>
            <counters>
              <in-octets>{in_octets}</in-octets>
              <in-unicast-pkts>{in_octets // 1000}</in-unicast-pkts>
              <in-discards>0</in-discards><in-errors>7</in-errors>
              <out-octets>1836862003</out-octets><out-unicast-pkts>2825941</out-unicast-pkts>
              <out-discards>0</out-discards><out-errors>0</out-errors>{clear}
            </counters></state>
          </interface>
        </interfaces>{oc_system(boot_ns)}"""
    )


def oc_bgp(updates_in: int, state: str = "ESTABLISHED") -> str:
    return reply(
        f"""<network-instances xmlns="{OC_NI}"><network-instance><name>DEFAULT</name>
          <protocols><protocol>
            <identifier xmlns:oc-pol-types="http://openconfig.net/yang/policy-types"
              >oc-pol-types:BGP</identifier><name>BGP</name>
            <bgp><neighbors><neighbor><neighbor-address>10.0.0.10</neighbor-address>
              <afi-safis><afi-safi>
                <afi-safi-name xmlns:oc-bgp-types="http://openconfig.net/yang/bgp-types"
                  >oc-bgp-types:IPV4_UNICAST</afi-safi-name>
                <state><prefixes><received>656</received><sent>920</sent>
                  <installed>656</installed></prefixes></state>
              </afi-safi></afi-safis>
              <state><neighbor-address>10.0.0.10</neighbor-address><peer-as>65005</peer-as>
                <session-state>{state}</session-state>
                <established-transitions>1</established-transitions>
                <messages><sent><UPDATE>40</UPDATE></sent>
                  <received><UPDATE>{updates_in}</UPDATE></received></messages>
              </state>
            </neighbor></neighbors></bgp>
          </protocol></protocols>
        </network-instance></network-instances>{oc_system()}"""
    )


SYSTEM = reply(
    f"""<system xmlns="{OC_SYS}"><state><hostname>pe1</hostname>
      <boot-time>{BOOT_NS}</boot-time></state>
      <cpus><cpu><index>ALL</index><state><total><instant>29</instant></total></state></cpu></cpus>
      <memory><state><physical>17179869184</physical><used>4938125312</used>
        <free>12241743872</free></state></memory></system>"""
)


def transponder(fec_blocks: int, *, active: bool = True) -> str:
    oper = "ACTIVE" if active else "INACTIVE"
    return reply(
        f"""<components xmlns="{OC_PLAT}">
          <component><name>xp-a1:line1</name>
            <optical-channel xmlns="{OC_TERM}"><state>
              <output-power><instant>-8.46</instant></output-power>
              <input-power><instant>{"-8.03" if active else "-40.00"}</instant></input-power>
              <laser-bias-current><instant>68.60</instant></laser-bias-current>
              <chromatic-dispersion><instant>2182.80</instant></chromatic-dispersion>
              <osnr><instant>{"31.92" if active else "0.00"}</instant></osnr>
            </state></optical-channel>
            <state><name>xp-a1:line1</name>
              <type xmlns:oc-opt-types="http://openconfig.net/yang/transport-types"
                >oc-opt-types:OPTICAL_CHANNEL</type>
              <oper-status xmlns:oc-platform-types="http://openconfig.net/yang/platform-types"
                >oc-platform-types:{oper}</oper-status></state>
          </component>
          <component><name>xp-a1:line1-transceiver</name>
            <state><name>xp-a1:line1-transceiver</name>
              <type xmlns:oc-platform-types="http://openconfig.net/yang/platform-types"
                >oc-platform-types:TRANSCEIVER</type>
              <temperature><instant>42.1</instant></temperature></state>
          </component>
          <component><name>xp-a1:client1</name>
            <state><name>xp-a1:client1</name>
              <type xmlns:oc-platform-types="http://openconfig.net/yang/platform-types"
                >oc-platform-types:PORT</type></state>
          </component>
        </components>
        <terminal-device xmlns="{OC_TERM}"><logical-channels><channel><index>1</index>
          <logical-channel-assignments><assignment><index>1</index>
            <state><optical-channel>xp-a1:line1</optical-channel></state>
          </assignment></logical-channel-assignments>
          <state><link-state>{"UP" if active else "DOWN"}</link-state></state>
          <otn><state>
            <pre-fec-ber><instant>0.000077082663511041</instant></pre-fec-ber>
            <q-value><instant>11.56</instant></q-value>
            <fec-uncorrectable-blocks>{fec_blocks}</fec-uncorrectable-blocks>
          </state></otn>
        </channel></logical-channels></terminal-device>"""
    )


AMPLIFIER = reply(
    f"""<optical-amplifier xmlns="{OC_AMP}"><amplifiers><amplifier><name>amp-a-b</name>
      <state><name>amp-a-b</name><type>EDFA</type><target-gain>17.90</target-gain>
        <amp-mode>CONSTANT_GAIN</amp-mode><enabled>true</enabled>
        <actual-gain><instant>17.95</instant></actual-gain>
        <actual-gain-tilt><instant>0.38</instant></actual-gain-tilt>
        <input-power-total><instant>1.10</instant></input-power-total>
        <output-power-total><avg>18.98</avg></output-power-total>
        <laser-bias-current><instant>228.16</instant></laser-bias-current>
      </state></amplifier></amplifiers></optical-amplifier>"""
)

ROADM = reply(
    f"""<components xmlns="{OC_PLAT}"><component><name>deg-1</name>
      <state><name>deg-1</name>
        <type xmlns:oc-platform-types="http://openconfig.net/yang/platform-types"
          >oc-platform-types:PORT</type></state>
      <port><optical-port xmlns="{OC_LINE}"><state>
        <input-power><instant>19.04</instant></input-power>
        <output-power><instant>17.07</instant></output-power>
      </state></optical-port></port>
    </component></components>"""
)


def ietf_interfaces(lo_in: int, *, discontinuity: str = "2026-11-23T11:00:00Z") -> str:
    # As yuma123's netconfd serves it: loopback oper-status "unknown", a bogus speed on eth0.
    return reply(
        f"""<interfaces-state xmlns="{IETF_IF}">
          <interface><name>lo</name><oper-status>unknown</oper-status>
            <statistics><discontinuity-time>{discontinuity}</discontinuity-time>
              <in-octets>{lo_in}</in-octets><in-unicast-pkts>2112</in-unicast-pkts>
              <in-errors>0</in-errors><in-discards>0</in-discards>
              <in-multicast-pkts>0</in-multicast-pkts><out-octets>{lo_in}</out-octets>
              <out-unicast-pkts>2112</out-unicast-pkts><out-errors>0</out-errors>
              <out-discards>0</out-discards></statistics></interface>
          <interface><name>eth0</name><admin-status>up</admin-status><oper-status>up</oper-status>
            <speed>18446744073708551616</speed>
            <statistics><in-octets>150045288</in-octets></statistics></interface>
          <interface><name>eth1</name><oper-status>up</oper-status><speed>1000000000</speed>
            <statistics><in-octets>{lo_in}</in-octets></statistics></interface>
        </interfaces-state>"""
    )


def data_of(xml: str) -> Any:
    root = parse_reply(xml)
    data = root.find(f"{{{BASE}}}data")
    assert data is not None
    return data


def values(samples: Sequence[Any]) -> dict[str, float]:
    return {s.key: s.value for s in samples}


def mapped(group: str, device: str, xml: str, ts: float, rates: RateTracker) -> dict[str, float]:
    return values(samples_from_data(group, device, data_of(xml), ts, rates).samples)


# The mapping -------------------------------------------------------------------------


def test_openconfig_interfaces_give_status_then_rates() -> None:
    rates = RateTracker()
    first = mapped("interfaces", "pe1", oc_interfaces(1_000_000), T0, rates)
    assert first["if_oper_up@eth1"] == 1.0 and first["if_admin_up@eth1"] == 1.0
    assert first["sys_uptime_s"] == pytest.approx(100.0)
    assert "if_in_bps@eth1" not in first  # no baseline yet

    second = mapped("interfaces", "pe1", oc_interfaces(2_000_000), T0 + 10, rates)
    assert second["if_in_bps@eth1"] == pytest.approx(800_000.0)  # 1e6 octets in 10 s
    assert second["if_in_pps@eth1"] == pytest.approx(100.0)
    assert second["if_out_bps@eth1"] == 0.0
    assert second["if_in_errors_ps@eth1"] == 0.0
    assert "if_in_util@eth1" not in second  # no speed served
    assert second["sys_uptime_s"] == pytest.approx(110.0)


def test_oper_down_is_zero() -> None:
    got = mapped("interfaces", "pe1", oc_interfaces(5, oper="DOWN"), T0, RateTracker())
    assert got["if_oper_up@eth1"] == 0.0
    assert got["if_admin_up@eth1"] == 1.0


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (oc_interfaces(2_000_000, last_clear="1795434999000000000"), "counters cleared"),
        (oc_interfaces(2_000_000, boot_ns=BOOT_NS + 50 * 10**9), "device rebooted"),
    ],
)
def test_no_rate_across_a_discontinuity(second: str, why: str) -> None:
    rates = RateTracker()
    mapped("interfaces", "pe1", oc_interfaces(1_000_000, last_clear="1"), T0, rates)
    got = mapped("interfaces", "pe1", second, T0 + 10, rates)
    assert "if_in_bps@eth1" not in got, why
    third = oc_interfaces(3_000_000, last_clear="1795434999000000000")
    if "boot" in why:
        third = oc_interfaces(3_000_000, last_clear="1", boot_ns=BOOT_NS + 50 * 10**9)
    assert mapped("interfaces", "pe1", third, T0 + 20, rates)["if_in_bps@eth1"] > 0


def test_bgp_neighbor_state_prefixes_and_update_rate() -> None:
    rates = RateTracker()
    mapped("bgp", "pe1", oc_bgp(100), T0, rates)
    got = mapped("bgp", "pe1", oc_bgp(130), T0 + 30, rates)
    assert got["bgp_peer_state@10.0.0.10"] == 6.0
    assert got["bgp_peer_up@10.0.0.10"] == 1.0
    assert got["bgp_prefixes_accepted@10.0.0.10"] == 656.0
    assert got["bgp_updates_in_ps@10.0.0.10"] == pytest.approx(1.0)
    assert got["bgp_updates_out_ps@10.0.0.10"] == 0.0
    assert got["bgp_transitions_ps@10.0.0.10"] == 0.0
    down = mapped("bgp", "pe1", oc_bgp(130, state="ACTIVE"), T0 + 60, rates)
    assert down["bgp_peer_state@10.0.0.10"] == 3.0
    assert down["bgp_peer_up@10.0.0.10"] == 0.0


def test_system_cpu_memory_uptime_and_hostname() -> None:
    out = samples_from_data("system", "pe1", data_of(SYSTEM), T0, RateTracker())
    got = values(out.samples)
    assert got == pytest.approx(
        {
            "sys_uptime_s": 100.0,
            "cpu_util_pct": 29.0,
            "mem_used_bytes": 4938125312.0,
            "mem_used_pct": 100 * 4938125312 / 17179869184,
        }
    )
    assert out.facts == {"hostname": "pe1"}
    assert out.leaves == 5  # boot-time, one cpu, physical, used, free


def test_transponder_optics_use_the_snmp_instance_names() -> None:
    rates = RateTracker()
    first = mapped("optics", "xp-a1", transponder(100), T0, rates)
    assert first == pytest.approx(
        {
            "opt_tx_power_dbm@line1": -8.46,
            "opt_rx_power_dbm@line1": -8.03,
            "opt_laser_bias_ma@line1": 68.60,
            "opt_cd_ps_nm@line1": 2182.80,
            "opt_osnr_db@line1": 31.92,
            "opt_module_temp_c@line1": 42.1,  # the transceiver holding line1's module
            "opt_pre_fec_ber@line1": 7.7082663511041e-05,
            "opt_q_db@line1": 11.56,
        }
    )
    second = mapped("optics", "xp-a1", transponder(150), T0 + 10, rates)
    assert second["opt_post_fec_uncorrectable@line1"] == pytest.approx(5.0)  # blocks/s


def test_loss_of_signal_drops_signal_quality_but_keeps_power() -> None:
    rates = RateTracker()
    mapped("optics", "xp-a1", transponder(100), T0, rates)
    got = mapped("optics", "xp-a1", transponder(10_100, active=False), T0 + 10, rates)
    assert got["opt_rx_power_dbm@line1"] == -40.0
    assert got["opt_tx_power_dbm@line1"] == -8.46
    for metric in ("opt_osnr_db", "opt_cd_ps_nm", "opt_pre_fec_ber", "opt_q_db"):
        assert f"{metric}@line1" not in got
    assert "opt_post_fec_uncorrectable@line1" not in got
    # The counter kept its baseline through the outage: the rate is back at once.
    back = mapped("optics", "xp-a1", transponder(10_200), T0 + 20, rates)
    assert back["opt_post_fec_uncorrectable@line1"] == pytest.approx(10.0)


def test_amplifier_is_edfa_and_roadm_degrees_keep_their_names() -> None:
    amp = mapped("optics", "amp-a-b", AMPLIFIER, T0, RateTracker())
    assert amp == pytest.approx(
        {
            "amp_input_power_dbm@edfa": 1.10,
            "amp_output_power_dbm@edfa": 18.98,  # avg when instant is absent
            "amp_gain_db@edfa": 17.95,
            "amp_target_gain_db@edfa": 17.90,
            "amp_gain_tilt_db@edfa": 0.38,
            "amp_pump_current_ma@edfa": 228.16,
        }
    )
    roadm = mapped("optics", "roadm-a", ROADM, T0, RateTracker())
    assert roadm == {"roadm_input_power_dbm@deg-1": 19.04, "roadm_output_power_dbm@deg-1": 17.07}


def test_ietf_interfaces_state() -> None:
    rates = RateTracker()
    first = mapped("interfaces", "netconfd", ietf_interfaces(1000), T0, rates)
    assert first["if_oper_up@lo"] == 0.0  # "unknown" is not up
    assert first["if_oper_up@eth0"] == 1.0 and first["if_admin_up@eth0"] == 1.0
    assert "if_speed_bps@eth0" not in first  # 2^64 - 10^6: a sentinel, not a speed
    assert first["if_speed_bps@eth1"] == 1e9
    second = mapped("interfaces", "netconfd", ietf_interfaces(2000), T0 + 1, rates)
    assert second["if_in_bps@lo"] == pytest.approx(8000.0)
    assert second["if_in_util@eth1"] == pytest.approx(8000.0 / 1e9)
    reset = mapped(
        "interfaces",
        "netconfd",
        ietf_interfaces(3000, discontinuity="2026-11-23T12:00:00Z"),
        T0 + 2,
        rates,
    )
    assert "if_in_bps@lo" not in reset
    assert "if_in_bps@eth1" in reset


def test_speed_from_an_openconfig_ethernet_identity() -> None:
    xml = reply(
        f"""<interfaces xmlns="{OC_IF}"><interface><name>et-0/0/1</name>
          <state><oper-status>UP</oper-status><counters><in-octets>5</in-octets></counters></state>
          <ethernet xmlns="http://openconfig.net/yang/interfaces/ethernet"><state>
            <port-speed xmlns:oc-eth="http://openconfig.net/yang/interfaces/ethernet"
              >oc-eth:SPEED_100GB</port-speed></state></ethernet>
        </interface></interfaces>"""
    )
    got = mapped("interfaces", "r1", xml, T0, RateTracker())
    assert got["if_speed_bps@et-0/0/1"] == 100e9


# Models and filters ----------------------------------------------------------------------


def test_advertised_modules_and_filters_per_group() -> None:
    modules = advertised_modules(OC_CAPS)
    assert modules["openconfig-interfaces"] == "2021-04-06"
    assert modules["openconfig-system"] == ""
    filters, used = filters_for("interfaces", modules)
    assert used == ["openconfig-interfaces", "openconfig-system"]
    assert "<counters/>" in filters[0] and "<boot-time/>" in filters[1]
    filters, used = filters_for("optics", modules)
    assert used == [
        "openconfig-platform",
        "openconfig-transport-line-common",
        "openconfig-terminal-device",
        "openconfig-optical-amplifier",
    ]
    assert len(filters) == 3


def test_ietf_interfaces_container_follows_the_revision() -> None:
    legacy = advertised_modules(IETF_CAPS)
    assert "<interfaces-state " in filters_for("interfaces", legacy)[0][0]
    nmda = {"ietf-interfaces": "2018-02-20"}
    assert "<interfaces " in filters_for("interfaces", nmda)[0][0]
    assert filters_for("bgp", legacy) == ([], [])
    assert filters_for("system", legacy) == ([], [])


# Parsing safely --------------------------------------------------------------------------

BILLION_LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rpc-reply xmlns="{BASE}" message-id="1"><data><system xmlns="{OC_SYS}"><state>
<hostname>&lol9;</hostname></state></system></data></rpc-reply>"""

EXTERNAL_ENTITY = f"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rpc-reply xmlns="{BASE}" message-id="1"><data>&xxe;</data></rpc-reply>"""


@pytest.mark.parametrize(
    "raw",
    [
        BILLION_LAUGHS,
        BILLION_LAUGHS.encode("utf-16"),  # no "<!DOCTYPE" bytes to spot
        EXTERNAL_ENTITY,
    ],
    ids=["billion-laughs", "billion-laughs-utf16", "external-entity"],
)
def test_documents_with_a_dtd_are_refused(raw: str | bytes) -> None:
    # Refused before any entity is expanded: by the DTD check, or by libxml2's own
    # amplification guard where the DTD hides in another encoding.
    with pytest.raises(UnsafeReply, match=r"DTD|entity"):
        parse_reply(raw)


def test_oversized_and_malformed_replies_are_refused() -> None:
    big = reply("<x>" + "a" * 2000 + "</x>")
    with pytest.raises(UnsafeReply, match="exceeds the 1,000-byte limit"):
        parse_reply(big, max_bytes=1000)
    with pytest.raises(UnsafeReply, match="malformed XML"):
        parse_reply(f'<rpc-reply xmlns="{BASE}"><data><unclosed></data></rpc-reply>')
    assert parse_reply(big, max_bytes=10_000) is not None


# The pool and the collector over fake ncclient managers ------------------------------------


class FakeRpc:
    def __init__(self, xml: str | None = None, error: Exception | None = None) -> None:
        self.event = threading.Event()
        self.error = error
        self.reply = SimpleNamespace(xml=xml)
        if xml is not None or error is not None:
            self.event.set()


Responder = Callable[[list[str]], FakeRpc]


class FakeManager:
    """What the pool uses of an ncclient Manager in async mode."""

    def __init__(self, caps: Sequence[str], respond: Responder) -> None:
        self.server_capabilities = list(caps)
        self.connected = True
        self.async_mode = False
        self.closed = False
        self._respond = respond

    def get(self, filter: list[str]) -> FakeRpc:
        if not self.connected:
            raise SessionCloseError("")
        return self._respond(filter)

    def close_session(self) -> FakeRpc:
        self.connected = False
        self.closed = True
        return FakeRpc(xml=reply(""))


class FakeConnect:
    """Stands in for ncclient.manager.connect: records each call, hands out managers."""

    def __init__(self, caps: Sequence[str] = OC_CAPS, respond: Responder | None = None) -> None:
        self.caps = caps
        self.respond: Responder = respond or (lambda f: FakeRpc(xml=reply("")))
        self.calls: list[dict[str, Any]] = []
        self.managers: list[FakeManager] = []
        self.fail: Exception | None = None

    def __call__(self, **kwargs: Any) -> FakeManager:
        self.calls.append(kwargs)
        if self.fail is not None:
            raise self.fail
        m = FakeManager(self.caps, lambda f: self.respond(f))
        self.managers.append(m)
        return m


def device(name: str = "pe1", *, password: str = PASSWORD) -> Device:
    return Device(
        name=name,
        role=Role.ROUTER,
        mgmt=Mgmt(host="192.0.2.1", netconf_port=830),
        netconf=NetconfCredentials(
            username="ops", password=SecretStr(password), hostkey_verify=False
        ),
    )


def by_filter(replies: dict[str, str]) -> Responder:
    """Answer each <get> with the reply whose key occurs in its first filter."""

    def respond(filters: list[str]) -> FakeRpc:
        for key, xml in replies.items():
            if key in filters[0]:
                return FakeRpc(xml=xml)
        return FakeRpc(xml=reply(""))

    return respond


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_pool_opens_lazily_reuses_and_passes_credentials() -> None:
    connect = FakeConnect()
    pool = NetconfSessionPool(workers=2, keepalive=15, connect=connect)
    assert pool.open_sessions() == 0

    async def two_gets() -> None:
        await pool.get(device(), ["<a/>"])
        await pool.get(device(), ["<b/>"])

    run(two_gets())
    assert pool.connects == 1 and pool.open_sessions() == 1
    (call,) = connect.calls
    assert call["host"] == "192.0.2.1" and call["port"] == 830 and call["username"] == "ops"
    assert call["password"] == PASSWORD and call["hostkey_verify"] is False
    assert call["keepalive"] == 15 and call["look_for_keys"] is False
    assert connect.managers[0].async_mode is True
    pool.close_all()
    assert pool.open_sessions() == 0 and connect.managers[0].closed


def test_a_dropped_session_fails_the_call_and_the_next_one_reconnects() -> None:
    connect = FakeConnect()
    pool = NetconfSessionPool(connect=connect)
    connect.respond = lambda f: FakeRpc(error=SessionCloseError("partial"))
    with pytest.raises(DeviceUnreachable, match="closed the NETCONF session"):
        run(pool.get(device(), ["<a/>"]))
    assert pool.open_sessions() == 0
    connect.respond = lambda f: FakeRpc(xml=reply("<ok/>"))
    run(pool.get(device(), ["<a/>"]))
    assert pool.connects == 2


def test_a_silent_device_times_out_and_its_session_is_reset() -> None:
    connect = FakeConnect(respond=lambda f: FakeRpc())  # never answers
    pool = NetconfSessionPool(timeout=0.05, connect=connect)
    with pytest.raises(DeviceUnreachable, match=r"no NETCONF reply .* within 0\.05 s"):
        run(pool.get(device(), ["<a/>"]))
    assert pool.open_sessions() == 0


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (AuthenticationError("Authentication failed."), DeviceRejected, "login .* was refused"),
        (SSHError("Could not open socket to 192.0.2.1:830"), DeviceUnreachable, "cannot open"),
        (TimeoutError("timed out"), DeviceUnreachable, "cannot reach"),
    ],
)
def test_connect_failures_are_clear_and_never_show_the_password(
    error: Exception, kind: type[DeviceError], text: str
) -> None:
    connect = FakeConnect()
    connect.fail = error
    pool = NetconfSessionPool(connect=connect)
    with pytest.raises(kind, match=text) as info:
        run(pool.get(device(), ["<a/>"]))
    assert PASSWORD not in str(info.value)
    assert "192.0.2.1:830" in str(info.value)


def test_a_device_without_netconf_is_a_config_error() -> None:
    bare = Device(name="r9", role=Role.ROUTER, mgmt=Mgmt(host="192.0.2.9"))
    with pytest.raises(ConfigError, match="no netconf section"):
        run(NetconfSessionPool(connect=FakeConnect()).get(bare, ["<a/>"]))


def test_sessions_beyond_the_bound_close_the_least_recently_used() -> None:
    connect = FakeConnect()
    pool = NetconfSessionPool(max_sessions=2, connect=connect)

    async def visit(*names: str) -> None:
        for name in names:
            await pool.get(device(name), ["<a/>"])

    run(visit("r1", "r2", "r1", "r3"))
    assert pool.open_sessions() == 2
    r1, r2, r3 = connect.managers
    assert r2.closed and not r1.closed and not r3.closed


def test_collector_maps_every_group_and_counts_leaves() -> None:
    connect = FakeConnect(
        respond=by_filter(
            {
                OC_IF: oc_interfaces(1_000_000),
                OC_NI: oc_bgp(100),
                f'<system xmlns="{OC_SYS}"><state><hostname/>': SYSTEM,
                OC_PLAT: transponder(100),
            }
        )
    )
    pool = NetconfSessionPool(connect=connect)
    collector = NetconfCollector(pool, clock=lambda: T0)
    assert isinstance(collector, Collector) and collector.name == "netconf"
    groups = ("interfaces", "optics", "bgp", "system", "inventory")
    # One box with every model, named like the transponder whose components it serves.
    result = run(collector.collect(device("xp-a1"), CollectRequest(groups=groups)))
    assert not result.failed, result.exception
    got = values(result.samples)
    assert got["if_oper_up@eth1"] == 1.0
    assert got["bgp_peer_up@10.0.0.10"] == 1.0
    assert got["cpu_util_pct"] == 29.0
    assert got["opt_osnr_db@line1"] == 31.92
    assert result.varbinds > len(result.samples) / 2
    assert "openconfig-interfaces" in result.facts["netconf_models"]
    assert result.facts["hostname"] == "pe1"  # what the recorded reply says
    assert "netconf_missing" not in result.facts


def test_one_refused_group_fails_the_result_but_keeps_the_others() -> None:
    rpc_error = (
        f'<rpc-reply xmlns="{BASE}" message-id="1"><rpc-error><error-type>application'
        "</error-type><error-tag>operation-not-supported</error-tag><error-severity>error"
        "</error-severity><error-message>no BGP here</error-message></rpc-error></rpc-reply>"
    )
    connect = FakeConnect(respond=by_filter({OC_IF: oc_interfaces(5), OC_NI: rpc_error}))
    collector = NetconfCollector(NetconfSessionPool(connect=connect), clock=lambda: T0)
    result = run(collector.collect(device(), CollectRequest(groups=("bgp", "interfaces"))))
    assert result.failed
    assert isinstance(result.exception, DeviceRejected)
    assert "operation-not-supported: no BGP here" in str(result.exception)
    assert "if_oper_up@eth1" in values(result.samples)
    assert len(connect.calls) == 1  # an rpc-error leaves the session in place


def test_an_unsafe_reply_fails_the_poll_and_drops_the_session() -> None:
    connect = FakeConnect(respond=lambda f: FakeRpc(xml=BILLION_LAUGHS))
    pool = NetconfSessionPool(connect=connect)
    collector = NetconfCollector(pool, clock=lambda: T0)
    result = run(collector.collect(device(), CollectRequest(groups=("system",))))
    assert result.failed and type(result.exception) is DeviceError
    assert "refused the NETCONF reply" in str(result.exception)
    assert pool.open_sessions() == 0


def test_models_the_device_lacks_give_an_ok_result_with_a_fact() -> None:
    connect = FakeConnect(caps=IETF_CAPS, respond=lambda f: FakeRpc(xml=ietf_interfaces(10)))
    collector = NetconfCollector(NetconfSessionPool(connect=connect), clock=lambda: T0)
    result = run(collector.collect(device(), CollectRequest(groups=("interfaces", "bgp"))))
    assert not result.failed
    assert values(result.samples)["if_oper_up@eth0"] == 1.0
    assert result.facts["netconf_models"] == "ietf-interfaces"
    assert result.facts["netconf_missing"] == "bgp: openconfig-network-instance not advertised"


def test_a_transport_failure_is_a_failed_result_not_an_exception() -> None:
    connect = FakeConnect()
    connect.fail = SSHError("Could not open socket to 192.0.2.1:830")
    collector = NetconfCollector(NetconfSessionPool(connect=connect))
    result = run(collector.collect(device(), CollectRequest(groups=("interfaces",))))
    assert result.failed and isinstance(result.exception, DeviceUnreachable)
    assert result.samples == [] and result.elapsed_ms > 0
    with pytest.raises(DeviceUnreachable):
        result.raise_for_status()
