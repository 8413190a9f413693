"""Jobs: the folder count shown beside the file count ("N 个文件, M 个文件夹").

Revision ID: folders
Revises: restoreui
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "folders"
down_revision = "restoreui"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("folders_total", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("folders_total")
