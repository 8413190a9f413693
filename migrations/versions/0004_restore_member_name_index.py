"""Restore: index archive members by name, so a name search is a range scan (not a scan of the catalog).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 01:40:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_archive_members_job_name', 'archive_members', ['job_id', 'name', 'id'], unique=False,
                    mysql_length={'name': 255})  # MySQL/MariaDB index a BLOB by a prefix; a name is <= 255 bytes


def downgrade():
    op.drop_index('ix_archive_members_job_name', table_name='archive_members')
