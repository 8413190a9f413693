"""Drive rows keep their message as a template with values (shown in the page's language) and what MTIOCGET
last reported (file and block number, density code, status bits).

Revision ID: console
Revises: 0009 (0012_users)
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "console"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = (
    ("message_template", sa.Text()),
    ("message_values", sa.Text()),
    ("file_number", sa.Integer()),
    ("block_number", sa.Integer()),
    ("density", sa.Integer()),
    ("status_flags", sa.Text()),
)


def upgrade():
    with op.batch_alter_table("drives") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade():
    with op.batch_alter_table("drives") as batch:
        for name, _type in reversed(COLUMNS):
            batch.drop_column(name)
