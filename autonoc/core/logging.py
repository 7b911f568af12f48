"""structlog configuration, called only at composition roots (CLI, worker).

Library records (pysnmp, Celery, SQLAlchemy) go through the same formatter
via the stdlib bridge. Any field named like a secret is redacted before it
is rendered, so a stray ``community=...`` never reaches a log line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from autonoc.core.secrets import SECRET_KEYS

__all__ = ["configure_logging", "get_logger"]


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in SECRET_KEYS:
            event_dict[key] = "***"
    return event_dict


def configure_logging(
    level: str = "INFO", *, json_output: bool = False, stream: Any = None
) -> None:
    """Route structlog and stdlib logging through one renderer on ``stream`` (stderr)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pysnmp's and asyncio's debug chatter is not operator information.
    for noisy in (
        "pysnmp",
        "asyncio",
        "kombu",
        "celery.worker.strategy",
        "alembic",
        "asyncssh",
        "ncclient",
        "paramiko",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> Any:
    """A structlog logger; events are snake_case, fields are keyword arguments."""
    return structlog.get_logger(name)
