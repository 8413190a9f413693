from flask import Blueprint

bp = Blueprint("explorer", __name__)

from . import picker, views  # noqa: E402,F401
