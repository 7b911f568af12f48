"""Alembic environment and revisions, run by :func:`autonoc.core.db.upgrade`."""
