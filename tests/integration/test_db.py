"""Engines, migrations and the schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from autonoc.core import db
from autonoc.core.errors import ConfigError, DatabaseUnavailable
from autonoc.core.settings import Settings
from autonoc.core.types import utcnow


def _engine(url: str, home: Path) -> sa.Engine:
    return db.make_engine(Settings.load(home=home, database_url=url))


def test_upgrade_creates_the_schema_and_twice_is_a_no_op(database_url: str, tmp_path: Path) -> None:
    engine = _engine(database_url, tmp_path)
    try:
        db.check_database(engine)
        assert db.current_revision(engine) is None
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision() == "0003"
        assert set(sa.inspect(engine).get_table_names()) == {
            "alembic_version",
            "samples",
            "anomalies",
            "incidents",
            "incident_events",
            "audit_log",
            "sample_rollups",
            "events",
            "playbook_runs",
            "config_snapshots",
            "tickets",
        }
        with engine.begin() as conn:
            conn.execute(
                sa.insert(db.samples),
                {"device": "r1", "metric": "cpu", "instance": "", "ts": 1.0, "value": 2.0},
            )
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(db.samples)).scalar() == 1
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            assert versions == [("0003",)]
    finally:
        engine.dispose()


def test_migration_matches_the_declared_tables(database_url: str, tmp_path: Path) -> None:
    engine = _engine(database_url, tmp_path)
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, db.metadata) == []
    finally:
        engine.dispose()


def test_the_database_keeps_the_audit_log_append_only(database_url: str, tmp_path: Path) -> None:
    engine = _engine(database_url, tmp_path)
    try:
        db.upgrade(engine)
        row = {"ts": utcnow(), "actor": "a", "action": "b", "subject": "c", "details": {}}
        with engine.begin() as conn:
            conn.execute(sa.insert(db.audit_log), row)
        for statement in (
            sa.update(db.audit_log).values(actor="mallory"),
            sa.delete(db.audit_log),
        ):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(statement)
        with engine.connect() as conn:
            assert conn.execute(sa.select(db.audit_log.c.actor)).scalars().all() == ["a"]
    finally:
        engine.dispose()


def test_sqlite_engine_creates_its_directory_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    home = tmp_path / "not" / "there" / "yet"
    settings = Settings.load(home=home, database_url=None)
    engine = db.make_engine(settings)
    try:
        db.check_database(engine)
        assert settings.sqlite_path.exists()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_migrations_roll_back_as_a_whole(tmp_path: Path) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'a.sqlite3'}", tmp_path)
    try:
        with pytest.raises(RuntimeError), engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            raise RuntimeError("migration failed half way")
        assert "t" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "given",
    ["postgres://u:pw@db.example/autonoc", "postgresql://u:pw@db.example/autonoc"],
)
def test_postgres_urls_use_psycopg3(given: str) -> None:
    engine = db.make_engine(Settings.load(database_url=given))
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.url.database == "autonoc"
    engine.dispose()


def test_unreachable_postgres_is_reported_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = db.make_engine(
        Settings.load(database_url=f"postgresql://autonoc:hunter2@127.0.0.1:{port}/x")
    )
    with pytest.raises(DatabaseUnavailable) as info:
        db.check_database(engine)
    message = str(info.value)
    assert "hunter2" not in message
    assert f"postgresql+psycopg://autonoc:***@127.0.0.1:{port}/x" in message
    assert "unset AUTONOC_DATABASE_URL" in message


def test_a_url_that_is_not_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot be parsed"):
        db.make_engine(Settings.load(database_url="not a url"))
