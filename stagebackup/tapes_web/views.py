"""Read-only tape pages: the inventory with the drives and the shelf, and one tape's files in tape order."""

from __future__ import annotations

from flask import abort, current_app, render_template, request
from flask_login import current_user

from ..auth.roles import ADMIN, VIEWER, allows, requires
from ..backup.drives import panel
from ..catalogue import lazy_gettext as _l
from ..tape import inventory, media, pools, recycle
from . import bp

STATE_LABELS = {
    inventory.BLANK: _l("空白"),
    inventory.APPENDABLE: _l("可追加"),
    inventory.FULL: _l("已满"),
    inventory.EXPIRED: _l("已过期"),
    inventory.RETIRED: _l("已作废"),
    inventory.WRITE_PROTECTED: _l("写保护"),
}
STATE_CLASSES = {
    inventory.BLANK: "text-bg-light",
    inventory.APPENDABLE: "text-bg-success",
    inventory.FULL: "text-bg-secondary",
    inventory.EXPIRED: "text-bg-info",
    inventory.RETIRED: "text-bg-dark",
    inventory.WRITE_PROTECTED: "text-bg-warning",
}
KIND_LABELS = {"label": _l("卷标"), "archive": _l("归档"), "index": _l("索引")}
ALLOCATION_LABELS = {pools.APPEND: _l("追加到当前磁带"), pools.PER_JOB: _l("每个任务用新磁带"),
                     pools.PER_DAY: _l("每天用新磁带")}


@bp.get("/tapes")
@requires(VIEWER)
def index():
    known = pools.all_policies()
    chosen = request.args.get("pool") or None
    chosen = chosen if chosen in {p.name for p in known} else None
    return render_template("tapes/index.html", tapes=inventory.summaries(chosen), drive_panel=panel(),
                           shelf=inventory.shelf(current_app.config), state_labels=STATE_LABELS,
                           state_classes=STATE_CLASSES, may_act=allows(current_user.role, ADMIN), pools=known,
                           pool=chosen, allocation_labels=ALLOCATION_LABELS, reusable=recycle.reusable())


@bp.get("/tapes/<label>")
@requires(VIEWER)
def tape_files(label: str):
    tape = media.get_tape(label) or abort(404)
    files = inventory.file_rows(tape)
    data_files = sum(1 for f in files if f["kind"] != "label")
    return render_template("tapes/files.html", tape=tape, state=inventory.page_state(tape, data_files),
                           files=files, state_labels=STATE_LABELS,
                           state_classes=STATE_CLASSES, kind_labels=KIND_LABELS)
