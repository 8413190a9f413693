"""What the tapes page does to drives and cartridges: the ``flask tape`` services (tape/admin.py,
tape/vlibrary.py), each a short operation that opens the device and closes it before the answer.

A drive a job holds is refused at once with the job's number. Labelling over a labelled or foreign tape,
or with a label the inventory already has, destroys data: a tape of ours goes only when it is blank or
expired (``tape/recycle.py``), and then only when the operator typed the name the refusal asks for (the
old label, the taken label, or the drive for a tape of unknown origin). Erasing asks for the label too.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext

from .. import audit
from ..auth.accounts import web_actor
from ..auth.roles import ADMIN, requires
from ..errors import N_, StageBackupError, fill, translate
from ..extensions import db
from ..tape import admin, media
from ..tape.drives import VIRTUAL, configured, is_virtual
from ..tape.errors import AlreadyLabelled, DriveBusy, ForeignTape, LabelTaken, TapeInputError, UnknownDrive
from . import bp

MAX_NAME = 64


def _back():
    return redirect(url_for("tapes.index"))


def _refuse(error: StageBackupError):
    db.session.rollback()
    flash(error.translate(gettext), "danger")
    return _back()


def _done(action: str, target: str, message: str, details: dict | None = None):
    """The action succeeded: into the audit log, then back to the page with the message."""
    audit.record(web_actor(), action, target, details=details)
    db.session.commit()
    flash(message, "success")
    return _back()


def _drive(name: str) -> str:
    """A configured drive that no job holds (DriveBusy names the job)."""
    if name not in configured(current_app.config):
        raise UnknownDrive(name, ", ".join(sorted(configured(current_app.config))) or "none")
    row = media.drive_row(name)
    if row is not None and row.busy_job_id:
        raise DriveBusy(name, f" (job #{row.busy_job_id})")
    return name


def _field(name: str) -> str:
    return (request.form.get(name) or "").strip()[:MAX_NAME + 1]


# A refusal to overwrite, as the page words it (the CLI's own says "add --force"), and what must be typed.
OVERWRITE_PROMPTS = {
    AlreadyLabelled: (N_("磁带机 %(drive)s 中的磁带已有卷标 %(label)s。要覆盖它（其数据将丢失），"
                         "请在确认框中输入 %(label)s。"), "label"),
    LabelTaken: (N_("卷标 %(label)s 已属于清单中的另一盘磁带。要仍然使用它（那盘磁带将作废），"
                    "请在确认框中输入 %(label)s。"), "label"),
    ForeignTape: (N_("磁带机 %(drive)s 中的磁带不是 StageBackup 写的（%(detail)s）。要覆盖它，"
                     "请在确认框中输入 %(drive)s。"), "drive"),
}


@bp.post("/tapes/drives/<drive>/label")
@requires(ADMIN)
def label_tape(drive: str):
    config = current_app.config
    name, pool, typed = _field("label"), _field("pool") or "default", _field("confirm")
    try:
        drive = _drive(drive)
        if len(pool) > MAX_NAME:
            raise TapeInputError(drive, "the pool name is longer than 64 characters")
        try:
            tape = admin.label(config, drive, name, pool=pool, force=False, actor=web_actor())
            forced = False
        except (AlreadyLabelled, LabelTaken, ForeignTape) as refusal:
            db.session.rollback()
            prompt, key = OVERWRITE_PROMPTS[type(refusal)]
            values = {"drive": drive, **refusal.values}
            if not typed or typed != values.get(key):
                flash(translate(gettext, prompt, values) or fill(prompt, values), "danger")
                return _back()
            tape = admin.label(config, drive, name, pool=pool, force=True, actor=web_actor())
            forced = True
    except StageBackupError as exc:
        return _refuse(exc)
    return _done("tape.label", name, gettext("已在 %(drive)s 中为磁带写入卷标 %(label)s（池 %(pool)s）。", drive=drive,
                                             label=tape["label"], pool=tape["pool"]),
                 {"drive": drive, "pool": pool, "force": forced, "over": tape["over"]})


@bp.post("/tapes/drives/<drive>/erase")
@requires(ADMIN)
def erase_tape(drive: str):
    """Erase the expired tape in the drive once the operator typed its label (EraseNotConfirmed asks)."""
    try:
        drive = _drive(drive)
        erased = admin.erase(current_app.config, drive, confirm=_field("confirm"), actor=web_actor())
    except StageBackupError as exc:
        return _refuse(exc)
    return _done("tape.erase", erased["label"], gettext("已擦除 %(drive)s 中的磁带 %(label)s，它现在是空白磁带。",
                                                        drive=drive, label=erased["label"]),
                 {"drive": drive, "pool": erased["pool"]})


@bp.post("/tapes/drives/<drive>/load")
@requires(ADMIN)
def load_tape(drive: str):
    config = current_app.config
    cartridge = _field("cartridge") or None
    try:
        drive = _drive(drive)
        if is_virtual(config, drive) and cartridge is None:
            raise TapeInputError(drive, "choose a cartridge from the shelf")
        data = admin.load(config, drive, cartridge if is_virtual(config, drive) else None, create=False)
    except StageBackupError as exc:
        return _refuse(exc)
    shown = data["label"] or data["cartridge"] or ""
    return _done("tape.load", drive, gettext("已在 %(drive)s 中装入 %(name)s。", drive=drive, name=shown),
                 {"cartridge": cartridge})


@bp.post("/tapes/drives/<drive>/eject")
@requires(ADMIN)
def eject_tape(drive: str):
    try:
        drive = _drive(drive)
        admin.eject(current_app.config, drive)
    except StageBackupError as exc:
        return _refuse(exc)
    return _done("tape.eject", drive, gettext("已从 %(drive)s 退出磁带。", drive=drive))


def _need_virtual_drive() -> None:
    if VIRTUAL not in configured(current_app.config).values():
        abort(404)


@bp.post("/tapes/cartridges")
@requires(ADMIN)
def create_cartridge():
    _need_virtual_drive()
    name = _field("name")
    try:
        admin.create_cartridge(current_app.config, name)
    except StageBackupError as exc:
        return _refuse(exc)
    return _done("tape.cartridge_create", name, gettext("已创建空白虚拟磁带 %(name)s。", name=name))


@bp.post("/tapes/cartridges/<name>/write-protect")
@requires(ADMIN)
def write_protect(name: str):
    _need_virtual_drive()
    protected = request.form.get("protected") == "1"
    try:
        admin.set_write_protect(current_app.config, name, protected)
    except StageBackupError as exc:
        return _refuse(exc)
    return _done("tape.write_protect", name, gettext("虚拟磁带 %(name)s 已设为写保护。", name=name) if protected
                 else gettext("虚拟磁带 %(name)s 已取消写保护。", name=name), {"protected": protected})
