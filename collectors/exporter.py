"""Prometheus export: the newest collected metrics and the collectors' own health.

:class:`LatestMetrics` keeps the newest value of every (device, metric,
instance); :class:`CollectorHealth` counts what the pollers did (durations,
failures, varbinds, lag); :func:`render` writes both in the Prometheus text
exposition format 0.0.4, and :class:`MetricsServer` serves that on
``GET /metrics`` so an operator's own Prometheus can scrape autonoc
(``docs/prometheus.md``).

Canonical metrics become gauges named ``autonoc_<metric>`` with the labels
``device``, ``site`` and ``role`` from the inventory, and the sample's
instance under a label named for what it is (``interface``, ``peer`` or
``component``; none for device-wide metrics)::

    autonoc_if_in_bps{device="pe1",site="lab",role="router",interface="eth1"} 1.25e+06

Series whose newest sample is older than the staleness limit are left out,
so an interface that disappeared stops being exported on its own. Sample
timestamps are not written (Prometheus stamps a scrape itself); the age of
each device's newest sample is exported as ``autonoc_sample_age_seconds``.

Instance names and sites come from devices and the inventory: they are data,
escaped as label values, never interpreted.
"""

from __future__ import annotations

import bisect
import gzip
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

import structlog

from autonoc.core.errors import ConfigError, DeviceRejected, DeviceUnreachable
from autonoc.core.inventory import Device
from autonoc.core.types import Sample
from collectors.base import CollectResult

__all__ = [
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "FAILURE_REASONS",
    "METRIC_HELP",
    "CollectorHealth",
    "LatestMetrics",
    "MetricsServer",
    "escape_label_value",
    "failure_reason",
    "render",
]

log = structlog.get_logger(__name__)

#: The Content-Type of the text exposition format this module writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Why a poll failed, as ``autonoc_collector_poll_failures_total`` labels it.
FAILURE_REASONS: tuple[str, ...] = ("timeout", "rejected", "error")

#: Upper bounds (seconds) of the poll-duration histogram: from a fast GET on
#: loopback to a device that used its whole timeout and retries.
DURATION_BUCKETS: tuple[float, ...] = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
)

#: HELP text of each canonical metric: what it is and its unit (``docs/metrics.md``).
METRIC_HELP: dict[str, str] = {
    # interfaces
    "if_in_bps": "Inbound traffic, bits per second (rate of ifHCInOctets x 8).",
    "if_out_bps": "Outbound traffic, bits per second (rate of ifHCOutOctets x 8).",
    "if_in_pps": "Inbound unicast packets per second.",
    "if_out_pps": "Outbound unicast packets per second.",
    "if_in_errors_ps": "Inbound packets with errors, per second.",
    "if_out_errors_ps": "Outbound packets with errors, per second.",
    "if_in_discards_ps": "Inbound packets discarded, per second.",
    "if_out_discards_ps": "Outbound packets discarded, per second.",
    "if_admin_up": "1 when the interface is administratively up, else 0.",
    "if_oper_up": "1 when the interface is operationally up, else 0.",
    "if_speed_bps": "Interface speed, bits per second.",
    "if_in_util": "Inbound utilisation, fraction 0..1 of the interface speed.",
    "if_out_util": "Outbound utilisation, fraction 0..1 of the interface speed.",
    # system
    "sys_uptime_s": "Time since the device's management agent restarted, seconds.",
    "cpu_util_pct": "CPU utilisation, percent 0..100.",
    "mem_used_pct": "Memory in use, percent 0..100.",
    "mem_used_bytes": "Memory in use, bytes.",
    # bgp
    "bgp_peer_up": "1 when the BGP session is established, else 0.",
    "bgp_peer_state": (
        "BGP FSM state as BGP4-MIB numbers it: 1 idle, 2 connect, 3 active, "
        "4 opensent, 5 openconfirm, 6 established."
    ),
    "bgp_prefixes_accepted": "Prefixes accepted from the peer.",
    "bgp_updates_in_ps": "BGP UPDATE messages received per second.",
    "bgp_updates_out_ps": "BGP UPDATE messages sent per second.",
    "bgp_transitions_ps": "Transitions into the established state per second.",
    # optics: transponder line ports
    "opt_tx_power_dbm": "Optical transmit power, dBm.",
    "opt_rx_power_dbm": "Optical receive power, dBm.",
    "opt_laser_bias_ma": "Laser bias current, mA.",
    "opt_module_temp_c": "Optical module temperature, degrees Celsius.",
    "opt_osnr_db": "Optical signal-to-noise ratio, dB.",
    "opt_pre_fec_ber": "Bit error ratio before forward error correction.",
    "opt_q_db": "Q-factor, dB.",
    "opt_cd_ps_nm": "Chromatic dispersion, ps/nm.",
    "opt_post_fec_uncorrectable": "FEC blocks left uncorrectable, per second.",
    # optics: amplifiers
    "amp_input_power_dbm": "Amplifier total input power, dBm.",
    "amp_output_power_dbm": "Amplifier total output power, dBm.",
    "amp_gain_db": "Amplifier gain, dB.",
    "amp_target_gain_db": "Amplifier configured target gain, dB.",
    "amp_gain_tilt_db": "Amplifier gain tilt, dB.",
    "amp_pump_current_ma": "Amplifier pump laser current, mA (0 when shut down).",
    # optics: ROADM degrees
    "roadm_input_power_dbm": "ROADM degree total input power, dBm.",
    "roadm_output_power_dbm": "ROADM degree total output power, dBm.",
}

