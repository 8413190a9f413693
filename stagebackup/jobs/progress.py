"""Throttled progress and log buffer for one running job.

Progress and log lines are written at most once per ``flush_interval_s``; stage changes are written at
once (the badges must not lag). Every flush also reads the cancel flag and the status, so cancelling (or a
time limit the worker's watchdog enforced) costs no extra query, and ``checkpoint()`` is where long loops
stop for cancel or a warm shutdown.

The reporter is how the pipeline and the tape layer hand facts to the jobs layer (a plan, waiting for a
tape, the tape loaded): it records them through ``state`` on the job's own thread.
"""

from __future__ import annotations

import threading
import time

from ..dbtypes import utcnow
from ..errors import JobCancelled, JobInterrupted, WorkerStopping
from ..extensions import db
from ..models import ACTIVE_STATUSES, LOG_TAGS
from ..paths import display
from . import state


class JobEnded(JobInterrupted):
    """The job was ended while it ran (its time limit): stop; the ending is already recorded."""

    status = "failed"
    message = "the job was ended by the worker's watchdog"


class JobReporter:
    def __init__(
        self, job_id: int, *, flush_interval_s: float = 1.0, stop_event: threading.Event | None = None
    ):
        self.job_id = job_id
        self.flush_interval_s = flush_interval_s
        self.stop_event = stop_event or threading.Event()
        self.bytes_done = 0
        self.files_done = 0
        self.bytes_total = 0
        self.files_total = 0
        self.folders_total = 0
        self.error_count = 0
        # (message template, values) of facts that make a job without errors end ``warning``
        self.warnings: list[tuple[str, dict]] = []
        self.current_file: str | None = None
        self._current: str | bytes | None = None
        self._logs: list[tuple] = []
        self._last_flush = 0.0
        self._cancelled = False
        self._ended: str | None = None
        self._dirty = False
        self._advanced = False
        self.open_stages: list[str] = []
        self.rate_bytes_s: float | None = None
        self._rate_sample = (time.monotonic(), 0)

    # -- stages: written immediately -------------------------------------------------------------
    def stage_started(self, code: str) -> None:
        state.start_stage(self.job_id, code)
        self.open_stages.append(code)
        self.flush(force=True)

    def stage_finished(self, code: str) -> None:
        state.finish_stage(self.job_id, code)
        self.open_stages.remove(code)
        self.flush(force=True)

    def fail_open_stages(self, message: str) -> None:
        """The job ended badly: every stage still running turns red with the reason."""
        if self.open_stages:
            state.fail_open_stages(self.job_id, message)
            self.open_stages = []
        self.flush(force=True)

    # -- facts from the pipeline and the tape layer: recorded at once --------------------------------
    def record_plan(self, plan: dict) -> None:
        """The tape plan made when the scan ended (bytes to write, tapes needed, time at the drive's rate)."""
        state.record_plan(self.job_id, plan)
        self.log("INFO", plan["summary"])
        self.flush(force=True)

    def waiting_for_media(self, message: str, stage: str = "copy", label: str | None = None) -> None:
        """No suitable tape: the job shows ``waiting_media`` with the prompt until ``media_ready``; ``label``
        is the tape a restore or verify needs (a backup takes any suitable one)."""
        state.set_waiting_for_media(self.job_id, True, stage, message, label)
        self.log("INFO", message)
        self.flush(force=True)

    def media_ready(self, message: str, stage: str = "copy") -> None:
        state.set_waiting_for_media(self.job_id, False, stage, None)
        self.log("INFO", message)
        self.flush(force=True)

    def warn(self, template: str, values: dict) -> None:
        """Something the operator must know although nothing failed (files a restore left out on purpose):
        the job ends ``warning`` with this message."""
        self.warnings.append((template, values))

    # -- buffered ---------------------------------------------------------------------------------
    def log(self, tag: str, message: str) -> None:
        assert tag in LOG_TAGS, tag
        if tag == "ERROR":
            self.error_count += 1
        self._logs.append((self.job_id, utcnow(), tag, message))

    def log_path(self, tag: str, path: str | bytes, note: str = "") -> None:
        self.log(tag, display(path) + (f": {note}" if note else ""))

    def set_totals(self, *, bytes_total: int, files_total: int, folders_total: int = 0) -> None:
        self.bytes_total, self.files_total, self.folders_total = bytes_total, files_total, folders_total
        self._dirty = True

    def advance(self, *, nbytes: int = 0, files: int = 0, current: str | bytes | None = None) -> None:
        self.bytes_done += nbytes
        self.files_done += files
        if nbytes or files:
            self._advanced = True
        if current is not None:
            self._current = current  # shown in display form at the next flush, not converted per file
        self._dirty = True

    @property
    def percent(self) -> int:
        if self.bytes_total > 0:
            return min(99, int(100 * self.bytes_done / self.bytes_total))
        if self.files_total > 0:
            return min(99, int(100 * self.files_done / self.files_total))
        return 0

    RATE_WINDOW_S = 1.0
    RATE_SMOOTHING = 0.5  # weight of the newest window: follows a change within a few seconds

    def _update_rate(self, now_mono: float) -> None:
        """The current rate: bytes over the last window, smoothed (an average since the start hides stalls)."""
        since, bytes_then = self._rate_sample
        elapsed = now_mono - since
        if elapsed < self.RATE_WINDOW_S:
            return
        current = max(0, self.bytes_done - bytes_then) / elapsed
        previous = self.rate_bytes_s
        self.rate_bytes_s = current if previous is None else (
            self.RATE_SMOOTHING * current + (1 - self.RATE_SMOOTHING) * previous)
        self._rate_sample = (now_mono, self.bytes_done)

    def checkpoint(self) -> None:
        """Call between files and blocks: flushes when due, stops the job when asked to."""
        if self.stop_event.is_set():
            raise WorkerStopping()
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()
        if self._ended is not None:
            raise JobEnded()
        if self._cancelled:
            raise JobCancelled()

    def flush(self, *, force: bool = False) -> None:
        now_mono = time.monotonic()
        if not force and now_mono - self._last_flush < self.flush_interval_s:
            return
        self._last_flush = now_mono
        if self._dirty or force:
            self._update_rate(now_mono)
            if self._current is not None:
                self.current_file, self._current = display(self._current), None
            state.write_progress(self.job_id, {
                "progress": self.percent, "bytes_done": self.bytes_done, "bytes_total": self.bytes_total,
                "files_done": self.files_done, "files_total": self.files_total,
                "folders_total": self.folders_total, "error_count": self.error_count,
                "current_file": self.current_file, "rate_bytes_s": self.rate_bytes_s,
            }, advanced=self._advanced)
            self._dirty = self._advanced = False
        # After the job row's update: on MariaDB a log row's foreign key check takes a shared lock on the job
        # row, and upgrading it to the update's exclusive lock could deadlock with the heartbeat's update.
        if self._logs:
            state.insert_logs(self._logs)
            self._logs = []
        self._cancelled, status = state.read_flags(self.job_id)
        if status not in ACTIVE_STATUSES:
            self._ended = status
        # Commit every time: the worker must never hold a transaction (and SQLite's lock) between flushes.
        db.session.commit()
