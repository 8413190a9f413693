"""Pipeline, tape and restore tables: secrets, archive members, tapes, tape files, drives; new project
and job columns. Plain SQLAlchemy types, so the migration never imports app code.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 01:05:09.420549

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _partial_indexes() -> bool:
    """MySQL and MariaDB have no partial indexes: there migration "mariadb" emulates these locks."""
    return op.get_bind().dialect.name not in ("mysql", "mariadb")


def upgrade():
    op.create_table('drives',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('device', sa.String(length=255), nullable=False),
    sa.Column('loaded_label', sa.String(length=64), nullable=True),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('write_protected', sa.Boolean(), nullable=False),
    sa.Column('busy_job_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_drives'))
    )
    op.create_table('secrets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('master_key_id', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_secrets'))
    )
    op.create_table('tapes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('pool', sa.String(length=64), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('capacity_bytes', sa.BigInteger(), nullable=False),
    sa.Column('bytes_used', sa.BigInteger(), nullable=False),
    sa.Column('write_protected', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tapes')),
    sa.UniqueConstraint('label', name=op.f('uq_tapes_label'))
    )
    op.create_table('archive_members',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('archive_id', sa.Integer(), nullable=False),
    sa.Column('parent', sa.LargeBinary(), nullable=False),
    sa.Column('name', sa.LargeBinary(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('mtime', sa.Float(), nullable=False),
    sa.Column('mode', sa.Integer(), nullable=False),
    sa.Column('link_target', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['archive_id'], ['archives.id'], name=op.f('fk_archive_members_archive_id_archives')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_archive_members_job_id_jobs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_archive_members'))
    )
    with op.batch_alter_table('archive_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_archive_members_archive_id'), ['archive_id'], unique=False)
        # MySQL/MariaDB index a BLOB by a prefix (keys hold at most 3072 bytes); a name is at most 255 bytes.
        batch_op.create_index('ix_archive_members_job_parent_name', ['job_id', 'parent', 'name'], unique=False,
                              mysql_length={'parent': 2048, 'name': 255})

    op.create_table('tape_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tape_id', sa.Integer(), nullable=False),
    sa.Column('file_number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('archive_id', sa.Integer(), nullable=True),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('piece', sa.Integer(), nullable=False),
    sa.Column('block_size', sa.Integer(), nullable=False),
    sa.Column('blocks', sa.BigInteger(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('written_at', sa.DateTime(), nullable=False),
    sa.Column('verified_at', sa.DateTime(), nullable=True),
    sa.Column('void', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['archive_id'], ['archives.id'], name=op.f('fk_tape_files_archive_id_archives')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_tape_files_job_id_jobs')),
    sa.ForeignKeyConstraint(['tape_id'], ['tapes.id'], name=op.f('fk_tape_files_tape_id_tapes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tape_files')),
    sa.UniqueConstraint('tape_id', 'file_number', name=op.f('uq_tape_files_tape_id'))
    )
    with op.batch_alter_table('tape_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tape_files_archive_id'), ['archive_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tape_files_job_id'), ['job_id'], unique=False)

    with op.batch_alter_table('archives', schema=None) as batch_op:
        batch_op.add_column(sa.Column('input_bytes', sa.BigInteger(), nullable=False, server_default=sa.text("'0'")))
        batch_op.add_column(sa.Column('name', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('secret_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('kdf_iterations', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_archives_secret_id_secrets'), 'secrets', ['secret_id'], ['id'])

    # Restores and verifies may queue beside a project's backup: the one-queued lock is for backups.
    if _partial_indexes():
        op.drop_index("uq_jobs_one_queued_per_project", table_name="jobs")
        op.create_index(
            "uq_jobs_one_queued_per_project", "jobs", ["project_id"], unique=True,
            sqlite_where=sa.text("status = 'queued' AND kind = 'backup'"),
            postgresql_where=sa.text("status = 'queued' AND kind = 'backup'"),
        )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_job_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('params', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('plan', sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_jobs_source_job_id_jobs'), 'jobs', ['source_job_id'], ['id'])

    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('encrypted', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('secret_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sync_strategy', sa.String(length=16), nullable=False, server_default=sa.text("'overwrite'")))
        batch_op.add_column(sa.Column('allow_mass_delete', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('group_max_bytes', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('dest_drive', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('dest_pool', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('verify_after_write', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.create_foreign_key(batch_op.f('fk_projects_secret_id_secrets'), 'secrets', ['secret_id'], ['id'])



def downgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_projects_secret_id_secrets'), type_='foreignkey')
        batch_op.drop_column('verify_after_write')
        batch_op.drop_column('dest_pool')
        batch_op.drop_column('dest_drive')
        batch_op.drop_column('group_max_bytes')
        batch_op.drop_column('allow_mass_delete')
        batch_op.drop_column('sync_strategy')
        batch_op.drop_column('secret_id')
        batch_op.drop_column('encrypted')

    if _partial_indexes():
        op.drop_index("uq_jobs_one_queued_per_project", table_name="jobs")
        op.create_index(
            "uq_jobs_one_queued_per_project", "jobs", ["project_id"], unique=True,
            sqlite_where=sa.text("status = 'queued'"), postgresql_where=sa.text("status = 'queued'"),
        )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_jobs_source_job_id_jobs'), type_='foreignkey')
        batch_op.drop_column('plan')
        batch_op.drop_column('params')
        batch_op.drop_column('source_job_id')

    with op.batch_alter_table('archives', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_archives_secret_id_secrets'), type_='foreignkey')
        batch_op.drop_column('kdf_iterations')
        batch_op.drop_column('secret_id')
        batch_op.drop_column('name')
        batch_op.drop_column('input_bytes')

    # Tables go with their indexes (MySQL/MariaDB refuse to drop first an index a foreign key needs).
    op.drop_table('tape_files')
    op.drop_table('archive_members')
    op.drop_table('tapes')
    op.drop_table('secrets')
    op.drop_table('drives')
