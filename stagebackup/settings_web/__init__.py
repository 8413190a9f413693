"""The settings page (/settings, admins): notification targets and the master key's escrow reminder."""

from flask import Blueprint

bp = Blueprint("settings", __name__)

from . import views  # noqa: E402,F401
