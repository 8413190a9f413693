"""Tape errors an operator can act on, and the mapping from st's errno values to them."""

from __future__ import annotations

import errno

from ..errors import EXIT_BAD_INPUT, EXIT_CONFLICT, EXIT_NOT_FOUND, N_, StageBackupError


class TapeError(StageBackupError):
    template = N_("tape drive %(drive)s: %(detail)s")
    params = ("drive", "detail")


class TapeInputError(TapeError):
    """A tape or cartridge name the operator typed is not valid."""

    exit_code = EXIT_BAD_INPUT


class UnknownDrive(TapeError):
    template = N_("unknown tape drive %(drive)s (configured drives: %(configured)s)")
    params = ("drive", "configured")
    exit_code = EXIT_NOT_FOUND


class NoMedium(TapeError):
    template = N_("no tape in drive %(drive)s: load a cartridge")
    params = ("drive",)


class WriteProtected(TapeError):
    template = N_("the tape in drive %(drive)s is write-protected: slide its write-protect tab or load another tape")
    params = ("drive",)


class DriveBusy(TapeError):
    template = N_("drive %(drive)s is busy: another process has it open%(holder)s")
    params = ("drive", "holder")
    exit_code = EXIT_CONFLICT
    transient = True


class DriveOffline(TapeError):
    template = N_("drive %(drive)s is offline or not present (%(detail)s): check its cable, power and device path")


class VirtualDriveOffline(TapeError):
    template = N_("virtual drive %(drive)s is offline: its directory %(path)s is unusable (%(reason)s); "
                  "check STAGEBACKUP_VTAPE_DIR")
    params = ("drive", "path", "reason")


class CartridgeMissing(TapeError):
    template = N_("cartridge %(name)s in virtual drive %(drive)s is gone (no folder %(path)s): load another with "
                  "`flask tape load %(drive)s NAME`")
    params = ("drive", "name", "path")


class TapeIOError(TapeError):
    template = N_("I/O error on drive %(drive)s: %(detail)s; the tape or the drive may need cleaning; try another tape")


class Unlabelled(TapeError):
    template = N_("the tape in drive %(drive)s has no label: run `flask tape label %(drive)s LABEL`")
    params = ("drive",)


class ForeignTape(TapeError):
    template = N_("the tape in drive %(drive)s was not written by StageBackup (%(detail)s); "
                  "label it with --force to reuse it")


class AlreadyLabelled(TapeError):
    template = N_("the tape in drive %(drive)s is already labelled %(label)s: "
                  "add --force to overwrite it (its data is lost)")
    params = ("drive", "label")
    exit_code = EXIT_CONFLICT


class UnknownTape(TapeError):
    template = N_("tape %(label)s is not in the inventory%(hint)s")
    params = ("label", "hint")
    exit_code = EXIT_NOT_FOUND


class TapeNotFound(TapeError):
    template = N_("no tape label or drive is called %(name)s")
    params = ("name",)
    exit_code = EXIT_NOT_FOUND


class LoadedTapeUnknown(TapeError):
    template = N_("the tape in drive %(drive)s is not in the inventory (label it, or `flask tape scan` it)")
    params = ("drive",)
    exit_code = EXIT_NOT_FOUND


class TapeFileNotFound(TapeError):
    template = N_("tape %(label)s file %(file_number)s is not in the catalog")
    params = ("drive", "label", "file_number")
    exit_code = EXIT_NOT_FOUND


class ArchiveNotOnTape(TapeError):
    template = N_("archive %(archive_id)s has no tape files in the catalog")
    params = ("drive", "archive_id")
    exit_code = EXIT_NOT_FOUND


class UnknownCartridge(TapeError):
    template = N_("drive %(drive)s has no virtual cartridge %(name)s")
    params = ("drive", "name")
    exit_code = EXIT_NOT_FOUND


class LabelTaken(TapeError):
    template = N_("label %(label)s already belongs to another tape in the inventory (%(state)s); "
                  "choose another label or add --force")
    params = ("drive", "label", "state")
    exit_code = EXIT_CONFLICT


class TapeHasData(TapeError):
    template = N_("tape %(label)s holds data that has not expired: only a blank or expired tape is labelled over "
                  "or erased (`flask tape recycle --dry-run` lists the reusable ones)")
    params = ("drive", "label")
    exit_code = EXIT_CONFLICT


class EraseNotConfirmed(TapeError):
    template = N_("the tape in drive %(drive)s is %(label)s: type its label to erase it")
    params = ("drive", "label")
    exit_code = EXIT_BAD_INPUT


class LabelUnreadable(TapeError):
    template = N_("the label written to the tape in drive %(drive)s does not read back: try another tape")
    params = ("drive",)


class WrongTape(TapeError):
    template = N_("the tape in drive %(drive)s is %(loaded)s, not %(expected)s: load %(expected)s")
    params = ("drive", "loaded", "expected")


class TapeVerifyFailed(TapeError):
    template = N_("verify failed: tape %(label)s file %(file_number)s reads back with SHA-256 %(actual)s, "
                  "expected %(expected)s")
    params = ("label", "file_number", "actual", "expected")


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
