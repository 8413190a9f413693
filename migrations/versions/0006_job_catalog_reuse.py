"""Jobs: a sync run that found its mirror unchanged refers to the catalog recorded by an earlier run.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("catalog_job_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_jobs_catalog_job_id_jobs", "jobs", ["catalog_job_id"], ["id"])


def downgrade():
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint("fk_jobs_catalog_job_id_jobs", type_="foreignkey")
        batch_op.drop_column("catalog_job_id")
