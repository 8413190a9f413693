from flask import Blueprint

bp = Blueprint("explorer", __name__)

from . import views  # noqa: E402,F401
