"""mask_url keeps secrets out of messages and logs while keeping URLs readable."""

from __future__ import annotations

import pytest

from autonoc.core.secrets import SECRET_KEYS, mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:hunter2@db.example:6379/0", "redis://:***@db.example:6379/0"),
        ("redis://admin:hunter2@db.example:6379/0", "redis://admin:***@db.example:6379/0"),
        (
            "postgresql+psycopg://autonoc:s3cr3t@pg.example:5432/noc?sslmode=require",
            "postgresql+psycopg://autonoc:***@pg.example:5432/noc?sslmode=require",
        ),
        ("postgresql://u:p%40ss%3Aword@h/db", "postgresql://u:***@h/db"),
        ("rediss://:pw@cache/1#frag", "rediss://:***@cache/1#frag"),
        ("redis://:@cache/0", "redis://:***@cache/0"),
    ],
)
def test_passwords_are_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/15",
        "redis://user@127.0.0.1:6379/15",
        "unix:///home/noc/.autonoc/run/redis.sock",
        "redis+socket:///home/noc/.autonoc/run/redis.sock",
        "sqlite:////home/noc/.autonoc/autonoc.sqlite3",
        "postgresql://postgres@127.0.0.1:5432/test",
        "",
    ],
)
def test_urls_without_a_password_are_unchanged(url: str) -> None:
    assert mask_url(url) == url


def test_unparseable_url_reveals_nothing() -> None:
    assert mask_url("redis://:hunter2@[::1") == "<unparseable url>"


def test_secret_keys_cover_device_and_service_credentials() -> None:
    assert {"password", "community", "auth_key", "priv_key", "token"} <= SECRET_KEYS


def test_ipv6_hosts_keep_their_brackets() -> None:
    assert mask_url("redis://:pw@[::1]:6379/0") == "redis://:***@[::1]:6379/0"


def test_a_bad_port_does_not_raise() -> None:
    assert "hunter2" not in mask_url("redis://:hunter2@cache:notaport/0")


def test_secret_query_parameters_are_masked() -> None:
    masked = mask_url("postgresql://db/autonoc?password=hunter2&sslmode=require")
    assert masked == "postgresql://db/autonoc?password=***&sslmode=require"
