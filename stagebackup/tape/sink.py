"""TapeSink (seed 000's TapeFileMover): moves finished archives to tape, one tape file per archive.

Each archive streams from the cache in variable blocks of ``TAPE_BLOCK_SIZE`` (``writer.BlockFeeder``),
then gets a filemark. Its catalog row is written *before* the first block, marked void, and made valid
only once the filemark is down and the read-back matched: a job that dies mid-archive leaves a void row
and never a catalogued archive that is not on tape. At end of medium the piece is closed with a filemark,
the tape is marked full, and the archive continues as piece 2 on the next tape (``session.py``). When
the job's last archive is on tape, ``close(ok=True)`` writes the session's index file (the catalog as
JSON) so the tape can be read back with no database.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Mapping

from flask import Flask
from sqlalchemy import select

from ..dbtypes import utcnow
from ..errors import N_, StageBackupError, human_bytes
from ..extensions import db
from ..models import Archive, ArchiveMember, Job, Project
from ..pipeline.destination import Placement
from ..tape_models import Tape, TapeFile
from . import catalog_copy
from .errors import TapeVerifyFailed, from_os_error
from .label import READ_BUFFER, encode_index
from .plan import make_plan
from .session import DriveSession
from .writer import BlockFeeder, plain_blocks, read_file_digest, write_piece


class ArchiveChanged(StageBackupError):
    template = N_("archive %(name)s changed while it was written to tape (SHA-256 %(actual)s, expected %(expected)s)")
    params = ("name", "actual", "expected")


class TapeSink:
    kind = "tape"

    def __init__(self, app: Flask, config: Mapping, *, job_id: int, drive: str, pool: str | None, reporter,
                 verify: bool = True, catalog_copy: bool = False):
        self.config, self.job_id, self.reporter, self.verify = config, job_id, reporter, verify
        self.catalog_copy = catalog_copy
        self.block_size = int(config["TAPE_BLOCK_SIZE"])
        self.pool = pool or "default"
        self.session = DriveSession(app, config, drive=drive, pool=self.pool, job_id=job_id, reporter=reporter)
        self.archives_written = 0

    @property
    def drive(self) -> str:
        return self.session.drive

    # -- the plan (when the scan ends, on the job's thread) -------------------------------------------
    def plan(self, bytes_to_write: int) -> dict:
        """The tape plan for this job, returned for the job's reporter to record."""
        plan = make_plan(self.config, self.session.drive, self.pool, bytes_to_write, self.session.job_id)
        db.session.commit()  # make_plan read the inventory: end that transaction before the work starts
        # Mount now, before the first group is compressed: a write-protected, unlabelled or foreign tape
        # fails the job (or a full one makes it wait) at once, not after an hour of compressing.
        self._ensure_ready()
        return plan

    # -- ArchiveSink -------------------------------------------------------------------------------
    def prepare(self, name: str, seq: int) -> None:
        """Nothing to register: a tape file's catalog row is made void before its first block instead."""

    def put(self, staged_path: str, name: str, sha256: str, seq: int) -> Placement:
        """Write the staged archive as one tape file (or several pieces across tapes); verified."""
        return self._write(staged_path, name, sha256)

    def open_stream(self, name: str, seq: int) -> TapeStream:
        """COMPRESS_DIRECTLY_TO_TAPE: the archive is written to tape as it is compressed, never staged."""
        return TapeStream(self, name)

    def _write(self, source, name: str, sha256: str | None) -> Placement:
        # With verify on and the archive's SHA-256 known, the write path hashes nothing: the read-back
        # hashes each piece once, and the pieces together must hash to the archive's SHA-256.
        self._hash_on_write = not (self.verify and isinstance(sha256, str))
        self._whole = hashlib.sha256()
        feeder = BlockFeeder(source, self.block_size, hash=self._hash_on_write)
        pieces, pending = [], None
        try:
            while True:
                self._ensure_ready()
                piece = self._write_piece(feeder, name, len(pieces) + 1, pending)
                pieces.append(piece)
                if not piece["end_of_medium"]:
                    break
                pending = piece.pop("pending")
                self.session.mark_full()
                self.reporter.log("INFO", f"tape {piece['label']} is full after {human_bytes(piece['bytes'])} of "
                                          f"{name}; continuing on the next tape")
                self.session.release(message=f"tape {piece['label']} full")
                self.session.wait_for_media(f"tape {piece['label']} is full")
        finally:
            feeder.close()
        actual = (feeder.sha256 if self._hash_on_write else self._whole).hexdigest()
        if callable(sha256):  # a stream learns its SHA-256 when the compressor finishes
            sha256 = sha256()
        if sha256 is not None and actual != sha256:
            if self._hash_on_write:
                raise ArchiveChanged(name, actual, sha256)
            first = pieces[0]
            raise TapeVerifyFailed(first["label"], first["file_number"], actual, sha256)
        self.session.ledger.confirm([p["id"] for p in pieces])
        self.archives_written += 1
        where = ", ".join(f"{p['label']} file {p['file_number']}" for p in pieces)
        self.reporter.log("INFO", f"{name}: {human_bytes(feeder.bytes)} on tape ({where})"
                                  + (", verified" if self.verify else ""))
        for p in pieces:
            p.pop("end_of_medium", None)
        return Placement("tape", None, {"drive": self.drive, "label": pieces[0]["label"],
                                        "file_number": pieces[0]["file_number"], "pieces": pieces,
                                        "sha256": actual, "size": feeder.bytes, "name": name,
                                        "where": f"tape {where}"},
                         tape_file_ids=[p["id"] for p in pieces])

    def _ensure_ready(self) -> None:
        try:
            self.session.ensure_ready()
        except OSError as exc:
            raise from_os_error(self.drive, exc) from exc

    def _write_piece(self, feeder: BlockFeeder, name: str, number: int, pending: bytes | None) -> dict:
        session = self.session
        tape, label, file_number = session.tape, session.label["label"], session.next_file
        row_id = session.ledger.open_file(session.tape_id, file_number, "archive", number, self.block_size)
        try:
            result = write_piece(tape, feeder, first=pending, hash_piece=number > 1 and self._hash_on_write,
                                 on_block=self._advance)
            tape.write_filemarks(1)
            session.next_file += 1
            digest = result.sha256 if self._hash_on_write else None
            if self.verify:
                digest = self._verify_last_file(label, file_number, digest)
        except OSError as exc:
            raise from_os_error(self.drive, exc) from exc
        session.ledger.file_written(row_id, session.tape_id, blocks=result.blocks, nbytes=result.bytes,
                                    sha256=digest, verified=self.verify)
        return {"id": row_id, "label": label, "file_number": file_number, "piece": number, "bytes": result.bytes,
                "blocks": result.blocks, "sha256": digest, "end_of_medium": result.end_of_medium,
                "pending": result.pending}

    def _advance(self, nbytes: int) -> None:
        self.reporter.checkpoint()

    def _verify_last_file(self, label: str, file_number: int, expected: str | None) -> str:
        """Read back the file just written (we are past its filemark); its SHA-256 must match what was
        written when that is known (else the whole archive's is checked once all pieces are read)."""
        tape = self.session.tape
        tape.bsf(2)  # before the filemark of the previous file (the label at least): never at BOT
        tape.fsf(1)
        _, _, actual = read_file_digest(tape, READ_BUFFER, also=self._whole)
        if expected is not None and actual != expected:
            raise TapeVerifyFailed(label, file_number, actual, expected)
        return actual

    # -- the end of the session --------------------------------------------------------------------
    def close(self, ok: bool) -> None:
        try:
            if ok and self.archives_written and self.session.tape is not None:
                self._write_index()
                if self.catalog_copy:
                    self._write_catalog_copy()
        finally:
            self.session.release()

    def _write_index(self) -> None:
        session = self.session
        index = session_index(self.job_id)  # on the job's thread (close runs there)
        db.session.commit()
        index["label"] = session.label["label"]
        data = encode_index(index)
        file_number = session.next_file
        row_id = session.ledger.open_file(session.tape_id, file_number, "index", 1, self.block_size)
        try:
            blocks = [data[i:i + self.block_size] for i in range(0, len(data), self.block_size)]
            result = write_piece(session.tape, plain_blocks(blocks), hash_piece=True)
            if result.end_of_medium:  # the early-warning zone is there to hold exactly this
                raise OSError(28, "no room left for the index file")
            session.tape.write_filemarks(1)
            session.next_file += 1
        except OSError as exc:
            raise from_os_error(self.drive, exc) from exc
        session.ledger.file_written(row_id, session.tape_id, blocks=result.blocks, nbytes=result.bytes,
                                    sha256=result.sha256, verified=False, valid=True)
        self.reporter.log("INFO", f"index of this session written as {session.label['label']} file {file_number}")


    def _write_catalog_copy(self) -> None:
        """The project's option: a catalog copy after the index. A failure is an [ERROR] line (the job ends
        with a warning), never a failed backup: the archives and the index are on tape already."""
        session = self.session
        file_number = session.next_file
        try:
            with catalog_copy.packed_copy(self.config, passphrase=None, actor=f"job:{self.job_id}") as (packed, _):
                result = catalog_copy.append(session.tape, session.ledger, tape_id=session.tape_id,
                                             file_number=file_number, packed=packed, block_size=self.block_size)
        except (OSError, StageBackupError) as exc:
            self.reporter.log("ERROR", f"catalog copy not written to tape: {exc}")
            return
        session.next_file += 1
        self.reporter.log("INFO", f"catalog copy ({human_bytes(result.bytes)}) written as {session.label['label']} "
                                  f"file {file_number}")


