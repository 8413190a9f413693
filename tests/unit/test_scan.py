import io
import os

import pytest

from stagebackup.errors import SourceMissing
from stagebackup.pipeline.scan import DIR, FILE, SYMLINK, Entry, Rules, read_manifest, walk, write_manifest
from tests.conftest import build_hostile_tree


class RecordingReporter:
    """Collects log lines; the scan under test is real."""

    def __init__(self):
        self.lines = []
        self.error_count = 0

    def log(self, tag, message):
        self.lines.append((tag, message))
        self.error_count += tag == "ERROR"

    def log_path(self, tag, path, note=""):
        self.log(tag, os.fsencode(path).decode("utf-8", "backslashreplace") + (f": {note}" if note else ""))

    def advance(self, **_):
        pass

    def checkpoint(self):
        pass


def rels(entries, root):
    broot = os.fsencode(root)
    return [(e.kind, os.path.relpath(e.path, broot)) for e in entries]


def test_hostile_tree_is_walked_with_exact_bytes_and_special_files_skipped(tmp_path):
    root = build_hostile_tree(tmp_path / "src")
    reporter = RecordingReporter()
    entries = list(walk([str(root)], Rules(), reporter))
    found = dict((rel, kind) for kind, rel in rels(entries, root))
    assert found[b"."] == DIR
    assert found[b"latin1-\xe9t\xe9-\xff.bin"] == FILE
    assert found[b"dir-\xfe\xfd/inner\nnewline.txt"] == FILE
    assert found[b"dangling-link"] == SYMLINK and found[b"link-to-dir"] == SYMLINK
    assert b"a-fifo" not in found
    assert any(tag == "SKIP" and "a-fifo" in msg for tag, msg in reporter.lines)
    assert reporter.error_count == 0
    # parents come before their children
    order = [rel for _, rel in rels(entries, root)]
    assert order.index(b"dir-\xfe\xfd") < order.index(b"dir-\xfe\xfd/inner\nnewline.txt")
    sizes = {os.path.relpath(e.path, os.fsencode(root)): e.size for e in entries}
    assert sizes[b"sparse.img"] == (8 << 20) + 3


def test_symlinked_directories_are_not_followed(tmp_path):
    root = build_hostile_tree(tmp_path / "src")
    entries = rels(walk([str(root)], Rules(), RecordingReporter()), root)
    assert not any(rel.startswith(b"link-to-dir/") for _, rel in entries)


def test_excludes_use_gitignore_syntax_and_prune_directories(tmp_path):
    src = tmp_path / "src"
    (src / "cache" / "deep").mkdir(parents=True)
    (src / "cache" / "deep" / "x.txt").write_text("x")
    (src / "keep.txt").write_text("k")
    (src / "junk.tmp").write_text("j")
    (src / "sub").mkdir()
    (src / "sub" / "also.tmp").write_text("j")
    (src / "sub" / "important.tmp").write_text("keep me")
    rules = Rules(excludes=["*.tmp", "cache/", "!important.tmp"])
    found = {rel for _, rel in rels(walk([str(src)], rules, RecordingReporter()), src)}
    assert found == {b".", b"keep.txt", b"sub", b"sub/important.tmp"}


def test_includes_keep_only_matching_files_and_their_parent_directories(tmp_path):
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "doc.pdf").write_text("p")
    (src / "a" / "b" / "note.txt").write_text("t")
    (src / "other").mkdir()
    (src / "other" / "x.txt").write_text("t")
    found = rels(walk([str(src)], Rules(includes=["*.pdf"]), RecordingReporter()), src)
    assert found == [(DIR, b"."), (DIR, b"a"), (DIR, b"a/b"), (FILE, b"a/b/doc.pdf")]


def test_missing_source_is_an_error_for_the_whole_job(tmp_path):
    with pytest.raises(SourceMissing, match="does not exist"):
        list(walk([str(tmp_path / "gone")], Rules(), RecordingReporter()))


