"""The archive writers without a job: tar headers, group splitting, progress steps, parallel LZMA2."""

import io
import itertools
import lzma
import os
import random
import tarfile
import time

import pytest

from stagebackup.pipeline import groups
from stagebackup.pipeline.archive import ArchiveSpec, FileOutput, HashingOutput, MemberSpool
from stagebackup.pipeline.scan import DIR, FILE, SYMLINK, Entry, Rules, walk
from stagebackup.pipeline.sevenzip import ParallelLzma2, write_7z
from stagebackup.pipeline.tarheader import Names as _Names
from stagebackup.pipeline.tarheader import tar_header
from stagebackup.pipeline.tgz import write_tgz


class Recorder:
    error_count = 0

    def __init__(self):
        self.steps, self.lines = [], []

    def log(self, tag, message):
        self.lines.append((tag, message))

    def log_path(self, tag, path, note=""):
        self.lines.append((tag, os.fsdecode(path) + note))

    def advance(self, *, nbytes=0, files=0, current=None):
        if nbytes:
            self.steps.append(nbytes)

    def checkpoint(self):
        pass


@pytest.mark.parametrize("name", ["a.txt", "dir/", "x" * 100, "y" * 101, "深/层/目录/名字.txt", "z" * 90 + "中文" * 40])
def test_lean_header_is_exactly_tarfiles_ustar_header(tmp_path, name):
    path = tmp_path / "f"
    path.write_bytes(b"data")
    os.utime(path, (1_600_000_000, 1_600_000_000))
    st = os.lstat(path)
    typeflag = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
    ours = tar_header(name, st, typeflag, st.st_size, "", _Names())
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = typeflag, st.st_mode & 0o7777, st.st_size, int(st.st_mtime)
    info.uid, info.gid, info.uname, info.gname = st.st_uid, st.st_gid, _Names().user(st.st_uid), _Names().group(
        st.st_gid)
    assert ours == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    link = tar_header(name, st, tarfile.SYMTYPE, 0, name + "-target", _Names())
    info.type, info.size, info.linkname = tarfile.SYMTYPE, 0, name + "-target"
    assert link == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def test_sub_second_mtimes_are_pax_records_to_the_nanosecond(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"")
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_600_000_000_120_000_000))
    st = os.lstat(path)
    header = tar_header("a/b.txt", st, tarfile.REGTYPE, 0, "", _Names())
    member = tarfile.open(fileobj=io.BytesIO(header + bytes(1024))).next()
    assert member.name == "a/b.txt" and member.pax_headers == {"mtime": "1600000000.12"}
    assert round(member.mtime * 1e9) == 1_600_000_000_120_000_000


@pytest.mark.parametrize("name", ["y" * 101, "中文.txt", "bad-\udcff.bin", "short"])
def test_every_header_reads_back_with_its_name_and_exact_mtime(tmp_path, name):
    path = tmp_path / "f"
    path.write_bytes(b"")
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    st = os.lstat(path)
    header = tar_header(name, st, tarfile.REGTYPE, 0, "", _Names())
    assert len(header) >= 512 and len(header) % 512 == 0
    member = tarfile.open(fileobj=io.BytesIO(header + bytes(1024)), encoding="utf-8",
                          errors="surrogateescape").next()
    assert member.name == name and member.size == 0
    assert member.pax_headers["mtime"] == "1600000000.123456789"  # to the nanosecond, whichever path built it


def entries(*specs):
    return [Entry(kind, size, path.encode()) for kind, size, path in specs]


def read_group(group):
    with group.read() as items:
        return [(e.kind, e.size, e.path.decode()) for e in items]