class StreamAborted(Exception):
    """The compressor gave up part-way; the tape file stays void."""


_STREAM_END, _STREAM_ABORT = object(), object()
STREAM_QUEUE_CHUNKS = 64


class TapeStream:
    """``ArchiveStream`` for COMPRESS_DIRECTLY_TO_TAPE: the compressor pushes bytes, a writer thread runs the
    sink's ordinary write path on them, pieces and end of medium included.
    The bounded chunk queue is the back-pressure: while the drive waits for a tape, compression waits."""

    def __init__(self, sink: TapeSink, name: str):
        self.sink, self.name = sink, name
        self._chunks: queue.Queue = queue.Queue(maxsize=STREAM_QUEUE_CHUNKS)
        self._sha256: str | None = None
        self._placement: Placement | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tape-stream", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._placement = self.sink._write(self._source(), self.name, lambda: self._sha256)
        except BaseException as exc:  # noqa: BLE001 - raised again on the compressing thread
            self._error = exc

    def _source(self):
        while True:
            chunk = self._chunks.get()
            if chunk is _STREAM_END:
                return
            if chunk is _STREAM_ABORT:
                raise StreamAborted()
            yield chunk

    def _put(self, item) -> None:
        while True:
            if self._error is not None:
                raise self._error
            if not self._thread.is_alive():
                raise StageBackupError(N_("the tape writer stopped"))
            try:
                self._chunks.put(item, timeout=0.2)
                return
            except queue.Full:
                # The drive is slow or waits for a tape: record what the writer reported meanwhile, and
                # let cancel and a worker stop reach the job (this is the job's thread).
                self.sink.reporter.checkpoint()

    def write(self, data) -> int:
        self._put(bytes(data))  # the compressor reuses its buffers
        return len(data)

    def commit(self, sha256: str) -> Placement:
        self._sha256 = sha256
        self._put(_STREAM_END)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._placement

    def abort(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:
                    self._chunks.get_nowait()
            with contextlib.suppress(queue.Full):
                self._chunks.put_nowait(_STREAM_ABORT)
            self._thread.join(timeout=60)


def session_index(job_id: int) -> dict:
    """The catalog of one backup job as the index file carries it (see label.py for the format)."""
    job = db.session.get(Job, job_id)
    project = db.session.get(Project, job.project_id) if job.project_id else None
    rows = db.session.execute(
        select(TapeFile, Tape.label).join(Tape, Tape.id == TapeFile.tape_id)
        .where(TapeFile.job_id == job_id, TapeFile.kind == "archive", TapeFile.void.is_(False))
        .order_by(TapeFile.id)
    ).all()
    archives: dict[object, dict] = {}
    for tape_file, label in rows:
        key = tape_file.archive_id or f"unrecorded-{tape_file.id}"
        entry = archives.setdefault(key, {"archive_id": tape_file.archive_id, "pieces": []})
        entry["pieces"].append({"label": label, "file_number": tape_file.file_number, "piece": tape_file.piece,
                                "bytes": tape_file.bytes, "blocks": tape_file.blocks,
                                "block_size": tape_file.block_size, "sha256": tape_file.sha256})
    out = []
    for entry in archives.values():
        archive = db.session.get(Archive, entry["archive_id"]) if entry["archive_id"] else None
        if archive is not None:
            entry.update(name=archive.name, format=archive.format, encrypted=archive.encrypted,
                         kdf_iterations=archive.kdf_iterations, size=archive.size, sha256=archive.sha256,
                         seq=archive.seq, input_bytes=archive.input_bytes)
            entry["members"] = [
                [f"{m.parent}/{m.name}" if m.parent else m.name, m.kind, m.size, m.mtime, m.mode, m.link_target]
                for m in db.session.scalars(select(ArchiveMember).where(ArchiveMember.archive_id == archive.id)
                                            .order_by(ArchiveMember.id))
            ]
        out.append(entry)
    return {"job": job_id, "project": job.project_name, "remark": job.remark,
            "project_format": project.archive_format if project else None,
            "written_at": utcnow().isoformat() + "Z", "archives": out}
