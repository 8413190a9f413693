"""Restore: browse a backup's catalog, restore chosen paths safely, verify archives (blueprint + services)."""

from flask import Blueprint

bp = Blueprint("restore", __name__)

from . import version_views, views  # noqa: E402,F401
