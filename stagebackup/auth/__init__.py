"""Sign-in, roles and the gate every request passes (Flask-Login sessions, argon2 passwords)."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from . import gate, views  # noqa: E402,F401
