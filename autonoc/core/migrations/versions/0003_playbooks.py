"""Playbooks: the run journal, configuration snapshots, tickets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of autonoc.core.db's types: a migration must not change with the app.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "playbook_runs",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("plan_hash", sa.String(), nullable=False),
        sa.Column("playbook", sa.String(), nullable=False),
        sa.Column("device", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", _Timestamp, nullable=False),
        sa.Column("updated_at", _Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_playbook_runs"),
    )
    op.create_index("ix_playbook_runs_plan_hash", "playbook_runs", ["plan_hash"])
    op.create_table(
        "config_snapshots",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("device", sa.String(), nullable=False),
        sa.Column("taken_at", _Timestamp, nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("good", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_config_snapshots"),
    )
    op.create_index(
        "ix_config_snapshots_device_taken_at", "config_snapshots", ["device", "taken_at"]
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("device", sa.String(), nullable=False),
        sa.Column("component", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("plan_hash", sa.String(), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", _Timestamp, nullable=False),
        sa.Column("closed_at", _Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sa.UniqueConstraint(
            "plan_hash", "queue", "reason", name="uq_tickets_plan_hash_queue_reason"
        ),
    )
    op.create_index("ix_tickets_status_opened_at", "tickets", ["status", "opened_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_status_opened_at", table_name="tickets")
    op.drop_table("tickets")
    op.drop_index("ix_config_snapshots_device_taken_at", table_name="config_snapshots")
    op.drop_table("config_snapshots")
    op.drop_index("ix_playbook_runs_plan_hash", table_name="playbook_runs")
    op.drop_table("playbook_runs")
