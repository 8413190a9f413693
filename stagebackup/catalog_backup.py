"""The catalog protects itself: a consistent copy of the database, and bringing it back into an empty one.

``backup_catalog`` writes a folder ``stagebackup-catalog-<UTC time>/`` holding the database copy (SQLite: the
online backup API, consistent while the worker writes; PostgreSQL: ``pg_dump --format=custom``), and
``manifest.json`` naming the copy, its SHA-256, the schema revision and the master key's *fingerprint* — never
the key. Only when asked, with a passphrase, the key is sealed into ``master.key.sealed`` (Fernet with a key
derived by scrypt from the passphrase): the folder alone then restores encrypted projects too.

``restore_catalog`` refuses a database that holds anything (it is for an empty data directory: a fresh start
creates the empty schema), loads the copy, brings its schema to this version's head, and reports what the
master key needs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from . import audit, keys
from .errors import N_, ConflictError, ValidationError
from .extensions import db
from .models import Archive, AuditEvent, Job, Project, Secret
from .schema import current_revisions, upgrade_to_head

FORMAT = "stagebackup-catalog"
FOLDER_PREFIX = "stagebackup-catalog-"
MANIFEST = "manifest.json"
SEALED_KEY = "master.key.sealed"
FILES = {"sqlite": "catalog.sqlite3", "postgresql": "catalog.pgdump"}
SCRYPT = {"n": 2**15, "r": 8, "p": 1}
#: Tables whose rows mean the database is in use: a restore never overwrites them.
IN_USE_TABLES = (Project, Job, Archive, Secret, AuditEvent)


@dataclass
class RestoreOutcome:
    database: str
    backup_key_id: str
    local_key_id: str
    key_unsealed: bool

    @property
    def key_matches(self) -> bool:
        return self.backup_key_id == self.local_key_id


def _kind() -> str:
    name = db.engine.dialect.name
    if name not in FILES:
        raise ValidationError(N_("backing up a %(kind)s database is not supported"), kind=name)
    return name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pg_command(tool: str) -> tuple[list[str], dict]:
    """The tool, its connection arguments and environment: the password goes in PGPASSWORD, not argv."""
    if shutil.which(tool) is None:
        raise ValidationError(N_("%(tool)s is not installed: install the PostgreSQL client tools"), tool=tool)
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    conninfo = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return [tool, "--dbname", conninfo], env


def _run(argv: list[str], env: dict) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise ValidationError(N_("%(tool)s failed: %(reason)s"), tool=os.path.basename(argv[0]),
                              reason=reason[-1] if reason else f"exit status {done.returncode}")


def _copy_sqlite(target: Path) -> None:
    db.session.commit()
    source = sqlite3.connect(make_url(current_app.config["SQLALCHEMY_DATABASE_URI"]).database)
    copy = sqlite3.connect(target)
    try:
        with copy:
            source.backup(copy)
    finally:
        copy.close()
        source.close()


def _master_key() -> tuple[str, bytes]:
    """(fingerprint, key) of the data directory's master key."""
    key_id = keys.ensure_master_key()
    return key_id, (Path(str(current_app.config["DATA_DIR"])) / keys.KEY_FILE).read_bytes().strip()


def _passphrase_key(passphrase: str, salt: bytes, params: dict) -> Fernet:
    derived = Scrypt(salt=salt, length=32, **params).derive(passphrase.encode("utf-8", "surrogateescape"))
    return Fernet(base64.urlsafe_b64encode(derived))


def seal_key(raw: bytes, key_id: str, passphrase: str) -> dict:
    salt = os.urandom(16)
    token = _passphrase_key(passphrase, salt, SCRYPT).encrypt(raw)
    return {"kdf": "scrypt", **SCRYPT, "salt": base64.b64encode(salt).decode(), "key_id": key_id,
            "token": token.decode("ascii")}


def unseal_key(sealed: dict, passphrase: str) -> bytes:
    try:
        params = {name: int(sealed[name]) for name in SCRYPT}
        fernet = _passphrase_key(passphrase, base64.b64decode(sealed["salt"]), params)
        return fernet.decrypt(sealed["token"].encode("ascii"))
    except InvalidToken:
        raise ValidationError(N_("the passphrase does not open the sealed master key")) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(N_("the sealed master key file is damaged (%(reason)s)"), reason=str(exc)) from None


