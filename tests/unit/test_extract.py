"""The safe extractor on crafted archives: nothing outside the target, exact modes and mtimes, conflicts."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import py7zr
import pytest

from stagebackup.pipeline.crypto import EncryptingWriter
from stagebackup.restore.extract import OVERWRITE, RENAME, SKIP, SafeExtractor
from stagebackup.restore.member_names import Refused, member_parts
from stagebackup.restore.readers import LocalArchive, extract_archive, iter_members, mtime_ns
from stagebackup.restore.selection import Selection
from stagebackup.restore.tarstream import ArchiveDamaged, WrongPassword


class Progress:
    def __init__(self):
        self.bytes = self.files = 0

    def advance(self, *, nbytes=0, files=0, current=None):
        self.bytes += nbytes
        self.files += files

    def checkpoint(self):
        pass


def _info(name, kind=tarfile.REGTYPE, *, data=b"", mode=0o644, mtime=1_600_000_000, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.linkname = kind, mode, mtime, linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def write_tgz(path: Path, members, *, password=None) -> Path:
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w|",
                                                                     format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, data)
    payload = raw.getvalue()
    if password:
        out = io.BytesIO()
        with EncryptingWriter(out, password, 1000) as enc:
            enc.write(payload)
        payload = out.getvalue()
    path.write_bytes(payload)
    return path


def restore(archive: LocalArchive, target: Path, conflict=SKIP, selection=None, restore_owners=False, **kw):
    refused, skipped = [], []
    target.mkdir(parents=True, exist_ok=True)
    ex = SafeExtractor(str(target), conflict, restore_owners=restore_owners,
                       on_refused=lambda p, r: refused.append((p, r)),
                       on_skipped=lambda p, r: skipped.append((p, r)))
    try:
        extract_archive(archive, ex, selection or Selection(), Progress(), **kw)
    finally:
        ex.finish()
    return ex.stats, dict(refused), dict(skipped)


def test_member_names_that_leave_the_target_are_refused():
    for bad in ("../x", "a/../../x", "/etc/passwd", "a/\0b", "a/.."):
        with pytest.raises(Refused):
            member_parts(bad)
    assert member_parts("./a//b/./c") == (b"a", b"b", b"c")
    assert member_parts(b"dir-\xfe/f") == (b"dir-\xfe", b"f")


def test_crafted_tar_writes_nothing_outside_and_reports_every_refusal(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("original")
    target = tmp_path / "restore" / "t"
    archive = write_tgz(tmp_path / "evil.tar.gz", [
        _info("../evil.txt", data=b"dotdot"),
        _info("a/../../evil2.txt", data=b"dotdot"),
        _info("/abs-evil.txt", data=b"absolute"),
        _info("esc", tarfile.SYMTYPE, linkname="../../outside"),
        _info("esc/pwned.txt", data=b"through the link"),
        _info("abs", tarfile.SYMTYPE, linkname=str(outside)),
        _info("abs/victim.txt", data=b"overwritten!"),
        _info("hl", tarfile.LNKTYPE, linkname="../outside/victim.txt"),
        _info("hl2", tarfile.LNKTYPE, linkname=str(outside / "victim.txt")),
        _info("dev", tarfile.CHRTYPE),
        _info("fifo", tarfile.FIFOTYPE),
        _info("ok.txt", data=b"fine"),
    ])
    stats, refused, _ = restore(LocalArchive(str(archive), "tgz"), target, conflict=OVERWRITE)
    assert (outside / "victim.txt").read_text() == "original"
    assert sorted(os.listdir(outside)) == ["victim.txt"]
    assert sorted(os.listdir(tmp_path)) == ["evil.tar.gz", "outside", "restore"]
    assert sorted(os.listdir(tmp_path / "restore")) == ["t"]
    assert (target / "ok.txt").read_text() == "fine"
    assert set(refused) == {"../evil.txt", "a/../../evil2.txt", "/abs-evil.txt", "esc/pwned.txt",
                            "abs/victim.txt", "hl", "hl2", "dev", "fifo"}
    assert refused["esc/pwned.txt"] == "esc is a symbolic link or not a folder"
    # The links themselves are kept as data (never followed), exactly as stored.
    assert os.readlink(target / "esc") == "../../outside"
    assert stats.files == 1 and stats.symlinks == 2


def test_a_symlink_already_in_the_target_is_replaced_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "t"
    target.mkdir()
    os.symlink(outside / "secret", target / "f.txt")
    os.symlink(outside, target / "d")
    archive = write_tgz(tmp_path / "a.tar.gz", [_info("f.txt", data=b"new"), _info("d/x", data=b"x")])
    _, refused, _ = restore(LocalArchive(str(archive), "tgz"), target, conflict=OVERWRITE)
    assert os.listdir(outside) == []
    assert not (target / "f.txt").is_symlink() and (target / "f.txt").read_bytes() == b"new"
    assert set(refused) == {"d/x"}


def test_modes_mtimes_and_folder_times_are_exact(tmp_path):
    archive = write_tgz(tmp_path / "a.tar.gz", [
        _info("ro", tarfile.DIRTYPE, mode=0o555, mtime=1_500_000_000),
        _info("ro/readonly.txt", data=b"r", mode=0o444, mtime=1_400_000_000),
        _info("ro/setgid", data=b"s", mode=0o2750, mtime=1_400_000_001),
        _info("sparse.img", data=bytes(256 * 1024) + b"end" + bytes(128 * 1024)),
    ])
    target = tmp_path / "t"
    # As root with owners restored the set-gid bit comes back; otherwise it is cleared (no privilege created).
    as_root = os.geteuid() == 0
    stats, refused, _ = restore(LocalArchive(str(archive), "tgz"), target, restore_owners=as_root)
    assert not refused and stats.files == 3 and stats.dirs == 1
    assert stat.S_IMODE(os.lstat(target / "ro").st_mode) == 0o555
    assert os.lstat(target / "ro").st_mtime == 1_500_000_000
    assert stat.S_IMODE(os.lstat(target / "ro/readonly.txt").st_mode) == 0o444
    assert stat.S_IMODE(os.lstat(target / "ro/setgid").st_mode) == (0o2750 if as_root else 0o750)
    assert os.lstat(target / "ro/readonly.txt").st_mtime == 1_400_000_000
    sparse = target / "sparse.img"
    assert sparse.read_bytes() == bytes(256 * 1024) + b"end" + bytes(128 * 1024)
    assert os.stat(sparse).st_blocks * 512 < 256 * 1024  # the zero runs stayed holes


@pytest.mark.parametrize("policy", [SKIP, OVERWRITE, RENAME])
def test_conflict_policies(tmp_path, policy):
    target = tmp_path / "t"
    target.mkdir()
    (target / "logo.ai").write_text("mine")
    (target / "logo.restored-1.ai").write_text("taken")
    archive = write_tgz(tmp_path / "a.tar.gz", [_info("logo.ai", data=b"backup"), _info("new", data=b"n")])
    stats, refused, skipped = restore(LocalArchive(str(archive), "tgz"), target, conflict=policy)
    assert not refused and (target / "new").read_bytes() == b"n"
    if policy == SKIP:
        assert (target / "logo.ai").read_text() == "mine" and stats.existing_skipped == 1
        assert skipped == {"logo.ai": "already exists"}
    elif policy == OVERWRITE:
        assert (target / "logo.ai").read_text() == "backup" and stats.overwritten == 1
        assert sorted(os.listdir(target)) == ["logo.ai", "logo.restored-1.ai", "new"]  # no temp left
    else:
        assert (target / "logo.ai").read_text() == "mine"
        assert (target / "logo.restored-2.ai").read_text() == "backup" and stats.renamed == 1
        assert skipped == {"logo.ai": "exists; restored as logo.restored-2.ai"}


def test_partial_restore_by_glob_and_hard_link_whose_first_name_was_not_chosen(tmp_path):
    archive = write_tgz(tmp_path / "a.tar.gz", [
        _info("src", tarfile.DIRTYPE, mode=0o755),
        _info("src/a.txt", data=b"a"),
        _info("src/docs", tarfile.DIRTYPE, mode=0o700),
        _info("src/docs/x.md", data=b"x"),
        _info("src/keep.log", data=b"log"),
        _info("src/other/link-to-a", tarfile.LNKTYPE, linkname="src/a.txt"),
    ])
    target = tmp_path / "t"
    selection = Selection(["/src/docs", "*.log", "src/other/link-to-a"])
    _, refused, _ = restore(LocalArchive(str(archive), "tgz"), target, selection=selection,
                            link_sources={"src/a.txt": "src/other/link-to-a"})
    assert not refused
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == ["src/docs/x.md", "src/keep.log", "src/other/link-to-a"]
    assert (target / "src/other/link-to-a").read_bytes() == b"a"
    assert stat.S_IMODE(os.lstat(target / "src/docs").st_mode) == 0o700


def test_wrong_password_and_damaged_archive_are_clear_errors(tmp_path):
    archive = write_tgz(tmp_path / "a.tar.gz.enc", [_info("f", data=b"secret" * 1000)], password="right")
    stats, _, _ = restore(LocalArchive(str(archive), "tgz", "right", 1000), tmp_path / "ok")
    assert (tmp_path / "ok/f").read_bytes() == b"secret" * 1000
    with pytest.raises(WrongPassword, match="does not open with this password"):
        restore(LocalArchive(str(archive), "tgz", "wrong", 1000), tmp_path / "bad")
    assert os.listdir(tmp_path / "bad") == []

    plain = write_tgz(tmp_path / "p.tar.gz", [_info("f", data=os.urandom(200_000))])
    data = bytearray(plain.read_bytes())
    data[len(data) // 2] ^= 0xFF
    plain.write_bytes(bytes(data))
    with pytest.raises(ArchiveDamaged, match="cannot be read"):
        list(iter_members(LocalArchive(str(plain), "tgz")))


def test_truncated_gzip_stream_is_damage_not_a_short_archive(tmp_path):
    plain = write_tgz(tmp_path / "p.tar.gz", [_info("f", data=os.urandom(300_000))])
    plain.write_bytes(plain.read_bytes()[:-5000])
    with pytest.raises(ArchiveDamaged):
        list(iter_members(LocalArchive(str(plain), "tgz")))


def _write_7z(path: Path, tree: Path, password=None):
    with py7zr.SevenZipFile(path, "w", password=password, header_encryption=bool(password)) as z:
        for root, dirs, files in os.walk(tree):
            for name in sorted(dirs) + sorted(files):
                full = Path(root) / name
                z.write(full, str(full.relative_to(tree.parent)))


@pytest.mark.parametrize("password", [None, "pw 密码"])
def test_7z_round_trip_with_modes_links_and_empty_dirs(tmp_path, password):
    tree = tmp_path / "src"
    (tree / "d").mkdir(parents=True)
    (tree / "empty").mkdir()
    (tree / "d/ro.txt").write_text("ro")
    (tree / "d/ro.txt").chmod(0o444)
    (tree / "run.sh").write_text("#!/bin/sh\n")
    (tree / "run.sh").chmod(0o755)
    (tree / "empty-file").write_bytes(b"")
    os.symlink("d/ro.txt", tree / "link")
    os.utime(tree / "d/ro.txt", (1_500_000_000, 1_500_000_000), follow_symlinks=False)
    os.utime(tree / "empty", (1_400_000_000, 1_400_000_000))
    archive = tmp_path / "a.7z"
    _write_7z(archive, tree, password)
    stats, refused, _ = restore(LocalArchive(str(archive), "7z", password), tmp_path / "t")
    assert not refused
    from tests.treecompare import assert_same_tree

    assert_same_tree(tree, tmp_path / "t/src")
    members = {m.name: m.kind for m in iter_members(LocalArchive(str(archive), "7z", password))}
    assert members["src/link"] == "symlink" and members["src/empty"] == "dir"
    if password:
        with pytest.raises(WrongPassword):
            restore(LocalArchive(str(archive), "7z", "nope"), tmp_path / "bad")


def test_7z_dotdot_member_and_path_through_planted_symlink_are_refused(tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "mk/sub").mkdir(parents=True)
    link = tmp_path / "mk/sub/esc"
    os.symlink("../../outside", link)  # exists from here: py7zr cannot store a dangling link
    archive = tmp_path / "evil.7z"
    monkeypatch.setattr(py7zr.py7zr, "check_archive_path", lambda name: True)  # py7zr refuses to write these
    payload = tmp_path / "mk/payload"
    payload.write_bytes(b"ok")
    with py7zr.SevenZipFile(archive, "w") as z:  # real files only: py7zr's link lookup needs their origin
        z.write(payload, "../evil.txt")
        z.write(payload, "/tmp/abs-evil.txt")
        z.write(link, "esc")
        z.write(payload, "esc/pwned.txt")
        z.write(payload, "ok.txt")
    target = tmp_path / "r" / "t"
    _, refused, _ = restore(LocalArchive(str(archive), "7z"), target)
    assert set(refused) - {"/tmp/abs-evil.txt"} == {"../evil.txt", "esc/pwned.txt"}
    assert "/tmp/abs-evil.txt" in refused or (target / "tmp/abs-evil.txt").exists()  # py7zr may drop the "/"
    assert (target / "ok.txt").read_bytes() == b"ok"
    assert os.readlink(target / "esc") == "../../outside"
    assert sorted(os.listdir(tmp_path)) == ["evil.7z", "mk", "outside", "r"]
    assert os.listdir(outside) == [] and not os.path.exists("/tmp/abs-evil.txt")


@pytest.mark.parametrize("pax, number, expected", [
    ("1600000000.123456789", 1.6e9, 1_600_000_000_123_456_789),  # exact, where the float is not
    (None, 1_600_000_000, 1_600_000_000_000_000_000),
    ("-1.5", -1.5, -1_500_000_000),
    ("nan", 7, 7_000_000_000),  # a damaged record: what tarfile made of the header
    ("inf", float("inf"), 0),  # nothing usable: the epoch, never a traceback mid-restore
])
def test_tar_member_mtimes_in_nanoseconds(pax, number, expected):
    info = tarfile.TarInfo("x")
    info.mtime = number
    if pax is not None:
        info.pax_headers = {"mtime": pax}
    assert mtime_ns(info) == expected


def test_a_failed_restore_takes_back_only_the_empty_folders_it_made(tmp_path):
    target = tmp_path / "target"
    (target / "kept-empty").mkdir(parents=True)  # the operator's own empty folder
    extractor = SafeExtractor(target)
    extractor.directory("a/b/c", 0o755, 0)
    extractor.directory("kept-empty/new", 0o755, 0)
    extractor.directory("d", 0o755, 0)
    (target / "d" / "not-ours.txt").write_text("x")  # something else wrote here meanwhile: d stays
    assert extractor.written() == []
    extractor.remove_created_folders()
    extractor.close()
    assert sorted(p.name for p in target.rglob("*")) == ["d", "kept-empty", "not-ours.txt"]
