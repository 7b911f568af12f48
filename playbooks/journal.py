"""The engine's memory in the database: run journal, configuration archive, tickets.

:class:`RunJournal` keeps one row per run (the Celery task id). The engine
writes the run's state *before* each step that changes a device, with the
values it read before changing them, so a run that is redelivered after its
worker died knows what it did: it finishes a confirmed change, or makes sure
the device is back where it was, and never applies the plan a second time.

States, in order::

    started → changing → committed → verified → done
                 │            │           │
                 └────────────┴───────────┴──→ rolled_back | failed

``changing``: the edit is about to reach the device; ``committed``: a confirmed
commit (or SNMP SET) is on the device, not yet confirmed; ``verified``:
telemetry showed the fix, the confirming commit is next.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from autonoc.core.db import config_snapshots, inserted_id, map_db_errors, playbook_runs, tickets
from autonoc.core.types import ActionPlan, utcnow

__all__ = ["ConfigArchive", "RunJournal", "RunRecord", "RunState", "Snapshot", "TicketBook"]


class RunState(StrEnum):
    STARTED = "started"
    CHANGING = "changing"
    COMMITTED = "committed"
    VERIFIED = "verified"
    DONE = "done"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (RunState.DONE, RunState.ROLLED_BACK, RunState.FAILED)


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    plan_hash: str
    state: RunState
    attempts: int
    before: dict[str, Any]
    result: dict[str, Any] | None


class RunJournal:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def begin(self, run_id: str, plan: ActionPlan) -> RunRecord:
        """The run's record, created if new; each call counts one more attempt."""
        now = utcnow()
        with (
            map_db_errors(self._engine, "write the playbook journal to"),
            self._engine.begin() as conn,
        ):
            row = conn.execute(
                sa.select(playbook_runs).where(playbook_runs.c.run_id == run_id).with_for_update()
            ).first()
            if row is None:
                conn.execute(
                    sa.insert(playbook_runs),
                    {
                        "run_id": run_id,
                        "plan_hash": plan.hash,
                        "playbook": plan.playbook,
                        "device": plan.device,
                        "target": plan.target,
                        "state": RunState.STARTED.value,
                        "attempts": 1,
                        "before": {},
                        "result": None,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                return RunRecord(run_id, plan.hash, RunState.STARTED, 1, {}, None)
            attempts = int(row.attempts) + 1
            conn.execute(
                sa.update(playbook_runs)
                .where(playbook_runs.c.run_id == run_id)
                .values(attempts=attempts, updated_at=now)
            )
            return _record(row, attempts=attempts)

    def get(self, run_id: str) -> RunRecord | None:
        with (
            map_db_errors(self._engine, "read the playbook journal from"),
            self._engine.connect() as conn,
        ):
            row = conn.execute(
                sa.select(playbook_runs).where(playbook_runs.c.run_id == run_id)
            ).first()
        return None if row is None else _record(row)

    def succeeded(self, plan_hash: str) -> RunRecord | None:
        """The latest run of this exact plan that finished verified, if any."""
        with (
            map_db_errors(self._engine, "read the playbook journal from"),
            self._engine.connect() as conn,
        ):
            row = conn.execute(
                sa.select(playbook_runs)
                .where(
                    playbook_runs.c.plan_hash == plan_hash,
                    playbook_runs.c.state == RunState.DONE.value,
                )
                .order_by(playbook_runs.c.updated_at.desc())
                .limit(1)
            ).first()
        return None if row is None else _record(row)

    def set_state(
        self,
        run_id: str,
        state: RunState,
        *,
        before: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        values: dict[str, Any] = {"state": state.value, "updated_at": utcnow()}
        if before is not None:
            values["before"] = before
        if result is not None:
            values["result"] = result
        with (
            map_db_errors(self._engine, "write the playbook journal to"),
            self._engine.begin() as conn,
        ):
            conn.execute(
                sa.update(playbook_runs).where(playbook_runs.c.run_id == run_id).values(values)
            )


def _record(row: Any, attempts: int | None = None) -> RunRecord:
    return RunRecord(
        run_id=row.run_id,
        plan_hash=row.plan_hash,
        state=RunState(row.state),
        attempts=int(row.attempts) if attempts is None else attempts,
        before=dict(row.before or {}),
        result=row.result,
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    id: int
    device: str
    taken_at: datetime
    digest: str
    config: str
    good: bool
    source: str


class ConfigArchive:
    """Running configurations over time; the ``good`` ones are restore points.

    A snapshot is *good* when whoever took it vouches for it: a playbook run
    that verified its change on telemetry, or an operator's ``autonoc config
    backup --good``. The last good one is what ``config-rollback`` restores.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def save(self, device: str, config: str, *, good: bool, source: str) -> Snapshot:
        digest = hashlib.sha256(config.encode()).hexdigest()[:16]
        taken = utcnow()
        with (
            map_db_errors(self._engine, "write a configuration snapshot to"),
            self._engine.begin() as conn,
        ):
            new_id = inserted_id(
                conn.execute(
                    sa.insert(config_snapshots),
                    {
                        "device": device,
                        "taken_at": taken,
                        "digest": digest,
                        "config": config,
                        "good": good,
                        "source": source,
                    },
                )
            )
        return Snapshot(new_id, device, taken, digest, config, good, source)

    def last_good(self, device: str) -> Snapshot | None:
        return self._latest(device, good_only=True)

    def latest(self, device: str) -> Snapshot | None:
        return self._latest(device, good_only=False)

    def _latest(self, device: str, *, good_only: bool) -> Snapshot | None:
        query = sa.select(config_snapshots).where(config_snapshots.c.device == device)
        if good_only:
            query = query.where(config_snapshots.c.good.is_(True))
        query = query.order_by(config_snapshots.c.id.desc()).limit(1)
        with (
            map_db_errors(self._engine, "read configuration snapshots from"),
            self._engine.connect() as conn,
        ):
            row = conn.execute(query).first()
        if row is None:
            return None
        return Snapshot(
            row.id, row.device, row.taken_at, row.digest, row.config, row.good, row.source
        )


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    queue: str
    status: str
    device: str
    component: str
    reason: str
    summary: str
    plan_hash: str | None
    incident_id: int | None


class TicketBook:
    """Tickets for people. One per plan, queue and reason: a retried run opens none twice."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def open(
        self,
        *,
        queue: str,
        device: str,
        component: str,
        reason: str,
        summary: str,
        plan_hash: str | None,
        incident_id: int | None,
    ) -> tuple[Ticket, bool]:
        """The ticket, and whether this call opened it (False: it was open already)."""
        existing = self._find(plan_hash, queue, reason) if plan_hash else None
        if existing is not None:
            return existing, False
        row = {
            "queue": queue,
            "status": "open",
            "device": device,
            "component": component,
            "reason": reason,
            "summary": summary,
            "plan_hash": plan_hash,
            "incident_id": incident_id,
            "opened_at": utcnow(),
            "closed_at": None,
        }
        with (
            map_db_errors(self._engine, "write a ticket to"),
            self._engine.begin() as conn,
        ):
            new_id = inserted_id(conn.execute(sa.insert(tickets), row))
        return Ticket(
            new_id, queue, "open", device, component, reason, summary, plan_hash, incident_id
        ), True

    def _find(self, plan_hash: str, queue: str, reason: str) -> Ticket | None:
        with (
            map_db_errors(self._engine, "read tickets from"),
            self._engine.connect() as conn,
        ):
            row = conn.execute(
                sa.select(tickets).where(
                    tickets.c.plan_hash == plan_hash,
                    tickets.c.queue == queue,
                    tickets.c.reason == reason,
                )
            ).first()
        return None if row is None else _ticket(row)

    def list(self, status: str | None = "open") -> list[Ticket]:
        query = sa.select(tickets).order_by(tickets.c.id)
        if status is not None:
            query = query.where(tickets.c.status == status)
        with (
            map_db_errors(self._engine, "read tickets from"),
            self._engine.connect() as conn,
        ):
            return [_ticket(r) for r in conn.execute(query)]


def _ticket(row: Any) -> Ticket:
    return Ticket(
        row.id,
        row.queue,
        row.status,
        row.device,
        row.component,
        row.reason,
        row.summary,
        row.plan_hash,
        row.incident_id,
    )