def backup_catalog(to_dir: str, *, passphrase: str | None, actor: str) -> Path:
    """Write the catalog copy folder into ``to_dir``; returns the folder."""
    kind = _kind()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(to_dir).expanduser().resolve() / f"{FOLDER_PREFIX}{stamp}"
    try:
        folder.mkdir(parents=True, mode=0o700)
    except OSError as exc:
        raise ValidationError(N_("cannot create %(path)s: %(reason)s"), path=str(folder),
                              reason=exc.strerror or str(exc)) from None
    target = folder / FILES[kind]
    if kind == "sqlite":
        _copy_sqlite(target)
    else:
        argv, env = _pg_command("pg_dump")
        _run([*argv, "--format=custom", "--no-owner", "--no-privileges", "--file", str(target)], env)
    key_id, raw = _master_key()
    manifest = {"format": FORMAT, "version": 1, "database": kind, "file": target.name, "sha256": _sha256(target),
                "schema_revisions": sorted(current_revisions(db.engine)), "master_key_id": key_id,
                "sealed_key": SEALED_KEY if passphrase else None, "created_at": stamp}
    if passphrase:
        (folder / SEALED_KEY).write_text(json.dumps(seal_key(raw, key_id, passphrase), indent=2))
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    audit.record(actor, "catalog.backup", str(folder), details={"database": kind, "sealed_key": bool(passphrase),
                                                                "master_key_id": key_id})
    db.session.commit()
    return folder


def read_manifest(path: str) -> tuple[Path, dict]:
    """The backup folder and its manifest; ``path`` is the folder or any file in it."""
    folder = Path(path).expanduser().resolve()
    if folder.is_file():
        folder = folder.parent
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        raise ValidationError(N_("%(path)s is not a StageBackup catalog backup (no readable %(file)s)"),
                              path=str(folder), file=MANIFEST) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("database") not in FILES:
        raise ValidationError(N_("%(path)s is not a StageBackup catalog backup (no readable %(file)s)"),
                              path=str(folder), file=MANIFEST)
    return folder, manifest


def _check_empty() -> None:
    for model in IN_USE_TABLES:
        if db.session.scalar(select(func.count()).select_from(model)):
            raise ConflictError(N_("the database already holds a catalog (%(table)s has rows): restore only into "
                                   "an empty data directory and database"), table=model.__tablename__)
    db.session.rollback()


def _load(folder: Path, manifest: dict) -> None:
    kind = _kind()
    if manifest["database"] != kind:
        raise ValidationError(N_("the backup is of a %(backup)s database; this server uses %(here)s"),
                              backup=manifest["database"], here=kind)
    copy = folder / str(manifest["file"])
    if not copy.is_file() or _sha256(copy) != manifest.get("sha256"):
        raise ValidationError(N_("%(path)s is missing or damaged (its SHA-256 differs from the manifest)"),
                              path=str(copy))
    db.session.remove()
    db.engine.dispose()
    if kind == "sqlite":
        source, live = sqlite3.connect(copy), sqlite3.connect(db.engine.url.database)
        try:
            with live:
                source.backup(live)
        finally:
            source.close()
            live.close()
    else:
        argv, env = _pg_command("pg_restore")
        _run([*argv, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
              str(copy)], env)
    db.engine.dispose()


def restore_catalog(path: str, *, passphrase: str | None, actor: str) -> RestoreOutcome:
    folder, manifest = read_manifest(path)
    _check_empty()
    sealed = None
    if passphrase is not None:
        if not manifest.get("sealed_key"):
            raise ValidationError(N_("this backup holds no sealed master key (it was made without "
                                     "--with-key-sealed)"))
        sealed = unseal_key(json.loads((folder / SEALED_KEY).read_text()), passphrase)
        if hashlib.sha256(sealed).hexdigest()[:16] != manifest.get("master_key_id"):
            raise ValidationError(N_("the sealed master key is not the one the catalog names"))
    _load(folder, manifest)
    upgrade_to_head(current_app._get_current_object())
    data_dir = Path(str(current_app.config["DATA_DIR"]))
    if sealed is not None:
        keys._write_key(data_dir / keys.KEY_FILE, sealed)
    local_id, _raw = _master_key()
    audit.record(actor, "catalog.restore", str(folder), details={"master_key_id": manifest.get("master_key_id"),
                                                                 "key_unsealed": sealed is not None})
    db.session.commit()
    return RestoreOutcome(manifest["database"], str(manifest.get("master_key_id")), local_id, sealed is not None)
