"""Configuration: defaults, overridden by ``STAGEBACKUP_<KEY>`` environment variables.

Every process (web, worker, scheduler, CLI) builds its config the same way, so they agree on the
data directory and the database without sharing anything else.
"""

from __future__ import annotations

import json
import os
import secrets
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
    "PROGRESS_FLUSH_INTERVAL_S": 1.0,
    "QUEUE_POLL_INTERVAL_S": 1.0,
    "JOB_MAX_ATTEMPTS": 3,
    "COMPRESS_THREADS": 0,  # 0 = all cores
    "SQLITE_BUSY_TIMEOUT_MS": 30000,
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
    if isinstance(default, (dict, list)):
        return json.loads(raw)
    return raw


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
    url = str(config["DATABASE_URL"] or f"sqlite:///{data_dir / 'backup_system.db'}")
    config["DATABASE_URL"] = url
    config["SQLALCHEMY_DATABASE_URI"] = url
    return config


def ensure_data_dir(config: dict[str, object]) -> None:
    for key in ("DATA_DIR", "CACHE_DIR"):
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
