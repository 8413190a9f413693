"""The tapes page (/tapes): the media inventory, each tape's files, and the operator's drive and cartridge
actions, done through the same services as ``flask tape``."""

from flask import Blueprint

bp = Blueprint("tapes", __name__)

from . import actions, pool_actions, views  # noqa: E402,F401
