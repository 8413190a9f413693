"""Audit events name their project (``audit_events.project``) so the audit page filters by it after the
project's jobs are pruned; indexes for the page's filters (newest first, keyset by id).

Existing rows get the project as ``audit.record`` now names it: from ``details["project"]`` (job events) or
from ``target`` (``project.*`` and ``schedule.*`` events).

Revision ID: transfer_audit_project
Revises: 0008
Create Date: 2026-12-04
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "transfer_audit_project"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("project", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_audit_events_project_id", ["project", "id"], unique=False)
        batch_op.create_index("ix_audit_events_action_id", ["action", "id"], unique=False)
    conn = op.get_bind()
    events = sa.table("audit_events", sa.column("id"), sa.column("action"), sa.column("target"),
                      sa.column("details"), sa.column("project"))
    for row in conn.execute(sa.select(events.c.id, events.c.action, events.c.target, events.c.details)):
        project = _details_project(row.details)
        if project is None and row.action.startswith(("project.", "schedule.")):
            project = row.target
        if project:
            conn.execute(events.update().where(events.c.id == row.id).values(project=project[:200]))


def _details_project(raw):
    try:
        value = json.loads(raw).get("project") if raw else None
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def downgrade():
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_action_id")
        batch_op.drop_index("ix_audit_events_project_id")
        batch_op.drop_column("project")
