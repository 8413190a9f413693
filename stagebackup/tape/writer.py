"""Streaming one tape file: a reader thread fills a bounded queue of blocks so the drive never waits.

A drive that is fed slower than its lowest speed step stops, rewinds a little and restarts (shoe-shining):
throughput drops and the heads wear. So reading the archive from disk (and hashing it) runs in its own
thread, at most ``QUEUE_BLOCKS`` blocks ahead, and the writing thread does nothing but ``write()`` one
block per call (variable-block mode), which releases the GIL.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .handle import TapeHandle

QUEUE_BLOCKS = 8  # batches in flight: 16 MiB of 256 KiB blocks
BATCH_BLOCKS = 8
RING_BLOCKS = (QUEUE_BLOCKS + 3) * BATCH_BLOCKS
_END = object()


class BlockFeeder:
    """Blocks of ``block_size`` (the last one shorter) from a file or an iterable of byte chunks.

    Hashing happens here, beside the drive's writes rather than between them: each item is
    ``(block, sha256 of everything up to and including it)`` (a hash object copy costs a microsecond),
    so the first piece's SHA-256 on tape is known without hashing the data twice.
    """

    def __init__(self, source, block_size: int, queue_blocks: int = QUEUE_BLOCKS, *, hash: bool = True):
        self.block_size = block_size
        self.sha256 = hashlib.sha256() if hash else None
        self.bytes = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_blocks)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._batch: list = []
        self._pos = 0
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(source,), name="tape-feeder", daemon=True)
        self._thread.start()

    def _chunks(self, source) -> Iterable:
        if isinstance(source, str):
            # A ring of reused buffers, as dd reuses its one buffer: a fresh 256 KiB object per block
            # would be a new mmap (and its page faults) each time. The ring is larger than all the blocks
            # that can be in flight (queue, the batch being filled, the writer's batch and a block held
            # over a tape change), so a buffer is never refilled before the drive has taken it.
            ring: list[bytearray] = []
            with open(source, "rb", buffering=0) as fh:
                for turn in itertools.count():
                    if self._stop.is_set():
                        return
                    if len(ring) < RING_BLOCKS:
                        ring.append(bytearray(self.block_size))
                    buf = memoryview(ring[turn % RING_BLOCKS])
                    filled = 0
                    while filled < self.block_size:  # a short read is not the end of a regular file
                        n = fh.readinto(buf[filled:])
                        if not n:
                            break
                        filled += n
                    if not filled:
                        return
                    yield buf[:filled]
        else:  # an iterable of chunks of any size (streaming straight from the compressor)
            pending = bytearray()
            for piece in source:
                pending += piece
                while len(pending) >= self.block_size:
                    yield bytes(pending[: self.block_size])
                    del pending[: self.block_size]
                if self._stop.is_set():
                    return
            if pending:
                yield bytes(pending)

    def _run(self, source) -> None:
        batch: list = []
        try:
            for chunk in self._chunks(source):
                self.bytes += len(chunk)
                if self.sha256 is not None:
                    self.sha256.update(chunk)
                batch.append((chunk, self.sha256.copy() if self.sha256 is not None else None))
                if len(batch) >= BATCH_BLOCKS and not self._put(batch):
                    return
                if len(batch) >= BATCH_BLOCKS:
                    batch = []
            if batch and not self._put(batch):
                return
        except BaseException as exc:  # noqa: BLE001 - handed to the writing thread
            self._error = exc
        finally:
            if not self._stop.is_set():
                self._queue.put(_END)

    def _put(self, batch: list) -> bool:
        """Hand a batch over (several blocks per hand-over: fewer lock round trips); False when closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(batch, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        return self

    def __next__(self):
        """The next (block, hash) item. An iterator object, not a generator: a writer that stops at end
        of medium and a new one that resumes on the next tape must share one position in the batch."""
        while self._pos >= len(self._batch):
            if self._done:
                raise StopIteration
            item = self._queue.get()
            if item is _END:
                self._done = True
                if self._error is not None:
                    raise self._error
                raise StopIteration
            self._batch, self._pos = item, 0
        self._pos += 1
        return self._batch[self._pos - 1]

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()


@dataclass
class PieceResult:
    """What went into one tape file."""

    blocks: int = 0
    bytes: int = 0
    own_hash: object | None = None  # pieces after the first hash their own bytes
    running: object | None = None  # the feeder's hash after the last block written (first piece)
    end_of_medium: bool = False
    pending: tuple | None = None  # the item the drive refused at end of medium: first of the next piece

    @property
    def sha256(self) -> str:
        source = self.own_hash if self.own_hash is not None else self.running
        return (source or hashlib.sha256()).hexdigest()


def plain_blocks(blocks: Iterable[bytes]):
    """Blocks without the feeder's running hashes (small files: label, index)."""
    return ((block, None) for block in blocks)


def write_piece(tape: TapeHandle, items: Iterable[tuple], *, first: tuple | None = None, hash_piece: bool = False,
                on_block: Callable[[int], None] | None = None) -> PieceResult:
    """Write ``(block, running hash)`` items until they run out or the early warning says the tape is
    full (ENOSPC: the block was not written and is returned as ``pending``). The caller writes the
    filemark. ``hash_piece``: hash this piece's bytes itself (any piece but an archive's first)."""
    result = PieceResult(own_hash=hashlib.sha256() if hash_piece else None)

    def chain():
        if first is not None:
            yield first
        # Not ``yield from``: when this generator is dropped at end of medium, ``yield from`` would call
        # the feeder's close() and stop it, while the next tape still needs the rest of the archive.
        for item in items:  # noqa: UP028
            yield item

    for item in chain():
        chunk, running = item
        try:
            written = tape.write(chunk)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                result.end_of_medium, result.pending = True, item
                return result
            raise
        if written != len(chunk):  # fixed-mode drives may write short at end of medium
            raise OSError(errno.EIO, f"short write: {written} of {len(chunk)} bytes")
        result.blocks += 1
        result.bytes += written
        result.running = running
        if result.own_hash is not None:
            result.own_hash.update(chunk)
        if on_block is not None:
            on_block(written)
    return result


def read_file_digest(tape: TapeHandle, buffer_size: int, *, also=None):
    """Read the tape file at the current position up to its filemark: (blocks, bytes, sha256 hex).
    ``also``: another hash object fed the same bytes (an archive's hash across its pieces)."""
    digest, blocks, total = hashlib.sha256(), 0, 0
    for chunk in tape.read_file(buffer_size):
        digest.update(chunk)
        if also is not None:
            also.update(chunk)
        blocks += 1
        total += len(chunk)
    return blocks, total, digest.hexdigest()
