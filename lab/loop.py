"""An asyncio event loop on a daemon thread, so synchronous code can host servers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from autonoc.core.errors import LabError

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """Owns one event loop running on its own daemon thread.

    Args:
        name: the thread's name, as shown by debuggers and ``ps -T``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise LabError(f"{self.name}: the loop is not running (call start())")
        return self._loop

    def start(self) -> None:
        if self._thread is not None:
            raise LabError(f"{self.name} is already running")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait for its result from this thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def stop(self, final: Coroutine[Any, Any, Any] | None, timeout: float) -> None:
        """Run ``final`` (cleanup) on the loop, stop it, join the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            if final is not None:
                final.close()  # never scheduled: do not leave it un-awaited
            return
        try:
            if thread.is_alive():
                if final is not None:
                    asyncio.run_coroutine_threadsafe(final, loop).result(timeout=timeout)
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=timeout)
            elif final is not None:
                final.close()
        finally:
            loop.close()
            self._loop = self._thread = None

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        loop.run_forever()
