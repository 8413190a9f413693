"""A restore or verify waiting for a tape keeps the label it asks for (the card and the drive card show it).

Revision ID: span
Revises: mariadb
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "span"
down_revision = "mariadb"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("waiting_label", sa.String(64), nullable=True))


def downgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("waiting_label")