#: The label that names a sample's instance, by metric-name prefix.
_INSTANCE_LABELS: tuple[tuple[str, str], ...] = (
    ("if_", "interface"),
    ("bgp_", "peer"),
    ("opt_", "component"),
    ("amp_", "component"),
    ("roadm_", "component"),
)

_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_SPECIAL_FLOATS = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


def escape_label_value(value: str) -> str:
    r"""``value`` escaped for a label value: ``\`` ``"`` and newline, and valid UTF-8."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (a device's undecodable bytes) would fail the
            # response's encoding; it becomes U+FFFD instead.
            value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _fmt(value: float) -> str:
    """A sample value as the format writes it (``+Inf``, ``-Inf``, ``NaN`` spelled out)."""
    text = repr(float(value))
    return _SPECIAL_FLOATS.get(text, text)


def _metric_name(metric: str) -> str:
    """``autonoc_<metric>``, with characters a metric name cannot hold replaced by ``_``."""
    return "autonoc_" + _INVALID_NAME_CHARS.sub("_", metric)


def _instance_label(metric: str) -> str:
    for prefix, label in _INSTANCE_LABELS:
        if metric.startswith(prefix):
            return label
    return "component"


def failure_reason(exc: BaseException | None) -> str:
    """The failure label for ``exc``: ``timeout``, ``rejected`` or ``error``."""
    if isinstance(exc, DeviceUnreachable | TimeoutError):
        return "timeout"
    if isinstance(exc, DeviceRejected):
        return "rejected"
    return "error"


# ---------------------------------------------------------------------------
# The newest value of every series


@dataclass(slots=True)
class _DeviceSeries:
    labels: str  # device="…",site="…",role="…", escaped once
    #: (metric, instance) -> (exported name, instance label part, ts, value text)
    series: dict[tuple[str, str], tuple[str, str, float, str]]
    newest: float = -math.inf
    pruned_at: float = 0.0


def _device_labels(device: Device) -> str:
    return (
        f'device="{escape_label_value(device.name)}",'
        f'site="{escape_label_value(device.site)}",'
        f'role="{escape_label_value(str(device.role))}"'
    )


class LatestMetrics:
    """The newest value of each (device, metric, instance), safe to share between threads.

    Args:
        staleness: seconds after which a series whose newest sample is older
            is no longer exported; about 3x the longest poll interval of a
            group that yields samples.
        clock: epoch seconds (sample timestamps are epoch seconds);
            injectable for tests.
    """

    def __init__(self, staleness: float = 900.0, *, clock: Callable[[], float] = time.time) -> None:
        if staleness <= 0:
            raise ValueError(f"staleness must be positive, got {staleness}")
        self.staleness = staleness
        self._clock = clock
        self._lock = threading.Lock()
        self._devices: dict[str, _DeviceSeries] = {}
        self._names: dict[str, tuple[str, str]] = {}  # metric -> (exported name, label)

    def update(self, samples: Iterable[Sample], device: Device) -> int:
        """Record ``samples`` of ``device``; older values of a series never replace newer ones.

        The ``device``, ``site`` and ``role`` labels come from ``device``, so
        an inventory change shows on the next update.

        Returns:
            How many samples were newer than what was stored.

        Raises:
            ValueError: a sample belongs to another device.
        """
        batch = list(samples)
        name = device.name
        for sample in batch:
            if sample.device != name:
                raise ValueError(f"sample of device {sample.device!r} given for device {name!r}")
        labels = _device_labels(device)
        values = [_fmt(sample.value) for sample in batch]
        now = self._clock()
        stored = 0
        with self._lock:
            state = self._devices.get(name)
            if state is None:
                state = self._devices[name] = _DeviceSeries(labels, {}, pruned_at=now)
            state.labels = labels
            series = state.series
            for sample, text in zip(batch, values, strict=True):
                key = (sample.metric, sample.instance)
                old = series.get(key)
                if old is not None:
                    if old[2] > sample.ts:
                        continue
                    exported, part = old[0], old[1]
                else:
                    exported, part = self._exported(sample.metric, sample.instance)
                series[key] = (exported, part, sample.ts, text)
                stored += 1
                if sample.ts > state.newest:
                    state.newest = sample.ts
            # Forget series that went stale (a removed interface), now and then.
            if now - state.pruned_at > self.staleness / 4:
                cutoff = now - self.staleness
                for key in [k for k, v in series.items() if v[2] < cutoff]:
                    del series[key]
                state.pruned_at = now
        return stored

    def forget(self, device: str | Device) -> bool:
        """Drop every series of ``device`` (it left the inventory); False when it had none."""
        name = device if isinstance(device, str) else device.name
        with self._lock:
            return self._devices.pop(name, None) is not None

    def __len__(self) -> int:
        """Series held, stale ones not yet dropped included."""
        with self._lock:
            return sum(len(state.series) for state in self._devices.values())

    def devices(self) -> list[str]:
        """Names of the devices with series held."""
        with self._lock:
            return list(self._devices)

    def now(self) -> float:
        return self._clock()

    def _exported(self, metric: str, instance: str) -> tuple[str, str]:
        """The exported metric name and the instance's label part (``,interface="eth1"``)."""
        names = self._names.get(metric)
        if names is None:
            names = self._names[metric] = (_metric_name(metric), _instance_label(metric))
        exported, label = names
        if not instance:
            return exported, ""
        return exported, f',{label}="{escape_label_value(instance)}"'

    def _snapshot(self) -> list[tuple[str, float, tuple[tuple[str, str, float, str], ...]]]:
        # Copies references only, so the lock is held for a few milliseconds
        # even with 100k series; formatting happens outside it.
        with self._lock:
            return [
                (state.labels, state.newest, tuple(state.series.values()))
                for state in self._devices.values()
            ]


