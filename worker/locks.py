"""Per-device locks in Redis: two playbooks never change one device at once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from autonoc.core.errors import DeviceLocked

__all__ = ["RedisDeviceLock"]


class RedisDeviceLock:
    """A Redis lock per device with a TTL, so a dead worker cannot hold it forever.

    Args:
        client: a redis-py client.
        ttl: seconds after which an abandoned lock expires.
        wait: seconds to wait for a busy device before giving up.
    """

    def __init__(self, client: redis.Redis, ttl: float = 300.0, wait: float = 10.0) -> None:
        self.client = client
        self.ttl = ttl
        self.wait = wait

    @contextmanager
    def hold(self, device: str) -> Iterator[None]:
        lock = self.client.lock(
            f"autonoc:lock:device:{device}", timeout=self.ttl, blocking_timeout=self.wait
        )
        if not lock.acquire():
            raise DeviceLocked(
                f"{device} is locked by another playbook; retry after it finishes "
                f"(lock expires within {self.ttl:.0f} s)"
            )
        try:
            yield
        finally:
            # A lock that expired under us has nothing left to release.
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()
