"""Batched durability for the sync copy: many complete temporary files, one ``syncfs``, then their renames.

A file must appear under its final name only complete, and the job may say "succeeded" only when everything it
wrote is durable. An ``fsync`` per file gives both, but costs a journal commit per file: a first mirror of
50,000 small files took 15 times as long as ``rsync``. Instead, copies are written under temporary names and
queued here; once a batch is large enough (``MAX_FILES`` files or ``MAX_BYTES`` bytes) one ``syncfs`` of the
destination's file system makes all their data durable, and only then are they renamed to their final names.
The end of the copy stage flushes the last batch and calls ``syncfs`` once more, so the renames, deletions and
directory metadata are durable before the catalog records the run.

Crash guarantees (power loss or SIGKILL at any point): a final name holds the old version or the complete new
one, never a partial file, since no rename happens before its data is on disk; at most one batch of copies is
lost, as temporary files that the next run removes (``CLEAN_TEMP``); a run that did not reach the final
``syncfs`` never recorded its catalog, so the next run compares the mirror with its source again.

Directory metadata set after a directory's contents (``DIR_ATTRS``) waits in the same queue while copies are
pending, because renaming a file into a directory changes that directory's modification time.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from dataclasses import dataclass

MAX_FILES = 4096
MAX_BYTES = 256 << 20

_libc = ctypes.CDLL(None, use_errno=True)


def syncfs(path: bytes) -> None:
    """Flush the file system holding ``path`` (Linux ``syncfs(2)``; it reports writeback errors since 5.8)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Deferred:
    """One action that waits for the batch's ``syncfs``: ``run()``; ``temp`` is removed if it never runs.

    ``shown`` and ``src`` say, if it fails, which file of the mirror and which source it concerned."""

    run: Callable[[], None]
    temp: bytes | None = None
    shown: bytes = b""
    src: bytes = b""


class Batch:
    """Queued renames (and directory metadata) of one sync job, made durable a batch at a time."""

    def __init__(self, dest: bytes, on_error: Callable[[Deferred, OSError], None]):
        self.dest, self.on_error = dest, on_error
        self.pending: list[Deferred] = []
        self.files = 0
        self.nbytes = 0

    def add_file(self, action: Deferred, size: int) -> None:
        self.pending.append(action)
        self.files += 1
        self.nbytes += size
        if self.files >= MAX_FILES or self.nbytes >= MAX_BYTES:
            self.flush()

    def add_after_files(self, run: Callable[[], None]) -> bool:
        """Queue ``run`` behind the pending copies; False (nothing queued) when there are none."""
        if not self.pending:
            return False
        self.pending.append(Deferred(run))
        return True

    def flush(self) -> None:
        """Make the pending copies durable, then carry out the queued actions in order."""
        if not self.pending:
            return
        syncfs(self.dest)
        actions, self.pending, self.files, self.nbytes = self.pending, [], 0, 0
        for index, action in enumerate(actions):
            try:
                try:
                    action.run()
                except OSError as exc:
                    self.on_error(action, exc)
            except BaseException:
                self.pending = actions[index + 1:]  # a stop or a fatal error: the caller discards the rest
                raise

    def finish(self) -> None:
        """The end of the copy stage: the last batch, then everything else this run changed, durable."""
        self.flush()
        syncfs(self.dest)

    def discard(self) -> None:
        """A cancel, a stop or a fatal error: the queued copies never get their final names."""
        for action in self.pending:
            if action.temp is not None:
                try:
                    os.unlink(action.temp)
                except FileNotFoundError:
                    pass
        self.pending, self.files, self.nbytes = [], 0, 0