# ---------------------------------------------------------------------------
# The collectors' own health


@dataclass(slots=True)
class _Histogram:
    buckets: list[int]
    total: float = 0.0
    count: int = 0


def _group_label(group: str | Sequence[str]) -> str:
    if isinstance(group, str):
        return group
    return "+".join(sorted(group))


class CollectorHealth:
    """Counters, gauges and histograms about the collectors themselves, safe across threads.

    The scheduler calls the plain methods below; :func:`render` exports them
    as ``autonoc_collector_*``, ``autonoc_bus_pending`` and
    ``autonoc_snmp_datagrams_total``.
    """

    def __init__(self, buckets: Sequence[float] = DURATION_BUCKETS) -> None:
        if list(buckets) != sorted(buckets) or not buckets:
            raise ValueError("buckets must be a non-empty ascending sequence")
        self.buckets = tuple(float(b) for b in buckets)
        self._lock = threading.Lock()
        self._durations: dict[tuple[str, str], _Histogram] = {}
        self._polls: dict[tuple[str, str, str], int] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._varbinds: dict[str, int] = {}
        self._device_up: dict[tuple[str, str], int] = {}
        self._lag = 0.0
        self._states: dict[str, int] = {}
        self._bus_pending: int | None = None
        self._wire: dict[str, int] = {}

    def observe_poll(
        self,
        device: str,
        protocol: str,
        group: str | Sequence[str],
        seconds: float,
        ok: bool,
        varbinds: int = 0,
        reason: str | None = None,
    ) -> None:
        """Record one collection from one device.

        Args:
            device: the device's name (for ``autonoc_collector_device_up``).
            protocol: ``snmp``, ``netconf``, ...
            group: the metric group, or the groups collected together
                (labelled joined by ``+``, e.g. ``interfaces+system``).
            seconds: how long the collection took.
            ok: whether it succeeded.
            varbinds: raw values read.
            reason: why it failed, one of :data:`FAILURE_REASONS`; anything
                else (or none) counts as ``error``.
        """
        group_label = _group_label(group)
        with self._lock:
            histogram = self._durations.get((protocol, group_label))
            if histogram is None:
                histogram = _Histogram([0] * len(self.buckets))
                self._durations[(protocol, group_label)] = histogram
                # Both results exist from the start, so rate() sees the first failure.
                self._polls.setdefault((protocol, group_label, "ok"), 0)
                self._polls.setdefault((protocol, group_label, "failed"), 0)
            if protocol not in self._varbinds:
                self._varbinds[protocol] = 0
                for known in FAILURE_REASONS:
                    self._failures[(protocol, known)] = 0
            index = bisect.bisect_left(self.buckets, seconds)
            if index < len(histogram.buckets):
                histogram.buckets[index] += 1
            histogram.total += seconds
            histogram.count += 1
            result = "ok" if ok else "failed"
            self._polls[(protocol, group_label, result)] += 1
            if not ok:
                why = reason if reason in FAILURE_REASONS else "error"
                self._failures[(protocol, why)] += 1
            self._varbinds[protocol] += max(0, varbinds)
            self._device_up[(device, protocol)] = 1 if ok else 0

    def observe_result(
        self, result: CollectResult, protocol: str, group: str | Sequence[str]
    ) -> None:
        """:meth:`observe_poll` from a :class:`~collectors.base.CollectResult`."""
        self.observe_poll(
            result.device,
            protocol,
            group,
            result.elapsed_ms / 1000.0,
            not result.failed,
            result.varbinds,
            failure_reason(result.exception) if result.failed else None,
        )

    def set_lag(self, seconds: float) -> None:
        """How late polls start behind their schedule (the largest recent lag)."""
        with self._lock:
            self._lag = float(seconds)

    def set_devices(self, state_counts: Mapping[str, int]) -> None:
        """Devices per state (e.g. ``ok``, ``failed``, ``backoff``); states seen before go to 0."""
        with self._lock:
            for state in self._states:
                self._states[state] = 0
            self._states.update(state_counts)

    def set_bus_pending(self, n: int) -> None:
        """Samples or events waiting to be written to the telemetry bus."""
        with self._lock:
            self._bus_pending = n

    def set_wire_stats(self, counts: Mapping[str, int]) -> None:
        """Cumulative SNMP datagram counts by kind (timeouts, retries, malformed, ...)."""
        with self._lock:
            self._wire.update(counts)

    def forget(self, device: str) -> None:
        """Stop exporting per-device health of ``device`` (it left the inventory)."""
        with self._lock:
            for key in [k for k in self._device_up if k[0] == device]:
                del self._device_up[key]

    def _lines(self) -> list[str]:
        with self._lock:
            durations = sorted(
                (key, list(h.buckets), h.total, h.count) for key, h in self._durations.items()
            )
            polls = sorted(self._polls.items())
            failures = sorted(self._failures.items())
            varbinds = sorted(self._varbinds.items())
            device_up = sorted(self._device_up.items())
            lag = self._lag
            states = sorted(self._states.items())
            bus_pending = self._bus_pending
            wire = sorted(self._wire.items())
        out: list[str] = []
        name = "autonoc_collector_poll_duration_seconds"
        _family(out, name, "histogram", "Seconds one collection from one device took.")
        for (protocol, group), buckets, total, count in durations:
            labels = _labels(protocol=protocol, group=group)
            cumulative = 0
            for bound, n in zip(self.buckets, buckets, strict=True):
                cumulative += n
                out.append(f'{name}_bucket{{{labels},le="{_fmt(bound)}"}} {cumulative}\n')
            out.append(f'{name}_bucket{{{labels},le="+Inf"}} {count}\n')
            out.append(f"{name}_sum{{{labels}}} {_fmt(total)}\n")
            out.append(f"{name}_count{{{labels}}} {count}\n")
        name = "autonoc_collector_polls_total"
        _family(out, name, "counter", "Collections from one device, by result (ok, failed).")
        for (protocol, group, result), n in polls:
            out.append(f"{name}{{{_labels(protocol=protocol, group=group, result=result)}}} {n}\n")
        name = "autonoc_collector_poll_failures_total"
        _family(out, name, "counter", "Failed collections by reason (timeout, rejected, error).")
        for (protocol, reason), n in failures:
            out.append(f"{name}{{{_labels(protocol=protocol, reason=reason)}}} {n}\n")
        name = "autonoc_collector_varbinds_total"
        _family(out, name, "counter", "Raw values read (SNMP varbinds, NETCONF leaves).")
        for protocol, n in varbinds:
            out.append(f"{name}{{{_labels(protocol=protocol)}}} {n}\n")
        name = "autonoc_collector_device_up"
        _family(out, name, "gauge", "1 when the device's latest collection succeeded, else 0.")
        for (device, protocol), up in device_up:
            out.append(f"{name}{{{_labels(device=device, protocol=protocol)}}} {up}\n")
        name = "autonoc_collector_lag_seconds"
        _family(out, name, "gauge", "Seconds polls start behind their schedule (recent maximum).")
        out.append(f"{name} {_fmt(lag)}\n")
        if states:
            name = "autonoc_collector_devices"
            _family(out, name, "gauge", "Devices this collector polls, by state.")
            out.extend(f"{name}{{{_labels(state=state)}}} {n}\n" for state, n in states)
        if bus_pending is not None:
            name = "autonoc_bus_pending"
            _family(out, name, "gauge", "Samples and events waiting to go onto the telemetry bus.")
            out.append(f"{name} {bus_pending}\n")
        if wire:
            name = "autonoc_snmp_datagrams_total"
            _family(out, name, "counter", "SNMP datagram events by kind (timeouts, retries, ...).")
            out.extend(f"{name}{{{_labels(kind=kind)}}} {n}\n" for kind, n in wire)
        return out


