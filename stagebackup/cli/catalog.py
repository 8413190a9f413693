"""``flask db backup``, ``restore`` and ``copy``: added to Flask-Migrate's ``db`` group, beside ``upgrade``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate.cli import db as db_group

from .. import catalog_backup, dbcopy
from ..tape import catalog_copy
from ..tape.drives import resolve
from .common import NAME, PathArg, actor, echo_json, operator_errors, read_password


@db_group.command("backup")
@click.option("--to", "to_dir", type=PathArg(file_okay=False), default=None,
              help="Folder to write the copy into (default: DATA_DIR/catalog-backups). Keep it off this disk.")
@click.option("--to-tape", "to_tape", type=NAME, default=None,
              help="Append the copy (one tar file) to the labelled tape in this drive instead of a folder.")
@click.option("--with-key-sealed", is_flag=True,
              help="Also store the master key, encrypted with a passphrase read from standard input.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
@operator_errors
def backup(to_dir, to_tape, with_key_sealed, as_json):
    """Write a consistent copy of the catalog database and the master key's fingerprint (never the key)."""
    if to_dir and to_tape:
        raise click.UsageError("--to and --to-tape exclude each other")
    passphrase = read_password() if with_key_sealed else None
    if to_tape:
        _backup_to_tape(to_tape, passphrase, as_json)
        return
    target = to_dir or str(Path(str(current_app.config["DATA_DIR"])) / "catalog-backups")
    folder = catalog_backup.backup_catalog(target, passphrase=passphrase, actor=actor())
    _, manifest = catalog_backup.read_manifest(str(folder))
    if as_json:
        echo_json({"folder": str(folder), **manifest})
        return
    click.echo(f"catalog copied to {folder}")
    click.echo(f"master key {manifest['master_key_id']}: "
               + ("sealed with your passphrase in the same folder" if with_key_sealed else
                  "NOT in the copy: keep DATA_DIR/master.key safe elsewhere (or use --with-key-sealed)"))


def _backup_to_tape(drive: str, passphrase: str | None, as_json: bool) -> None:
    app = current_app._get_current_object()
    copy = catalog_copy.copy_to_tape(app, app.config, resolve(app.config, drive), passphrase=passphrase, actor=actor())
    if as_json:
        echo_json({"drive": drive, **dataclasses.asdict(copy)})
        return
    click.echo(f"catalog copied to tape {copy.label} file {copy.file_number} ({copy.bytes} bytes, sha256 "
               f"{copy.sha256}); master key " + ("sealed in it" if passphrase else "NOT in it: keep it safe elsewhere"))
    click.echo(f"restore: flask tape read {drive} --file {copy.file_number} --out copy.tar && tar xf copy.tar && "
               f"flask db restore {copy.folder_name}")


@db_group.command("restore")
@click.argument("path", type=PathArg(exists=True))
@click.option("--key-passphrase-stdin", is_flag=True,
              help="Unseal the master key stored by --with-key-sealed with the passphrase on standard input.")
@with_appcontext
@operator_errors
def restore(path, key_passphrase_stdin):
    """Load a catalog copy (its folder or a file in it) into this EMPTY data directory and database."""
    passphrase = read_password() if key_passphrase_stdin else None
    outcome = catalog_backup.restore_catalog(path, passphrase=passphrase, actor=actor())
    key_file = Path(str(current_app.config["DATA_DIR"])) / "master.key"
    click.echo(f"catalog restored ({outcome.database}); schema upgraded to this version")
    if outcome.key_unsealed:
        click.echo(f"master key {outcome.backup_key_id} unsealed into {key_file}")
    elif outcome.key_matches:
        click.echo(f"master key {outcome.local_key_id} in {key_file} is the catalog's")
    else:
        click.echo(f"master key: the catalog's passwords are encrypted with key {outcome.backup_key_id}, but "
                   f"{key_file} is {outcome.local_key_id}. Copy your saved master.key (fingerprint "
                   f"{outcome.backup_key_id}) over it before starting StageBackup, or run this restore again on an "
                   "empty data directory with --key-passphrase-stdin if the copy was made --with-key-sealed. "
                   "Without it, encrypted projects need their passwords typed again.")


@db_group.command("copy")
@click.option("--to", "url", required=True, metavar="URL",
              help="The EMPTY database to fill, e.g. postgresql+psycopg://user:pw@host/stagebackup or "
                   "mysql+pymysql://user:pw@host/stagebackup?charset=utf8mb4.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
@operator_errors
def copy(url, as_json):
    """Copy every row of this database into an empty one (schema created there first). Stop the worker first."""
    outcome = dbcopy.copy_database(url)
    if as_json:
        echo_json({"target": outcome.target, "rows": outcome.rows})
        return
    click.echo(f"copied {sum(outcome.rows.values())} rows in {len(outcome.rows)} tables to {outcome.target}")
    click.echo(f"to use it: STAGEBACKUP_DATABASE_URL={outcome.target} (with its password)")
