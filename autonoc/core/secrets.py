"""Keep secrets out of logs, errors and the UI."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["SECRET_KEYS", "mask_url"]

#: Field names whose values are never printed, whatever their type.
SECRET_KEYS = frozenset(
    {"password", "community", "auth_key", "priv_key", "token", "secret", "api_key", "key"}
)


def mask_url(url: str) -> str:
    """Return ``url`` with any password (and secret query parameters) replaced by ``***``.

    Works on the raw text, so IPv6 hosts keep their brackets and a bad port
    cannot make masking fail.

    >>> mask_url("redis://:hunter2@db.example:6379/0")
    'redis://:***@db.example:6379/0'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    query = "&".join(
        f"{key}=***" if key.lower() in SECRET_KEYS else pair
        for pair in parts.query.split("&")
        if pair
        for key in [pair.split("=", 1)[0]]
    )
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing secret; urlunsplit would also drop an empty "//"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
