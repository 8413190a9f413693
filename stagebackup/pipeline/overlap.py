"""Copying archive k on a background thread while archive k+1 is compressed.

The job's reporter writes to the database and belongs to the main thread. The copy thread gets a
``CopyReporter``: what it reports (log lines, and the tape layer's facts "waiting for a tape" / "tape
loaded") is queued and recorded by the main thread, so job state has one writer on one thread; its
``checkpoint`` stops the copy when the main thread gives up (cancel, shutdown, a failure). The main thread
compresses through a ``PipelineReporter``, whose checkpoints pass the copy thread's facts on and raise the
copy's error as soon as there is one, so a failing destination stops the job without waiting for the
current group to finish.
"""

from __future__ import annotations

import threading

from ..errors import WorkerStopping
from ..paths import display
from .destination import ArchiveSink, Placement

WAIT_POLL_S = 0.2


class CopyReporter:
    """The reporter a sink gets: safe to call from the copy thread and from the main thread."""

    def __init__(self, main):
        self.main = main
        self.abort = threading.Event()
        self._lock = threading.Lock()
        self._facts: list[tuple[str, tuple]] = []
        self._owner = threading.get_ident()

    @property
    def error_count(self) -> int:
        return self.main.error_count

    def _report(self, method: str, *args) -> None:
        """Call the main reporter's ``method`` now on the main thread, else at its next drain."""
        if threading.get_ident() == self._owner:
            getattr(self.main, method)(*args)
            return
        with self._lock:
            self._facts.append((method, args))

    def log(self, tag: str, message: str) -> None:
        self._report("log", tag, message)

    def waiting_for_media(self, message: str) -> None:
        self._report("waiting_for_media", message)

    def media_ready(self, message: str) -> None:
        self._report("media_ready", message)

    def log_path(self, tag: str, path: str | bytes, note: str = "") -> None:
        self.log(tag, display(path) + (f": {note}" if note else ""))

    def advance(self, *, nbytes: int = 0, files: int = 0, current: str | bytes | None = None) -> None:
        """Copy progress is not input progress: the job's bytes count what was compressed."""

    def checkpoint(self) -> None:
        if threading.get_ident() == self._owner:
            self.drain()
            self.main.checkpoint()
            return
        if self.abort.is_set() or self.main.stop_event.is_set():
            raise WorkerStopping()

    def drain(self) -> None:
        if self._facts:
            with self._lock:
                facts, self._facts = self._facts, []
            for method, args in facts:
                getattr(self.main, method)(*args)


class Copier:
    """At most one ``sink.put`` in flight, on its own thread (no application context: no database there)."""

    def __init__(self, sink: ArchiveSink, reporter: CopyReporter):
        self.sink, self.reporter = sink, reporter
        self.thread: threading.Thread | None = None
        self.placement: Placement | None = None
        self.error: BaseException | None = None

    @property
    def busy(self) -> bool:
        return self.thread is not None

    def start(self, staged_path: str, name: str, sha256: str, seq: int) -> None:
        assert self.thread is None, "one copy at a time: the cache holds at most one archive waiting"
        self.placement, self.error = None, None
        self.thread = threading.Thread(
            target=self._run, args=(staged_path, name, sha256, seq), name=f"copy-{seq}", daemon=True,
        )
        self.thread.start()

    def _run(self, staged_path: str, name: str, sha256: str, seq: int) -> None:
        try:
            self.placement = self.sink.put(staged_path, name, sha256, seq)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which fails the job
            self.error = exc

    def wait(self, main_reporter) -> Placement:
        """Wait for the copy in flight, still answering cancel and shutdown; raise its error."""
        thread = self.thread
        assert thread is not None
        while thread.is_alive():
            thread.join(WAIT_POLL_S)
            self.reporter.drain()
            if thread.is_alive():
                main_reporter.checkpoint()
        self.thread = None
        self.reporter.drain()
        if self.error is not None:
            raise self.error
        return self.placement

    def abort(self) -> None:
        """Stop the copy in flight (it fails at its next checkpoint) and wait for it to clean up."""
        self.reporter.abort.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        self.reporter.drain()


class PipelineReporter:
    """The main thread's reporter while groups are compressed and copied at once."""

    def __init__(self, main, copy_reporter: CopyReporter, copier: Copier | None = None):
        self.main, self.copy_reporter, self.copier = main, copy_reporter, copier
        self.log = main.log
        self.log_path = main.log_path
        self.advance = main.advance

    @property
    def error_count(self) -> int:
        return self.main.error_count

    def checkpoint(self) -> None:
        copier = self.copier
        if copier is not None and copier.error is not None and copier.thread is not None:
            copier.wait(self.main)  # raises the copy's error now
        self.copy_reporter.drain()
        self.main.checkpoint()

    def __getattr__(self, name):
        return getattr(self.main, name)
