"""The Prometheus exposition: valid text (parsed back by prometheus_client), labels, staleness."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample as PromSample

from autonoc.core.errors import DeviceRejected, DeviceUnreachable
from autonoc.core.inventory import Device, Mgmt, Role
from autonoc.core.types import Sample
from collectors.base import CollectResult
from collectors.exporter import (
    CONTENT_TYPE,
    METRIC_HELP,
    CollectorHealth,
    LatestMetrics,
    escape_label_value,
    failure_reason,
    render,
)

NOW = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _device(name: str = "pe1", *, site: str = "lab", role: Role = Role.ROUTER) -> Device:
    return Device(name=name, role=role, site=site, mgmt=Mgmt(host="127.0.0.1"))


def _families(text: str) -> dict[str, tuple[str, str, list[PromSample]]]:
    """name -> (type, help, samples), as Prometheus' own parser reads the text."""
    return {
        f.name: (f.type, f.documentation, f.samples) for f in text_string_to_metric_families(text)
    }


def _samples(text: str, name: str) -> list[PromSample]:
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def test_canonical_metrics_become_gauges_with_inventory_labels_and_a_named_instance() -> None:
    latest = LatestMetrics(clock=Clock())
    pe1 = _device("pe1", site="metro-a")
    amp = _device("amp-a-b", site="metro-b", role=Role.AMPLIFIER)
    latest.update(
        [
            Sample("pe1", "if_in_bps", "eth1", NOW - 5, 1.25e6),
            Sample("pe1", "bgp_peer_up", "10.0.0.10", NOW - 5, 1.0),
            Sample("pe1", "cpu_util_pct", "", NOW - 5, 12.5),
        ],
        pe1,
    )
    latest.update([Sample("amp-a-b", "amp_gain_db", "edfa", NOW - 2, 18.0)], amp)

    families = _families(render(latest))

    kind, help_text, samples = families["autonoc_if_in_bps"]
    assert kind == "gauge"
    assert help_text == METRIC_HELP["if_in_bps"]
    assert [(s.labels, s.value, s.timestamp) for s in samples] == [
        ({"device": "pe1", "site": "metro-a", "role": "router", "interface": "eth1"}, 1.25e6, None)
    ]
    assert families["autonoc_bgp_peer_up"][2][0].labels["peer"] == "10.0.0.10"
    assert families["autonoc_amp_gain_db"][2][0].labels == {
        "device": "amp-a-b",
        "site": "metro-b",
        "role": "amplifier",
        "component": "edfa",
    }
    # Device-wide metrics carry no instance label at all.
    assert families["autonoc_cpu_util_pct"][2][0].labels == {
        "device": "pe1",
        "site": "metro-a",
        "role": "router",
    }
    ages = {s.labels["device"]: s.value for s in families["autonoc_sample_age_seconds"][2]}
    assert ages == {"pe1": 5.0, "amp-a-b": 2.0}
    assert families["autonoc_exporter_series"][2][0].value == 4


#: The canonical metrics the collectors emit (the shared vocabulary of issue 4).
CANONICAL = """
if_in_bps if_out_bps if_in_pps if_out_pps if_in_errors_ps if_out_errors_ps
if_in_discards_ps if_out_discards_ps if_admin_up if_oper_up if_speed_bps if_in_util
if_out_util sys_uptime_s cpu_util_pct mem_used_pct mem_used_bytes bgp_peer_up
bgp_peer_state bgp_prefixes_accepted bgp_updates_in_ps bgp_updates_out_ps
bgp_transitions_ps opt_tx_power_dbm opt_rx_power_dbm opt_laser_bias_ma
opt_module_temp_c opt_osnr_db opt_pre_fec_ber opt_q_db opt_cd_ps_nm
opt_post_fec_uncorrectable amp_input_power_dbm amp_output_power_dbm amp_gain_db
amp_target_gain_db amp_gain_tilt_db amp_pump_current_ma roadm_input_power_dbm
roadm_output_power_dbm
"""


def test_every_listed_canonical_metric_has_a_help_text_with_its_unit() -> None:
    listed = CANONICAL.split()
    assert sorted(METRIC_HELP) == sorted(listed)
    assert all(text.endswith(".") and "\n" not in text for text in METRIC_HELP.values())


