"""``flask tape``: drives, cartridges and the tape catalog."""

from __future__ import annotations

from flask.cli import AppGroup

tape_group = AppGroup("tape", help="Tape drives, cartridges and the tape catalog.")
