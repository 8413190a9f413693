"""Job logs: index (job_id, tag, id), so the log page's tag filter and its jump to the first error are
range scans of that tag's lines instead of a walk through the whole log.

Revision ID: livepage
Revises: 0007
Create Date: 2026-12-04
"""

from alembic import op

revision = "livepage"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_job_logs_job_id_tag_id", "job_logs", ["job_id", "tag", "id"], unique=False)


def downgrade():
    op.drop_index("ix_job_logs_job_id_tag_id", table_name="job_logs")
