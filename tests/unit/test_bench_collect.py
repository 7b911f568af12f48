"""The collector benchmark's pure parts: the GET set, the snmp_exporter module, scrape counting."""

from __future__ import annotations

from typing import Any

import yaml

from bench.collect import (
    GET_SIZE,
    IF_X_TABLE,
    SYS_NAME,
    SYS_UPTIME,
    WALK_ROOTS,
    count_exporter_samples,
    exporter_config,
    get_oid_set,
)

HC_IN = "1.3.6.1.2.1.31.1.1.1.6"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"


def test_get_set_reads_whole_interfaces_in_order() -> None:
    oids = get_oid_set(range(1, 41))
    assert len(oids) == GET_SIZE == len(set(oids))
    assert oids[:2] == (SYS_UPTIME, SYS_NAME)
    # 12 columns per interface: the first four interfaces, all of them.
    assert {o.rsplit(".", 1)[1] for o in oids[2:]} == {"1", "2", "3", "4"}
    assert f"{HC_IN}.1" in oids and f"{IF_OPER}.4" in oids


def test_get_set_on_a_small_host_takes_more_columns_then_scalars() -> None:
    one = get_oid_set([1])
    assert len(one) == 2 + 24 + 5  # every listed column of the one interface, then scalars
    assert one[-1] == "1.3.6.1.2.1.2.1.0"  # ifNumber.0
    assert len(get_oid_set([1, 2])) == GET_SIZE


def _config(get_oids: tuple[str, ...]) -> dict[str, Any]:
    text = exporter_config(
        community="c",
        walk_roots=WALK_ROOTS,
        get_oids=get_oids,
        max_repetitions=25,
        timeout_s=2.0,
        retries=1,
    )
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def test_exporter_modules_have_one_metric_per_walked_column_and_get_oid() -> None:
    oids = get_oid_set([1, 2, 3, 4])
    config = _config(oids)
    walk, get = config["if_walk"], config["get50"]
    assert walk["walk"] == list(WALK_ROOTS) and "get" not in walk
    assert get["get"] == list(oids) and "walk" not in get
    for module in (walk, get):
        assert module["version"] == 2
        assert module["auth"] == {"community": "c"}
        assert module["timeout"] == "2s" and module["max_repetitions"] == 25
        assert len({m["name"] for m in module["metrics"]}) == len(module["metrics"])
    # Every ifTable/ifXTable column has a metric, each indexed by ifIndex; nothing else.
    walked = {m["oid"] for m in walk["metrics"]}
    assert len(walked) == 22 + 19
    assert all(m["indexes"] == [{"labelname": "ifIndex", "type": "gauge"}] for m in walk["metrics"])
    assert all(any(o.startswith(r + ".") for r in WALK_ROOTS) for o in walked)
    # Every GET OID falls under exactly one metric; scalars have no index.
    for oid in oids:
        owners = [m for m in get["metrics"] if oid.startswith(m["oid"] + ".")]
        assert len(owners) == 1, oid
        assert ("indexes" in owners[0]) == (not oid.endswith(".0"))
    by_name = {m["name"]: m for m in get["metrics"]}
    assert by_name["sysUpTime"]["type"] == "gauge" and by_name["ifName"]["type"] == "DisplayString"
    assert by_name["ifHCInOctets"]["oid"] == f"{IF_X_TABLE}.1.6"


def test_scrape_count_skips_comments_and_self_metrics() -> None:
    body = b"""# HELP ifHCInOctets x
# TYPE ifHCInOctets counter
ifHCInOctets{ifIndex="1"} 12345
ifHCInOctets{ifIndex="2"} 0
ifName{ifIndex="1",ifName="lo"} 1
sysUpTime 443
# HELP snmp_scrape_pdus_returned PDUs returned from walk.
snmp_scrape_duration_seconds 0.01
snmp_scrape_pdus_returned 4
snmp_scrape_walk_duration_seconds 0.004
"""
    assert count_exporter_samples(body) == (4, 4)
    assert count_exporter_samples(b'ifMtu{ifIndex="1"} 1500\n') == (1, None)
    assert count_exporter_samples(b"") == (0, None)
