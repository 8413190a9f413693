"""Faults a real worker process applies to itself, for tests/faults only (loaded by ``site/sitecustomize.py``).

Production code has no hook: these wrap product functions in the worker process the test starts, chosen by
environment variables, so the test can stop the worker at an exact point without sleeping and kill it there.

``STAGEBACKUP_TEST_PAUSE_AT`` — where the job's thread stops for good (until SIGKILL):
    ``<stage>:start``  just after the stage began (its badge is blue): the boundary with the stage before it;
    ``<stage>:end``    just after the stage finished, before the next one starts;
    ``<stage>``        inside the stage: at a checkpoint (between files and 1 MiB chunks) of the job's thread
                       while ``<stage>`` is its newest open stage, after ``STAGEBACKUP_TEST_PAUSE_SKIP`` such
                       checkpoints (default 0);
    ``copy-thread``    inside the copy of an archive to its destination (a directory or a tape), on the copy
                       thread, after ``STAGEBACKUP_TEST_PAUSE_SKIP`` chunks;
    ``restore-file``   inside a restored file: after its second chunk is written;
    ``sync-file``      inside a file a sync copies: after its first chunk is written;
    ``tape-confirmed`` an archive's tape files were confirmed (valid), before the catalog records the archive.
  On pausing the worker writes ``STAGEBACKUP_TEST_PAUSE_MARK`` (the point and its pid), which the test awaits.
  With ``STAGEBACKUP_TEST_RESUME`` (a path) set, the thread goes on once that file exists instead of blocking for
  good (the test does something to the world while the job is mid-stage, then lets it continue).

``STAGEBACKUP_TEST_FAULT`` — comma-separated faults:
    ``no-link``        the cache is on another file system: archives are copied to a directory, not linked;
    ``eio:<name>``     ``os.read`` of a file called ``<name>`` fails with EIO (a bad sector);
    ``enospc:<dir>``   writing into files under ``<dir>`` fails with ENOSPC after 1 MiB (a full disk);
    ``slow-read:<dir>:<bytes per second>``  reading files under ``<dir>`` is paced to that rate, for the whole
                       process (a slow disk: ``bench/bench_poll.py``'s jobs run long without using the CPU).
"""

from __future__ import annotations

import errno
import os
import threading
import time

PAUSE_AT = "STAGEBACKUP_TEST_PAUSE_AT"
PAUSE_SKIP = "STAGEBACKUP_TEST_PAUSE_SKIP"
PAUSE_MARK = "STAGEBACKUP_TEST_PAUSE_MARK"
RESUME = "STAGEBACKUP_TEST_RESUME"
FAULT = "STAGEBACKUP_TEST_FAULT"
ENOSPC_AFTER_BYTES = 1 << 20


def pause(point: str) -> None:
    """Tell the test where we are, then block this thread until the process is killed (or the test resumes it)."""
    mark = os.environ[PAUSE_MARK]
    with open(mark + ".tmp", "w") as fh:
        fh.write(f"{point} {os.getpid()}\n")
    os.rename(mark + ".tmp", mark)
    resume = os.environ.get(RESUME)
    if not resume:
        threading.Event().wait()
    while not os.path.exists(resume):
        time.sleep(0.01)


class _Countdown:
    def __init__(self, skip: int):
        self.left = skip
        self.lock = threading.Lock()

    def due(self) -> bool:
        with self.lock:
            self.left -= 1
            return self.left == -1  # once


