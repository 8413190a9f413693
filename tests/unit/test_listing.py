"""The quick check's listing: find's records of a tree and the records made from catalog rows must agree
byte for byte, for every kind of name, mode and mtime, with and without owners."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from stagebackup.pipeline import listing
from stagebackup.pipeline.sync import plan_roots
from stagebackup.pipeline.sync_plan import member
from stagebackup.pipeline.sync_quick import unchanged_digest
from tests.conftest import build_hostile_tree

EDGE_MTIMES_NS = {
    "before-epoch-1ns": -1,
    "before-epoch-1.5s": -1_500_000_000,
    "one-ns-after": 1,
    "nanoseconds": 1_650_000_000_987_654_321,
    "year-2400": 13_569_465_600_123_456_789,
}


def edge_tree(root: Path) -> Path:
    build_hostile_tree(root)
    os.unlink(root / "a-fifo")
    for name, ns in EDGE_MTIMES_NS.items():
        (root / name).write_bytes(name.encode())
        os.utime(root / name, ns=(ns, ns))
    sticky = root / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (root / "setuid").write_bytes(b"#!")
    (root / "setuid").chmod(0o4751)
    os.symlink(b"target with\nnewline \xff", os.fsencode(root / "odd-link"))
    os.symlink("a", root / "a\nb")  # with "a\nb" → "c" a sloppy format would confuse these two links
    os.symlink("b\nc", root / "a")
    os.utime(root / "link-to-plain", ns=(-7, -7), follow_symlinks=False)
    os.utime(root / "empty-dir", ns=(5, 5))
    return root


def catalog_rows(top: Path, name: bytes) -> list:
    """The rows the planner records for ``top`` mirrored as ``name`` (order does not matter to the digest)."""
    rows = [member(name, "dir", os.stat(top))]
    for directory, dirs, files in os.walk(os.fsencode(top)):
        rel_dir = os.path.relpath(directory, os.fsencode(top))
        for entry in dirs + files:
            full = os.path.join(directory, entry)
            st = os.lstat(full)
            path = name + b"/" + os.path.normpath(os.path.join(rel_dir, entry))
            if stat.S_ISLNK(st.st_mode):
                rows.append(member(path, "symlink", st, os.readlink(full)))
            else:
                rows.append(member(path, "dir" if stat.S_ISDIR(st.st_mode) else "file", st))
    return rows


@pytest.mark.parametrize("owners", [True, False])
def test_the_listing_of_a_tree_and_of_its_catalog_rows_agree(tmp_path, monkeypatch, owners):
    monkeypatch.setattr(listing, "owners_kept", lambda: owners)
    src = edge_tree(tmp_path / "src")
    dest = tmp_path / "dest"
    dest.mkdir()
    shutil.copytree(src, dest / "src", symlinks=True)  # copystat: modes and mtimes to the nanosecond
    for rel in ("link-to-plain",):
        os.utime(dest / "src" / rel, ns=(-7, -7), follow_symlinks=False)
    shutil.copystat(src, dest / "src")  # copytree set the directories' mtimes before the links' above
    for directory, _, _ in os.walk(src):
        shutil.copystat(directory, dest / "src" / os.path.relpath(directory, src))

    digest = listing.MirrorDigest(owners, str(tmp_path))
    for row in catalog_rows(src, b"src"):
        digest.add(row)
    recorded = digest.hexdigest()
    assert recorded

    workdir = tmp_path / "work"
    workdir.mkdir()
    roots = plan_roots([str(src)], str(dest))
    assert unchanged_digest(roots, os.fsencode(dest), str(workdir), lambda: None) == recorded

    # Each edge is seen: another mtime, another link target, another mode each change the digest.
    os.utime(dest / "src" / "before-epoch-1ns", ns=(-2, -2))
    assert unchanged_digest(roots, os.fsencode(dest), str(workdir), lambda: None) is None
    os.utime(dest / "src" / "before-epoch-1ns", ns=(-1, -1))
    os.unlink(dest / "src" / "a")
    os.symlink("b\nd", dest / "src" / "a")
    os.utime(dest / "src" / "a", ns=(os.lstat(src / "a").st_mtime_ns,) * 2, follow_symlinks=False)
    shutil.copystat(src, dest / "src")
    assert unchanged_digest(roots, os.fsencode(dest), str(workdir), lambda: None) is None
    assert os.listdir(workdir) == []


def test_find_prints_mtimes_as_the_records_do(tmp_path):
    for name, ns in EDGE_MTIMES_NS.items():
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, ns=(ns, ns))
    out = subprocess.run(["find", str(tmp_path), "-type", "f", "-printf", "%P %T@\\n"], capture_output=True,
                         check=True, env=listing.C_LOCALE).stdout
    printed = dict(line.split(b" ") for line in out.splitlines())
    assert set(printed) == {name.encode() for name in EDGE_MTIMES_NS}
    for name in EDGE_MTIMES_NS:
        assert printed[name.encode()] == listing.mtime_text(os.lstat(tmp_path / name).st_mtime_ns), name


def test_a_catalog_digest_without_sort_is_empty_never_wrong(tmp_path, monkeypatch):
    monkeypatch.setattr(listing, "sort_command", lambda tmpdir: ["/nonexistent/sort"])
    digest = listing.MirrorDigest(False, str(tmp_path))
    digest.add(member(b"top", "dir", os.stat(tmp_path)))
    assert digest.hexdigest() == ""