@pytest.mark.parametrize(
    "instance",
    [
        'Gi0/0/0 "uplink"',
        "back\\slash\\n-not-a-newline",
        "two\nlines",
        "trailing\\",
        "ünïcødé → 光",
        '\\"',
    ],
)
def test_device_provided_names_are_escaped_and_read_back_unchanged(instance: str) -> None:
    latest = LatestMetrics(clock=Clock())
    latest.update([Sample("pe1", "if_oper_up", instance, NOW, 1.0)], _device())

    text = render(latest)

    (sample,) = _samples(text, "autonoc_if_oper_up")
    assert sample.labels["interface"] == instance
    # One line per series: a newline in a name never starts a line of its own.
    assert sum(line.startswith("autonoc_if_oper_up{") for line in text.splitlines()) == 1


def test_undecodable_bytes_in_a_name_become_replacement_characters_not_a_broken_response() -> None:
    latest = LatestMetrics(clock=Clock())
    bad = b"eth\xff1".decode("utf-8", "surrogateescape")
    latest.update([Sample("pe1", "if_oper_up", bad, NOW, 1.0)], _device())

    body = render(latest).encode("utf-8")

    (sample,) = _samples(body.decode("utf-8"), "autonoc_if_oper_up")
    assert sample.labels["interface"] == "eth\ufffd1"


def test_escape_label_value_escapes_exactly_backslash_quote_and_newline() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert escape_label_value("plain eth1") == "plain eth1"
    assert escape_label_value("tab\tstays") == "tab\tstays"


def test_site_from_the_inventory_is_escaped_too_and_label_changes_show_on_the_next_update() -> None:
    latest = LatestMetrics(clock=Clock())
    latest.update([Sample("pe1", "cpu_util_pct", "", NOW, 1.0)], _device(site='a "quoted" site'))
    (sample,) = _samples(render(latest), "autonoc_cpu_util_pct")
    assert sample.labels["site"] == 'a "quoted" site'

    latest.update([], _device(site="moved"))
    (sample,) = _samples(render(latest), "autonoc_cpu_util_pct")
    assert sample.labels["site"] == "moved"


def test_special_values_are_spelled_as_prometheus_reads_them() -> None:
    latest = LatestMetrics(clock=Clock())
    latest.update(
        [
            Sample("pe1", "opt_rx_power_dbm", "line1", NOW, -math.inf),
            Sample("pe1", "opt_pre_fec_ber", "line1", NOW, 1.5e-5),
            Sample("pe1", "opt_q_db", "line1", NOW, math.nan),
            Sample("pe1", "opt_osnr_db", "line1", NOW, math.inf),
        ],
        _device(role=Role.TRANSPONDER),
    )

    text = render(latest)

    assert "} -Inf\n" in text and "} +Inf\n" in text and "} NaN\n" in text
    assert _samples(text, "autonoc_opt_rx_power_dbm")[0].value == -math.inf
    assert _samples(text, "autonoc_opt_pre_fec_ber")[0].value == 1.5e-5
    assert math.isnan(_samples(text, "autonoc_opt_q_db")[0].value)


def test_an_unknown_metric_name_is_made_valid_and_gets_a_generic_help() -> None:
    latest = LatestMetrics(clock=Clock())
    latest.update([Sample("pe1", "psu-load.pct", "psu1", NOW, 3.0)], _device())

    families = _families(render(latest))

    kind, help_text, samples = families["autonoc_psu_load_pct"]
    assert kind == "gauge"
    assert "psu_load_pct" in help_text
    assert samples[0].labels["component"] == "psu1"


def test_no_sample_line_carries_a_timestamp() -> None:
    latest = LatestMetrics(clock=Clock())
    latest.update([Sample("pe1", "if_in_bps", "eth1", NOW - 1, 10.0)], _device())
    health = CollectorHealth()
    health.observe_poll("pe1", "snmp", "interfaces", 0.2, True, 40)

    for family in text_string_to_metric_families(render(latest, health)):
        assert all(sample.timestamp is None for sample in family.samples)


def test_stale_series_are_not_exported_so_a_removed_interface_disappears() -> None:
    clock = Clock()
    latest = LatestMetrics(staleness=90.0, clock=clock)
    pe1 = _device()
    latest.update(
        [
            Sample("pe1", "if_oper_up", "eth1", NOW, 1.0),
            Sample("pe1", "if_oper_up", "eth2", NOW, 1.0),
        ],
        pe1,
    )
    clock.now = NOW + 60
    latest.update([Sample("pe1", "if_oper_up", "eth1", NOW + 60, 0.0)], pe1)  # eth2 was removed

    clock.now = NOW + 89
    assert {s.labels["interface"] for s in _samples(render(latest), "autonoc_if_oper_up")} == {
        "eth1",
        "eth2",
    }
    clock.now = NOW + 91
    (only,) = _samples(render(latest), "autonoc_if_oper_up")
    assert (only.labels["interface"], only.value) == ("eth1", 0.0)

    clock.now = NOW + 500
    text = render(latest)
    assert _samples(text, "autonoc_if_oper_up") == []
    assert _samples(text, "autonoc_sample_age_seconds") == []
    assert _samples(text, "autonoc_exporter_series")[0].value == 0


