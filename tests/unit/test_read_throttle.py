"""The read limit's token bucket (pipeline/throttle.py), on a clock the test drives."""

from __future__ import annotations

import os
import threading
import time

import pytest

from stagebackup.errors import JobCancelled
from stagebackup.pipeline import source, throttle
from stagebackup.pipeline.throttle import MAX_SLEEP_S, ReadThrottle

MIB = 1 << 20


class FakeClock:
    """Time passes only when the throttle sleeps; every sleep and checkpoint is recorded."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.checkpoints = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def checkpoint(self) -> None:
        self.checkpoints += 1


def bucket(rate: int) -> tuple[ReadThrottle, FakeClock]:
    fake = FakeClock()
    return ReadThrottle(rate, clock=fake.clock, sleep=fake.sleep), fake


def read_all(limit: ReadThrottle, fake: FakeClock, total: int) -> None:
    while total > 0:
        n = min(limit.chunk, total)
        limit.take(n, fake.checkpoint)
        total -= n


def test_no_limit_is_no_throttle():
    assert throttle.for_limit(None) is None and throttle.for_limit(0) is None
    assert throttle.for_limit(MIB).rate == MIB


def test_reading_takes_the_size_over_the_limit_less_one_burst():
    limit, fake = bucket(MIB)
    assert limit.chunk == MIB // 4  # a read is a quarter second of the limit
    read_all(limit, fake, 3 * MIB)
    assert fake.now - 1000.0 == pytest.approx((3 * MIB - limit.capacity) / MIB)  # 2.75 s
    assert max(fake.sleeps) <= MAX_SLEEP_S


def test_a_burst_within_the_bucket_does_not_wait_and_idle_time_refills_at_most_one_bucket():
    limit, fake = bucket(4 * MIB)
    limit.take(MIB, fake.checkpoint)  # the whole bucket: a quarter second of 4 MiB/s
    assert fake.sleeps == []
    fake.now += 3600  # an hour idle earns one bucket, not an hour of reading
    read_all(limit, fake, 3 * MIB)
    assert fake.now - 1000.0 - 3600 == pytest.approx(2 * MIB / (4 * MIB))


def test_a_very_low_limit_sleeps_a_quarter_second_at_a_time_with_a_checkpoint_after_each():
    limit, fake = bucket(3)  # three bytes per second
    assert limit.chunk == 1  # still moves, a byte at a time
    read_all(limit, fake, 30)
    assert fake.now - 1000.0 == pytest.approx((30 - 0.75) / 3)
    assert max(fake.sleeps) <= MAX_SLEEP_S and fake.checkpoints == len(fake.sleeps) > 0


def test_a_cancel_raised_by_the_checkpoint_ends_the_wait_at_once():
    limit, fake = bucket(1)

    def cancelled():
        raise JobCancelled()

    limit.take(1, fake.checkpoint)
    fake.sleeps.clear()
    with pytest.raises(JobCancelled):
        limit.take(1, cancelled)  # due in a second: the first checkpoint ends it
    assert fake.sleeps == [MAX_SLEEP_S]


def test_readers_on_several_threads_share_the_job_limit():
    limit, rate, threads, each = ReadThrottle(8 * MIB), 8 * MIB, 4, MIB
    started = time.monotonic()
    workers = [threading.Thread(target=read_all, args=(limit, FakeClock(), each)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    # Four readers of 1 MiB each at 8 MiB/s together: the bucket's 2 MiB at once, the rest at the limit.
    assert time.monotonic() - started >= (threads * each - limit.capacity) / rate


class Reporter:
    error_count = 0

    def __init__(self):
        self.checkpoints = 0

    def log_path(self, tag, path, note=""):
        raise AssertionError(f"{tag} {path!r}: {note}")

    def advance(self, *, nbytes=0, files=0, current=None):
        pass

    def checkpoint(self):
        self.checkpoints += 1


class CountingThrottle:
    chunk = 1000

    def __init__(self):
        self.taken: list[int] = []

    def take(self, nbytes, checkpoint):
        self.taken.append(nbytes)


def test_the_archive_reader_takes_each_read_from_the_throttle_in_chunks(tmp_path):
    data = os.urandom(10_500)
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        counting = CountingThrottle()
        reader = source.ExactReader(fd, len(data), b"f", Reporter(), source.READ_CHUNK_BYTES, throttle=counting)
        read = b"".join(iter(lambda: reader.read(source.READ_CHUNK_BYTES), b""))
    finally:
        os.close(fd)
    assert read == data
    assert counting.taken == [1000] * 10 + [500]
