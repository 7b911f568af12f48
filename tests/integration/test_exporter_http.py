"""/metrics over real HTTP on loopback: content type, errors, gzip, scrapes during updates."""

from __future__ import annotations

import gzip
import http.client
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from autonoc.core.errors import ConfigError
from autonoc.core.inventory import Device, Mgmt, Role
from autonoc.core.types import Sample
from collectors.exporter import CONTENT_TYPE, CollectorHealth, LatestMetrics, MetricsServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NOW = 1_700_000_000.0


def _device(name: str) -> Device:
    return Device(name=name, role=Role.ROUTER, site="lab", mgmt=Mgmt(host="127.0.0.1"))


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _call(url: str, method: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, data=b"x" if method != "DELETE" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    latest = LatestMetrics(clock=lambda: NOW)
    latest.update(
        [
            Sample("pe1", "if_in_bps", 'Gi0/1 "core"', NOW - 3, 2.5e9),
            Sample("pe1", "bgp_peer_up", "10.0.0.10", NOW - 3, 1.0),
        ],
        _device("pe1"),
    )
    health = CollectorHealth()
    health.observe_poll("pe1", "snmp", "interfaces", 0.04, True, 44)
    with MetricsServer(latest, health, port=0) as running:
        yield running


def test_metrics_are_served_in_the_text_format_and_parse(server: MetricsServer) -> None:
    assert server.port != 0

    status, headers, body = _get(server.url)

    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE
    assert int(headers["Content-Length"]) == len(body)
    families = {f.name: f for f in text_string_to_metric_families(body.decode("utf-8"))}
    (traffic,) = families["autonoc_if_in_bps"].samples
    assert traffic.labels["interface"] == 'Gi0/1 "core"'
    assert traffic.value == 2.5e9
    assert families["autonoc_collector_varbinds"].samples[0].value == 44


def test_gzip_when_the_scraper_asks_for_it(server: MetricsServer) -> None:
    _, _, plain = _get(server.url)

    status, headers, body = _get(server.url, **{"Accept-Encoding": "gzip"})

    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == plain


def test_a_query_string_is_ignored_and_healthz_answers(server: MetricsServer) -> None:
    status, _, body = _get(server.url + "?module=if_mib")
    assert status == 200 and b"autonoc_if_in_bps" in body

    status, headers, body = _get(f"http://127.0.0.1:{server.port}/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("path", ["/", "/metricsx", "/metrics/extra", "/favicon.ico"])
def test_other_paths_are_not_found(server: MetricsServer, path: str) -> None:
    status, _, _ = _get(f"http://127.0.0.1:{server.port}{path}")
    assert status == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_not_allowed(server: MetricsServer, method: str) -> None:
    status, headers, _ = _call(server.url, method)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


def test_head_sends_headers_only_and_a_connection_serves_several_requests(
    server: MetricsServer,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        first = connection.getresponse()
        body = first.read()
        connection.request("HEAD", "/metrics")
        head = connection.getresponse()
        assert head.read() == b""
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b"ok\n"
    finally:
        connection.close()
    assert head.status == 200
    assert int(head.headers["Content-Length"]) == len(body)


def test_concurrent_scrapes_while_collectors_update_see_whole_devices() -> None:
    """Each scrape parses, and shows every device with all its series from one poll."""
    devices = [_device(f"pe{i}") for i in range(100)]
    latest = LatestMetrics(staleness=1e6, clock=lambda: NOW)
    health = CollectorHealth()
    stop = threading.Event()

    def poll(generation: int) -> None:
        ts = NOW + generation
        for device in devices:
            samples = [
                Sample(device.name, metric, f"eth{port}", ts, float(generation))
                for port in range(10)
                for metric in (
                    "if_in_bps",
                    "if_out_bps",
                    "if_oper_up",
                    "if_in_errors_ps",
                    "if_speed_bps",
                )
            ]
            latest.update(samples, device)
            health.observe_poll(device.name, "snmp", "interfaces", 0.01, True, len(samples))

    def collector() -> None:
        generation = 1
        while not stop.is_set():
            poll(generation)
            generation += 1

    poll(0)
    with MetricsServer(latest, health, port=0) as server:

        def scrape() -> set[float]:
            """Scrape three times; returns the poll generations seen."""
            seen: set[float] = set()
            for _ in range(3):
                status, headers, body = _get(server.url)
                assert status == 200
                assert headers["Content-Type"] == CONTENT_TYPE
                values: dict[str, set[float]] = {}
                counts: dict[str, int] = {}
                for family in text_string_to_metric_families(body.decode("utf-8")):
                    if not family.name.startswith("autonoc_if_"):
                        continue
                    for sample in family.samples:
                        device = sample.labels["device"]
                        values.setdefault(device, set()).add(sample.value)
                        counts[device] = counts.get(device, 0) + 1
                assert len(counts) == len(devices)
                assert set(counts.values()) == {50}
                # A device's series all come from one poll, never half of two.
                assert all(len(generations) == 1 for generations in values.values())
                seen.update(*values.values())
            return seen

        writer = threading.Thread(target=collector)
        writer.start()
        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                results = [pool.submit(scrape) for _ in range(4)]
                seen = set().union(*(future.result(timeout=50) for future in results))
        finally:
            stop.set()
            writer.join(timeout=10)
    # The scrapes really overlapped the updates.
    assert len(seen) > 1


def test_a_port_in_use_is_a_clear_config_error(server: MetricsServer) -> None:
    other = MetricsServer(LatestMetrics(), port=server.port)
    with pytest.raises(ConfigError, match=rf"127\.0\.0\.1:{server.port}.*another"):
        other.start()


def test_stop_closes_the_port_and_is_idempotent() -> None:
    server = MetricsServer(LatestMetrics(), port=0).start()
    port = server.port
    assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200

    server.stop()
    server.stop()

    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python was built without IPv6 (rebuild it with IPv6 to run this test)")
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback here (enable it: sysctl -w net.ipv6.conf.lo.disable_ipv6=0)")
    with MetricsServer(LatestMetrics(), host="::1", port=0) as server:
        assert server.url == f"http://[::1]:{server.port}/metrics"
        status, _, body = _get(server.url)
    assert status == 200
    assert b"autonoc_exporter_series 0\n" in body