def test_stale_series_are_dropped_from_memory_on_later_updates() -> None:
    clock = Clock()
    latest = LatestMetrics(staleness=100.0, clock=clock)
    pe1 = _device()
    latest.update([Sample("pe1", "if_oper_up", f"eth{i}", NOW, 1.0) for i in range(10)], pe1)
    assert len(latest) == 10

    clock.now = NOW + 150
    latest.update([Sample("pe1", "if_oper_up", "eth0", NOW + 150, 1.0)], pe1)

    assert len(latest) == 1


def test_an_older_sample_never_replaces_a_newer_one() -> None:
    latest = LatestMetrics(clock=Clock())
    pe1 = _device()
    assert latest.update([Sample("pe1", "cpu_util_pct", "", NOW, 50.0)], pe1) == 1
    assert latest.update([Sample("pe1", "cpu_util_pct", "", NOW - 30, 10.0)], pe1) == 0

    assert _samples(render(latest), "autonoc_cpu_util_pct")[0].value == 50.0


def test_forget_drops_a_device_and_samples_of_another_device_are_refused() -> None:
    latest = LatestMetrics(clock=Clock())
    latest.update([Sample("pe1", "cpu_util_pct", "", NOW, 1.0)], _device("pe1"))
    latest.update([Sample("pe2", "cpu_util_pct", "", NOW, 2.0)], _device("pe2"))

    with pytest.raises(ValueError, match="'pe2' given for device 'pe1'"):
        latest.update([Sample("pe2", "cpu_util_pct", "", NOW, 9.0)], _device("pe1"))
    assert latest.forget("pe1") is True
    assert latest.forget(_device("pe1")) is False

    assert [s.labels["device"] for s in _samples(render(latest), "autonoc_cpu_util_pct")] == ["pe2"]
    assert latest.devices() == ["pe2"]


def test_staleness_must_be_positive() -> None:
    with pytest.raises(ValueError, match="staleness"):
        LatestMetrics(staleness=0)


def test_poll_duration_histogram_is_cumulative_and_counts_results() -> None:
    health = CollectorHealth(buckets=(0.1, 1.0, 10.0))
    health.observe_poll("pe1", "snmp", "interfaces", 0.05, True, 120)
    health.observe_poll("pe2", "snmp", "interfaces", 0.5, True, 80)
    health.observe_poll("pe3", "snmp", "interfaces", 1.0, True, 80)
    health.observe_poll("pe4", "snmp", "interfaces", 25.0, False, 0, "timeout")

    families = _families(render(LatestMetrics(clock=Clock()), health))

    kind, _, samples = families["autonoc_collector_poll_duration_seconds"]
    assert kind == "histogram"
    buckets = {
        s.labels["le"]: s.value
        for s in samples
        if s.name.endswith("_bucket") and s.labels == {**s.labels, "protocol": "snmp"}
    }
    assert buckets == {"0.1": 1, "1.0": 3, "10.0": 3, "+Inf": 4}
    by_name = {s.name: s.value for s in samples if not s.name.endswith("_bucket")}
    assert by_name == {
        "autonoc_collector_poll_duration_seconds_count": 4,
        "autonoc_collector_poll_duration_seconds_sum": pytest.approx(26.55),
    }
    polls = {s.labels["result"]: s.value for s in families["autonoc_collector_polls"][2]}
    assert polls == {"ok": 3, "failed": 1}
    varbinds = families["autonoc_collector_varbinds"][2]
    assert [(s.labels, s.value) for s in varbinds] == [({"protocol": "snmp"}, 280)]


