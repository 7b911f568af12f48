"""The policy gate: may this plan run, now, without a person?

Decisions depend only on the plan, the catalog entry, the fault kind, the
policy file, the topology and recent history, never on text from devices or
tickets, so device text cannot widen what a plan may do. Every decision
carries all the reasons that led to it, and the caller audits it.

The policy file (``AUTONOC_POLICY__FILE``, YAML) says::

    kill_switch: false                 # true: nothing runs, not even approved plans
    autonomy:
      playbooks: {interface-enable: auto}
      fault_kinds: {fiber_cut: approve}  # the stricter of playbook and fault kind wins
    change_windows:                    # automatic changes only inside one (none listed: any time)
      - {days: [mon, tue, wed, thu, fri], start: "00:00", end: "23:59"}
    maintenance:                       # nothing automatic, no incidents, while it lasts
      - {devices: [pe2], start: 2026-11-23T22:00:00Z, end: 2026-11-24T02:00:00Z, reason: optic swap}
    blast_radius:                      # what the action touches, from the topology
      approve_above: {devices: 2, services: 4}   # more: a person must approve
      deny_above: {devices: 6, services: 20}     # more: refused
    rate_limits: {per_device_per_hour: 3, per_site_per_hour: 10}

Outcomes, strictest first: ``deny`` (kill switch, maintenance, rate limit,
blast radius over the deny limit), ``suggest_only``, ``needs_approval``
(autonomy ``approve``, or ``auto`` outside a change window or over the approve
limit), ``run``.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autonoc.core.errors import ConfigError
from autonoc.core.settings import Autonomy, PolicySettings
from autonoc.core.types import ActionPlan
from autonoc.core.yamlfile import text_line
from playbooks.base import PlaybookSpec

__all__ = [
    "BlastRadius",
    "Decision",
    "Outcome",
    "PolicyDocument",
    "PolicyGate",
    "load_policy",
]

_STRICTNESS = {Autonomy.SUGGEST: 0, Autonomy.APPROVE: 1, Autonomy.AUTO: 2}
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Outcome(StrEnum):
    RUN = "run"  # dispatch now
    NEEDS_APPROVAL = "needs_approval"  # wait for a person bound to the plan hash
    SUGGEST_ONLY = "suggest_only"  # tell people; do nothing
    DENY = "deny"  # refuse (kill switch, maintenance, rate limit, blast radius)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AutonomyRules(_Strict):
    playbooks: dict[str, Autonomy] = Field(default_factory=dict)
    fault_kinds: dict[str, Autonomy] = Field(default_factory=dict)


class ChangeWindow(_Strict):
    days: tuple[Day, ...] = _DAYS
    start: dtime
    end: dtime
    """Inclusive; an end before the start runs past midnight (22:00–06:00)."""

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(UTC)
        t = local.time().replace(tzinfo=None)
        day = _DAYS[local.weekday()]
        if self.start <= self.end:
            return day in self.days and self.start <= t <= self.end
        # Past midnight: the part after midnight belongs to the previous day's window.
        previous = _DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and t >= self.start) or (previous in self.days and t <= self.end)


class Maintenance(_Strict):
    devices: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    start: datetime
    end: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _sane(self) -> Maintenance:
        if not self.devices and not self.sites:
            raise ValueError("name devices or sites")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a time zone (e.g. 2026-11-23T22:00:00Z)")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def covers(self, device: str, site: str, moment: datetime) -> bool:
        return (device in self.devices or site in self.sites) and self.start <= moment < self.end


class Limits(_Strict):
    devices: int = Field(ge=0)
    services: int = Field(ge=0)


class BlastLimits(_Strict):
    approve_above: Limits = Limits(devices=2, services=4)
    deny_above: Limits = Limits(devices=6, services=20)


class RateLimits(_Strict):
    per_device_per_hour: int | None = Field(None, ge=0)
    per_site_per_hour: int | None = Field(None, ge=0)


class PolicyDocument(_Strict):
    kill_switch: bool = False
    autonomy: AutonomyRules = AutonomyRules()
    change_windows: tuple[ChangeWindow, ...] = ()
    maintenance: tuple[Maintenance, ...] = ()
    blast_radius: BlastLimits = BlastLimits()
    rate_limits: RateLimits = RateLimits()


def load_policy(path: Path) -> PolicyDocument:
    """Read and validate a policy file; errors name the file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return PolicyDocument.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        line = text_line(text, loc)
        field_name = ".".join(str(p) for p in loc) or "(top level)"
        where = f"{path}" + (f" line {line}" if line else "")
        raise ConfigError(f"{where}: {field_name}: {first['msg']}") from exc


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """What an action touches: devices and services, from the topology."""

    devices: frozenset[str]
    services: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    autonomy: Autonomy
    reason: str
    plan_hash: str
    reasons: tuple[str, ...] = field(default=())
    blast: BlastRadius | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "plan_hash": self.plan_hash,
            "outcome": self.outcome.value,
            "autonomy": self.autonomy.value,
            "reason": self.reason,
            "reasons": list(self.reasons),
            "blast_devices": sorted(self.blast.devices) if self.blast else None,
            "blast_services": sorted(self.blast.services) if self.blast else None,
        }


