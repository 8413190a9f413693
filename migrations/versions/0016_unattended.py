"""Notifications (targets and their outbox), server settings (the master key's escrow confirmation), and a
tape project's option to append a catalog copy after each session.

Revision ID: unattended
Revises: pools
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "unattended"
down_revision = "pools"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("catalog_copy_to_tape", sa.Boolean(), nullable=False,
                                   server_default=sa.text("false")))
    op.create_table(
        "notification_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_id", sa.Integer(), nullable=False),
        sa.Column("masked_url", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("stale_after_hours", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["secret_id"], ["secrets.id"],
                                name=op.f("fk_notification_targets_secret_id_secrets")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_notification_targets_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_targets")),
        sa.UniqueConstraint("name", name=op.f("uq_notification_targets_name")),
    )
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("gave_up_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["target_id"], ["notification_targets.id"],
                                name=op.f("fk_notification_outbox_target_id_notification_targets")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_notification_outbox_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
    )
    op.create_index("ix_notification_outbox_pending", "notification_outbox",
                    ["delivered_at", "gave_up_at", "next_attempt_at"])
    op.create_index("ix_notification_outbox_target_event", "notification_outbox",
                    ["target_id", "event", "project_id"])
    op.create_table(
        "settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_settings")),
    )


def downgrade():
    op.drop_table("settings")
    # The table's indexes go with it (MariaDB refuses to drop an index a foreign key needs).
    op.drop_table("notification_outbox")
    op.drop_table("notification_targets")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("catalog_copy_to_tape")
