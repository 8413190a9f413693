"""Jobs: a failed job keeps its error's message template and named values, so its card can show the
error in the page's language (errors.py); ``error_message`` stays the English text.

Revision ID: policy_error_values
Revises: 0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "policy_error_values"
down_revision = "livepage"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_template", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("error_values", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("error_values")
        batch_op.drop_column("error_template")
