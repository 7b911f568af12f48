"""Alembic environment, configured in code by :func:`autonoc.core.db.upgrade`.

The caller passes an open connection in ``config.attributes["connection"]``
so that migrations run inside its transaction; with none, the URL comes
from ``sqlalchemy.url`` (for the ``alembic`` command line during development).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from autonoc.core.db import metadata

# Any constant works, as long as every autonoc process uses the same one.
_PG_MIGRATION_LOCK = 0x6175746F6E6F63  # "autonoc"


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two processes starting at once must not both create the tables.
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or call autonoc.core.db.upgrade(engine)")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
