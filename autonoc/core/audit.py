"""The append-only audit log: every decision, approval, action and result.

There is no update or delete API (and :class:`AuditLog` cannot be subclassed
to add one), and the database refuses both: triggers created by migration
``0001`` abort UPDATE and DELETE on SQLite and PostgreSQL (and TRUNCATE on
PostgreSQL), whatever code or person connects. Secrets never land here:
:meth:`AuditLog.append` redacts them from ``details`` before writing.

:class:`AuditFollower` reads new entries as they commit, for ``autonoc audit tail --follow``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, final

import sqlalchemy as sa

from autonoc.core.db import audit_log, inserted_id, map_db_errors
from autonoc.core.secrets import SECRET_KEYS, mask_url
from autonoc.core.types import utcnow

__all__ = ["REDACTED", "AuditEntry", "AuditFollower", "AuditLog", "redact"]

REDACTED = "***"


def _masked(url: str) -> str:
    # mask_url raises on a malformed port; an error message must not.
    try:
        return mask_url(url)
    except ValueError:
        return "<unparseable url>"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log, as stored."""

    id: int
    ts: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """As a JSON object, the timestamp in ISO 8601 UTC."""
        return {
            "id": self.id,
            "ts": self.ts.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
        }


def _is_secret_key(key: str) -> bool:
    name = key.lower()
    # Suffixes catch the usual spellings: snmp_community, db_password, ssh_key.
    return name in SECRET_KEYS or any(name.endswith(f"_{k}") for k in SECRET_KEYS)


def redact(value: Any) -> Any:
    """Return ``value`` with secrets replaced by ``"***"``, recursively.

    Replaces the value of every mapping key in :data:`SECRET_KEYS` (any case,
    also as a ``_suffix`` such as ``snmp_community``) and masks passwords in
    strings that look like URLs.
    """
    if isinstance(value, Mapping):
        return {str(k): REDACTED if _is_secret_key(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    if isinstance(value, str) and "://" in value and "@" in value:
        return _masked(value)
    return value


def _json_safe(value: Any) -> Any:
    # Datetimes, enums and paths would otherwise fail the JSON column's serializer.
    return json.loads(json.dumps(value, default=str))


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        details=row.details,
    )


@final
class AuditLog:
    """Append to and read the audit log; nothing else.

    Args:
        engine: from :func:`autonoc.core.db.make_engine`, migrated with
            :func:`autonoc.core.db.upgrade`.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass is the one way code could grow an update or delete path here.
        raise TypeError("AuditLog is append-only and cannot be subclassed")

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def append(self, actor: str, action: str, subject: str, details: Mapping[str, Any]) -> int:
        """Record that ``actor`` did ``action`` to ``subject``; returns the entry's id.

        ``details`` is stored as JSON after :func:`redact`.
        """
        row = {
            "ts": utcnow(),
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": _json_safe(redact(details)),
        }
        with map_db_errors(self._engine, "write the audit log to"), self._engine.begin() as conn:
            return inserted_id(conn.execute(sa.insert(audit_log), row))

    def entries(
        self,
        limit: int = 100,
        subject: str | None = None,
        action: str | None = None,
        *,
        up_to: int | None = None,
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first; for one ``subject`` and ``action`` if given.

        ``up_to`` leaves out entries with a higher id.
        """
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        if action is not None:
            query = query.where(audit_log.c.action == action)
        if up_to is not None:
            query = query.where(audit_log.c.id <= up_to)
        return self._read(query)

    def after(self, after_id: int, limit: int = 1000) -> list[AuditEntry]:
        """Up to ``limit`` entries with an id above ``after_id``, oldest first."""
        query = (
            sa.select(audit_log)
            .where(audit_log.c.id > after_id)
            .order_by(audit_log.c.id)
            .limit(limit)
        )
        return self._read(query)

    def with_ids(self, ids: Iterable[int]) -> list[AuditEntry]:
        """The entries among ``ids`` that exist (and are committed), oldest first."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        query = sa.select(audit_log).where(audit_log.c.id.in_(wanted)).order_by(audit_log.c.id)
        return self._read(query)

    def last_id(self) -> int:
        """The highest id in the log; 0 when it is empty."""
        query = sa.select(sa.func.max(audit_log.c.id))
        with map_db_errors(self._engine, "read the audit log from"), self._engine.connect() as c:
            return int(c.execute(query).scalar() or 0)

    def _read(self, query: sa.Select[Any]) -> list[AuditEntry]:
        with map_db_errors(self._engine, "read the audit log from"), self._engine.connect() as c:
            return [_entry(row) for row in c.execute(query).all()]


class AuditFollower:
    """New audit entries as they commit, each once, for ``autonoc audit tail --follow``.

    Entries are found by id. PostgreSQL hands an id out when a row is
    inserted, not when it commits, so a row can appear after one with a
    higher id; the follower keeps the ids it skipped and asks for them again
    for ``gap_wait_s`` seconds, after which it takes the id for a rolled-back
    insert's. Filtering by subject and action happens here, not in SQL, so
    that every id is seen.

    Args:
        log: the audit log.
        after_id: report entries above this id (usually :meth:`AuditLog.last_id`).
        subject, action: report only entries with these.
        gap_wait_s: how long a skipped id may still show up.
        clock: monotonic seconds (tests pass a fake).
        batch: entries read per :meth:`poll` at most.
    """

    #: Ids below ``after_id`` checked for in-flight inserts when following starts.
    RECHECK = 100
    #: A jump in ids wider than this is not a set of in-flight inserts (a sequence reset).
    MAX_GAP = 1000

    def __init__(
        self,
        log: AuditLog,
        after_id: int,
        *,
        subject: str | None = None,
        action: str | None = None,
        gap_wait_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        batch: int = 1000,
    ) -> None:
        self._log = log
        self._subject = subject
        self._action = action
        self._gap_wait_s = gap_wait_s
        self._clock = clock
        self._batch = batch
        self._top = after_id
        # Inserts still in flight when following starts have ids just below after_id.
        low = max(0, after_id - self.RECHECK)
        present = {e.id for e in log.after(low, limit=after_id - low)} if after_id > low else set()
        now = clock()
        self._gaps: dict[int, float] = {
            i: now for i in range(low + 1, after_id + 1) if i not in present
        }

    def poll(self) -> list[AuditEntry]:
        """Entries that committed since the last call and match the filters, by id."""
        now = self._clock()
        found = self._log.with_ids(self._gaps) if self._gaps else []
        for entry in found:
            del self._gaps[entry.id]
        fresh = self._log.after(self._top, limit=self._batch)
        expected = self._top + 1
        for entry in fresh:
            if entry.id - expected <= self.MAX_GAP:
                self._gaps.update((i, now) for i in range(expected, entry.id))
            expected = entry.id + 1
        if fresh:
            self._top = fresh[-1].id
        self._gaps = {i: t for i, t in self._gaps.items() if now - t < self._gap_wait_s}
        return [e for e in sorted(found + fresh, key=lambda e: e.id) if self._wanted(e)]

    def _wanted(self, entry: AuditEntry) -> bool:
        return (self._subject is None or entry.subject == self._subject) and (
            self._action is None or entry.action == self._action
        )
