"""Reading the files of a tape for ``flask tape scan``: hashed as they stream by, and a file that claims
to be a session index kept (up to a size limit) and checked against the schema.

Memory stays bounded whatever the tape holds: one block at a time (the drive's largest block, at most
``READ_BUFFER``), plus at most ``limit`` bytes of a file that looks like an index. A longer one is
dropped at the limit and reported, and the rest of the file is only hashed. Parsing an index under the
limit costs a few times its size (its text and the objects JSON makes of it).
"""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import human_bytes
from .catalog_copy import is_catalog_copy
from .handle import TapeHandle
from .label import READ_BUFFER
from .schemas import INDEX_FORMAT, Malformed, parse_json, validate_index

INDEX_MARK = INDEX_FORMAT.rsplit("/", 1)[0].encode()  # any version: a newer one is reported, not skipped
SNIFF_BYTES = 4096  # the format key sits at the start of every index StageBackup writes


def looks_like_index(head: bytes) -> bool:
    return head.lstrip()[:1] == b"{" and INDEX_MARK in head[:SNIFF_BYTES]


@dataclass
class ScannedFile:
    number: int
    blocks: int
    bytes: int
    sha256: str
    largest_block: int
    index: dict | None  # a valid session index
    problem: str | None  # why a file that looks like an index is not one
    catalog_copy: bool = False  # ``flask db backup --to-tape`` wrote it (tape/catalog_copy.py)

    @property
    def kind(self) -> str:
        if self.catalog_copy:
            return "catalog"
        return "index" if self.index is not None or self.problem is not None else "archive"


class IndexCollector:
    """The bytes of one tape file for as long as they may be an index no larger than ``limit``."""

    SNIFFING, INDEX, OTHER, TOO_LARGE = "sniffing", "index", "other", "too large"

    def __init__(self, limit: int):
        self.limit, self.state, self.head = limit, self.SNIFFING, bytearray()

    def add(self, block: bytes) -> None:
        if self.state in (self.OTHER, self.TOO_LARGE):
            return
        if len(self.head) + len(block) > self.limit:
            looks = looks_like_index(bytes(self.head[:SNIFF_BYTES]) + block[:SNIFF_BYTES])
            self.state, self.head = (self.TOO_LARGE if looks else self.OTHER), bytearray()
            return
        self.head += block
        if self.state == self.SNIFFING and len(self.head) >= SNIFF_BYTES:
            self._decide()

    def _decide(self) -> None:
        self.state = self.INDEX if looks_like_index(bytes(self.head[:SNIFF_BYTES])) else self.OTHER
        if self.state == self.OTHER:
            self.head = bytearray()

    def result(self) -> tuple[dict | None, str | None]:
        """(index, None), (None, reason) for a file that claims to be an index, or (None, None)."""
        if self.state == self.SNIFFING:
            self._decide()
        if self.state == self.OTHER:
            return None, None
        if self.state == self.TOO_LARGE:
            return None, (f"larger than the {human_bytes(self.limit)} an index may have "
                          "(STAGEBACKUP_TAPE_INDEX_MAX_BYTES)")
        head, self.head = self.head, bytearray()
        try:
            return validate_index(parse_json(head)), None
        except Malformed as exc:
            return None, str(exc)


def scan_files(tape: TapeHandle, limit: int) -> Iterator[ScannedFile]:
    """Every file from the current position (after the label) to the end of data.

    EIO where a block or a filemark should be is the end of data (or an unterminated last file); any
    other errno (no medium: the tape was taken out) propagates.
    """
    number = 1
    while True:
        digest, blocks, size, largest = hashlib.sha256(), 0, 0, 0
        collector, catalog = IndexCollector(limit), False
        try:
            while block := tape.read(READ_BUFFER):
                catalog = catalog or (blocks == 0 and is_catalog_copy(block))
                digest.update(block)
                blocks, size, largest = blocks + 1, size + len(block), max(largest, len(block))
                collector.add(block)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            if blocks:
                yield ScannedFile(number, blocks, size, digest.hexdigest(), largest, *collector.result(), catalog)
            return
        if blocks == 0 and tape.status().eod:
            return
        yield ScannedFile(number, blocks, size, digest.hexdigest(), largest, *collector.result(), catalog)
        number += 1