class PolicyGate:
    """Autonomy, windows, maintenance, blast radius and rate limits, from settings and a file.

    Args:
        settings: ``AUTONOC_POLICY__*``; ``file`` names the policy document.
        clock: seconds since the epoch (tests pass a fake one).
        document: the policy document (default: read from ``settings.file``, else empty).
        blast: an action's blast radius (the agents pass one from the topology;
            default: the plan's device alone).
        site_of: a device's site, for per-site rate limits and maintenance.

    Rate limits count the dispatches this gate recorded (:meth:`record_dispatch`):
    one gate per process that dispatches (the agents' graph runner).
    """

    def __init__(
        self,
        settings: PolicySettings,
        clock: Callable[[], float] = time.time,
        *,
        document: PolicyDocument | None = None,
        blast: Callable[[ActionPlan], BlastRadius] | None = None,
        site_of: Callable[[str], str] | None = None,
    ) -> None:
        self.settings = settings
        if document is None:
            document = load_policy(settings.file) if settings.file else PolicyDocument()
        self.document = document
        self._clock = clock
        self._blast = blast or (lambda plan: BlastRadius(devices=frozenset({plan.device})))
        self._site_of = site_of or (lambda device: "default")
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)

    def autonomy_for(self, spec: PlaybookSpec, fault_kind: str | None = None) -> Autonomy:
        """The stricter of the playbook's autonomy (settings, file, catalog) and the fault's."""
        level = self.settings.autonomy.get(
            spec.name, self.document.autonomy.playbooks.get(spec.name, spec.autonomy)
        )
        if fault_kind is not None and fault_kind in self.document.autonomy.fault_kinds:
            by_kind = self.document.autonomy.fault_kinds[fault_kind]
            level = min(level, by_kind, key=_STRICTNESS.__getitem__)
        return level

    def decide(
        self, plan: ActionPlan, spec: PlaybookSpec, *, fault_kind: str | None = None
    ) -> Decision:
        now = self._clock()
        moment = datetime.fromtimestamp(now, UTC)
        autonomy = self.autonomy_for(spec, fault_kind)
        source = (
            "settings"
            if spec.name in self.settings.autonomy
            else "policy file"
            if spec.name in self.document.autonomy.playbooks
            else "catalog default"
        )
        reasons = [f"{spec.name} is at autonomy '{autonomy.value}' ({source}), risk {spec.risk}"]
        if fault_kind in self.document.autonomy.fault_kinds:
            reasons.append(
                f"fault kind {fault_kind} allows at most "
                f"'{self.document.autonomy.fault_kinds[fault_kind].value}'"
            )
        blast = self._blast(plan)
        reasons.append(
            f"blast radius: {len(blast.devices)} device(s), {len(blast.services)} service(s)"
        )

        def decision(outcome: Outcome, why: str) -> Decision:
            return Decision(outcome, autonomy, why, plan.hash, (*reasons, why), blast)

        if self.document.kill_switch:
            return decision(Outcome.DENY, "the kill switch is on: no playbook runs")
        site = self._site_of(plan.device)
        for window in self.document.maintenance:
            if window.covers(plan.device, site, moment):
                return decision(
                    Outcome.DENY,
                    f"{plan.device} is in maintenance until {window.end.isoformat()}"
                    + (f" ({window.reason})" if window.reason else ""),
                )
        limited = self._rate_limited(plan.device, site, now)
        if limited:
            return decision(Outcome.DENY, limited)
        deny = self.document.blast_radius.deny_above
        if len(blast.devices) > deny.devices or len(blast.services) > deny.services:
            return decision(
                Outcome.DENY,
                f"the action touches more than the policy allows at all "
                f"({deny.devices} devices, {deny.services} services)",
            )
        if autonomy is Autonomy.SUGGEST:
            return decision(Outcome.SUGGEST_ONLY, f"{spec.name} may only be suggested")
        if autonomy is Autonomy.APPROVE:
            return decision(Outcome.NEEDS_APPROVAL, f"{spec.name} needs an approval ({source})")
        approve = self.document.blast_radius.approve_above
        if len(blast.devices) > approve.devices or len(blast.services) > approve.services:
            return decision(
                Outcome.NEEDS_APPROVAL,
                f"the action touches more than automatic changes may "
                f"({approve.devices} devices, {approve.services} services): it needs an approval",
            )
        windows = self.document.change_windows
        if windows and not any(w.contains(moment) for w in windows):
            return decision(
                Outcome.NEEDS_APPROVAL,
                "outside every change window: automatic changes wait for an approval",
            )
        return decision(Outcome.RUN, f"{spec.name} runs automatically (autonomy from {source})")

    def in_maintenance(self, device: str, at: float | None = None) -> bool:
        """Whether ``device`` is in a maintenance window (the correlator suppresses it)."""
        moment = datetime.fromtimestamp(self._clock() if at is None else at, UTC)
        site = self._site_of(device)
        return any(w.covers(device, site, moment) for w in self.document.maintenance)

    def record_dispatch(self, device: str) -> None:
        self._recent[device].append(self._clock())

    def _rate_limited(self, device: str, site: str, now: float) -> str | None:
        per_device = self.document.rate_limits.per_device_per_hour
        if per_device is None:
            per_device = self.settings.max_actions_per_device_per_hour
        recent = self._window(device, now)
        if len(recent) >= per_device:
            return (
                f"{device} already had {len(recent)} automated actions in the "
                f"last hour (limit {per_device})"
            )
        per_site = self.document.rate_limits.per_site_per_hour
        if per_site is not None:
            at_site = sum(
                len(self._window(d, now)) for d in list(self._recent) if self._site_of(d) == site
            )
            if at_site >= per_site:
                return (
                    f"site {site} already had {at_site} automated actions in the "
                    f"last hour (limit {per_site})"
                )
        return None

    def _window(self, device: str, now: float) -> deque[float]:
        window = self._recent[device]
        horizon = now - 3600.0
        while window and window[0] < horizon:
            window.popleft()
        return window
