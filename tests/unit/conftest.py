"""Unit tests open no network sockets: pytest-socket refuses them here.

Unix sockets stay allowed because asyncio's event loop uses a socketpair.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network_sockets() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        enable_socket()
