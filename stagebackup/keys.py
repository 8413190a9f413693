"""Stored secrets (project and restore passwords), encrypted at rest with the server's master key.

The master key is a Fernet key in ``DATA_DIR/master.key`` (mode 0600, created on first use). Each secret row
names the key that encrypted it by a short fingerprint, so rotation is crash-safe: ``rotate()`` writes the new
key beside the old one, re-encrypts every row in one transaction, and only then replaces the old key file.
A crash in between leaves both files, and whichever key a row names still opens it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from sqlalchemy import select

from . import audit
from .errors import N_, StageBackupError
from .extensions import db
from .models import Secret

KEY_FILE = "master.key"
NEW_KEY_FILE = "master.key.new"


class MasterKeyError(StageBackupError):
    """The master key or a secret it encrypts is unusable."""

    template = None  # free-form: each raise site passes its N_ template


def _fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def _write_key(path: Path, key: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _data_dir() -> Path:
    return Path(str(current_app.config["DATA_DIR"]))


def ensure_master_key(data_dir: Path | None = None) -> str:
    """Create the master key if there is none; returns its fingerprint."""
    path = (data_dir or _data_dir()) / KEY_FILE
    if not path.exists():
        _write_key(path, Fernet.generate_key())
    return _fingerprint(path.read_bytes().strip())


def _known_keys() -> dict[str, Fernet]:
    keys: dict[str, Fernet] = {}
    for name in (KEY_FILE, NEW_KEY_FILE):
        path = _data_dir() / name
        if path.exists():
            raw = path.read_bytes().strip()
            try:
                keys[_fingerprint(raw)] = Fernet(raw)
            except ValueError as exc:
                raise MasterKeyError(N_("the master key file %(path)s is damaged"), path=str(path)) from exc
    return keys


def _finish_interrupted_rotation() -> None:
    """A rotation that stopped after its commit left ``master.key.new``: promote it if rows use it."""
    new_path = _data_dir() / NEW_KEY_FILE
    if not new_path.exists():
        return
    new_id = _fingerprint(new_path.read_bytes().strip())
    if db.session.scalar(select(Secret.id).where(Secret.master_key_id == new_id).limit(1)) is not None:
        os.replace(new_path, _data_dir() / KEY_FILE)
    else:
        new_path.unlink()


def _current() -> tuple[str, Fernet]:
    ensure_master_key()
    raw = (_data_dir() / KEY_FILE).read_bytes().strip()
    return _fingerprint(raw), Fernet(raw)


def store(password: str) -> Secret:
    """Encrypt ``password`` into a new secret row (added to the session, not committed)."""
    if not password:
        raise StageBackupError(N_("an empty password cannot be stored"))
    key_id, fernet = _current()
    secret = Secret(ciphertext=fernet.encrypt(password.encode("utf-8", "surrogateescape")), master_key_id=key_id)
    db.session.add(secret)
    db.session.flush()
    return secret


def reveal(secret_id: int) -> str:
    """The password of a secret row; only the worker calls this, right before it needs the key."""
    secret = db.session.get(Secret, secret_id)
    if secret is None:
        raise MasterKeyError(N_("secret #%(id)s is missing: the password for this archive is gone"), id=secret_id)
    fernet = _known_keys().get(secret.master_key_id)
    if fernet is None:
        raise MasterKeyError(
            N_("secret #%(id)s was encrypted with master key %(key)s, which is not in %(dir)s: restore the data "
               "directory's %(file)s from your backup of it"),
            id=secret_id, key=secret.master_key_id, dir=str(_data_dir()), file=KEY_FILE,
        )
    try:
        return fernet.decrypt(secret.ciphertext).decode("utf-8", "surrogateescape")
    except InvalidToken as exc:
        raise MasterKeyError(N_("secret #%(id)s does not open with its master key"), id=secret_id) from exc


def rotate(*, actor: str) -> tuple[str, str, int]:
    """Re-encrypt every secret with a fresh master key; returns (old id, new id, secrets re-encrypted).
    The audit row is written in the same transaction as the new ciphertexts."""
    _finish_interrupted_rotation()
    old_id, _ = _current()
    new_key = Fernet.generate_key()
    _write_key(_data_dir() / NEW_KEY_FILE, new_key)
    known = _known_keys()
    new_id, new_fernet = _fingerprint(new_key), Fernet(new_key)
    count = 0
    for secret in db.session.scalars(select(Secret).with_for_update()):
        fernet = known.get(secret.master_key_id)
        if fernet is None:
            db.session.rollback()
            raise MasterKeyError(N_("secret #%(id)s uses master key %(key)s, which is missing"),
                                 id=secret.id, key=secret.master_key_id)
        secret.ciphertext = new_fernet.encrypt(fernet.decrypt(secret.ciphertext))
        secret.master_key_id = new_id
        count += 1
    audit.record(actor, "keys.rotate", new_id, details={"old": old_id, "secrets": count})
    db.session.commit()
    os.replace(_data_dir() / NEW_KEY_FILE, _data_dir() / KEY_FILE)
    return old_id, new_id, count
