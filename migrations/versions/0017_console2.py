"""The health panel's age limit of a project without a schedule (``projects.max_age_h``).

Revision ID: console2
Revises: unattended
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "console2"
down_revision = "unattended"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("max_age_h", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("max_age_h")
