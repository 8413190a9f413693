"""Configuration: defaults, overridden by ``STAGEBACKUP_<KEY>`` environment variables.

Every process (web, worker, scheduler, CLI) builds its config the same way, so they agree on the
data directory and the database without sharing anything else.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

ENV_PREFIX = "STAGEBACKUP_"

DEFAULTS: dict[str, object] = {
    # Where everything lives: database, cache, master keys, virtual tapes.
    "DATA_DIR": "./data",
    # Empty means SQLite at DATA_DIR/backup_system.db.
    "DATABASE_URL": "",
    # Empty means DATA_DIR/cache (seed 001 §2.2: a persistent cache on the data disk, not /tmp).
    "CACHE_DIR": "",
    "SCHEMA_AUTO_UPGRADE": True,
    "HEARTBEAT_INTERVAL_S": 5.0,
    # A running job whose worker has not reported for this long is declared interrupted.
    "WORKER_STALE_AFTER_S": 120.0,
    # A running job whose bytes and files have not advanced for this long shows "no progress for N min" on
    # its card (the worker is alive: slow or stuck, not dead).
    "STALL_WARNING_S": 300.0,
    "PROGRESS_FLUSH_INTERVAL_S": 1.0,
    # The backup page's live regions (drive card, last backups, recent jobs) are the same for every open page:
    # one rendering per language serves every poll for this long (0: each poll renders its own). Rendering them
    # costs ~8 ms at 50 projects, and every open page polls them each second (docs/performance.md).
    "LIVE_REGIONS_SHARED_S": 0.5,
    "QUEUE_POLL_INTERVAL_S": 1.0,
    "JOB_MAX_ATTEMPTS": 3,
    # A job whose [ERROR] lines (unreadable files…) exceed this share of its files ends failed, not warning:
    # a backup that missed that much is not one to rely on.
    "ERROR_FAIL_RATIO": 0.10,
    # Scheduler (`flask scheduler run`): runs missed while it was down are coalesced into one run if the
    # latest of them is at most this old, otherwise dropped (and logged in the audit log).
    "SCHEDULE_MISFIRE_GRACE_S": 3600,
    # Only the holder of the database lease enqueues; it renews it every third of this, and a waiting
    # scheduler takes over this long after the holder died. Schedule edits are noticed within a poll.
    "SCHEDULER_LEASE_S": 30.0,
    "SCHEDULER_POLL_INTERVAL_S": 1.0,
    "COMPRESS_THREADS": 0,  # 0 = all cores
    "SYNC_CATALOG_PROCESS_MIN_BYTES": 1 << 20,  # see jobs/mirror_catalog.py (10,000-20,000 entries)
    "WORKER_GIL_SWITCH_INTERVAL_S": 0.0005,  # see cli/worker.py
    # The worker runs its jobs this much below the default CPU priority (nice, 0-19; see cli/worker.py).
    "WORKER_NICE": 10,
    "SQLITE_BUSY_TIMEOUT_MS": 30000,
    # Pipeline (issue: formats, encryption, sync, groups).
    "ARCHIVE_GROUP_MAX_BYTES": 4 * 1024**3,  # input bytes per archive; 0 = one archive per backup
    # Seed 001: stream the archive straight to the destination instead of staging it in the cache.
    "COMPRESS_DIRECTLY_TO_TAPE": False,
    "KDF_ITERATIONS": 600_000,  # PBKDF2-HMAC-SHA256 rounds for encrypted tar.gz
    # A mirror (sync overwrite) refuses to delete more than this share of the destination's files,
    # unless the project allows mass deletion.
    "SYNC_MAX_DELETE_RATIO": 0.5,
    # Tape: drive name -> device path ("/dev/nst0", "/dev/tape/by-id/...") or "virtual".
    "DRIVES": {"vtape0": "virtual"},
    "TAPE_BLOCK_SIZE": 256 * 1024,
    "VTAPE_DIR": "",  # empty means DATA_DIR/vtape
    "VTAPE_CAPACITY_BYTES": 2 * 1024**3,  # a blank virtual cartridge
    "VTAPE_EARLY_WARNING_BYTES": 16 * 1024**2,
    # `flask tape scan` reads a file that claims to be a session index into memory up to this size; a larger
    # one is reported as damaged (a tape is input: it must not take the scan's memory with it).
    "TAPE_INDEX_MAX_BYTES": 256 * 1024**2,
    "TAPE_RATE_BYTES_S": 300 * 1024**2,  # for the tape plan's time estimate (LTO-8 native)
    # The backup page's health panel holds a project without an enabled schedule to this age of its last
    # good backup (yellow past it, red past twice it); a scheduled one to 1.5× / 3× its interval.
    "HEALTH_MAX_AGE_H": 7 * 24,
    # `flask projects import` and the import form refuse a file larger than this (the file is read whole).
    "IMPORT_MAX_BYTES": 5 * 1024**2,
    # Restore targets must lie inside one of these (empty means DATA_DIR/restore).
    "RESTORE_ROOTS": [],
    # Guard rails (pathpolicy.py): sources, destination folders and the storage explorer may be confined to
    # these folders (JSON list or os.pathsep-separated). Empty: anywhere but StageBackup's own folders.
    "SOURCE_ROOTS": [],
    "DEST_ROOTS": [],
    "BROWSE_ROOTS": [],
    "LANGUAGES": ["zh_CN", "en"],
    # HTTP (http.py): host names served besides 127.0.0.1, localhost and ::1 (comma-separated; "*": any),
    # the request body limit and the larger one an import route allows, and how many reverse proxies
    # in front set X-Forwarded-* (0: those headers are ignored).
    "ALLOWED_HOSTS": "",
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "IMPORT_MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    "PROXY_COUNT": 0,
    # Sign-in (stagebackup/auth): how long a session lasts, and whether its cookie is sent over HTTPS only
    # (turn it on when a TLS proxy serves the pages; plain http://127.0.0.1 needs it off).
    "SESSION_LIFETIME_S": 12 * 3600,
    "SESSION_COOKIE_SECURE": False,
    # Sign-in attempts per minute, per client address and per user name (Flask-Limiter). The count lives in
    # each web process's memory unless RATELIMIT_STORAGE_URI names a shared store (redis://…).
    "SIGNIN_RATE_LIMIT": "10 per minute",
    "RATELIMIT_STORAGE_URI": "memory://",
    # Notifications (stagebackup/notify): the address people open the pages at, for the link in each message;
    # how often the scheduler's courier delivers, how often it looks for projects without a good backup, and
    # how many times a message is tried before it is given up (backoff 30 s, 1 min, 2 min, … up to 1 h).
    "BASE_URL": "http://127.0.0.1:5555",
    "NOTIFY_POLL_INTERVAL_S": 5.0,
    "NOTIFY_STALE_CHECK_S": 300.0,
    "NOTIFY_MAX_ATTEMPTS": 10,
}


def _coerce(raw: str, default: object) -> object:
    """Parse an environment string into the type of its default."""
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"expected a boolean, got {raw!r}")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, list) and not raw.lstrip().startswith("["):
        return [part for part in raw.split(os.pathsep) if part]  # PATH-style list
    if isinstance(default, dict) and not raw.lstrip().startswith("{"):
        # "lto=/dev/tape/by-id/...-nst,vtape0=virtual"
        pairs = [part.split("=", 1) for part in raw.split(",") if part.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError(f"expected NAME=VALUE pairs or a JSON object, got {raw!r}")
        return {name.strip(): value.strip() for name, value in pairs}
    if isinstance(default, (dict, list)):
        return json.loads(raw)
    return raw


def _roots(value: object) -> list[str]:
    """A list of folders (a list, or one os.pathsep-separated string from a test or a .env), resolved."""
    roots = [r for r in value.split(os.pathsep) if r] if isinstance(value, str) else list(value or [])
    return [str(Path(r).expanduser().resolve()) for r in roots]


def load_config(overrides: dict | None = None) -> dict[str, object]:
    """Defaults, then the environment, then explicit overrides (tests pass these)."""
    config: dict[str, object] = dict(DEFAULTS)
    for key, default in DEFAULTS.items():
        raw = os.environ.get(ENV_PREFIX + key)
        if raw is not None:
            try:
                config[key] = _coerce(raw, default)
            except ValueError as exc:
                raise SystemExit(f"invalid {ENV_PREFIX}{key}: {exc}") from exc
    config.update(overrides or {})

    data_dir = Path(str(config["DATA_DIR"])).expanduser().resolve()
    config["DATA_DIR"] = str(data_dir)
    config["CACHE_DIR"] = str(Path(str(config["CACHE_DIR"] or data_dir / "cache")).resolve())
    config["VTAPE_DIR"] = str(Path(str(config["VTAPE_DIR"] or data_dir / "vtape")).resolve())
    config["RESTORE_ROOTS"] = _roots(config["RESTORE_ROOTS"] or [str(data_dir / "restore")])
    for key in ("SOURCE_ROOTS", "DEST_ROOTS", "BROWSE_ROOTS"):
        config[key] = _roots(config[key])
    url = str(config["DATABASE_URL"] or f"sqlite:///{data_dir / 'backup_system.db'}")
    config["DATABASE_URL"] = url
    config["SQLALCHEMY_DATABASE_URI"] = url
    config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=float(config["SESSION_LIFETIME_S"]))
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    return config


def ensure_data_dir(config: dict[str, object]) -> None:
    for key in ("DATA_DIR", "CACHE_DIR", "VTAPE_DIR"):
        os.makedirs(str(config[key]), exist_ok=True)


def load_or_create_secret(path: Path) -> str:
    """A per-installation secret kept in the data directory with mode 0600."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value.encode())
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return value
