"""History: one sample per series and instant, rollups for old data, events.

Samples become unique on (device, metric, instance, ts) so that a batch the
telemetry bus delivers twice is stored once. A database from 0001 may hold
duplicates (the same poll written twice): they are removed first, keeping the
row written last, which is the one ``SampleStore.latest`` showed before.

Revision ID: 0002
Revises: 0001
Create Date: 2026-03-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the type in autonoc.core.db: a migration must not change
# when the application's declarations do.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Keeps, per series and instant, the newest row. The correlated subquery walks
# the 0001 index on (device, metric, instance, ts), on SQLite and PostgreSQL alike.
_DEDUPE_SAMPLES = """
DELETE FROM samples
WHERE EXISTS (
    SELECT 1 FROM samples AS newer
    WHERE newer.device = samples.device
      AND newer.metric = samples.metric
      AND newer.instance = samples.instance
      AND newer.ts = samples.ts
      AND newer.id > samples.id
)
"""


def upgrade() -> None:
    op.execute(_DEDUPE_SAMPLES)
    op.drop_index("ix_samples_device_metric_instance_ts", table_name="samples")
    op.create_index(
        "uq_samples_device_metric_instance_ts",
        "samples",
        ["device", "metric", "instance", "ts"],
        unique=True,
    )
    op.create_index("ix_samples_ts", "samples", ["ts"])

    op.create_table(
        "sample_rollups",
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
        sa.PrimaryKeyConstraint("id", name="pk_sample_rollups"),
    )
    op.create_index(
        "uq_sample_rollups_device_metric_instance_resolution_s_bucket",
        "sample_rollups",
        ["device", "metric", "instance", "resolution_s", "bucket"],
        unique=True,
    )
    op.create_index("ix_sample_rollups_bucket", "sample_rollups", ["bucket"])

    op.create_table(
        "events",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("device", sa.String(), nullable=False),
        sa.Column("instance", sa.String(), nullable=False, server_default=""),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index(
        "uq_events_device_instance_kind_ts",
        "events",
        ["device", "instance", "kind", "ts"],
        unique=True,
    )
    op.create_index("ix_events_ts", "events", ["ts"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("sample_rollups")
    op.drop_index("ix_samples_ts", table_name="samples")
    op.drop_index("uq_samples_device_metric_instance_ts", table_name="samples")
    op.create_index(
        "ix_samples_device_metric_instance_ts", "samples", ["device", "metric", "instance", "ts"]
    )
