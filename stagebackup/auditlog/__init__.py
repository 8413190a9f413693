"""The audit log page (/audit): who did what and when, filtered by action, project and time."""

from flask import Blueprint

bp = Blueprint("audit", __name__)

from . import views  # noqa: E402,F401
