"""``flask keys``: the master key that encrypts stored passwords."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from .. import keys
from .common import actor, operator_errors

keys_group = AppGroup("keys", help="Manage the master key that encrypts stored passwords.")


@keys_group.command("rotate")
@operator_errors
def rotate():
    """Re-encrypt every stored password with a new master key (the old key file is replaced)."""
    old_id, new_id, count = keys.rotate(actor=actor())
    click.echo(f"master key {old_id} replaced by {new_id}; {count} stored password(s) re-encrypted")
    click.echo("Back up the new DATA_DIR/master.key: without it, stored passwords cannot be read.")
