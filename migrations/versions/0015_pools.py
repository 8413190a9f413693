"""Tape pools (retention and allocation policy) and expired tape files.

Revision ID: pools
Revises: retention (re-chain at merge)
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "pools"
down_revision = "retention"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "tape_pools",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("allocation", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("tape_files") as batch:
        batch.add_column(sa.Column("expired_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("tape_files") as batch:
        batch.drop_column("expired_at")
    op.drop_table("tape_pools")
