"""What the operator does to drives and cartridges (``flask tape …``), with the drives rows kept current.

Every function opens the device itself and closes it before returning, so a backup job is never blocked
by a command that finished; a drive a job holds answers DriveBusy naming that job.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Mapping

from ..errors import N_, ConflictError, ValidationError
from ..extensions import db
from ..tape_models import Tape
from . import media, recycle, vlibrary
from .drives import device_of, is_virtual, open_drive, open_raw, virtual_drive_dir
from .errors import (
    AlreadyLabelled,
    CartridgeMissing,
    DriveBusy,
    EraseNotConfirmed,
    ForeignTape,
    LabelTaken,
    LabelUnreadable,
    LoadedTapeUnknown,
    NoMedium,
    TapeError,
    TapeHasData,
    TapeInputError,
    UnknownCartridge,
    Unlabelled,
    from_os_error,
)
from .label import encode_label, new_label, read_label, write_label
from .virtual import read_drive_state


def _retry_busy(func):
    deadline = time.monotonic() + BUSY_RETRY_S
    while True:
        try:
            return func()
        except OSError as exc:
            if exc.errno != errno.EBUSY or "drive" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def _busy(drive: str) -> DriveBusy:
    row = media.drive_row(drive)
    job = f" (job #{row.busy_job_id})" if row is not None and row.busy_job_id else ""
    return DriveBusy(drive, job)


BUSY_RETRY_S = 3.0


def _open(config: Mapping, drive: str, **kw):
    """Open, retrying briefly: a job waiting for media opens the drive for a moment every few seconds to
    look at the tape, and an operator's command must not fail because it arrived at that moment."""
    deadline = time.monotonic() + BUSY_RETRY_S
    while True:
        try:
            return open_drive(config, drive, **kw)
        except DriveBusy:
            if time.monotonic() >= deadline:
                raise _busy(drive) from None
            time.sleep(0.1)


def _sticker(config: Mapping, drive: str) -> str | None:
    if not is_virtual(config, drive):
        return None
    with virtual_drive_dir(config, drive) as vdir:
        return (read_drive_state(vdir, drive) or {}).get("cartridge")


def status(config: Mapping, drive: str, *, wait_if_busy: bool = True) -> dict:
    """``mt status`` plus the label (read at BOT, then the position is restored)."""
    data = {"drive": drive, "device": device_of(config, drive), "busy": False, "label": None, "pool": None,
            "cartridge": _sticker(config, drive), "message": None}
    try:
        tape = (_open if wait_if_busy else open_drive)(config, drive, write=False, need_medium=False)
    except DriveBusy:
        row = media.drive_row(drive)
        data.update(busy=True, busy_job_id=row.busy_job_id if row else None,
                    label=row.loaded_label if row else None, message=str(_busy(drive)))
        return data
    with tape:
        st = tape.status()
        data.update(online=st.online, door_open=st.door_open, write_protected=st.write_protected,
                    flags=st.flags(), file_number=st.file_number, block_number=st.block_number,
                    block_size=st.block_size, density=st.density, density_name=st.density_name)
        label, problem = None, None
        if st.online and not st.door_open:
            try:
                position = tape.tell()
                label = read_label(tape, drive)
                tape.seek(position)
                st = tape.status()
            except (TapeError, OSError) as exc:
                problem = exc if isinstance(exc, TapeError) else from_os_error(drive, exc)
            if label is None and problem is None:
                problem = Unlabelled(drive)
        else:
            problem = NoMedium(drive)
        if label is not None:
            data.update(label=label["label"], pool=label["pool"], uuid=label["uuid"])
            row = media.get_tape(label["label"])
            if row is None or row.uuid != label["uuid"]:
                problem = LoadedTapeUnknown(drive)
            else:
                data["tape"] = media.tape_dict(row)
        data["message"] = None if problem is None else str(problem)
        media.update_drive(config, drive, status=st, label=data["label"], message=problem)
        db.session.commit()
    return data


def _check_overwrite(drive: str, old: dict | None, existing: Tape | None, actor: str) -> None:
    """Only a blank or expired tape loses its data, whatever ``force`` says: the tape in the drive, and
    the inventory's tape whose label is being taken (its catalog would be retired)."""
    loaded = media.tape_by_uuid(old["uuid"]) if old is not None else None
    for tape in (loaded, existing):
        if tape is not None and not recycle.may_overwrite(tape, actor=actor):
            raise TapeHasData(drive, tape.label)


