"""Keep secrets out of logs, errors and the UI."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["SECRET_KEYS", "mask_url"]

#: Field names whose values are never printed, whatever their type.
SECRET_KEYS = frozenset(
    {"password", "community", "auth_key", "priv_key", "token", "secret", "api_key", "key"}
)


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``.

    >>> mask_url("redis://:hunter2@db.example:6379/0")
    'redis://:***@db.example:6379/0'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
