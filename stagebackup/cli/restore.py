"""``flask restore``: restore or verify a finished backup."""

from __future__ import annotations

from flask.cli import AppGroup

restore_group = AppGroup("restore", help="Restore or verify a finished backup.")