def test_data_directory_inside_a_source_is_skipped(tmp_path):
    src = tmp_path / "src"
    (src / "data" / "cache").mkdir(parents=True)
    (src / "data" / "cache" / "partial.tar.gz").write_text("x")
    (src / "real.txt").write_text("r")
    reporter = RecordingReporter()
    skip = {str(src / "data"): "StageBackup's own data directory"}
    found = {rel for _, rel in rels(walk([str(src)], Rules(), reporter, skip_dirs=skip), src)}
    assert found == {b".", b"real.txt"}
    assert any(tag == "INFO" and "own data directory" in str(line) for tag, line in reporter.lines)


def test_manifest_round_trips_any_byte_name(tmp_path):
    entries = [
        Entry(DIR, 0, b"/r"),
        Entry(FILE, 12, b"/r/with space"),
        Entry(FILE, 0, b"/r/new\nline \xff\xfe"),
        Entry(SYMLINK, 0, b"/r/" + b"z" * 5000),
    ]
    buf = io.BytesIO()
    assert write_manifest(entries, buf) == (4, 12)
    buf.seek(0)
    assert list(read_manifest(buf, chunk_size=7)) == entries


def test_truncated_manifest_is_detected():
    with pytest.raises(ValueError):
        list(read_manifest(io.BytesIO(b"f 1 /a\0f 2 /b")))


@pytest.mark.parametrize("swap", ["link", "other folder", "link above"])
def test_a_folder_swapped_between_its_parents_listing_and_its_own_is_not_walked(tmp_path, swap):
    """The scan lists ``own`` in ``src``, yields its entry, then lists it: a swap in that moment (a link to a
    folder outside, another folder, or a link in place of the folder above) must not bring outside names in."""
    src, outside = tmp_path / "src", tmp_path / "outside"
    (src / "a" / "own").mkdir(parents=True)
    (src / "a" / "own" / "mine").write_bytes(b"own")
    (outside / "own").mkdir(parents=True)
    (outside / "own" / "shadow").write_bytes(b"secret")
    reporter = RecordingReporter()
    seen = []
    for entry in walk([str(src)], Rules(), reporter):
        seen.append(entry.path)
        if entry.kind == DIR and entry.path.endswith(b"/a/own"):  # listed in a, not yet listed itself
            if swap == "link above":
                os.rename(src / "a", tmp_path / "a.moved")
                os.symlink(outside, src / "a")
            else:
                os.rename(src / "a" / "own", tmp_path / "own.moved")
                if swap == "link":
                    os.symlink(outside / "own", src / "a" / "own")
                else:
                    (src / "a" / "own").mkdir()
                    (src / "a" / "own" / "shadow").write_bytes(b"another folder's file")
    assert not any(path.endswith(b"shadow") for path in seen), seen
    assert reporter.lines == [("ERROR", f"{src}/a/own: was replaced while being scanned (a link, a "
                                        "file or another folder is there now): not followed")]


def test_the_root_of_the_file_system_as_a_source_gives_clean_paths_that_can_be_read():
    """``/`` as a source: its entries are ``/etc/…``, not ``//etc/…``, which the checked folders (the kernel's
    name of a folder must be the one asked for) would refuse. Only /etc is walked, by exclude rules."""
    from stagebackup.pipeline.source import SourceFiles

    reporter = RecordingReporter()
    entries = list(walk(["/"], Rules(excludes=["/*", "!/etc/"]), reporter))
    assert reporter.lines == []
    assert [e.path for e in entries[:2]] == [b"/", b"/etc"] and not any(b"//" in e.path for e in entries)
    files = SourceFiles(["/"])
    opened = 0
    for entry in entries[1:]:
        if entry.kind == FILE:
            os.close(files.open(entry.path))
            opened += 1
        elif entry.kind == SYMLINK:
            assert files.readlink(entry.path)
        else:
            assert files.lstat(entry.path).st_ino == entry.stat.st_ino
    files.close()
    assert opened > 10
