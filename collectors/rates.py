"""Counters to per-second rates, with wraps, reboots and discontinuities handled here.

Downstream code only ever sees rates; a counter that wrapped, a device that
rebooted, or an interface whose counters were reset (``ifCounterDiscontinuityTime``
changed) never shows up as a spike or a negative rate. Instead the sample is
dropped (``None``) and the next one is measured from a fresh baseline.

**Time base.** When the device's ``sysUpTime`` is known for both readings
and advanced, a rate is per second of *device* time (the uptime delta), not
of wall-clock time: the counters and the uptime come from the same agent, so
collector scheduling jitter cancels out, and a lab running faster than real
time (``autonoc lab up --speed 10``) still gives per-simulated-second rates.
Otherwise (no uptime, or an uptime that did not move) the wall-clock delta
between the readings is the time base.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = ["TICKS_WRAP_S", "RateTracker"]

#: sysUpTime is TimeTicks (1/100 s) in 32 bits: it wraps to 0 after about 497 days.
TICKS_WRAP_S = 2**32 / 100.0

# Per key: (ts, value, uptime, discontinuity) of the last accepted sample.
_State = tuple[float, int, float | None, int | None]


class RateTracker:
    """Turns successive counter readings into rates, per (device, instance, metric).

    A reading smaller than the previous one is a wrap only for a 32-bit
    counter, and only when the implied increase is less than half the
    counter's range: a larger one is far likelier a reset than traffic that
    nearly lapped the counter between two polls. Anything else that goes
    backwards is a discontinuity.

    An uptime that went backwards is a reboot, unless it wrapped (TimeTicks
    overflow after ~497 days): a step back counts as a wrap when the wrapped
    delta is at most ``max_clock_ratio`` times the wall-clock delta, i.e. the
    device's clock could plausibly have advanced that far.

    Args:
        max_clock_ratio: how much faster than the wall clock a device's uptime
            may plausibly run (a simulated lab at ``--speed 10`` runs 10x).
    """

    __slots__ = ("_last", "max_clock_ratio")

    def __init__(self, *, max_clock_ratio: float = 100.0) -> None:
        self._last: dict[tuple[str, str, str], _State] = {}
        self.max_clock_ratio = max_clock_ratio

    def update(
        self,
        device: str,
        instance: str,
        metric: str,
        ts: float,
        value: int,
        *,
        bits: int = 64,
        uptime: float | None = None,
        discontinuity: int | None = None,
    ) -> float | None:
        """Record one counter reading and return its rate since the previous one.

        Args:
            device: the device name.
            instance: the component (interface name); empty for device-wide.
            metric: the counter's name, e.g. ``ifHCInOctets``.
            ts: when the reading was taken, epoch seconds (wall clock).
            value: the raw counter value.
            bits: the counter's width, 32 or 64.
            uptime: the device's sysUpTime in seconds when the value was read;
                when both readings have one and it advanced, its delta is the
                time base; when it went backwards (and did not wrap) the
                device rebooted and the baseline resets.
            discontinuity: ``ifCounterDiscontinuityTime`` (or any token that
                changes when the counter is reset); a change resets the baseline.

        Returns:
            Units per second (device time when known), never negative; ``None``
            for the first reading, after a discontinuity, or when ``ts`` is not
            newer than the previous reading (that reading is then ignored).
        """
        key = (device, instance, metric)
        prev = self._last.get(key)
        if prev is None:
            self._last[key] = (ts, value, uptime, discontinuity)
            return None
        prev_ts, prev_value, prev_uptime, prev_disc = prev
        dt = ts - prev_ts
        if dt <= 0:
            return None
        self._last[key] = (ts, value, uptime, discontinuity)
        elapsed = dt
        if uptime is not None and prev_uptime is not None:
            device_dt = uptime - prev_uptime
            if device_dt < 0:
                device_dt += TICKS_WRAP_S
                if device_dt > dt * self.max_clock_ratio:
                    return None  # rebooted: the uptime restarted, not wrapped
            if device_dt > 0:
                elapsed = device_dt
        if discontinuity is not None and prev_disc is not None and discontinuity != prev_disc:
            return None
        delta = value - prev_value
        if delta < 0:
            if bits >= 64:
                return None
            delta += 1 << bits
            if delta >= 1 << (bits - 1):
                return None
        return delta / elapsed

    def forget(self, device: str) -> None:
        """Drop every baseline of ``device`` (removed from the inventory, say)."""
        for key in [k for k in self._last if k[0] == device]:
            del self._last[key]

    def export(self, device: str) -> dict[str, str]:
        """``device``'s baselines as JSON strings, for :meth:`restore` in another process.

        Celery workers that share a fleet keep baselines in Redis this way, so a
        device's next poll computes its rates whichever worker runs it.
        """
        return {
            json.dumps([instance, metric]): json.dumps(state)
            for (dev, instance, metric), state in self._last.items()
            if dev == device
        }

    def restore(self, device: str, exported: Mapping[str | bytes, str | bytes]) -> int:
        """Load baselines written by :meth:`export`; malformed entries are skipped.

        Returns:
            How many baselines were loaded.
        """
        loaded = 0
        for raw_key, raw_state in exported.items():
            try:
                instance, metric = json.loads(raw_key)
                ts, value, uptime, disc = json.loads(raw_state)
                state: _State = (
                    float(ts),
                    int(value),
                    None if uptime is None else float(uptime),
                    None if disc is None else int(disc),
                )
            except (ValueError, TypeError):
                continue
            self._last[(device, str(instance), str(metric))] = state
            loaded += 1
        return loaded

    def __len__(self) -> int:
        return len(self._last)
