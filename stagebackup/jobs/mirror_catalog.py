"""A sync run's catalog, written while its files are copied: by a thread, or for a large mirror by a process.

The planner knows the mirror's final state before the first file is copied (it spools the catalog during the
scan), so the rows are written during the copy under an *unfinished* archive row, as a tar.gz archive's are
while it is compressed (``catalog_stream``): invisible to restore and browse until ``finish`` records the
archive, discarded if the run fails (``discard_unfinished``) or its worker dies (``drop_unfinished``).

Why a process for a large mirror: the copy's thread makes about ten system calls per file and takes the GIL
back after each; a thread making catalog rows beside it (reading the spool, making each row and its digest
record, binding the inserts) held the GIL for a third of the copy, and every hand-over waits for the switch
interval. Measured on the 200,000-file tree copied into tmpfs: the copy stage 9.0-10.7 s with the thread,
7.0-7.8 s with the rows written after it (docs/performance.md, "The catalog in a process"). A process does the
same work on the other core. It costs the start of a Python process (about half a second, beside the copy),
so a mirror whose spool is smaller than ``SYNC_CATALOG_PROCESS_MIN_BYTES`` keeps the thread.

The process (``python -m stagebackup.jobs.mirror_catalog``) reads its request, one JSON line, on stdin, opens
its own database connection (the worker's URL and settings), inserts ``archive_members`` rows only — never job
state — and answers one JSON line: the rows, their bytes and the digest. It dies with the job's process
(``PR_SET_PDEATHSIG``, which fires when the thread that started it ends: the worker runs its jobs on its main
thread), so a killed worker's recovery never races a catalog still being written. An in-memory SQLite database
cannot be shared with a process: the thread writes its rows.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy import create_engine, delete, make_url, select, update

from ..bulk import insert_rows
from ..catalog import MemberBatcher
from ..catalog_stream import CATALOG_NICE, ArchiveCatalog, unfinished_archive
from ..dbtypes import configure_engine, engine_options
from ..extensions import db
from ..models import Archive, ArchiveMember
from ..pipeline.archive import MemberSpool, member_row
from ..pipeline.listing import MirrorDigest, owners_kept
from ..pipeline.sync_plan import CatalogSpool, Member

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Written:
    """What a writer reports once every row is in: the archive row, its rows, their bytes, the digest ("" if
    ``sort`` failed)."""

    archive_id: int
    count: int
    total_bytes: int
    digest: str


class SpoolRows:
    """The planner's catalog spool, complete before the copy starts, read the way ``ArchiveCatalog`` follows
    an archive's spool: member rows in batches. The mirror's digest and size are made from the same rows."""

    def __init__(self, path: str, digest: MirrorDigest):
        self._fh = open(path, "rb")  # opened now: the job's work directory goes when the pipeline ends
        self.digest = digest
        self.count = self.total_bytes = 0

    def follow(self) -> Iterator[list[tuple]]:
        rows: list[tuple] = []
        with self._fh:
            for member in CatalogSpool.read(self._fh):
                path, kind, size, mtime_ns, mode, link_target, _uid, _gid = member
                rows.append(member_row(path, kind, size, mtime_ns / 1e9, mode, link_target))
                self.digest.add(member)
                self.total_bytes += size
                if len(rows) >= MemberSpool.FOLLOW_ROWS:
                    self.count += len(rows)
                    yield rows
                    rows = []
        self.count += len(rows)
        yield rows

    def close(self) -> None:
        """Nothing to wait for: the spool was complete before the thread started."""

    def discard(self) -> None:
        """``ArchiveCatalog.abort`` stops the thread after its current batch."""


class CatalogThread:
    """The rows written by ``ArchiveCatalog``'s thread in the job's process (a small mirror)."""

    def __init__(self, app: Flask, job_id: int, spool_path: str):
        self.rows = SpoolRows(spool_path, MirrorDigest(owners_kept(), app.config["CACHE_DIR"]))
        self.writer = ArchiveCatalog(app, job_id, 1, "sync", None, self.rows)

    def finish(self) -> Written:
        archive_id = self.writer.finish()
        return Written(archive_id, self.rows.count, self.rows.total_bytes, self.rows.digest.hexdigest())

    def abort(self) -> None:
        self.writer.abort()
        self.writer.wait()
        self.rows.digest.abandon()


class CatalogProcess:
    """The rows written by a process of its own (a large mirror); the same contract as ``CatalogThread``."""

    def __init__(self, app: Flask, job_id: int, spool_path: str):
        self.archive_id = unfinished_archive(job_id, 1, "sync", None)
        self.child = spawn({"database_url": app.config["SQLALCHEMY_DATABASE_URI"],
                            "busy_timeout_ms": int(app.config["SQLITE_BUSY_TIMEOUT_MS"]), "job_id": job_id,
                            "archive_id": self.archive_id, "spool": spool_path, "owners": owners_kept(),
                            "cache_dir": app.config["CACHE_DIR"]})

    def finish(self) -> Written:
        """Wait for the process (the caller's transaction committed first: on SQLite it holds the write lock)."""
        db.session.commit()
        out, err = self.child.communicate()
        if self.child.returncode != 0:
            reason = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {self.child.returncode}"]
            raise RuntimeError(f"writing the mirror's catalog failed: {reason[0]}")
        answer = json.loads(out)
        return Written(self.archive_id, answer["count"], answer["bytes"], answer["digest"])

    def abort(self) -> None:
        """Stop it (if ``finish`` has not already seen it end); its committed rows stay until
        ``discard_unfinished``."""
        if self.child.returncode is None:
            self.child.kill()
            self.child.communicate()


NO_DIGEST = "-"  # a recorded mirror whose digest could not be made: never equal to a listing's, never unfinished


class MirrorCatalog:
    """One sync run's catalog: an ``archives`` row of format "sync" and one ``archive_members`` row per mirror
    entry. Restore browses a sync job like an archive: member paths are relative to the destination."""

    def __init__(self, app: Flask, job_id: int, spool_path: str):
        self.job_id = job_id
        large = os.path.getsize(spool_path) >= int(app.config["SYNC_CATALOG_PROCESS_MIN_BYTES"])
        shared = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database not in (None, "", ":memory:")
        self.writer = (CatalogProcess if large and shared else CatalogThread)(app, job_id, spool_path)

    def finish(self, dest: str, corrections: dict[bytes, Member | None]) -> int:
        """Wait for the rows, put the mirror's own state in place of the ``corrections`` (entries whose change
        failed: what the disk has, or nothing), and record the archive. One short transaction."""
        written = self.writer.finish()
        archive_id, count, total = written.archive_id, written.count, written.total_bytes
        # Recorded as the archive's sha256: the next run's quick check compares its listing's digest with it;
        # after corrections the spooled rows are not all the mirror's, and the next run plans in full.
        digest = NO_DIGEST if corrections else written.digest or NO_DIGEST
        for path, found in corrections.items():
            removed = self._remove_row(archive_id, path)
            if removed is None:
                continue  # never planned into the catalog (a removal that failed): not the mirror's
            count, total = count - 1, total - removed
            if found is not None:
                _path, kind, size, mtime_ns, mode, link_target, _uid, _gid = found
                insert_rows(ArchiveMember.__table__, MemberBatcher.COLUMNS, [
                    (self.job_id, archive_id, *member_row(path, kind, size, mtime_ns / 1e9, mode, link_target))])
                count, total = count + 1, total + size
        db.session.execute(update(Archive).where(Archive.id == archive_id).values(
            path=dest, size=total, input_bytes=total, member_count=count, sha256=digest))
        db.session.commit()
        return archive_id

    def _remove_row(self, archive_id: int, path: bytes) -> int | None:
        """Delete the spooled row of ``path``; its size, or None if there was none."""
        parent, name = member_row(path, "file")[:2]
        found = db.session.execute(select(ArchiveMember.id, ArchiveMember.size).where(
            ArchiveMember.job_id == self.job_id, ArchiveMember.archive_id == archive_id,
            ArchiveMember.parent == parent, ArchiveMember.name == name)).first()
        if found is None:
            return None
        db.session.execute(delete(ArchiveMember).where(ArchiveMember.id == found.id))
        return found.size

    def abort(self) -> None:
        """The run failed: stop the writer, then (the caller's transaction released) ``discard_unfinished``."""
        self.writer.abort()


def spawn(request: dict) -> subprocess.Popen:
    """Start the process and hand it ``request`` (and this process's pid, which it checks it is the child of)."""
    package_parent = str(Path(__file__).resolve().parents[2])  # this code, however the worker was started
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    try:  # the password in the URL goes through the pipe, never the command line
        child.stdin.write(json.dumps({**request, "parent": os.getpid()}).encode() + b"\n")
        child.stdin.flush()
    except OSError:  # it died at once: not left behind unreaped
        child.kill()
        child.communicate()
        raise
    return child


def write_catalog(request: dict) -> dict:
    """The process's work: every row of the spool inserted in short transactions, and the digest."""
    url = request["database_url"]
    engine = create_engine(url, **engine_options(url))
    configure_engine(engine, request["busy_timeout_ms"])
    rows = SpoolRows(request["spool"], MirrorDigest(request["owners"], request["cache_dir"]))
    ids = (request["job_id"], request["archive_id"])
    with engine.connect() as conn:
        for batch in rows.follow():
            insert_rows(ArchiveMember.__table__, MemberBatcher.COLUMNS, [ids + row for row in batch], conn=conn)
            conn.commit()
    engine.dispose()
    return {"count": rows.count, "bytes": rows.total_bytes, "digest": rows.digest.hexdigest()}


def main() -> int:
    request = json.loads(sys.stdin.buffer.readline())
    # Die with the job's process: its recovery deletes the unfinished rows, and must not race new ones.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != request["parent"]:
        return 1  # it died before the line above
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), CATALOG_NICE))
    try:
        answer = write_catalog(request)
    except Exception as exc:  # noqa: BLE001 - one line the job's error message ends with
        sys.stderr.write(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}\n")
        return 1
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
