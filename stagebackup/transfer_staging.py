"""An uploaded import file kept between its preview and the operator's confirmation.

The file waits in ``DATA_DIR/imports/<token>.json`` (a random token, so one browser cannot guess another's),
not in a hidden form field: it may be megabytes. Files older than a day are removed at the next upload.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from flask import current_app

from .errors import N_, ValidationError

MAX_AGE_S = 24 * 3600
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


def _dir() -> Path:
    return Path(str(current_app.config["DATA_DIR"])) / "imports"


def stage(raw: bytes) -> str:
    folder = _dir()
    folder.mkdir(mode=0o700, exist_ok=True)
    _prune(folder)
    token = secrets.token_hex(16)
    fd = os.open(folder / f"{token}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
    return token


def read(token: str) -> bytes:
    try:
        if not _TOKEN.match(token or ""):
            raise FileNotFoundError(token)
        return (_dir() / f"{token}.json").read_bytes()
    except FileNotFoundError:
        raise ValidationError(N_("the uploaded file is no longer here (it was imported or expired): upload it "
                                 "again")) from None


def discard(token: str) -> None:
    if _TOKEN.match(token or ""):
        (_dir() / f"{token}.json").unlink(missing_ok=True)


def _prune(folder: Path) -> None:
    cutoff = time.time() - MAX_AGE_S
    for path in folder.glob("*.json"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass
