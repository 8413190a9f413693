"""MySQL/MariaDB: the job locks as unique indexes on generated columns (no partial indexes there).

SQLite and PostgreSQL keep their partial unique indexes (0001, 0003); on them this revision changes nothing.
On MySQL/MariaDB each lock is a stored generated column holding the key only while the lock's condition
holds, and NULL otherwise, with a unique index on it: NULLs never collide, so the index is unique exactly
where the partial index was. stagebackup/models.py (``MYSQL_LOCKS``) describes the same columns.

Revision ID: mariadb
Revises: console2
Create Date: 2026-12-04
"""

from alembic import op

revision = "mariadb"
down_revision = "console2"
branch_labels = None
depends_on = None

# index name -> (generated column, its type, the value it holds while the lock is taken)
LOCKS = {
    "uq_jobs_one_queued_per_project": (
        "lock_queued_backup_project", "INTEGER", "CASE WHEN status = 'queued' AND kind = 'backup' THEN project_id END",
    ),
    "uq_jobs_one_running_per_drive": ("lock_running_drive", "VARCHAR(100)", "CASE WHEN status = 'running' THEN drive END"),
}


def _mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade():
    if not _mysql():
        return
    for index, (column, type_, value) in LOCKS.items():
        op.execute(f"ALTER TABLE jobs ADD COLUMN {column} {type_} AS ({value}) STORED")
        op.create_index(index, "jobs", [column], unique=True)


def downgrade():
    if not _mysql():
        return
    for index, (column, _type, _value) in LOCKS.items():
        op.drop_index(index, table_name="jobs")
        op.drop_column("jobs", column)