# ---------------------------------------------------------------------------
# The exposition format


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {_escape_help(help_text)}\n# TYPE {name} {kind}\n")


def _labels(**values: str) -> str:
    return ",".join(f'{key}="{escape_label_value(value)}"' for key, value in values.items())


def render(
    latest: LatestMetrics, health: CollectorHealth | None = None, *, now: float | None = None
) -> str:
    """Both stores in the Prometheus text exposition format 0.0.4.

    Args:
        latest: the newest metric values.
        health: the collectors' own health; left out when ``None``.
        now: epoch seconds for staleness and ages; ``latest``'s clock when ``None``.
    """
    now = latest.now() if now is None else now
    cutoff = now - latest.staleness
    snapshot = latest._snapshot()
    out: list[str] = [] if health is None else health._lines()

    families: dict[str, list[str]] = {}
    ages: list[str] = []
    for labels, newest, series in snapshot:
        if newest >= cutoff:
            ages.append(f"autonoc_sample_age_seconds{{{labels}}} {_fmt(max(0.0, now - newest))}\n")
        for name, part, ts, value in series:
            if ts < cutoff:
                continue
            lines = families.get(name)
            if lines is None:
                lines = families[name] = []
            lines.append(f"{name}{{{labels}{part}}} {value}\n")

    _family(
        out,
        "autonoc_sample_age_seconds",
        "gauge",
        "Seconds since the newest sample collected from the device.",
    )
    out.extend(ages)
    for name in sorted(families):
        metric = name.removeprefix("autonoc_")
        help_text = METRIC_HELP.get(metric, f"autonoc canonical metric {metric}.")
        _family(out, name, "gauge", help_text)
        out.extend(families[name])
    total = sum(len(lines) for lines in families.values())
    _family(
        out,
        "autonoc_exporter_series",
        "gauge",
        "Canonical metric series in this exposition (stale ones left out).",
    )
    out.append(f"autonoc_exporter_series {total}\n")
    return "".join(out)


