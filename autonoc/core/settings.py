"""One settings object, built once at a composition root and passed down.

Environment variables use the prefix ``AUTONOC_`` and ``__`` for nesting:
``AUTONOC_REDIS_URL``, ``AUTONOC_DATABASE_URL``, ``AUTONOC_HOME``,
``AUTONOC_SNMP__TIMEOUT``, ``AUTONOC_POLICY__AUTONOMY='{"interface-enable": "auto"}'``.
Nothing reads the environment at import time: call :meth:`Settings.load`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "Autonomy",
    "BusSettings",
    "CollectSettings",
    "DemoSettings",
    "HistorySettings",
    "LabSettings",
    "LogSettings",
    "PolicySettings",
    "Settings",
    "SnmpSettings",
]


class Autonomy(StrEnum):
    """How far a playbook may go without a person."""

    SUGGEST = "suggest"  # propose only; a person runs it
    APPROVE = "approve"  # run after an approval that carries the plan's hash
    AUTO = "auto"  # run, then verify; people read the audit log


class SnmpSettings(BaseModel):
    """SNMP client behaviour shared by pollers and playbooks."""

    timeout: float = Field(1.0, gt=0, description="seconds per attempt")
    retries: int = Field(1, ge=0, description="attempts after the first")
    concurrency: int = Field(64, ge=1, description="devices polled at once")
    max_repetitions: int = Field(25, ge=1, le=200, description="GETBULK max-repetitions")
    max_in_flight: int = Field(
        256, ge=1, description="v1/v2c requests outstanding at once on the shared socket"
    )


class LogSettings(BaseModel):
    level: str = "INFO"
    json_output: bool = Field(False, description="one JSON object per line instead of text")


class PolicySettings(BaseModel):
    """The policy gate: a policy file, and overrides of the catalog's default autonomy."""

    file: Path | None = Field(
        None, description="policy YAML: kill switch, autonomy, windows, blast radius, limits"
    )
    autonomy: dict[str, Autonomy] = Field(default_factory=dict)
    max_actions_per_device_per_hour: int = Field(3, ge=0)


class LabSettings(BaseModel):
    host: str = "127.0.0.1"
    base_port: int = Field(16100, ge=1024, le=65000, description="first simulated SNMP port")


class DemoSettings(BaseModel):
    poll_interval: float = Field(2.0, gt=0, description="seconds between polls")
    warmup_polls: int = Field(8, ge=4, description="polls that train the detector")
    deadline: float = Field(150.0, gt=0, description="seconds before the demo gives up")


class BusSettings(BaseModel):
    """The telemetry bus on Redis Streams."""

    maxlen: int = Field(
        1_000_000, ge=1, description="entries a stream keeps (approximate trimming)"
    )
    batch: int = Field(500, ge=1, description="samples per stream entry")
    claim_idle_ms: int = Field(
        30_000, ge=1, description="pending this long on a consumer, an entry goes to another"
    )


class CollectSettings(BaseModel):
    """Continuous collection: schedule, limits, and where traps and scrapes arrive."""

    intervals: dict[str, float] = Field(
        default_factory=lambda: {
            "optics": 10.0,
            "interfaces": 30.0,
            "system": 30.0,
            "bgp": 30.0,
            "inventory": 900.0,
        },
        description="seconds between polls, per metric group",
    )
    jitter: float = Field(0.05, ge=0, le=0.5, description="random spread, fraction of interval")
    device_timeout: float = Field(
        20.0, gt=0, description="seconds one device's poll (all requests) may take"
    )
    backoff_base: float = Field(30.0, gt=0, description="first wait after a failed poll, s")
    backoff_max: float = Field(900.0, gt=0, description="longest wait between failed polls, s")
    netconf_workers: int = Field(16, ge=1, description="threads running NETCONF sessions")
    shards: int = Field(
        1, ge=1, description="Celery beat splits the fleet into this many collect tasks"
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9700, ge=0, le=65535, description="Prometheus /metrics; 0 = any")
    trap_host: str = "127.0.0.1"
    trap_port: int = Field(
        1162, ge=0, le=65535, description="SNMP trap/inform port (162 needs privileges)"
    )


class HistorySettings(BaseModel):
    """The SQL history: retention and downsampling."""

    raw_retention_days: float = Field(7, gt=0, description="raw samples kept this long")
    rollup_resolution_s: int = Field(300, ge=1, description="bucket of downsampled samples")
    rollup_retention_days: float = Field(90, gt=0, description="downsampled samples kept")
    write_batch: int = Field(5000, ge=1, description="samples per SQL transaction, at most")


class Settings(BaseSettings):
    """Everything configurable about one autonoc installation."""

    model_config = SettingsConfigDict(
        env_prefix="AUTONOC_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    home: Path = Field(
        default_factory=lambda: Path.home() / ".autonoc",
        description="state directory: embedded Redis socket, SQLite file, lab files",
    )
    redis_url: str | None = Field(
        None, description="external Redis; unset starts an embedded one under home"
    )
    redis_connect_timeout: float = Field(5.0, gt=0)
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; unset uses SQLite under home"
    )
    inventory: Path | None = Field(None, description="inventory.yaml the platform works on")
    snmp: SnmpSettings = Field(default_factory=SnmpSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    lab: LabSettings = Field(default_factory=LabSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    collect: CollectSettings = Field(default_factory=CollectSettings)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment (and ``overrides``) into a Settings object."""
        return cls(**overrides)

    @property
    def sqlite_path(self) -> Path:
        return self.home / "autonoc.sqlite3"

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file's."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.sqlite_path}"
