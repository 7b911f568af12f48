"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Restore the process environment after each test (like httpx's clean_environ)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def autonoc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private AUTONOC_HOME so tests never touch the user's ~/.autonoc."""
    home = tmp_path / "autonoc-home"
    home.mkdir()
    monkeypatch.setenv("AUTONOC_HOME", str(home))
    return home
