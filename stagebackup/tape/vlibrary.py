"""The virtual drives' "library": creating cartridges and putting them into or out of a drive.

What a person does with a real cartridge (take a new one from the shelf, insert it, set the write-protect
tab) is done here on folders under ``VTAPE_DIR``. Inserting takes the drive's lock, so a cartridge is
never swapped under a process that has the drive open.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re

from . import cartridge
from .handle import os_error
from .virtual import blank_state, cartridge_path, drive_paths, read_drive_state, write_drive_state

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise ValueError(f"invalid cartridge name {name!r}: 1-64 letters, digits, '.', '_' or '-'")
    return name


def create_cartridge(vtape_dir: str, name: str, *, capacity_bytes: int, early_warning_bytes: int,
                     write_protected: bool = False) -> str:
    path = cartridge_path(vtape_dir, check_name(name))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cartridge.create(path, capacity_bytes=capacity_bytes, early_warning_bytes=early_warning_bytes,
                     write_protected=write_protected)
    return path


def list_cartridges(vtape_dir: str) -> list[dict]:
    base = os.path.join(vtape_dir, "cartridges")
    result = []
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        try:
            meta = cartridge.read_meta(os.path.join(base, name))
        except (OSError, ValueError):
            continue
        result.append({"name": name, **meta})
    return result


def find_cartridge(vtape_dir: str, wanted: str) -> str | None:
    """A cartridge named ``wanted``, or one whose written label (its sticker) is ``wanted``."""
    for entry in list_cartridges(vtape_dir):
        if entry["name"] == wanted:
            return entry["name"]
    for entry in list_cartridges(vtape_dir):
        if entry.get("label") == wanted:
            return entry["name"]
    return None


def set_sticker(vtape_dir: str, name: str, label: str | None) -> None:
    """Remember the label written on a cartridge, so ``load LABEL`` finds it by that name."""
    cartridge.update_meta(cartridge_path(vtape_dir, name), label=label)


def set_write_protect(vtape_dir: str, name: str, protected: bool) -> None:
    cartridge.update_meta(cartridge_path(vtape_dir, name), write_protected=bool(protected))


def loaded_in(vtape_dir: str, name: str) -> list[str]:
    base = os.path.join(vtape_dir, "drives")
    drives = []
    for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if entry.endswith(".json"):
            state = read_drive_state(vtape_dir, entry[:-5]) or {}
            if state.get("cartridge") == name:
                drives.append(entry[:-5])
    return drives


def insert(vtape_dir: str, drive: str, name: str | None) -> None:
    """Put cartridge ``name`` into ``drive`` (None: empty it), rewound. EBUSY if the drive is open."""
    _, lock_path = drive_paths(vtape_dir, drive)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise os_error(errno.EBUSY, f"drive {drive} is open in another process") from None
        if name is not None:
            others = [d for d in loaded_in(vtape_dir, name) if d != drive]
            if others:
                raise os_error(errno.EBUSY, f"cartridge {name} is in drive {others[0]}")
            cartridge.read_meta(cartridge_path(vtape_dir, name))  # must exist
        state = read_drive_state(vtape_dir, drive) or blank_state(None)
        fresh = blank_state(name)
        fresh.update(block_size=state.get("block_size", 0), density=None)
        write_drive_state(vtape_dir, drive, fresh)
    finally:
        os.close(fd)


def ensure_drive(vtape_dir: str, drive: str, *, capacity_bytes: int, early_warning_bytes: int) -> None:
    """First use of a virtual drive: it exists with a blank cartridge in it (the out-of-the-box state).
    Serialised by a lock file, since several processes (workers, the CLI) may start at once."""
    if read_drive_state(vtape_dir, drive) is not None:
        return
    os.makedirs(os.path.join(vtape_dir, "drives"), exist_ok=True)
    fd = os.open(os.path.join(vtape_dir, "drives", ".setup.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if read_drive_state(vtape_dir, drive) is not None:
            return
        name, n = f"{drive}-001", 1
        while os.path.exists(cartridge_path(vtape_dir, name)):
            n += 1
            name = f"{drive}-{n:03d}"
        create_cartridge(vtape_dir, name, capacity_bytes=capacity_bytes, early_warning_bytes=early_warning_bytes)
        insert(vtape_dir, drive, name)
    finally:
        os.close(fd)
