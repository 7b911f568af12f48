"""Domain types carried along the loop: sense → analyse → decide → act → verify.

Hot values (samples) are frozen slotted dataclasses; values that cross a
process boundary (Celery payloads, API bodies, LLM output) are pydantic
models. Devices and links live in :mod:`autonoc.core.inventory`.

Time is float epoch seconds (UTC) in hot paths and aware ``datetime``
elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ActionPlan",
    "ActionResult",
    "Alarm",
    "Anomaly",
    "Attribution",
    "Check",
    "Incident",
    "IncidentStatus",
    "Sample",
    "Severity",
    "StepResult",
    "TimelineEvent",
    "Verdict",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    MAJOR = "major"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Sample:
    """One canonical metric value of one component at one time.

    ``instance`` names the component inside the device (an interface, an
    optical port, a BGP peer); empty for device-wide metrics.
    """

    device: str
    metric: str
    instance: str
    ts: float
    value: float

    @property
    def key(self) -> str:
        """``metric`` or ``metric@instance``: a column name in a device's window."""
        return f"{self.metric}@{self.instance}" if self.instance else self.metric


@dataclass(frozen=True, slots=True)
class Attribution:
    """How much one metric of one component drove an anomaly."""

    metric: str
    instance: str
    score: float
    value: float
    expected: float


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A detector's verdict that a device's recent window is abnormal.

    ``ts`` ends the evidence window and ``window_start`` (when known) begins it;
    ``component`` is the instance the attributions point at first (an
    interface, optical port or BGP peer; empty for the device as a whole), and
    ``severity`` grows with ``score / threshold``.
    """

    device: str
    ts: float
    score: float
    threshold: float
    detector: str
    attributions: tuple[Attribution, ...] = field(default=())
    severity: Severity = Severity.WARNING
    component: str = ""
    window_start: float | None = None

    @property
    def top(self) -> Attribution | None:
        return self.attributions[0] if self.attributions else None


class Alarm(BaseModel):
    """A state a device reports about itself (trap, status poll)."""

    model_config = ConfigDict(frozen=True)

    device: str
    instance: str = ""
    kind: str
    severity: Severity = Severity.MAJOR
    ts: float
    text: str = Field("", description="device text: data, never instructions")


class IncidentStatus(StrEnum):
    OPEN = "open"
    DIAGNOSED = "diagnosed"
    AWAITING_APPROVAL = "awaiting_approval"
    ACTING = "acting"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    DISMISSED = "dismissed"

    @property
    def closed(self) -> bool:
        return self in {IncidentStatus.RESOLVED, IncidentStatus.ESCALATED, IncidentStatus.DISMISSED}


class TimelineEvent(BaseModel):
    """One step of an incident's life, as stored and shown."""

    model_config = ConfigDict(frozen=True)

    ts: datetime = Field(default_factory=utcnow)
    kind: str  # detected, diagnosed, planned, policy, dispatched, acted, verified, resolved, ...
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class Incident(BaseModel):
    """A fault as people see it: one root cause, its evidence and its fix."""

    id: int | None = None
    status: IncidentStatus = IncidentStatus.OPEN
    title: str
    device: str
    instance: str = ""
    fault_kind: str = "unknown"
    severity: Severity = Severity.MAJOR
    opened_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None
    timeline: list[TimelineEvent] = Field(default_factory=list)


class ActionPlan(BaseModel):
    """A typed proposal: one catalog playbook, resolved targets, validated parameters.

    Crosses to the Celery worker as JSON. Its :attr:`hash` binds approvals:
    a changed plan needs a new approval.
    """

    model_config = ConfigDict(frozen=True)

    playbook: str
    device: str
    target: str = Field(description="the component acted on, e.g. an interface name")
    params: dict[str, Any] = Field(default_factory=dict)
    incident_id: int | None = None
    rationale: str = ""

    @property
    def hash(self) -> str:
        body = {
            "playbook": self.playbook,
            "device": self.device,
            "target": self.target,
            "params": self.params,
            "incident_id": self.incident_id,
        }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:16]


class Check(BaseModel):
    """One verification condition and what fresh telemetry said."""

    name: str
    passed: bool
    observed: str = ""


class Verdict(BaseModel):
    """Whether the fix shows in fresh telemetry."""

    passed: bool
    checks: list[Check] = Field(default_factory=list)
    at: datetime = Field(default_factory=utcnow)


class StepResult(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class ActionResult(BaseModel):
    """What the worker did with a plan, and what verification found."""

    plan_hash: str
    playbook: str
    device: str
    ok: bool
    changed: bool = False
    steps: list[StepResult] = Field(default_factory=list)
    verdict: Verdict | None = None
    rolled_back: bool = False
    error: str | None = None
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime = Field(default_factory=utcnow)
