"""Per-device locks in Redis: two playbooks never change one device at once.

A lock's value is its owner, the run id (the Celery task id). A run that is
redelivered after its worker died takes its own lock over at once instead of
waiting for the dead holder's TTL; any other run gets ``DeviceLocked`` (a
transient error: the task retries later). Release deletes the key only if we
still own it, so a lock that expired and was taken by another run is left alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from autonoc.core.errors import DeviceLocked

__all__ = ["RedisDeviceLock"]

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class RedisDeviceLock:
    """A Redis lock per device with a TTL, so a dead worker cannot hold it forever.

    Args:
        client: a redis-py client.
        ttl: seconds after which an abandoned lock expires (above the longest playbook).
        wait: seconds to wait for a busy device before giving up.
    """

    def __init__(self, client: redis.Redis, ttl: float = 900.0, wait: float = 10.0) -> None:
        self.client = client
        self.ttl = ttl
        self.wait = wait
        self._release: Any = client.register_script(_RELEASE)

    @staticmethod
    def key(device: str) -> str:
        return f"autonoc:lock:device:{device}"

    def holder(self, device: str) -> str | None:
        value = self.client.get(self.key(device))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    @contextmanager
    def hold(self, device: str, owner: str) -> Iterator[None]:
        key = self.key(device)
        deadline = time.monotonic() + self.wait
        ttl_ms = int(self.ttl * 1000)
        while True:
            if self.client.set(key, owner, nx=True, px=ttl_ms):
                break
            if self.holder(device) == owner:
                self.client.pexpire(key, ttl_ms)  # our own run, redelivered: take it over
                break
            if time.monotonic() >= deadline:
                raise DeviceLocked(
                    f"{device} is being changed by another playbook run "
                    f"({self.holder(device)}); retry after it finishes "
                    f"(the lock expires within {self.ttl:.0f} s if its worker died)"
                )
            time.sleep(0.1)
        try:
            yield
        finally:
            self._release(keys=[key], args=[owner])