def test_failure_reasons_are_a_fixed_set_present_from_the_first_poll() -> None:
    health = CollectorHealth()
    health.observe_poll("pe1", "netconf", "optics", 0.3, True, 50)
    text = render(LatestMetrics(clock=Clock()), health)
    failures = {
        s.labels["reason"]: s.value for s in _samples(text, "autonoc_collector_poll_failures_total")
    }
    assert failures == {"timeout": 0, "rejected": 0, "error": 0}

    health.observe_poll("pe1", "netconf", "optics", 0.3, False, 0, "rejected")
    health.observe_poll("pe1", "netconf", "optics", 0.3, False, 0, "socket exploded: 10.1.1.1")
    health.observe_poll("pe1", "netconf", "optics", 0.3, False, 0, None)

    text = render(LatestMetrics(clock=Clock()), health)
    failures = {
        s.labels["reason"]: s.value for s in _samples(text, "autonoc_collector_poll_failures_total")
    }
    assert failures == {"timeout": 0, "rejected": 1, "error": 2}


def test_results_map_to_reasons_and_device_up() -> None:
    health = CollectorHealth()
    dead = CollectResult(
        "pe2", failed=True, exception=DeviceUnreachable("pe2", "no answer"), elapsed_ms=3000.0
    )
    health.observe_result(CollectResult("pe1", elapsed_ms=120.0, varbinds=44), "snmp", "interfaces")
    health.observe_result(dead, "snmp", ("system", "interfaces"))

    text = render(LatestMetrics(clock=Clock()), health)

    up = {s.labels["device"]: s.value for s in _samples(text, "autonoc_collector_device_up")}
    assert up == {"pe1": 1, "pe2": 0}
    groups = {s.labels["group"] for s in _samples(text, "autonoc_collector_polls_total")}
    assert groups == {"interfaces", "interfaces+system"}
    failures = {
        s.labels["reason"]: s.value for s in _samples(text, "autonoc_collector_poll_failures_total")
    }
    assert failures["timeout"] == 1

    health.forget("pe2")
    text = render(LatestMetrics(clock=Clock()), health)
    assert [s.labels["device"] for s in _samples(text, "autonoc_collector_device_up")] == ["pe1"]


def test_failure_reason_of_errors() -> None:
    assert failure_reason(DeviceUnreachable("pe1", "timeout")) == "timeout"
    assert failure_reason(TimeoutError()) == "timeout"
    assert failure_reason(DeviceRejected("pe1", "authorizationError")) == "rejected"
    assert failure_reason(ValueError("x")) == "error"
    assert failure_reason(None) == "error"


def test_gauges_for_lag_devices_bus_and_wire_counters() -> None:
    health = CollectorHealth()
    latest = LatestMetrics(clock=Clock())
    text = render(latest, health)
    assert _samples(text, "autonoc_collector_lag_seconds")[0].value == 0.0
    assert _samples(text, "autonoc_bus_pending") == []  # not exported until known

    health.set_lag(1.5)
    health.set_devices({"ok": 1990, "failed": 7, "backoff": 3})
    health.set_bus_pending(250)
    health.set_wire_stats({"timeouts": 12, "retries": 30, "malformed": 1, "rcvbuf_errors": 0})
    health.set_devices({"ok": 2000})
    text = render(latest, health)
    families = _families(text)

    assert _samples(text, "autonoc_collector_lag_seconds")[0].value == 1.5
    states = {s.labels["state"]: s.value for s in families["autonoc_collector_devices"][2]}
    assert states == {"ok": 2000, "failed": 0, "backoff": 0}
    assert _samples(text, "autonoc_bus_pending")[0].value == 250
    kind, _, samples = families["autonoc_snmp_datagrams"]
    assert kind == "counter"
    assert {s.labels["kind"]: s.value for s in samples} == {
        "timeouts": 12,
        "retries": 30,
        "malformed": 1,
        "rcvbuf_errors": 0,
    }


def test_each_family_is_declared_once_and_its_lines_are_contiguous() -> None:
    latest = LatestMetrics(clock=Clock())
    for name in ("pe1", "pe2", "pe3"):
        latest.update(
            [
                Sample(name, "if_in_bps", "eth1", NOW, 1.0),
                Sample(name, "cpu_util_pct", "", NOW, 2.0),
            ],
            _device(name),
        )
    health = CollectorHealth()
    health.observe_poll("pe1", "snmp", "interfaces", 0.1, True, 10)

    text = render(latest, health)

    declared = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(declared) == len(set(declared))
    order = [line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[0] != "#"]
    families_in_order = [name for i, name in enumerate(order) if i == 0 or order[i - 1] != name]
    assert families_in_order.count("autonoc_if_in_bps") == 1
    assert families_in_order.count("autonoc_cpu_util_pct") == 1
    assert text.endswith("\n")


def test_content_type_is_the_0_0_4_text_format() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
