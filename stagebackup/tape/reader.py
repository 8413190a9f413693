"""Reading tape files back: the API restore, verify and ``flask tape read`` use.

One tape file at a time::

    from stagebackup.tape.reader import TapeReader
    with TapeReader(app.config, "vtape0", expect_label="TAPE001") as reader:   # WrongTape otherwise
        for block in reader.blocks(3):        # rewinds and spaces to file 3, stops at its filemark
            out.write(block)
        size, sha256 = reader.copy_file(3, out)

A whole archive from the catalog, across its pieces (an archive that hit the end of a tape continues as
piece 2 on the next one), each piece checked against its SHA-256::

    from stagebackup.tape.reader import read_archive
    for chunk in read_archive(app.config, "vtape0", archive_id, on_wrong_tape=ask_operator):
        ...

``on_wrong_tape(label, reason)`` is called when the piece's tape is not in the drive; it returns once the
operator has loaded it or raises to give up. Without it, ``WrongTape``/``NoMedium`` propagate. A restore
job passes ``open_tape`` instead: it looks for the label in every idle drive and waits for it the way a
backup waits for media (``restore/tape_source.py``). Errors are ``tape.errors`` operator messages.
The drive is opened read-only, so a write-protected tape reads fine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence

from sqlalchemy import select

from ..extensions import db
from ..tape_models import Tape, TapeFile
from .drives import open_drive
from .errors import ArchiveNotOnTape, NoMedium, TapeError, TapeVerifyFailed, Unlabelled, WrongTape, from_os_error
from .label import READ_BUFFER, read_label


class TapeReader:
    def __init__(self, config: Mapping, drive: str, *, expect_label: str | None = None):
        self.drive = drive
        self.tape = open_drive(config, drive, write=False)
        try:
            try:
                self.label = read_label(self.tape, drive)
            except OSError as exc:
                raise from_os_error(drive, exc) from exc
            if self.label is None:
                raise Unlabelled(drive)
            if expect_label is not None and self.label["label"] != expect_label:
                raise WrongTape(drive, self.label["label"], expect_label)
        except BaseException:
            self.tape.close()
            raise

    def __enter__(self) -> TapeReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.tape.close()
        except OSError as exc:  # a tape taken out while it was read
            raise from_os_error(self.drive, exc) from exc

    def position(self, file_number: int) -> None:
        try:
            self.tape.rewind()
            if file_number:
                self.tape.fsf(file_number)
        except OSError as exc:
            raise TapeError(self.drive, f"tape {self.label['label']} has no file {file_number}") from exc

    def blocks(self, file_number: int) -> Iterator[bytes]:
        self.position(file_number)
        try:
            yield from self.tape.read_file(READ_BUFFER)
        except OSError as exc:
            raise from_os_error(self.drive, exc) from exc

    def copy_file(self, file_number: int, out) -> tuple[int, str]:
        digest, size = hashlib.sha256(), 0
        for block in self.blocks(file_number):
            out.write(block)
            digest.update(block)
            size += len(block)
        return size, digest.hexdigest()


def archive_pieces(archive_id: int) -> list[dict]:
    rows = db.session.execute(
        select(TapeFile, Tape.label).join(Tape, Tape.id == TapeFile.tape_id)
        .where(TapeFile.archive_id == archive_id, TapeFile.kind == "archive", TapeFile.void.is_(False))
        .order_by(TapeFile.piece)
    ).all()
    return [{"label": label, "file_number": f.file_number, "piece": f.piece, "bytes": f.bytes, "sha256": f.sha256}
            for f, label in rows]


# What a drive says when the piece's tape is simply not in it (the operator can load it).
NOT_LOADED = (WrongTape, NoMedium, Unlabelled)


def find_tape(config: Mapping, drives: Sequence[str], label: str) -> TapeReader:
    """A reader on the first of ``drives`` that holds ``label``; if none does, the first drive's error (the
    others may be empty, busy or hold other tapes: that is not news)."""
    errors: list[TapeError] = []
    for drive in drives:
        try:
            return TapeReader(config, drive, expect_label=label)
        except TapeError as exc:
            errors.append(exc)
    raise errors[0]


def read_archive(config: Mapping, drive: str, archive_id: int, *,
                 on_wrong_tape: Callable[[str, str], None] | None = None,
                 open_tape: Callable[[str], TapeReader] | None = None,
                 on_piece: Callable[[dict, str], None] | None = None) -> Iterator[bytes]:
    """The archive's bytes, piece after piece. ``open_tape(label)`` finds the reader for a piece (default:
    ``drive``, asking ``on_wrong_tape`` while it holds another tape); ``on_piece(piece, drive)`` hears of each
    piece read and checked."""
    pieces = archive_pieces(archive_id)
    db.session.commit()  # end the read transaction: reading a tape takes long, SQLite must not stay locked
    if not pieces:
        raise ArchiveNotOnTape(drive, archive_id)
    open_tape = open_tape or _in_drive(config, drive, on_wrong_tape)
    for piece in pieces:
        with open_tape(piece["label"]) as reader:
            digest = hashlib.sha256()
            for block in reader.blocks(piece["file_number"]):
                digest.update(block)
                yield block
            if piece["sha256"] and digest.hexdigest() != piece["sha256"]:
                raise TapeVerifyFailed(piece["label"], piece["file_number"], digest.hexdigest(), piece["sha256"])
        if on_piece is not None:
            on_piece(piece, reader.drive)


def _in_drive(config: Mapping, drive: str, on_wrong_tape: Callable[[str, str], None] | None
              ) -> Callable[[str], TapeReader]:
    def open_tape(label: str) -> TapeReader:
        while True:
            try:
                return TapeReader(config, drive, expect_label=label)
            except NOT_LOADED as exc:
                if on_wrong_tape is None:
                    raise
                on_wrong_tape(label, str(exc))
    return open_tape