def _install_pause(point: str, skip: int) -> None:
    from stagebackup.jobs.progress import JobReporter
    from stagebackup.pipeline.overlap import CopyReporter

    countdown = _Countdown(skip)
    stage, _, edge = point.partition(":")
    started, finished, checkpoint = JobReporter.stage_started, JobReporter.stage_finished, JobReporter.checkpoint
    copy_checkpoint = CopyReporter.checkpoint

    def stage_started(self, code):
        started(self, code)
        if edge == "start" and code == stage:
            pause(point)

    def stage_finished(self, code):
        finished(self, code)
        if edge == "end" and code == stage:
            pause(point)

    def job_checkpoint(self):
        checkpoint(self)
        if not edge and self.open_stages and self.open_stages[-1] == stage and countdown.due():
            pause(point)

    def copy_thread_checkpoint(self):
        copy_checkpoint(self)
        if point == "copy-thread" and threading.get_ident() != self._owner and countdown.due():
            pause(point)

    if point == "restore-file":
        _pause_inside_restored_file()
    if point == "tape-confirmed":
        _pause_after_tape_confirmed()
    if point == "sync-file":
        _pause_inside_synced_file()
    JobReporter.stage_started, JobReporter.stage_finished = stage_started, stage_finished
    JobReporter.checkpoint, CopyReporter.checkpoint = job_checkpoint, copy_thread_checkpoint


def _pause_inside_restored_file() -> None:
    from stagebackup.restore.file_sink import FileSink

    real_write = FileSink.write

    def write(self, data):
        written = real_write(self, data)
        if self.size > written:
            pause("restore-file")
        return written

    FileSink.write = write


def _pause_inside_synced_file() -> None:
    from stagebackup.pipeline import sync_apply

    real_copy_chunk = sync_apply._copy_chunk

    def copy_chunk(*args):
        copied = real_copy_chunk(*args)
        pause("sync-file")
        return copied

    sync_apply._copy_chunk = copy_chunk


def _pause_after_tape_confirmed() -> None:
    from stagebackup.tape.ledger import MediaLedger

    real_confirm = MediaLedger.confirm

    def confirm(self, row_ids):
        real_confirm(self, row_ids)
        pause("tape-confirmed")

    MediaLedger.confirm = confirm


def _no_link() -> None:
    from stagebackup.pipeline import destination

    destination._link_instead_of_copy = lambda source, temp: False


def _eio_on_read(name: str) -> None:
    """``os.read`` of a file called ``name`` fails with EIO, as a bad sector does."""
    real_read = os.read

    def read(fd, n):
        if os.path.basename(_path_of(fd)) == name:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_read(fd, n)

    os.read = read


def _path_of(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def _enospc_under(directory: str) -> None:
    """``os.write`` to a file under ``directory`` fails once ``ENOSPC_AFTER_BYTES`` went there (a full disk)."""
    real_write = os.write
    prefix = os.path.realpath(directory) + os.sep
    written = [0]

    def write(fd, data):
        if _path_of(fd).startswith(prefix):
            if written[0] + len(data) > ENOSPC_AFTER_BYTES:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written[0] += len(data)
        return real_write(fd, data)

    os.write = write


def _slow_reads_under(arg: str) -> None:
    """``os.read`` of files under a folder delivers at most ``rate`` bytes a second on average (``<dir>:<rate>``):
    each read returns when the bytes read so far would have arrived at that rate."""
    directory, _, rate = arg.rpartition(":")
    prefix, bytes_per_s = os.path.realpath(directory) + os.sep, float(rate)
    real_read = os.read
    lock = threading.Lock()
    due = [time.monotonic()]

    def read(fd, n):
        data = real_read(fd, n)
        if data and _path_of(fd).startswith(prefix):
            with lock:
                due[0] = max(due[0], time.monotonic()) + len(data) / bytes_per_s
                wait = due[0] - time.monotonic()
            time.sleep(max(0.0, wait))
        return data

    os.read = read


def install() -> None:
    for fault in filter(None, os.environ.get(FAULT, "").split(",")):
        kind, _, arg = fault.partition(":")
        if kind == "no-link":
            _no_link()
        elif kind == "eio":
            _eio_on_read(arg)
        elif kind == "enospc":
            _enospc_under(arg)
        elif kind == "slow-read":
            _slow_reads_under(arg)
        else:
            raise SystemExit(f"unknown test fault {fault!r}")
    if os.environ.get(PAUSE_AT):
        _install_pause(os.environ[PAUSE_AT], int(os.environ.get(PAUSE_SKIP, "0")))
