"""The worker process: a plain synchronous loop (as in rq) that claims and runs one job at a time.

Signals: the first SIGTERM/SIGINT asks the running job to stop at its next checkpoint (it ends
``interrupted``, partial outputs removed) and the loop to exit; a second one exits at once. A
heartbeat thread reports liveness every few seconds; recovery of jobs whose worker died runs at start
and periodically.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time

from flask import Flask, current_app, has_app_context

from ..extensions import db
from . import queue, workers
from .runner import JobError, describe, run_job

log = logging.getLogger(__name__)


class ColdShutdown(BaseException):
    """Second signal: leave now."""


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state != b"Z"
    except (OSError, IndexError):
        return True


class Worker:
    def __init__(self, app: Flask, *, drive: str | None = None, burst: bool = False):
        self.app = app
        self.drive = drive
        self.burst = burst
        self.host = socket.gethostname()
        self.stop_event = threading.Event()
        self.worker_id: int | None = None
        self._signals = 0
        self._old_handlers: dict[int, object] = {}
        self._heartbeat_done = threading.Event()

    # -- signals ---------------------------------------------------------------------------------
    def _on_signal(self, signum, _frame) -> None:
        self._signals += 1
        if self._signals == 1:
            log.warning("signal %s: stopping after the current file (send again to stop now)", signum)
            self.stop_event.set()
        else:
            raise ColdShutdown()

    def _install_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[signum] = signal.signal(signum, self._on_signal)

    def _restore_signals(self) -> None:
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)

    # -- heartbeat -------------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        interval = float(self.app.config["HEARTBEAT_INTERVAL_S"])
        with self.app.app_context():
            while not self._heartbeat_done.wait(interval):
                try:
                    workers.heartbeat(self.worker_id)
                    # Here, not on the job's thread: a job stuck in a read that never returns still ends.
                    for job_id in workers.expire_overdue(self.worker_id):
                        log.warning("job %s ran past its time limit: marked failed", job_id)
                except Exception:  # noqa: BLE001 - a missed beat is logged, the next one retries
                    log.exception("heartbeat failed")
                    db.session.rollback()
            db.session.remove()

    def _recover(self) -> None:
        recovered = workers.recover_stale(
            host=self.host, stale_after_s=float(self.app.config["WORKER_STALE_AFTER_S"]), pid_alive=pid_alive
        )
        for job_id in recovered:
            log.warning("job %s was left running by a dead worker: marked interrupted", job_id)

    def _report_drives(self) -> None:
        """Hook for issue #5: write what this worker's drives show into ``drives`` (loaded label,
        online, write-protected, a hint for a blank tape), so the page shows them before any job runs."""
        from ..tape.admin import refresh_drives

        try:
            refresh_drives(self.app.config, [self.drive] if self.drive else None)
        except Exception:  # noqa: BLE001 - a drive problem must not stop the worker; jobs report it
            log.exception("could not read the tape drives' status")
            db.session.rollback()

    # -- loop ------------------------------------------------------------------------------------
    def _context(self):
        """This app's context: the caller's if it is already inside one (the CLI, tests), so the
        worker shares its session instead of waiting on a transaction the caller still holds."""
        if has_app_context() and current_app._get_current_object() is self.app:
            return contextlib.nullcontext()
        return self.app.app_context()

    def run(self) -> int:
        with self._context():
            self.worker_id = workers.register_worker(self.host, os.getpid(), self.drive)
            self._install_signals()  # before the "started" line: from then on a SIGTERM is a warm stop
            log.info("worker %s started (drive=%s, burst=%s)", self.worker_id, self.drive, self.burst)
            beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
            beat.start()
            job_id = None
            try:
                self._recover()
                self._report_drives()
                poll_s = float(self.app.config["QUEUE_POLL_INTERVAL_S"])
                next_recovery = time.monotonic() + float(self.app.config["WORKER_STALE_AFTER_S"]) / 2
                while not self.stop_event.is_set():
                    job_id = queue.claim(self.worker_id, self.drive)
                    if job_id is None:
                        if self.burst:
                            break
                        if time.monotonic() >= next_recovery:
                            self._recover()
                            next_recovery = time.monotonic() + float(self.app.config["WORKER_STALE_AFTER_S"]) / 2
                        self.stop_event.wait(poll_s)
                        continue
                    status = self._run_guarded(job_id)
                    log.info("job %s ended: %s", job_id, status)
                    job_id = None
                return 0
            except ColdShutdown:
                log.warning("second signal: exiting now")
                if job_id is not None:
                    self._abandon(job_id)
                return 1
            finally:
                self._heartbeat_done.set()
                beat.join(timeout=5)
                self._restore_signals()
                try:
                    workers.stop_worker(self.worker_id)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    log.exception("could not record the worker's stop")
                db.session.rollback()  # end any transaction; a pushed context removes its session

    def _run_guarded(self, job_id: int) -> str:
        """run_job ends every job itself; this is the net for a bug in that reporting path, or a database
        that is still unavailable when the job ends, so that the job still ends visibly failed and the worker
        lives on to take the next one."""
        try:
            return run_job(job_id, self.stop_event)
        except Exception as exc:  # noqa: BLE001
            error = describe(exc)
            if error.error_class == "DatabaseUnavailable":
                log.error("job %s: %s", job_id, error.message)
                self._end_once_the_database_is_back(job_id, error)
            else:
                log.exception("job %s: unexpected error while ending the job", job_id)
                _end_from_outside(job_id, "failed", JobError("InternalError",
                                                             f"internal error: {type(exc).__name__}: {exc}"))
            return "failed"

    def _end_once_the_database_is_back(self, job_id: int, error: JobError) -> None:
        """Record the ending, retrying while the database is unavailable: a job left ``running`` by a live
        worker would never be recovered. A stop request gives up; the next worker's recovery ends it."""
        delay = float(self.app.config["QUEUE_POLL_INTERVAL_S"])
        while not _end_from_outside(job_id, "failed", error) and not self.stop_event.wait(delay):
            delay = min(delay * 2, 30.0)

    def _abandon(self, job_id: int) -> None:
        """Cold shutdown mid-job: end it as interrupted now rather than waiting for recovery."""
        _end_from_outside(job_id, "interrupted", JobError("WorkerStopping", "the worker was stopped"))


def _end_from_outside(job_id: int, status: str, error: JobError) -> bool:
    """End a job the runner could not end; False if that failed too (the job is still ``running``: a later
    try, or recovery at the next worker start, ends it)."""
    try:
        db.session.rollback()
        queue.append_log(job_id, "ERROR", f"{status}: {error.message}")
        queue.finish(job_id, status, **error._asdict())
    except Exception:  # noqa: BLE001
        log.exception("could not mark job %s %s", job_id, status)
        db.session.rollback()
        return False
    return True