# ---------------------------------------------------------------------------
# The HTTP endpoint


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    latest: LatestMetrics
    health: CollectorHealth | None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; ours goes through structlog.
        log.exception("metrics_request_failed", client=str(client_address[0]))


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = "autonoc-exporter"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler looks up do_<METHOD>; any method but GET and
        # HEAD gets 405 instead of the default 501.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def _method_not_allowed(self) -> None:
        # A request body we never read would be taken for the next request.
        self.close_connection = True
        self._send(405, b"method not allowed: use GET\n", extra={"Allow": "GET, HEAD"})

    def _respond(self, *, head: bool) -> None:
        path = urlsplit(self.path).path
        server = cast(_Server, self.server)
        if path == "/metrics":
            body = render(server.latest, server.health).encode("utf-8")
            self._send(200, body, content_type=CONTENT_TYPE, head=head, compressible=True)
        elif path == "/healthz":
            self._send(200, b"ok\n", head=head)
        else:
            self._send(404, b"not found: try /metrics\n", head=head)

    def _send(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "text/plain; charset=utf-8",
        head: bool = False,
        compressible: bool = False,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        gzipped = compressible and "gzip" in self.headers.get("Accept-Encoding", "")
        if gzipped:
            body = gzip.compress(body, compresslevel=1)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if gzipped:
                self.send_header("Content-Encoding", "gzip")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The scraper gave up (its scrape timeout); nothing to answer.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics_request", client=self.client_address[0], line=format % args)


class MetricsServer:
    """Serves ``GET /metrics`` (and ``/healthz``) from a daemon thread.

    A thread rather than the poller's event loop: a scrape renders for tens of
    milliseconds, which would stall polls on the loop, and a saturated loop
    would make scrapes time out exactly when operators need them; the
    stdlib's threading server also works unchanged in a Celery worker, which
    has no loop of its own.

    Args:
        latest: the newest metric values to export.
        health: the collectors' own health, or ``None``.
        host: the address to listen on (``0.0.0.0`` or ``::`` for every interface).
        port: the TCP port; 0 picks a free one (see :attr:`port` after :meth:`start`).
    """

    def __init__(
        self,
        latest: LatestMetrics,
        health: CollectorHealth | None = None,
        host: str = "127.0.0.1",
        port: int = 9700,
    ) -> None:
        self.latest = latest
        self.health = health
        self.host = host
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the requested one until :meth:`start`)."""
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        """Bind and serve in a daemon thread.

        Raises:
            ConfigError: the address cannot be bound (in use, not local, no permission).
        """
        if self._server is not None:
            return self
        server_class = _Server6 if ":" in self.host else _Server
        try:
            server = server_class((self.host, self._requested_port), _Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {self.host}:{self._requested_port}: {exc.strerror or exc}"
                " (pick another host or port, or 0 for any free port)"
            ) from exc
        server.latest = self.latest
        server.health = self.health
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"autonoc-metrics-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("metrics_server_started", host=self.host, port=self.port)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)
        self._server = None
        self._thread = None
        log.info("metrics_server_stopped", host=self.host)

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
