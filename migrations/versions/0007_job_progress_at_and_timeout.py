"""Jobs: ``progress_at`` (bytes or files last advanced, apart from the heartbeat) and a time limit.

``jobs.timeout_s`` is copied from ``projects.job_timeout_s`` when a job is queued, so changing the project
later does not move the limit of a job already running.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("timeout_s", sa.Integer(), nullable=True))
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_timeout_s", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("job_timeout_s")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("timeout_s")
        batch_op.drop_column("progress_at")
