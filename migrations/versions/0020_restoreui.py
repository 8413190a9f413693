"""Restore: an index for a path's versions across backups, and the operator's basket of ticked paths.

Revision ID: restoreui
Revises: span
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "restoreui"
down_revision = "span"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_archive_members_parent_name", "archive_members", ["parent", "name", "job_id"], unique=False,
                    mysql_length={"parent": 2048, "name": 255})
    op.create_table(
        "basket_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_basket_items_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_basket_items_job_id_jobs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_basket_items")),
    )
    # A unique index, not a constraint: MariaDB keys only the first bytes of a BLOB.
    op.create_index("uq_basket_items_user_job_path", "basket_items", ["user_id", "job_id", "path"], unique=True,
                    mysql_length={"path": 3000})


def downgrade():
    op.drop_table("basket_items")
    op.drop_index("ix_archive_members_parent_name", table_name="archive_members")
