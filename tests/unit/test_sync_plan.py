"""Sync building blocks without a database: layout names, temp names, plan and catalog files, sparse data."""

import io
import os

import pytest

from stagebackup.errors import ValidationError
from stagebackup.pipeline.sync import mirror_names, plan_roots
from stagebackup.pipeline.sync_apply import _data_segments, read_plan
from stagebackup.pipeline.sync_plan import CatalogSpool, is_temp_name


def test_each_source_is_mirrored_under_its_own_name(tmp_path):
    assert mirror_names(["/srv/projects", "/srv/fonts/", "/home/a/notes.txt"]) == [b"projects", b"fonts", b"notes.txt"]
    with pytest.raises(ValidationError, match="same name 'data'"):
        mirror_names(["/a/data", "/b/data"])
    with pytest.raises(ValidationError, match="choose a directory below it"):
        mirror_names(["/"])
    assert mirror_names([os.fsdecode(b"/x/caf\xe9")]) == [b"caf\xe9"]


def test_a_mirror_lands_under_its_source_name(tmp_path):
    # Overlap between a mirror and its source (through links too) is the path policy's (test_path_policy).
    (tmp_path / "src").mkdir()
    [root] = plan_roots([str(tmp_path / "src")], str(tmp_path / "dest"))
    assert root.dest == os.fsencode(tmp_path / "dest" / "src")


def test_temporary_names_are_recognised_exactly():
    assert is_temp_name(b".sbsync-12-345.tmp")
    for name in (b".sbsync-12-345.tmp~", b"sbsync-1-2.tmp", b".sbsync-a-2.tmp", b".sbsync-1-2.tmp\n", b"x"):
        assert not is_temp_name(name)


def test_plan_records_keep_any_name():
    names = [b"", b"a b/c", b"new\nline", b"caf\xe9 \xff"]
    raw = b"".join(b"n 0 %d %s\0" % (i, n) for i, n in enumerate(names))
    assert [r[3] for r in read_plan(io.BytesIO(raw), chunk_size=3)] == names
    with pytest.raises(ValueError, match="truncated"):
        list(read_plan(io.BytesIO(b"n 0 1 x")))


def test_catalog_spool_round_trip(tmp_path):
    st = os.lstat(tmp_path)
    out = io.BytesIO()
    spool = CatalogSpool(out)
    for i in range(CatalogSpool.BATCH_ROWS + 3):
        spool.add(b"root/%d\n\xff" % i, "d", st)
    spool.add(b"root/link", "l", os.lstat(tmp_path), b"../t\xfe")
    spool.flush()
    out.seek(0)
    rows = list(CatalogSpool.read(out))
    assert len(rows) == CatalogSpool.BATCH_ROWS + 4
    assert rows[0] == (b"root/0\n\xff", "dir", 0, st.st_mtime_ns, st.st_mode, None, st.st_uid, st.st_gid)
    assert rows[-1][1:2] == ("symlink",) and rows[-1][5] == b"../t\xfe"


def test_data_segments_skip_holes(tmp_path):
    path = tmp_path / "sparse"
    with open(path, "wb") as fh:
        fh.write(b"a" * 4096)
        fh.seek(8 << 20)
        fh.write(b"b" * 4096)
        fh.truncate(16 << 20)
    fd = os.open(path, os.O_RDONLY)
    try:
        segments = list(_data_segments(fd, 16 << 20))
    finally:
        os.close(fd)
    data = sum(end - start for start, end in segments)
    assert segments[0][0] == 0 and data < 1 << 20  # the file system may round to its blocks
    assert any(start <= (8 << 20) < end for start, end in segments)
