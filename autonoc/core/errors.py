"""autonoc's one error tree.

Every error autonoc raises on purpose derives from :class:`AutonocError`.
Third-party errors (pysnmp, ncclient, redis, SQLAlchemy, Celery) are
translated at one boundary per library with ``raise ... from exc``, so
callers only ever catch these::

    AutonocError
    ├── ConfigError                 settings or a file that cannot be used
    │   └── InventoryError          inventory.yaml: file, line, field
    ├── BackendUnavailable          a service we depend on is not there
    │   ├── RedisUnavailable
    │   └── DatabaseUnavailable
    ├── DeviceError                 talking to a device failed
    │   ├── DeviceUnreachable       no answer within timeout × retries
    │   └── DeviceRejected          the device answered with an error
    ├── PlaybookError               a playbook could not be planned or run
    │   ├── PlaybookValidationError catalog YAML or parameters are invalid
    │   ├── PrecheckFailed          conditions before acting do not hold
    │   ├── TransientError          retry later; nothing was changed
    │   │   └── DeviceLocked        another playbook holds the device
    │   └── VerificationFailed      the fix did not show in fresh telemetry
    ├── PolicyDenied                the policy gate refused a plan
    └── LabError                    the simulator cannot start or obey

Messages say what was wrong and what to do about it; they never contain a
secret (communities, keys, passwords: use :func:`autonoc.core.secrets.mask_url`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AutonocError",
    "BackendUnavailable",
    "ConfigError",
    "DatabaseUnavailable",
    "DeviceError",
    "DeviceLocked",
    "DeviceRejected",
    "DeviceUnreachable",
    "InventoryError",
    "LabError",
    "PlaybookError",
    "PlaybookValidationError",
    "PolicyDenied",
    "PrecheckFailed",
    "RedisUnavailable",
    "TransientError",
    "VerificationFailed",
]


class AutonocError(Exception):
    """Root of every error autonoc raises on purpose."""


class ConfigError(AutonocError):
    """Settings or an input file cannot be used as given."""


class InventoryError(ConfigError):
    """An inventory file is malformed; names the file, line and field.

    Args:
        path: the file that was read.
        problems: one ``(line, field, message)`` per problem found; ``line``
            is 1-based, or ``None`` when the position is unknown.
    """

    def __init__(self, path: Path | str, problems: list[tuple[int | None, str, str]]) -> None:
        self.path = Path(path)
        self.problems = problems
        lines = []
        for line, field, message in problems:
            where = f"{self.path} line {line}" if line is not None else f"{self.path}"
            lines.append(f"{where}: {field}: {message}" if field else f"{where}: {message}")
        super().__init__("\n".join(lines))


class BackendUnavailable(AutonocError):
    """A service autonoc depends on (Redis, the database) cannot be reached."""


class RedisUnavailable(BackendUnavailable):
    """Redis cannot be reached or started."""


class DatabaseUnavailable(BackendUnavailable):
    """The SQL database cannot be reached or migrated."""


class DeviceError(AutonocError):
    """Talking to a device failed."""

    def __init__(self, device: str, message: str) -> None:
        self.device = device
        super().__init__(f"{device}: {message}")


class DeviceUnreachable(DeviceError):
    """The device did not answer within its timeout and retries."""


class DeviceRejected(DeviceError):
    """The device answered, with an error."""


class PlaybookError(AutonocError):
    """A playbook could not be planned, applied, verified or rolled back."""


class PlaybookValidationError(PlaybookError):
    """A catalog file or a plan's parameters are invalid."""


class PrecheckFailed(PlaybookError):
    """Conditions that must hold before acting do not."""


class TransientError(PlaybookError):
    """A playbook could not start or go on for now, and nothing on the device was changed.

    The worker retries these (and only these) with exponential backoff: raise
    one only when retrying cannot change a device twice.
    """


class DeviceLocked(TransientError):
    """Another playbook holds the device's lock."""


class VerificationFailed(PlaybookError):
    """The change did not show as a recovery in fresh telemetry."""


class PolicyDenied(AutonocError):
    """The policy gate refused a plan."""


class LabError(AutonocError):
    """The lab simulator could not start, or refused a fault."""
