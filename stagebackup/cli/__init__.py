"""``flask`` command groups. Errors become one-line messages with a non-zero exit code."""

from __future__ import annotations

from flask import Flask
from flask_migrate.cli import db as migrate_group

from .audit import audit_group
from .catalog import backup as _db_backup  # noqa: F401  (adds backup/restore to Flask-Migrate's db group)
from .common import third_party_errors
from .explorer import explorer_group
from .jobs import jobs_group
from .keys import keys_group
from .notify import notify_group
from .projects import projects_group
from .restore import restore_group
from .retention import retention_group
from .scheduler import scheduler_group
from .tape import tape_group
from .tape_pools import pools_group as _pools  # noqa: F401  (adds pools, recycle and erase to the tape group)
from .transfer import export as _export  # noqa: F401  (adds export/import to the projects group)
from .users import users_group
from .worker import worker_group


def register_cli(app: Flask) -> None:
    for group in (projects_group, jobs_group, worker_group, keys_group, tape_group, restore_group,
                  scheduler_group, users_group, retention_group, notify_group, explorer_group):
        app.cli.add_command(group)
    app.cli.add_command(audit_group)
    for command in migrate_group.commands.values():
        command.callback = third_party_errors(command.callback)
