"""Project schedules (cron expression, time zone, enabled) and the scheduler's lease.

``scheduler_lease`` holds one row per lease name: the scheduler that holds an unexpired row is the only one
that enqueues scheduled runs; the others wait and take over when it expires.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "policy_error_values"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schedule_cron", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("schedule_timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("schedule_enabled", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_lease")),
    )


def downgrade():
    op.drop_table("scheduler_lease")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("schedule_enabled")
        batch_op.drop_column("schedule_timezone")
        batch_op.drop_column("schedule_cron")
