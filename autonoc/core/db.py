"""The SQL database: engine, schema, and schema versioning with alembic.

PostgreSQL in production (``AUTONOC_DATABASE_URL``); a SQLite file under
``AUTONOC_HOME`` by default. The tables are declared here with SQLAlchemy
Core; ``autonoc/core/migrations/versions`` creates and evolves them, and
:func:`upgrade` brings a database to the newest revision.

Datetimes are stored timezone-aware and always come back as aware UTC, on
SQLite too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Dialect, make_url

from autonoc.core.errors import ConfigError, DatabaseUnavailable
from autonoc.core.secrets import mask_url
from autonoc.core.settings import Settings

__all__ = [
    "MIGRATIONS_DIR",
    "UTCDateTime",
    "anomalies",
    "audit_log",
    "check_database",
    "current_revision",
    "events",
    "head_revision",
    "incident_events",
    "incidents",
    "inserted_id",
    "make_engine",
    "map_db_errors",
    "metadata",
    "sample_rollups",
    "samples",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _masked(url: str) -> str:
    # mask_url raises on a malformed port; an error message must not.
    try:
        return mask_url(url)
    except ValueError:
        return "<unparseable url>"


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware timestamp that refuses naive values and returns aware UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} cannot be stored: "
                "use an aware one (autonoc.core.types.utcnow())"
            )
        value = value.astimezone(UTC)
        # SQLite keeps no offset; store UTC wall time and restore tzinfo on the way out.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# BIGINT where rows pile up; SQLite only autoincrements an INTEGER PRIMARY KEY.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

samples = sa.Table(
    "samples",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("device", sa.String(), nullable=False),
    sa.Column("metric", sa.String(), nullable=False),
    sa.Column("instance", sa.String(), nullable=False, server_default=""),
    sa.Column("ts", sa.Double(), nullable=False),
    sa.Column("value", sa.Double(), nullable=False),
    # One value per series and instant: a redelivered batch stores nothing twice.
    sa.Index(
        "uq_samples_device_metric_instance_ts", "device", "metric", "instance", "ts", unique=True
    ),
    # Retention and compaction walk the table by time.
    sa.Index("ix_samples_ts", "ts"),
)

#: Downsampled samples: one row per series, resolution and bucket (start, epoch seconds).
sample_rollups = sa.Table(
    "sample_rollups",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("device", sa.String(), nullable=False),
    sa.Column("metric", sa.String(), nullable=False),
    sa.Column("instance", sa.String(), nullable=False, server_default=""),
    sa.Column("resolution_s", sa.Integer(), nullable=False),
    sa.Column("bucket", sa.Double(), nullable=False),
    sa.Column("avg", sa.Double(), nullable=False),
    sa.Column("min", sa.Double(), nullable=False),
    sa.Column("max", sa.Double(), nullable=False),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.Index(
        "uq_sample_rollups_device_metric_instance_resolution_s_bucket",
        "device",
        "metric",
        "instance",
        "resolution_s",
        "bucket",
        unique=True,
    ),
    sa.Index("ix_sample_rollups_bucket", "bucket"),
)

#: Alarms (traps, state changes) as they arrived; one row per device, instance, kind and instant.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("device", sa.String(), nullable=False),
    sa.Column("instance", sa.String(), nullable=False, server_default=""),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("severity", sa.String(), nullable=False),
    sa.Column("ts", sa.Double(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False, server_default=""),
    sa.Index("uq_events_device_instance_kind_ts", "device", "instance", "kind", "ts", unique=True),
    sa.Index("ix_events_ts", "ts"),
)

anomalies = sa.Table(
    "anomalies",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("device", sa.String(), nullable=False),
    sa.Column("ts", sa.Double(), nullable=False),
    sa.Column("score", sa.Double(), nullable=False),
    sa.Column("threshold", sa.Double(), nullable=False),
    sa.Column("detector", sa.String(), nullable=False),
    sa.Column("attributions", sa.JSON(), nullable=False),
    sa.Index("ix_anomalies_device_ts", "device", "ts"),
)

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("title", sa.String(), nullable=False),
    sa.Column("device", sa.String(), nullable=False),
    sa.Column("instance", sa.String(), nullable=False, server_default=""),
    sa.Column("fault_kind", sa.String(), nullable=False),
    sa.Column("severity", sa.String(), nullable=False),
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    sa.Column("closed_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_incidents_status_opened_at", "status", "opened_at"),
)

incident_events = sa.Table(
    "incident_events",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("ts", UTCDateTime(), nullable=False),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Index("ix_incident_events_incident_id_ts", "incident_id", "ts"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("ts", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(), nullable=False),
    sa.Column("action", sa.String(), nullable=False),
    sa.Column("subject", sa.String(), nullable=False),
    sa.Column("details", sa.JSON(), nullable=False),
    sa.Index("ix_audit_log_subject", "subject"),
)


playbook_runs = sa.Table(
    "playbook_runs",
    metadata,
    sa.Column("run_id", sa.String(), primary_key=True),
    sa.Column("plan_hash", sa.String(), nullable=False),
    sa.Column("playbook", sa.String(), nullable=False),
    sa.Column("device", sa.String(), nullable=False),
    sa.Column("target", sa.String(), nullable=False),
    sa.Column("state", sa.String(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("before", sa.JSON(), nullable=False),
    sa.Column("result", sa.JSON(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_playbook_runs_plan_hash", "plan_hash"),
)
"""One row per playbook run (the Celery task id): the journal that makes runs idempotent."""

config_snapshots = sa.Table(
    "config_snapshots",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("device", sa.String(), nullable=False),
    sa.Column("taken_at", UTCDateTime(), nullable=False),
    sa.Column("digest", sa.String(), nullable=False),
    sa.Column("config", sa.Text(), nullable=False),
    sa.Column("good", sa.Boolean(), nullable=False),
    sa.Column("source", sa.String(), nullable=False),
    sa.Index("ix_config_snapshots_device_taken_at", "device", "taken_at"),
)
"""Running configurations as read over NETCONF; ``good`` ones are restore points."""

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("queue", sa.String(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("device", sa.String(), nullable=False),
    sa.Column("component", sa.String(), nullable=False),
    sa.Column("reason", sa.String(), nullable=False),
    sa.Column("summary", sa.Text(), nullable=False),
    sa.Column("plan_hash", sa.String(), nullable=True),
    sa.Column("incident_id", sa.Integer(), nullable=True),
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    sa.Column("closed_at", UTCDateTime(), nullable=True),
    sa.Index("ix_tickets_status_opened_at", "status", "opened_at"),
    sa.UniqueConstraint("plan_hash", "queue", "reason", name="uq_tickets_plan_hash_queue_reason"),
)
"""Work for people: a field visit, a vendor case. One per plan and reason."""


def _normalise_url(raw: str) -> URL:
    display = _masked(raw)
    if raw.startswith("postgres://"):
        raw = "postgresql+psycopg://" + raw.removeprefix("postgres://")
    elif raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw.removeprefix("postgresql://")
    try:
        return make_url(raw)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(
            f"database URL {display!r} cannot be parsed; use postgresql://user@host/db "
            "or sqlite:////abs/path.sqlite3"
        ) from exc


def _display(url: URL) -> str:
    return _masked(url.render_as_string(hide_password=False))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, issue BEGIN (see _sqlite_on_begin):
    # the module's own handling skips BEGIN before DDL, so migrations would not
    # roll back as a whole.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def make_engine(settings: Settings) -> sa.Engine:
    """Create the engine for ``settings.effective_database_url``.

    SQLite: creates the file's directory, turns on WAL, foreign keys and a
    5 s busy timeout. PostgreSQL: ``postgres://`` and ``postgresql://`` use
    psycopg 3, with a 5 s connect timeout and pre-ping.

    Raises:
        ConfigError: the URL cannot be parsed or names a driver that is not installed.
    """
    url = _normalise_url(settings.effective_database_url)
    kwargs: dict[str, Any] = {}
    backend = url.get_backend_name()
    if backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 5}
        kwargs["pool_pre_ping"] = True
    elif (
        backend == "sqlite"
        and url.database
        and url.database != ":memory:"
        and not url.database.startswith("file:")
    ):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(url, **kwargs)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"database URL {_display(url)!r} cannot be used: {exc}") from exc
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
    return engine


@contextmanager
def map_db_errors(engine: sa.Engine, doing: str) -> Iterator[None]:
    """Translate SQLAlchemy's connection-level errors into :class:`DatabaseUnavailable`."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        display = _display(engine.url)
        reason = str(exc.orig) if exc.orig is not None else str(exc)
        if engine.url.password:
            reason = reason.replace(str(engine.url.password), "***")
        lines = reason.strip().splitlines()
        reason = lines[0].rstrip(".") if lines else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot {doing} the database at {display}: {reason}. "
            "Start the database or unset AUTONOC_DATABASE_URL to use the embedded SQLite"
        ) from exc


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key of the row a single-row INSERT created."""
    pk = result.inserted_primary_key
    if pk is None or pk[0] is None:
        raise RuntimeError("the statement was not a single-row INSERT")
    return int(pk[0])


def check_database(engine: sa.Engine) -> None:
    """Run ``SELECT 1``.

    Raises:
        DatabaseUnavailable: the database cannot be reached; the message masks the password.
    """
    with map_db_errors(engine, "reach"), engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (the newest by default); a no-op when there.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    config = _alembic_config()
    with map_db_errors(engine, "migrate"), engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The database's schema revision, or ``None`` before the first :func:`upgrade`."""
    with map_db_errors(engine, "read the schema revision of"), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest schema revision this version of autonoc ships."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "autonoc ships at least one migration"
    return head
