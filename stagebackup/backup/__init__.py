"""The backup blueprint: the live backup page, projects, history; and the app-wide web plumbing (web.py)."""

from flask import Blueprint

bp = Blueprint("backup", __name__)

from . import history_views, log_views, project_views, views, web  # noqa: E402,F401
