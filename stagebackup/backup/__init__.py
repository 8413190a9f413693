from flask import Blueprint

bp = Blueprint("backup", __name__)

from . import views  # noqa: E402,F401
