"""Configured drives (``DRIVES``: name → device path or ``virtual``) and opening them.

A drive may be named by its configured name or by its device path, including the stable
``/dev/tape/by-id/…-nst`` links udev makes (they survive renumbering of ``/dev/nstN`` after a reboot).
Opening checks what ``mt status`` would show first, so "no cartridge" and "write-protected" are
reported at once, and every errno leaves as an operator message (``errors.from_os_error``).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator, Mapping

from .errors import (
    CartridgeMissing,
    DriveOffline,
    NoMedium,
    TapeError,
    UnknownDrive,
    VirtualDriveOffline,
    WriteProtected,
    from_os_error,
)
from .handle import TapeHandle
from .st import StHandle, is_rewinding_node
from .virtual import VirtualHandle, cartridge_path
from .vlibrary import ensure_drive

VIRTUAL = "virtual"


def configured(config: Mapping) -> dict[str, str]:
    return dict(config["DRIVES"])


def resolve(config: Mapping, name_or_path: str) -> str:
    """The configured drive name for a name or a device path (matched after resolving symlinks)."""
    drives = configured(config)
    if name_or_path in drives:
        return name_or_path
    if name_or_path.startswith("/"):
        wanted = os.path.realpath(name_or_path)
        for name, device in drives.items():
            if device != VIRTUAL and (device == name_or_path or os.path.realpath(device) == wanted):
                return name
    raise UnknownDrive(name_or_path, ", ".join(sorted(drives)) or "none")


def device_of(config: Mapping, drive: str) -> str:
    return configured(config)[drive]


def is_virtual(config: Mapping, drive: str) -> bool:
    return device_of(config, drive) == VIRTUAL


# What the file system says when VTAPE_DIR was removed, replaced by a file or made unreadable: for a
# virtual drive that is the device being gone.
_VTAPE_DIR_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EEXIST, errno.EACCES)


@contextlib.contextmanager
def virtual_drive_dir(config: Mapping, drive: str) -> Iterator[str]:
    """``with virtual_drive_dir(config, drive) as vdir:`` turns errors of VTAPE_DIR into VirtualDriveOffline."""
    vdir = str(config["VTAPE_DIR"])
    try:
        yield vdir
    except OSError as exc:
        if exc.errno not in _VTAPE_DIR_ERRNOS:
            raise
        raise VirtualDriveOffline(drive, vdir, exc.strerror or str(exc)) from exc


def open_raw(config: Mapping, drive: str, *, write: bool = True, nonblock: bool = False) -> TapeHandle:
    """The device, opened as st would open it (OSError with st's errno on failure)."""
    device = device_of(config, drive)
    if device == VIRTUAL:
        with virtual_drive_dir(config, drive) as vdir:
            ensure_drive(vdir, drive, capacity_bytes=int(config["VTAPE_CAPACITY_BYTES"]),
                         early_warning_bytes=int(config["VTAPE_EARLY_WARNING_BYTES"]))
            return VirtualHandle(vdir, drive, write=write, nonblock=nonblock)
    return StHandle(device, write=write, nonblock=nonblock, name=drive)


def open_drive(config: Mapping, drive: str, *, write: bool = True, need_medium: bool = True) -> TapeHandle:
    """Open for work: non-blocking first, then check for a cartridge (and its write-protect tab)."""
    device = device_of(config, drive)
    if device != VIRTUAL and is_rewinding_node(device):
        raise DriveOffline(drive, f"{device} rewinds on close: configure the non-rewinding node (nst)")
    try:
        handle = open_raw(config, drive, write=write, nonblock=True)
    except OSError as exc:
        raise from_os_error(drive, exc) from exc
    missing = getattr(handle, "missing", None)
    if missing:
        handle.close()
        raise CartridgeMissing(drive, missing, cartridge_path(str(config["VTAPE_DIR"]), missing))
    try:
        status = handle.status()
        if need_medium and (status.door_open or not status.online):
            raise NoMedium(drive)
        if need_medium and write and status.write_protected:
            raise WriteProtected(drive)
        if isinstance(handle, StHandle) and need_medium:
            handle.set_blocking()
    except OSError as exc:
        handle.close()
        raise from_os_error(drive, exc) from exc
    except TapeError:
        handle.close()
        raise
    return handle


@contextlib.contextmanager
def opened(config: Mapping, drive: str, *, write: bool = True, need_medium: bool = True) -> Iterator[TapeHandle]:
    """``with opened(...) as tape:``; errno values raised inside become operator messages."""
    handle = open_drive(config, drive, write=write, need_medium=need_medium)
    try:
        yield handle
    except OSError as exc:
        raise from_os_error(drive, exc) from exc
    finally:
        try:
            handle.close()
        except OSError as exc:  # close after a write is a sync point: its failure is real
            raise from_os_error(drive, exc) from exc
