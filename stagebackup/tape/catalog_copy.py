"""``flask db backup --to-tape DRIVE``: the catalog copy (catalog_backup.py) appended to the tape in a drive.

The copy folder is packed as one tar file (its first member's name starts with ``stagebackup-catalog-``, which
``flask tape scan`` recognises) and written after the tape's last file, then a filemark. The tape must be one
of ours, in the inventory, and not full or retired; the file is catalogued as kind ``catalog``. To bring it
back: ``flask tape read DRIVE --file N --out copy.tar``, ``tar xf copy.tar``, ``flask db restore FOLDER``.
"""

from __future__ import annotations

import contextlib
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from .. import catalog_backup
from ..extensions import db
from . import media
from .admin import _open
from .errors import TapeError, UnknownTape, Unlabelled, from_os_error
from .handle import TapeHandle
from .label import read_label
from .ledger import MediaLedger
from .writer import PieceResult, plain_blocks, write_piece

KIND = "catalog"
TAR_PREFIX = catalog_backup.FOLDER_PREFIX.encode()


@dataclass(frozen=True)
class TapeCopy:
    label: str
    file_number: int
    bytes: int
    sha256: str
    folder_name: str


def is_catalog_copy(first_block: bytes) -> bool:
    """A tar file whose first member is a catalog copy folder (the tar header starts with the name)."""
    return first_block.startswith(TAR_PREFIX) and first_block[257:262] == b"ustar"


@contextlib.contextmanager
def packed_copy(config: Mapping, *, passphrase: str | None, actor: str) -> Iterator[tuple[Path, str]]:
    """A fresh catalog copy packed as one tar file in the cache: (its path, the copy folder's name)."""
    work = Path(tempfile.mkdtemp(prefix="catalog-to-tape-", dir=str(config["CACHE_DIR"])))
    try:
        folder = catalog_backup.backup_catalog(str(work), passphrase=passphrase, actor=actor)
        packed = work / (folder.name + ".tar")
        with tarfile.open(packed, "w", format=tarfile.USTAR_FORMAT) as tar:  # the folder's name first, no pax
            tar.add(folder, arcname=folder.name)
        yield packed, folder.name
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _chunks(path: Path, size: int):
    with open(path, "rb") as fh:
        while block := fh.read(size):
            yield block


def append(tape: TapeHandle, ledger: MediaLedger, *, tape_id: int, file_number: int, packed: Path,
           block_size: int) -> PieceResult:
    """Write ``packed`` as tape file ``file_number`` (the end of data) and its filemark; catalogued valid."""
    row_id = ledger.open_file(tape_id, file_number, KIND, 1, block_size)
    result = write_piece(tape, plain_blocks(_chunks(packed, block_size)), hash_piece=True)
    if result.end_of_medium:
        raise OSError(28, "no room left on the tape for the catalog copy")
    tape.write_filemarks(1)
    ledger.file_written(row_id, tape_id, blocks=result.blocks, nbytes=result.bytes, sha256=result.sha256,
                        verified=False, valid=True)
    return result


def _tape_row(drive: str, label: dict | None):
    if label is None:
        raise Unlabelled(drive)
    row = media.get_tape(label["label"])
    if row is None or row.uuid != label["uuid"]:
        raise UnknownTape(label["label"], f": run `flask tape scan {drive}` to add it")
    if row.state != media.LABELLED:
        raise TapeError(drive, f"tape {row.label} is {row.state}: load a tape with room")
    return row.id, row.label


def copy_to_tape(app: Flask, config: Mapping, drive: str, *, passphrase: str | None, actor: str) -> TapeCopy:
    """Write a fresh catalog copy as the next file on the tape in ``drive``."""
    ledger = MediaLedger(app, config, drive=drive, job_id=None)
    with packed_copy(config, passphrase=passphrase, actor=actor) as (packed, folder_name), \
            _open(config, drive, write=True) as tape:
        try:
            tape_id, label = _tape_row(drive, read_label(tape, drive))
            db.session.commit()
            file_number = tape.space_to_end_of_data()
            if ledger.reconcile(tape_id, file_number) is not None:
                raise TapeError(drive, f"tape {label} ends before files the catalog lists: scan it first")
            result = append(tape, ledger, tape_id=tape_id, file_number=file_number, packed=packed,
                            block_size=int(config["TAPE_BLOCK_SIZE"]))
        except OSError as exc:
            raise from_os_error(drive, exc) from exc
    return TapeCopy(label, file_number, result.bytes, result.sha256, folder_name)
