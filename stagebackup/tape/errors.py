"""Tape errors an operator can act on, and the mapping from st's errno values to them."""

from __future__ import annotations

import errno

from ..errors import StageBackupError


class TapeError(StageBackupError):
    """tape drive {0}: {1}"""


class UnknownDrive(TapeError):
    """unknown tape drive {0} (configured drives: {1})"""


class NoMedium(TapeError):
    """no tape in drive {0}: load a cartridge"""


class WriteProtected(TapeError):
    """the tape in drive {0} is write-protected: slide its write-protect tab or load another tape"""


class DriveBusy(TapeError):
    """drive {0} is busy: another process has it open{1}"""

    transient = True


class DriveOffline(TapeError):
    """drive {0} is offline or not present ({1}): check its cable, power and device path"""


class VirtualDriveOffline(TapeError):
    """virtual drive {0} is offline: its directory {1} is unusable ({2}); check STAGEBACKUP_VTAPE_DIR"""


class CartridgeMissing(TapeError):
    """cartridge {1} in virtual drive {0} is gone (no folder {2}): load another with `flask tape load {0} NAME`"""


class TapeIOError(TapeError):
    """I/O error on drive {0}: {1}; the tape or the drive may need cleaning; try another tape"""


class Unlabelled(TapeError):
    """the tape in drive {0} has no label: run `flask tape label {0} LABEL`"""


class ForeignTape(TapeError):
    """the tape in drive {0} was not written by StageBackup ({1}); label it with --force to reuse it"""


class AlreadyLabelled(TapeError):
    """the tape in drive {0} is already labelled {1}: add --force to overwrite it (its data is lost)"""


class UnknownTape(TapeError):
    """tape {0} is not in the inventory{1}"""


class WrongTape(TapeError):
    """the tape in drive {0} is {1}, not {2}: load {2}"""


class TapeVerifyFailed(TapeError):
    """verify failed: tape {0} file {1} reads back with SHA-256 {2}, expected {3}"""


def from_os_error(drive: str, exc: OSError) -> TapeError:
    """The operator's message for an errno from a drive operation."""
    code = exc.errno
    if code == errno.ENOMEDIUM:
        return NoMedium(drive)
    if code in (errno.EROFS, errno.EACCES):
        return WriteProtected(drive)
    if code == errno.EBUSY:
        return DriveBusy(drive, "")
    if code in (errno.ENXIO, errno.ENODEV, errno.ENOENT):
        return DriveOffline(drive, exc.strerror or str(exc))
    if code == errno.EIO:
        return TapeIOError(drive, exc.strerror or "input/output error")
    return TapeError(drive, exc.strerror or str(exc))
