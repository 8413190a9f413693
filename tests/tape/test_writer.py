"""The tape writer's feeder: blocks in order, across a tape change at any point of a batch."""

from __future__ import annotations

import hashlib
import os

import pytest

from stagebackup.tape import vlibrary
from stagebackup.tape.virtual import VirtualHandle
from stagebackup.tape.writer import BlockFeeder, read_file_digest, write_piece

KiB, MiB = 1024, 1024 * 1024


@pytest.mark.parametrize("capacity_blocks", [5, 8, 9, 12, 15])
def test_archive_split_across_tapes_reads_back_whole(tmp_path, capacity_blocks):
    block = 64 * KiB
    data = os.urandom(20 * block + 1234)
    source = tmp_path / "archive"
    source.write_bytes(data)
    vdir = str(tmp_path / "vt")
    for name in ("A", "B", "C", "D", "E"):
        vlibrary.create_cartridge(vdir, name, capacity_bytes=capacity_blocks * block, early_warning_bytes=block)
    feeder = BlockFeeder(str(source), block, hash=True)
    whole, pending, pieces = hashlib.sha256(), None, []
    for name in ("A", "B", "C", "D", "E"):
        vlibrary.insert(vdir, "vt", name)
        with VirtualHandle(vdir, "vt") as tape:
            result = write_piece(tape, feeder, first=pending, hash_piece=bool(pieces))
            tape.write_filemarks(1)
            tape.rewind()
            _, size, digest = read_file_digest(tape, MiB, also=whole)
        assert (size, digest) == (result.bytes, result.sha256)
        pieces.append(result.blocks)
        if not result.end_of_medium:
            break
        pending = result.pending
    feeder.close()
    assert len(pieces) > 1 and sum(pieces) == 21
    assert whole.hexdigest() == hashlib.sha256(data).hexdigest() == feeder.sha256.hexdigest()


def test_feeder_reports_a_read_error_to_the_writer(tmp_path):
    feeder = BlockFeeder(str(tmp_path / "missing"), 4096)
    with pytest.raises(FileNotFoundError):
        list(feeder)
    feeder.close()
