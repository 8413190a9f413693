"""Key escrow: the master key and the project passwords it protects, on paper, and back.

Losing ``DATA_DIR/master.key`` is the one failure that makes every encrypted backup unreadable. ``export``
writes a sheet to print and keep offline: a text file (the key and each project's password, one per line, in
a form ``import_sheet`` reads back) and an HTML page with the same text and a QR code of the key (SVG, made
by ``qrcode`` without an image library). The sheet holds secrets in clear: it is written 0600 and only after
the operator confirmed.

Until an admin confirms the current key is saved (``confirm_saved``, or an export), the pages show a banner
and ``flask keys where`` (run by ``make run``) says where the key is and how to save it. A rotated key is a
new key: the banner comes back.
"""

from __future__ import annotations

import html
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import qrcode
import qrcode.image.svg
from cryptography.fernet import Fernet
from flask import current_app
from sqlalchemy import func, select

from . import audit, keys
from .errors import N_, ConflictError, ValidationError
from .extensions import db
from .models import Project, Secret, Setting

SAVED_SETTING = "master_key_saved"
KEY_LINE, PASSWORD_LINE, ID_LINE = "master-key: ", "password: ", "master-key-id: "


@dataclass(frozen=True)
class Sheet:
    key_id: str
    key: str
    passwords: list[dict]  # {"project": name, "password": text}


def key_path() -> Path:
    return Path(str(current_app.config["DATA_DIR"])) / keys.KEY_FILE


def _collect() -> Sheet:
    key_id = keys.ensure_master_key()
    passwords = [{"project": project.name, "password": keys.reveal(project.secret_id)}
                 for project in db.session.scalars(select(Project).where(Project.secret_id.is_not(None))
                                                   .order_by(Project.name))]
    return Sheet(key_id, key_path().read_bytes().strip().decode("ascii"), passwords)


def sheet_text(sheet: Sheet) -> str:
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "STAGEBACKUP KEY ESCROW SHEET",
        "Keep it offline (a safe, not this server). Whoever holds it can read every encrypted backup.",
        f"Made {made} on {socket.gethostname()} for {current_app.config['DATA_DIR']}",
        "Restore with: flask keys import THIS-FILE (or type the key into DATA_DIR/master.key)",
        "",
        ID_LINE + sheet.key_id,
        KEY_LINE + sheet.key,
        "",
        f"Project passwords ({len(sheet.passwords)}):",
    ]
    lines += [PASSWORD_LINE + json.dumps(entry) for entry in sheet.passwords]
    return "\n".join(lines) + "\n"


def _qr_svg(data: str) -> str:
    return qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage).to_string(encoding="unicode")


def sheet_html(text: str, sheet: Sheet) -> str:
    return ("<!doctype html><meta charset=\"utf-8\"><title>StageBackup key escrow " + sheet.key_id + "</title>"
            "<h1>StageBackup master key " + sheet.key_id + "</h1>" + _qr_svg(KEY_LINE + sheet.key)
            + "<p>The QR code holds the master key line.</p><pre>" + html.escape(text) + "</pre>\n")


def _write_private(path: Path, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write(content)


def export(to_dir: str, *, actor: str) -> tuple[Path, Path]:
    """Write the sheet (text and HTML with the QR code) into ``to_dir``; records the key as saved."""
    sheet = _collect()
    folder = Path(to_dir).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        text = sheet_text(sheet)
        paths = folder / f"stagebackup-key-{sheet.key_id}.txt", folder / f"stagebackup-key-{sheet.key_id}.html"
        _write_private(paths[0], text)
        _write_private(paths[1], sheet_html(text, sheet))
    except OSError as exc:
        raise ValidationError(N_("cannot write the sheet into %(path)s: %(reason)s"), path=str(folder),
                              reason=exc.strerror or str(exc)) from None
    audit.record(actor, "keys.export_paper", sheet.key_id, details={"passwords": len(sheet.passwords)})
    confirm_saved(actor=actor)
    return paths


def parse_sheet(text: str) -> Sheet:
    key_id, key, passwords = "", "", []
    try:
        for line in text.splitlines():
            if line.startswith(KEY_LINE):
                key = line.removeprefix(KEY_LINE).strip()
            elif line.startswith(ID_LINE):
                key_id = line.removeprefix(ID_LINE).strip()
            elif line.startswith(PASSWORD_LINE):
                entry = json.loads(line.removeprefix(PASSWORD_LINE))
                passwords.append({"project": str(entry["project"]), "password": str(entry["password"])})
        Fernet(key.encode("ascii"))
    except (ValueError, KeyError, TypeError, UnicodeEncodeError):
        raise ValidationError(N_("this is not a StageBackup key escrow sheet, or it was mistyped")) from None
    if keys._fingerprint(key.encode("ascii")) != key_id:
        raise ValidationError(N_("the key on the sheet does not match its fingerprint %(id)s: check for typos"),
                              id=key_id)
    return Sheet(key_id, key, passwords)


def _secrets_using(key_id: str) -> int:
    return db.session.scalar(select(func.count(Secret.id)).where(Secret.master_key_id == key_id)) or 0


def import_sheet(text: str, *, actor: str) -> tuple[bool, list[str]]:
    """Put the sheet's key in place (unless this data directory's own key encrypts stored passwords) and set
    the password of each encrypted project whose stored one no longer opens. Returns (key written, projects)."""
    sheet = parse_sheet(text)
    current = keys.ensure_master_key()
    written = current != sheet.key_id
    if written:
        in_use = _secrets_using(current)
        if in_use:
            raise ConflictError(N_("this data directory's master key %(id)s encrypts %(n)s stored password(s): "
                                   "importing would make them unreadable"), id=current, n=in_use)
        keys._write_key(key_path(), sheet.key.encode("ascii"))
    restored = [entry["project"] for entry in sheet.passwords if _restore_password(entry)]
    audit.record(actor, "keys.import", sheet.key_id, details={"key_written": written, "projects": restored})
    confirm_saved(actor=actor)
    return written, restored


def _restore_password(entry: dict) -> bool:
    project = db.session.scalar(select(Project).where(Project.name == entry["project"]))
    if project is None or not project.encrypted:
        return False
    if project.secret_id is not None:
        try:
            keys.reveal(project.secret_id)
            return False
        except keys.MasterKeyError:
            pass
    project.secret_id = keys.store(entry["password"]).id
    return True


def saved_key_id() -> str | None:
    row = db.session.get(Setting, SAVED_SETTING)
    return (row.value or {}).get("key_id") if row is not None else None


def is_saved() -> bool:
    return saved_key_id() == keys.ensure_master_key()


def confirm_saved(*, actor: str) -> None:
    """An admin says the current master key is kept somewhere safe (committed)."""
    key_id = keys.ensure_master_key()
    row = db.session.get(Setting, SAVED_SETTING) or Setting(name=SAVED_SETTING)
    row.value = {"key_id": key_id, "by": actor, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    db.session.add(row)
    audit.record(actor, "keys.saved", key_id)
    db.session.commit()
