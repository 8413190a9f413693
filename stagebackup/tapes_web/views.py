"""Read-only tape pages: the inventory with the drives and the shelf, and one tape's files in tape order."""

from __future__ import annotations

from flask import abort, current_app, render_template
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..auth.roles import ADMIN, VIEWER, allows, requires
from ..backup.drives import panel
from ..tape import inventory, media
from . import bp

STATE_LABELS = {
    inventory.BLANK: _l("空白"),
    inventory.APPENDABLE: _l("可追加"),
    inventory.FULL: _l("已满"),
    inventory.RETIRED: _l("已作废"),
    inventory.WRITE_PROTECTED: _l("写保护"),
}
STATE_CLASSES = {
    inventory.BLANK: "text-bg-light",
    inventory.APPENDABLE: "text-bg-success",
    inventory.FULL: "text-bg-secondary",
    inventory.RETIRED: "text-bg-dark",
    inventory.WRITE_PROTECTED: "text-bg-warning",
}
KIND_LABELS = {"label": _l("卷标"), "archive": _l("归档"), "index": _l("索引")}


@bp.get("/tapes")
@requires(VIEWER)
def index():
    return render_template("tapes/index.html", tapes=inventory.summaries(), drive_panel=panel(),
                           shelf=inventory.shelf(current_app.config), state_labels=STATE_LABELS,
                           state_classes=STATE_CLASSES, may_act=allows(current_user.role, ADMIN))


@bp.get("/tapes/<label>")
@requires(VIEWER)
def tape_files(label: str):
    tape = media.get_tape(label) or abort(404)
    return render_template("tapes/files.html", tape=tape, state=inventory.page_state(tape),
                           files=inventory.file_rows(tape), state_labels=STATE_LABELS,
                           state_classes=STATE_CLASSES, kind_labels=KIND_LABELS)