def label(config: Mapping, drive: str, name: str, *, pool: str = "default", force: bool = False,
          actor: str = "system") -> dict:
    """Label the tape in ``drive``; the answer is the inventory row, with ``over``: the label written over."""
    try:
        fresh = new_label(name, pool, int(config["TAPE_BLOCK_SIZE"]))
    except ValueError as exc:
        raise TapeInputError(drive, str(exc)) from None
    existing = media.get_tape(name)
    with _open(config, drive, write=True) as tape:
        try:
            try:
                old = read_label(tape, drive)
            except ForeignTape:
                if not force:
                    raise
                old = None
            _check_overwrite(drive, old, existing, actor)
            if old is not None and not force:
                raise AlreadyLabelled(drive, old["label"])
            if existing is not None and (old is None or old["uuid"] != existing.uuid) and not force:
                raise LabelTaken(drive, name, existing.state)
            write_label(tape, fresh)
            if read_label(tape, drive) != fresh:
                raise LabelUnreadable(drive)
            st = tape.status()
        except OSError as exc:
            raise from_os_error(drive, exc) from exc
    capacity = None
    if is_virtual(config, drive):
        cart = _sticker(config, drive)
        vlibrary.set_sticker(str(config["VTAPE_DIR"]), cart, name)
        capacity = vlibrary.cartridge.read_meta(vlibrary.cartridge_path(str(config["VTAPE_DIR"]), cart))[
            "capacity_bytes"]
    if old is not None:
        media.retire_by_uuid(old["uuid"])
    tape_row = media.record_label(fresh, capacity=media.capacity_for(config, drive, st, capacity),
                                  encoded=encode_label(fresh))
    media.update_drive(config, drive, status=st, label=name, message=None)
    db.session.commit()
    return {**media.tape_dict(tape_row), "over": old["label"] if old is not None else None}


def erase(config: Mapping, drive: str, *, confirm: str, actor: str = "system") -> dict:
    """Erase the expired (or blank) tape in ``drive`` once ``confirm`` is its label: a short erase from the
    beginning (MTERASE; a virtual cartridge is truncated), so the tape is blank and unlabelled. Its
    inventory row and files stay as history, retired. Answers the erased tape's row as it was."""
    with _open(config, drive, write=True) as tape:
        try:
            old = read_label(tape, drive)
            if old is None:
                raise Unlabelled(drive)
            row = media.tape_by_uuid(old["uuid"])
            if row is None:
                raise LoadedTapeUnknown(drive)
            if not recycle.may_overwrite(row, actor=actor):
                raise TapeHasData(drive, row.label)
            if confirm != old["label"]:
                raise EraseNotConfirmed(drive, old["label"])
            tape.rewind()
            tape.erase()
            st = tape.status()
        except OSError as exc:
            raise from_os_error(drive, exc) from exc
    if is_virtual(config, drive):
        vlibrary.set_sticker(str(config["VTAPE_DIR"]), _sticker(config, drive), None)
    erased = media.tape_dict(row)
    media.retire(row)
    media.update_drive(config, drive, status=st, label=None, message=Unlabelled(drive))
    db.session.commit()
    return erased


def rewind(config: Mapping, drive: str) -> None:
    with _open(config, drive, write=False) as tape:
        try:
            tape.rewind()
        except OSError as exc:
            raise from_os_error(drive, exc) from exc


def eject(config: Mapping, drive: str) -> None:
    with _open(config, drive, write=False) as tape:
        try:
            tape.unload()
            st = tape.status()
        except OSError as exc:
            raise from_os_error(drive, exc) from exc
    media.update_drive(config, drive, status=st, label=None, message=NoMedium(drive))
    db.session.commit()


