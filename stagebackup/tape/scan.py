"""``flask tape scan``: rebuild the catalog from a tape alone (after losing the database, or to adopt a
tape written by another server).

Every file is read to the end and hashed; the label gives the inventory row, index files give the jobs,
archives, their members and their pieces. Files and archives already in the catalog are left as they are
(a second scan adds nothing), and a file whose SHA-256 differs from its catalog row is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import select

from ..catalog import MemberBatcher
from ..dbtypes import utcnow
from ..extensions import db
from ..jobs import queue
from ..models import Archive
from ..tape_models import Tape, TapeFile
from . import media
from .errors import Unlabelled, from_os_error
from .index_reader import scan_files
from .label import encode_label
from .reader import TapeReader


def scan(config: Mapping, drive: str, echo=print, error: Callable[[str], None] = print) -> dict:
    """Catalog the tape in ``drive``. A file that claims to be an index but is not a valid one is reported
    through ``error`` (``[ERROR] LABEL file N: not a StageBackup index (reason)``), catalogued as a damaged
    index, and the scan goes on; the summary's ``errors`` lists those messages."""
    limit = int(config["TAPE_INDEX_MAX_BYTES"])
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
        summary = {"label": label["label"], "files": 0, "added": 0, "mismatched": 0, "archives": 0, "errors": []}
        indexes, used = [], 0
        try:
            for found in scan_files(reader.tape, limit):
                summary["files"] += 1
                used += found.bytes
                if found.problem is not None:
                    message = f"[ERROR] {label['label']} file {found.number}: not a StageBackup index ({found.problem})"
                    summary["errors"].append(message)
                    error(message)
                row = known.get(found.number)
                if row is not None:
                    if row.sha256 and row.sha256 != found.sha256 and not row.void:
                        summary["mismatched"] += 1
                        echo(f"file {found.number}: SHA-256 {found.sha256} differs from the catalog's {row.sha256}")
                    continue
                # A data file is void until a session index names it: a partial file (a job cancelled or
                # killed mid-write) or foreign data must never pass for an archive.
                db.session.add(TapeFile(tape_id=tape.id, file_number=found.number, kind=found.kind,
                                        block_size=found.largest_block, blocks=found.blocks, bytes=found.bytes,
                                        sha256=found.sha256, written_at=utcnow(), void=found.kind == "archive"))
                summary["added"] += 1
                if found.kind == "catalog":
                    echo(f"file {found.number}: a catalog copy (flask db backup --to-tape): `flask tape read {drive} "
                         f"--file {found.number} --out copy.tar`, untar it, then `flask db restore` the folder")
                if found.index is not None:
                    indexes.append(found.index)
        except OSError as exc:
            raise from_os_error(drive, exc) from exc
        tape.bytes_used = max(tape.bytes_used, used)
        db.session.flush()
        for index in indexes:
            summary["archives"] += _adopt_index(index, echo)
        db.session.flush()
        unnamed = [f.file_number for f in media.files_of(tape) if f.kind == "archive" and f.void]
        if unnamed:
            echo(f"file(s) {', '.join(map(str, unnamed))}: no session index names them (a write that did not finish, "
                 "or pieces whose index is on another tape: scan that tape too); void, never offered for restore")
        summary["void"] = len(unnamed)
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
        if any(r.kind != "archive" for r in present):  # an index naming a label or an index as its data
            echo(f"{entry['name']}: its index names a tape file that is not an archive; not catalogued")
            continue
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
                row.void = False
            else:
                echo(f"{entry['name']}: piece {piece['piece']} is on tape {piece['label']} file "
                     f"{piece['file_number']}: scan that tape too")
        adopted += 1
        echo(f"archive {entry['name']} (job {index.get('job')} of {index.get('project')}) catalogued")
    return adopted

