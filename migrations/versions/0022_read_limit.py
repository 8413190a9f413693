"""Projects: a read bandwidth limit, bytes per second ("读取限速"; None: no limit).

Revision ID: readlimit
Revises: folders
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "readlimit"
down_revision = "folders"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("read_limit_bytes_s", sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("read_limit_bytes_s")
