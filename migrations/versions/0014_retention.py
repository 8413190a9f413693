"""Retention per project (keep last N, daily/weekly/monthly/yearly, within D days) and expired archives.

Revision ID: retention
Revises: 0009 (0012_users; re-chain at merge)
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "retention"
down_revision = "console"
branch_labels = None
depends_on = None

KEEP_COLUMNS = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within_days")


def upgrade():
    with op.batch_alter_table("projects") as batch:
        for name in KEEP_COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
    with op.batch_alter_table("archives") as batch:
        batch.add_column(sa.Column("expired_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("archives") as batch:
        batch.drop_column("expired_at")
    with op.batch_alter_table("projects") as batch:
        for name in KEEP_COLUMNS:
            batch.drop_column(name)
