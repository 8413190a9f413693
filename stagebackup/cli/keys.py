"""``flask keys``: the master key that encrypts stored passwords."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from .. import escrow, keys
from .common import File, PathArg, actor, operator_errors

keys_group = AppGroup("keys", help="Manage the master key that encrypts stored passwords.")


@keys_group.command("rotate")
@operator_errors
def rotate():
    """Re-encrypt every stored password with a new master key (the old key file is replaced)."""
    old_id, new_id, count = keys.rotate(actor=actor())
    click.echo(f"master key {old_id} replaced by {new_id}; {count} stored password(s) re-encrypted")
    click.echo("Back up the new DATA_DIR/master.key: without it, stored passwords cannot be read.")


@keys_group.command("export-paper")
@click.option("--to", "to_dir", type=PathArg(file_okay=False), default=".", show_default=True,
              help="Folder for the sheet: a text file and an HTML page with a QR code. Print it, then delete it.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_errors
def export_paper(to_dir, yes):
    """Write the master key and the project passwords it protects IN CLEAR, as a sheet to print and keep offline."""
    if not yes:
        click.confirm("The sheet holds the master key and every project password in clear. Write it?", abort=True)
    text_path, html_path = escrow.export(to_dir, actor=actor())
    click.echo(f"key escrow sheet written: {text_path} and {html_path} (with the QR code)")
    click.echo("Print it, keep it offline (a safe), then delete the files. Restore with `flask keys import FILE`.")


@keys_group.command("import")
@click.argument("sheet", type=File("r", encoding="utf-8", errors="surrogateescape"))
@operator_errors
def import_sheet(sheet):
    """Restore the master key and project passwords from a key escrow sheet (its text file, or - for stdin)."""
    written, projects = escrow.import_sheet(sheet.read(), actor=actor())
    click.echo(f"master key {'written to ' + str(escrow.key_path()) if written else 'already in place'}")
    click.echo(f"passwords restored for {len(projects)} project(s)" + (f": {', '.join(projects)}" if projects else ""))


@keys_group.command("where")
@click.option("--unsaved-only", is_flag=True, help="Say nothing once an admin confirmed the key is saved.")
def where(unsaved_only):
    """Where the master key is and how to save it (``make run`` calls this)."""
    if unsaved_only and escrow.is_saved():
        return
    click.echo(f"The master key is {escrow.key_path()} (fingerprint {keys.ensure_master_key()}). Losing it makes "
               "every encrypted backup unreadable: save it with `flask keys export-paper` and keep the sheet "
               "offline, or copy the file somewhere safe and confirm on the settings page.")


@keys_group.command("saved")
@operator_errors
def saved():
    """Confirm the current master key is kept somewhere safe (the pages stop reminding admins)."""
    escrow.confirm_saved(actor=actor())
    click.echo(f"master key {keys.ensure_master_key()} recorded as saved")
