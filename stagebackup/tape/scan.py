"""``flask tape scan``: rebuild the catalog from a tape alone (after losing the database, or to adopt a
tape written by another server).

Every file is read to the end and hashed; the label gives the inventory row, index files give the jobs,
archives, their members and their pieces. Files and archives already in the catalog are left as they are
(a second scan adds nothing), and a file whose SHA-256 differs from its catalog row is reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from sqlalchemy import select

from ..catalog import MemberBatcher
from ..dbtypes import utcnow
from ..extensions import db
from ..jobs import queue
from ..models import Archive, Tape, TapeFile
from . import media
from .errors import Unlabelled, from_os_error
from .label import INDEX_FORMAT, READ_BUFFER, decode_index, encode_label
from .reader import TapeReader


def _read_files(reader: TapeReader):
    """(file_number, blocks, bytes, sha256, max block, index or None) for every file after the label."""
    tape, number = reader.tape, 1
    while True:
        digest, blocks, size, largest, head = hashlib.sha256(), 0, 0, 0, bytearray()
        try:
            while block := tape.read(READ_BUFFER):
                digest.update(block)
                blocks, size, largest = blocks + 1, size + len(block), max(largest, len(block))
                if len(head) < 64 or head.startswith(b'{"format": "' + INDEX_FORMAT.encode()):
                    head += block
        except OSError:  # end of data (or an unterminated last file)
            if blocks:
                yield number, blocks, size, digest.hexdigest(), largest, decode_index(bytes(head))
            return
        if blocks == 0 and tape.status().eod:
            return
        yield number, blocks, size, digest.hexdigest(), largest, decode_index(bytes(head))
        number += 1


def scan(config: Mapping, drive: str, echo=print) -> dict:
    with TapeReader(config, drive) as reader:
        label = reader.label
        if label is None:
            raise Unlabelled(drive)
        tape = media.get_tape(label["label"])
        if tape is not None and tape.uuid != label["uuid"]:
            media.retire_by_uuid(tape.uuid)
            tape = None
        if tape is None:
            capacity = media.capacity_for(config, drive, reader.tape.status(), None)
            tape = media.record_label(label, capacity=capacity, encoded=encode_label(label))
            echo(f"tape {label['label']} (pool {label['pool']}) added to the inventory")
        known = {f.file_number: f for f in media.files_of(tape)}
        summary = {"label": label["label"], "files": 0, "added": 0, "mismatched": 0, "archives": 0}
        indexes, used = [], 0
        try:
            for number, blocks, size, sha, largest, index in _read_files(reader):
                summary["files"] += 1
                used += size
                row = known.get(number)
                if row is not None:
                    if row.sha256 and row.sha256 != sha and not row.void:
                        summary["mismatched"] += 1
                        echo(f"file {number}: SHA-256 {sha} differs from the catalog's {row.sha256}")
                    continue
                kind = "index" if index is not None else "archive"
                db.session.add(TapeFile(tape_id=tape.id, file_number=number, kind=kind, block_size=largest,
                                        blocks=blocks, bytes=size, sha256=sha, written_at=utcnow(),
                                        void=False))
                summary["added"] += 1
                if index is not None:
                    indexes.append(index)
        except OSError as exc:
            raise from_os_error(drive, exc) from exc
        tape.bytes_used = max(tape.bytes_used, used)
        db.session.flush()
        for index in indexes:
            summary["archives"] += _adopt_index(index, echo)
        db.session.commit()
        return summary


def _adopt_index(index: dict, echo) -> int:
    """Jobs, archives and members of one session index; returns how many archives were added."""
    adopted, job = 0, None
    for entry in index.get("archives", []):
        rows = []
        for piece in entry.get("pieces", []):
            rows.append(db.session.scalar(
                select(TapeFile).join(Tape, Tape.id == TapeFile.tape_id)
                .where(Tape.label == piece["label"], TapeFile.file_number == piece["file_number"])))
        present = [r for r in rows if r is not None]
        if any(r.archive_id is not None for r in present) or "name" not in entry:
            continue  # already catalogued (or the index predates its archive row)
        if job is None:
            job = queue.record_scanned_backup(index.get("project") or "?", index.get("remark"),
                                              {"scanned_from": index.get("label"), "original_job": index.get("job")})
        archive = Archive(job_id=job.id, seq=entry.get("seq") or 1, format=entry.get("format") or "tgz",
                          encrypted=bool(entry.get("encrypted")), location_kind="tape", path=None,
                          size=entry.get("size") or 0, sha256=entry.get("sha256") or "",
                          member_count=len(entry.get("members", [])), input_bytes=entry.get("input_bytes") or 0,
                          name=entry.get("name"), kdf_iterations=entry.get("kdf_iterations"))
        db.session.add(archive)
        db.session.flush()
        batcher = MemberBatcher(job.id, archive.id)
        for path, kind, size, mtime, mode, link_target in entry.get("members", []):
            batcher.add(path, kind, size=size, mtime=mtime, mode=mode, link_target=link_target)
        batcher.flush()
        for piece, row in zip(entry.get("pieces", []), rows, strict=True):
            if row is not None:
                row.archive_id, row.job_id, row.piece, row.kind = archive.id, job.id, piece["piece"], "archive"
            else:
                echo(f"{entry['name']}: piece {piece['piece']} is on tape {piece['label']} file "
                     f"{piece['file_number']}: scan that tape too")
        adopted += 1
        echo(f"archive {entry['name']} (job {index.get('job')} of {index.get('project')}) catalogued")
    return adopted

