"""Files at rest: StageBackup's own files are readable by its own user only.

The database (and SQLite's ``-wal``/``-shm``), the keys, the cache's member lists and the virtual tapes name
every catalogued path, so every process runs with umask 077 (new files 0600, folders 0700), and an install
made before that is tightened when a process starts. Files StageBackup writes for others keep explicit
modes: archives in a destination folder are 0640, restored and mirrored entries get their recorded modes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

PRIVATE_UMASK = 0o077
LOOSE_BITS = stat.S_IRWXG | stat.S_IRWXO


def restrict_umask() -> None:
    os.umask(PRIVATE_UMASK)


def _own_files(config: Mapping) -> list[str]:
    """StageBackup's folders and every file in them (the data directory holds the database by default)."""
    found: list[str] = []
    for key in ("DATA_DIR", "CACHE_DIR", "VTAPE_DIR"):
        top = str(config[key])
        for dirpath, dirnames, filenames in os.walk(top):
            # Restore roots inside the data directory hold restored files with their own modes.
            dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in config["RESTORE_ROOTS"]]
            found.append(dirpath)
            found += [os.path.join(dirpath, name) for name in filenames]
    url = str(config.get("SQLALCHEMY_DATABASE_URI", ""))
    if url.startswith("sqlite:///"):  # a database kept outside the data directory
        database = url.removeprefix("sqlite:///")
        found += [database + suffix for suffix in ("", "-wal", "-shm", "-journal")]
    return list(dict.fromkeys(found))


def tighten(config: Mapping) -> list[str]:
    """Remove group and other permissions from StageBackup's own files; returns the paths changed."""
    changed: list[str] = []
    for path in _own_files(config):
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or not st.st_mode & LOOSE_BITS:
                continue
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~LOOSE_BITS)
        except OSError:  # removed meanwhile, or not ours: left as it is
            continue
        changed.append(path)
    return changed
