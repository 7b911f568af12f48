"""The policy gate: may this plan run, now, without a person?

Decisions depend only on the plan, the catalog entry, the configured
autonomy and recent history, never on text from devices or tickets, so
device text cannot widen what a plan may do.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from autonoc.core.settings import Autonomy, PolicySettings
from autonoc.core.types import ActionPlan
from playbooks.base import PlaybookSpec

__all__ = ["Decision", "Outcome", "PolicyGate"]


class Outcome(StrEnum):
    RUN = "run"  # dispatch now
    NEEDS_APPROVAL = "needs_approval"  # wait for a person bound to the plan hash
    SUGGEST_ONLY = "suggest_only"  # tell people; do nothing
    DENY = "deny"  # refuse (rate limit, ...)


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    autonomy: Autonomy
    reason: str
    plan_hash: str


class PolicyGate:
    """Autonomy per playbook (catalog default, overridden by settings) and rate limits."""

    def __init__(self, settings: PolicySettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)

    def autonomy_for(self, spec: PlaybookSpec) -> Autonomy:
        return self.settings.autonomy.get(spec.name, spec.autonomy)

    def decide(self, plan: ActionPlan, spec: PlaybookSpec) -> Decision:
        autonomy = self.autonomy_for(spec)
        source = "settings" if spec.name in self.settings.autonomy else "catalog default"
        recent = self._window(plan.device)
        limit = self.settings.max_actions_per_device_per_hour
        if len(recent) >= limit:
            return Decision(
                Outcome.DENY,
                autonomy,
                f"{plan.device} already had {len(recent)} automated actions in the "
                f"last hour (limit {limit})",
                plan.hash,
            )
        if autonomy is Autonomy.AUTO:
            return Decision(
                Outcome.RUN,
                autonomy,
                f"{spec.name} is at autonomy 'auto' ({source}), risk {spec.risk}",
                plan.hash,
            )
        if autonomy is Autonomy.APPROVE:
            return Decision(
                Outcome.NEEDS_APPROVAL,
                autonomy,
                f"{spec.name} needs an approval ({source})",
                plan.hash,
            )
        return Decision(
            Outcome.SUGGEST_ONLY,
            autonomy,
            f"{spec.name} is at autonomy 'suggest' ({source})",
            plan.hash,
        )

    def record_dispatch(self, device: str) -> None:
        self._window(device).append(self._clock())

    def _window(self, device: str) -> deque[float]:
        window = self._recent[device]
        horizon = self._clock() - 3600.0
        while window and window[0] < horizon:
            window.popleft()
        return window
