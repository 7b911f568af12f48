"""The append-only audit log: every decision, approval, action and result.

There is no update or delete API, and the database refuses both (triggers
created by migration ``0001``). Secrets never land here: :meth:`AuditLog.append`
redacts them from ``details`` before writing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from autonoc.core.db import audit_log, inserted_id, map_db_errors
from autonoc.core.secrets import SECRET_KEYS, mask_url
from autonoc.core.types import utcnow

__all__ = ["REDACTED", "AuditEntry", "AuditLog", "redact"]

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


class AuditLog:
    """Append to and read the audit log.

    Args:
        engine: from :func:`autonoc.core.db.make_engine`, migrated with
            :func:`autonoc.core.db.upgrade`.
    """

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

    def entries(self, limit: int = 100, subject: str | None = None) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first, optionally for one ``subject``."""
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        with map_db_errors(self._engine, "read the audit log from"), self._engine.connect() as c:
            rows = c.execute(query).all()
        return [
            AuditEntry(
                id=row.id,
                ts=row.ts,
                actor=row.actor,
                action=row.action,
                subject=row.subject,
                details=row.details,
            )
            for row in rows
        ]
