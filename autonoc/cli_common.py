"""What every ``autonoc`` subcommand module shares: consoles, settings, errors, JSON output."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from autonoc.core.errors import AutonocError, ConfigError
from autonoc.core.logging import configure_logging
from autonoc.core.settings import Settings

__all__ = ["JsonOpt", "console", "emit", "err", "fail", "load_settings"]

console = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout")]


def load_settings() -> Settings:
    """Settings from the environment, with logging configured; ConfigError names the variable."""
    try:
        settings = Settings.load()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "AUTONOC_" + "__".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"{field}: {first['msg']}") from exc
    configure_logging(settings.log.level, json_output=settings.log.json_output)
    return settings


def fail(exc: AutonocError) -> typer.Exit:
    """Print ``exc`` on stderr; the exit to raise (2 for configuration errors, else 1)."""
    err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
    return typer.Exit(2 if isinstance(exc, ConfigError) else 1)


def emit(data: Any) -> None:
    """Write ``data`` as JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