def test_groups_split_by_bytes_and_repeat_the_parent_directories(tmp_path):
    manifest = entries(
        (DIR, 0, "/s"), (FILE, 40, "/s/a"), (DIR, 0, "/s/d"), (FILE, 40, "/s/d/b"), (FILE, 40, "/s/d/c"),
        (SYMLINK, 0, "/s/d/l"), (FILE, 500, "/s/d/huge"), (DIR, 0, "/s/e"), (FILE, 10, "/s/e/f"),
    )
    result = groups.split(manifest, 100, str(tmp_path))
    assert [read_group(g) for g in result] == [
        [(DIR, 0, "/s"), (FILE, 40, "/s/a"), (DIR, 0, "/s/d"), (FILE, 40, "/s/d/b")],
        [(DIR, 0, "/s"), (DIR, 0, "/s/d"), (FILE, 40, "/s/d/c"), (SYMLINK, 0, "/s/d/l")],
        [(DIR, 0, "/s"), (DIR, 0, "/s/d"), (FILE, 500, "/s/d/huge")],  # larger than the limit: alone
        [(DIR, 0, "/s"), (DIR, 0, "/s/e"), (FILE, 10, "/s/e/f")],
    ]
    assert [(g.seq, g.input_bytes) for g in result] == [(1, 80), (2, 40), (3, 500), (4, 10)]
    assert len(groups.split(manifest, 0, str(tmp_path / ".."))) == 1
    assert [read_group(g) for g in groups.split([], 100, str(tmp_path))] == [[]]


def test_progress_advances_at_least_every_step_for_both_formats(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(3 << 20))
    manifest = list(walk([str(src)], Rules(), Recorder()))
    step = (3 << 20) // 100  # 1 % of the input
    for fmt in ("tgz", "7z"):
        reporter = Recorder()
        spec = ArchiveSpec(fmt, 1, 2)
        members = MemberSpool(str(tmp_path / f"m-{fmt}"))
        if fmt == "7z":
            write_7z(manifest, str(tmp_path / "a.7z"), spec, reporter=reporter, members=members, step=step)
        else:
            write_tgz(manifest, HashingOutput(FileOutput(str(tmp_path / "a.tgz"))), spec, reporter=reporter,
                      members=members, step=step)
        assert sum(reporter.steps) == 3 << 20, fmt
        if fmt == "tgz":  # 7z on two threads counts what it has compressed (next tests)
            assert max(reporter.steps) <= step
        assert [row[2] for row in members] == ["dir", "file"]


def test_parallel_lzma2_blocks_form_one_valid_stream():
    data = b"".join(b"line %d of a log file\n" % i for i in range(400_000)) + os.urandom(300_000)
    coder = ParallelLzma2(level=1, threads=2)  # 3 MiB blocks: several of them
    out = io.BytesIO()
    for start in range(0, len(data), 100_000):
        out.write(coder.compress(data[start:start + 100_000]))
    out.write(coder.flush())
    plain = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}])
    assert plain.decompress(out.getvalue()) == data


def _text(size: int, seed: int = 1) -> bytes:
    """Text-like data: compressible, so LZMA2 works hard on it (random bytes pass through fast)."""
    words = [random.Random(seed + i).randbytes(4).hex().encode() for i in range(5000)]
    pick = random.Random(seed).choice
    return b" ".join(pick(words) for _ in range(size // 9))[:size]


def test_parallel_lzma2_counts_bytes_as_it_compresses_them_not_as_it_reads_them():
    told = []
    coder = ParallelLzma2(level=6, threads=2, on_progress=told.append)
    data = _text(3 << 20)
    out = coder.compress(data)  # a small job: less than one block, so nothing is compressed yet
    assert out == b"" and told == []
    out += coder.flush()
    assert sum(told) == len(data) and len(told) > 1  # told piece by piece while the block was compressed
    plain = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 6}])
    assert plain.decompress(out) == data


def test_7z_progress_moves_at_least_once_a_second_on_a_small_job(tmp_path):
    """Read ahead into a 24 MiB block, a small job's bytes were all "done" in 0.1 s and then stood still
    while compressed (37 s for 35 MB of text here); now they advance as each 256 KiB piece is compressed."""
    src = tmp_path / "src"
    src.mkdir()
    for n in range(4):
        (src / f"log{n}.txt").write_bytes(_text(2 << 20, seed=n))
    moves = []

    class Timed(Recorder):
        def advance(self, *, nbytes=0, files=0, current=None):
            if nbytes:
                moves.append((time.monotonic(), nbytes))

    manifest = list(walk([str(src)], Rules(), Recorder()))
    started = time.monotonic()
    write_7z(manifest, str(tmp_path / "a.7z"), ArchiveSpec("7z", 6, 2), reporter=Timed(),
             members=MemberSpool(str(tmp_path / "members")))
    ended = time.monotonic()
    assert sum(n for _, n in moves) == sum(f.stat().st_size for f in src.iterdir())
    times = [started] + [at for at, _ in moves] + [ended]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert max(gaps) < 1.0, (round(ended - started, 1), [round(gap, 2) for gap in gaps])
