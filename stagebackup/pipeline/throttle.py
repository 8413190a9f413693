"""A job's read bandwidth limit (读取限速; rsync's ``--bwlimit``, Bareos' "Maximum Bandwidth Per Job").

A token bucket the source readers draw from: one per job, shared by every thread that reads the job's
sources, so the limit holds for the job as a whole, averaged over it. The bucket holds a quarter second of
reading (a short burst after a pause, never more); a read takes its bytes first and then waits until the
debt is paid, so readers on several threads queue behind each other in the order they came.

Waiting never holds up a cancel: it sleeps at most ``MAX_SLEEP_S`` at a time and calls the caller's
``checkpoint`` in between (the job reporter's: it flushes progress and raises on cancel or shutdown), and one
read is at most ``chunk`` bytes, a quarter second of the limit, so no single read is seconds of budget.

No limit is no bucket: ``for_limit`` returns None and the readers only test for it (no lock, no clock call).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_SLEEP_S = 0.25
BURST_S = 0.25  # what the bucket holds, in seconds of the limit
MAX_CHUNK_BYTES = 1 << 20  # a read under a high limit: the size an unlimited archive read is (source.py)


class ReadThrottle:
    def __init__(self, bytes_per_s: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if bytes_per_s <= 0:
            raise ValueError("a read limit is a positive number of bytes per second")
        self.rate = bytes_per_s
        self.capacity = bytes_per_s * BURST_S
        # At least one byte, so that a limit of a few bytes per second still moves.
        self.chunk = max(1, min(MAX_CHUNK_BYTES, int(self.capacity)))
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._tokens = self.capacity  # bytes that may be read now; negative: a debt being waited for
        self._last = clock()

    def take(self, nbytes: int, checkpoint: Callable[[], None]) -> None:
        """Account for ``nbytes`` about to be read (at most ``chunk``); returns when the limit allows them.

        ``checkpoint`` is called between sleeps and may raise (a cancel): the bytes stay taken, the job ends."""
        with self._lock:
            now = self._clock()
            refilled = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._tokens, self._last = refilled - nbytes, now
            due = now - self._tokens / self.rate if self._tokens < 0 else now
        while (left := due - self._clock()) > 0:
            self._sleep(min(MAX_SLEEP_S, left))
            checkpoint()


def for_limit(bytes_per_s: int | None) -> ReadThrottle | None:
    """The job's throttle; None (nothing to do per read) without a limit."""
    return ReadThrottle(bytes_per_s) if bytes_per_s else None


def describe(bytes_per_s: int) -> str:
    """The limit as the job's log states it."""
    return f"{bytes_per_s / (1 << 20):.6g} MiB/s"
