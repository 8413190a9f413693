"""The index collector of ``flask tape scan``: what it keeps, where it stops, what it reports."""

from __future__ import annotations

import gzip

from stagebackup.tape.index_reader import IndexCollector
from stagebackup.tape.label import encode_index


def collect(data: bytes, block: int, limit: int) -> tuple[dict | None, str | None]:
    collector = IndexCollector(limit)
    for start in range(0, len(data), block):
        collector.add(data[start:start + block])
    return collector.result()


INDEX = encode_index({"job": 1, "project": "p", "archives": [
    {"name": "a.tar.gz", "members": [[f"dir/{i:05d}.txt", "file", i, 1.7e9, 0o100644, None] for i in range(300)]}]})


def test_an_index_in_small_blocks_is_recognised_across_them():
    index, problem = collect(INDEX, 100, len(INDEX))
    assert problem is None and index["project"] == "p" and len(index["archives"][0]["members"]) == 300


def test_the_limit_is_inclusive_and_one_byte_more_is_reported():
    assert collect(INDEX, 4096, len(INDEX))[1] is None
    index, problem = collect(INDEX, 4096, len(INDEX) - 1)
    assert index is None and problem.startswith("larger than the ")


def test_files_that_do_not_claim_to_be_an_index_are_not_kept_or_reported():
    noise = bytes(range(256)) * 64  # past the first look (4 KiB)
    for data in (gzip.compress(INDEX) + noise, b"7z\xbc\xaf\x27\x1c" + INDEX, b"[" + INDEX, b"{}" * 10_000):
        collector = IndexCollector(1024**2)
        for start in range(0, len(data), 512):
            collector.add(data[start:start + 512])
        assert collector.head == bytearray()  # nothing kept past the first look
        assert collector.result() == (None, None)


def test_a_short_file_that_claims_to_be_an_index_is_checked():
    assert collect(b'{"format": "stagebackup-tape-index/1"}', 10, 1024) == (
        {"format": "stagebackup-tape-index/1"}, None)
    assert collect(b'{"format": "stagebackup-tape-index/1"', 10, 1024)[1].startswith("not valid JSON")