def load(config: Mapping, drive: str, name: str | None, *, create: bool = True,
         capacity: int | None = None, write_protected: bool | None = None) -> dict:
    """Virtual drive: insert cartridge ``name`` (found by folder or label; created blank if new), or without
    a name load the one in the drive again (rewound).
    Real drive: MTLOAD after the operator inserted the cartridge; ``name`` then must match its label."""
    if is_virtual(config, drive):
        _retry_busy(lambda: open_raw(config, drive, nonblock=True).close())  # sets the drive up on first use
        with virtual_drive_dir(config, drive) as vdir:
            _load_virtual(config, drive, vdir, name, create=create, capacity=capacity,
                          write_protected=write_protected)
    else:
        with _open(config, drive, write=False, need_medium=False) as tape:
            try:
                tape.load()
            except OSError as exc:
                raise from_os_error(drive, exc) from exc
    return status(config, drive)


def _load_virtual(config: Mapping, drive: str, vdir: str, name: str | None, *, create: bool,
                  capacity: int | None, write_protected: bool | None) -> None:
    if name is None:
        current = _sticker(config, drive)
        if current is None:
            raise TapeError(drive, f"the drive is empty: name the cartridge to load (`flask tape load {drive} NAME`)")
        if not os.path.isdir(vlibrary.cartridge_path(vdir, current)):  # not a blank one under the old name
            raise CartridgeMissing(drive, current, vlibrary.cartridge_path(vdir, current))
        name = current
    found = vlibrary.find_cartridge(vdir, name)
    if found is None:
        if not create:
            raise UnknownCartridge(drive, name)
        try:
            vlibrary.create_cartridge(vdir, name, early_warning_bytes=int(config["VTAPE_EARLY_WARNING_BYTES"]),
                                      capacity_bytes=capacity or int(config["VTAPE_CAPACITY_BYTES"]))
        except ValueError as exc:
            raise TapeInputError(drive, str(exc)) from None
        found = name
    try:
        if write_protected is not None:
            vlibrary.set_write_protect(vdir, found, write_protected)
        _retry_busy(lambda: vlibrary.insert(vdir, drive, found))
    except OSError as exc:
        if exc.errno == errno.EBUSY and "drive" in str(exc):
            raise _busy(drive) from None
        raise from_os_error(drive, exc) from exc


def refresh_drives(config: Mapping, names: list[str] | None = None) -> None:
    """Status of each drive into the ``drives`` rows (a worker does this at start); errors become the
    row's message instead of stopping the caller."""
    for drive in names or sorted(config["DRIVES"]):
        if drive not in config["DRIVES"]:
            continue
        try:
            status(config, drive, wait_if_busy=False)
        except TapeError as exc:
            db.session.rollback()
            media.update_drive(config, drive, message=exc, keep_label=True)
            media.drive_row(drive).online = False  # it could not be read: the card says offline, with why
            db.session.commit()


def create_cartridge(config: Mapping, name: str) -> None:
    """A new blank virtual cartridge on the shelf (the configured capacity)."""
    vdir = str(config["VTAPE_DIR"])
    try:
        vlibrary.check_name(name)
    except ValueError:
        raise ValidationError(N_("invalid cartridge name %(name)s: 1-64 letters, digits, '.', '_' or '-'"),
                              field="name", name=name) from None
    if vlibrary.find_cartridge(vdir, name) is not None:
        raise ConflictError(N_("a cartridge named %(name)s already exists"), field="name", name=name)
    vlibrary.create_cartridge(vdir, name, capacity_bytes=int(config["VTAPE_CAPACITY_BYTES"]),
                              early_warning_bytes=int(config["VTAPE_EARLY_WARNING_BYTES"]))


def set_write_protect(config: Mapping, name: str, protected: bool) -> None:
    """Slide a shelf cartridge's write-protect tab; the inventory row of the tape labelled on it follows."""
    vdir = str(config["VTAPE_DIR"])
    found = next((c for c in vlibrary.list_cartridges(vdir) if c["name"] == name), None)
    if found is None:
        raise ValidationError(N_("there is no virtual cartridge %(name)s"), name=name)
    drives = vlibrary.loaded_in(vdir, name)
    if drives:
        raise ConflictError(N_("cartridge %(name)s is in drive %(drive)s: eject it first"), name=name,
                            drive=drives[0])
    vlibrary.set_write_protect(vdir, name, protected)
    tape = media.get_tape(found["label"]) if found.get("label") else None
    if tape is not None:
        tape.write_protected = protected
