"""The project's tree generator: the same seed gives the same tree, and every kind it promises is really on disk."""

from __future__ import annotations

import errno
import os
import stat
import zlib

import pytest

from stagebackup.testing.corpus import BULK_KINDS, CorpusSpec, generate
from stagebackup.testing.hostile import DEEP_LEVELS, HOSTILE_KINDS, LONG_NAME_BYTES
from tests.integration.test_sync import ns_times
from tests.treecompare import snapshot

SPEC = CorpusSpec(files=60, total_mb=2, seed="unit")


def listing(root) -> tuple[dict, dict]:
    """Every entry's kind, mode, size, content hash or link target, and its mtime to the nanosecond."""
    return snapshot(root, skip_special=False), ns_times(root)


def stat_error(path: bytes) -> int | None:
    try:
        os.stat(path)
    except OSError as error:
        return error.errno
    return None


def gzip_ratio(path: bytes) -> float:
    with open(path, "rb") as fh:
        data = fh.read(1 << 20)
    return len(zlib.compress(data, 6)) / len(data)


def is_kind(kind: str, root: bytes, rel: bytes) -> bool:
    """Whether the entry at ``rel`` is of ``kind``, judged from the disk alone."""
    full, name = os.path.join(root, rel), os.path.basename(rel)
    st = os.lstat(full)
    link = stat.S_ISLNK(st.st_mode)
    checks = {
        "non_utf8_name": lambda: not _decodes(name),
        "newline_name": lambda: b"\n" in name,
        "shell_chars_name": lambda: name.startswith(b"-") or any(c in name for c in b"*?[\\'\"$`;&|\t "),
        "unicode_name": lambda: _decodes(name) and not name.isascii(),
        "long_name": lambda: len(name) >= LONG_NAME_BYTES - 1,
        "deep_path": lambda: rel.count(b"/") >= DEEP_LEVELS,
        "file_symlink": lambda: link and os.path.isfile(full),
        "dir_symlink": lambda: link and os.path.isdir(full),
        "dangling_symlink": lambda: link and stat_error(full) == errno.ENOENT,
        "symlink_loop": lambda: link and stat_error(full) == errno.ELOOP,
        "ancestor_symlink": lambda: link and os.path.dirname(full).startswith(os.path.realpath(full) + b"/"),
        "hardlink": lambda: stat.S_ISREG(st.st_mode) and st.st_nlink >= 2,
        "empty_file": lambda: stat.S_ISREG(st.st_mode) and st.st_size == 0,
        "empty_dir": lambda: stat.S_ISDIR(st.st_mode) and not os.listdir(full),
        "sparse_file": lambda: stat.S_ISREG(st.st_mode) and 0 < st.st_blocks * 512 < st.st_size // 2,
        "readonly_file": lambda: stat.S_ISREG(st.st_mode) and not st.st_mode & 0o222,
        "executable_file": lambda: stat.S_ISREG(st.st_mode) and st.st_mode & 0o111 == 0o111,
        "fifo": lambda: stat.S_ISFIFO(st.st_mode),
        "socket": lambda: stat.S_ISSOCK(st.st_mode),
        "small_file": lambda: stat.S_ISREG(st.st_mode) and 0 < st.st_size <= 64 << 10,
        "large_file": lambda: stat.S_ISREG(st.st_mode) and st.st_size >= 1 << 20,
        "compressible": lambda: stat.S_ISREG(st.st_mode) and (st.st_size < 512 or gzip_ratio(full) < 0.8),
        "incompressible": lambda: stat.S_ISREG(st.st_mode) and gzip_ratio(full) > 0.99,
    }
    return bool(checks[kind]())


def _decodes(name: bytes) -> bool:
    try:
        name.decode()
    except UnicodeDecodeError:
        return False
    return True


@pytest.fixture(scope="module")
def two_trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("corpora")
    return generate(base / "a", SPEC), generate(base / "b", SPEC)


def test_same_seed_gives_the_same_tree(two_trees):
    first, second = two_trees
    assert first.entries == second.entries
    assert listing(first.root) == listing(second.root)


def test_another_seed_gives_another_tree(two_trees, tmp_path):
    other = generate(tmp_path / "c", CorpusSpec(files=SPEC.files, total_mb=SPEC.total_mb, seed="other"))
    assert listing(other.root) != listing(two_trees[0].root)


@pytest.mark.parametrize("kind", BULK_KINDS + HOSTILE_KINDS)
def test_every_promised_kind_is_on_disk(two_trees, kind):
    corpus = two_trees[0]
    paths = corpus.entries.get(kind, [])
    assert paths, f"no {kind} generated"
    root = os.fsencode(corpus.root)
    wrong = [rel for rel in paths if not is_kind(kind, root, rel)]
    assert not wrong, f"listed as {kind} but not one: {wrong[:3]}"


def test_bulk_matches_the_spec(two_trees):
    corpus = two_trees[0]
    root = os.fsencode(corpus.root)
    bulk = [rel for kind in ("small_file", "large_file", "empty_file") for rel in corpus.entries[kind]]
    regular = [rel for rel, entry in snapshot(corpus.root).items() if entry[0] == "file"]
    assert len(regular) >= SPEC.files
    total = sum(os.lstat(os.path.join(root, rel)).st_size for rel in corpus.entries["compressible"]
                + corpus.entries["incompressible"])
    assert 0.9 * SPEC.total_mb * 2**20 <= total <= SPEC.total_mb * 2**20
    assert len(set(bulk)) == len(bulk)


def test_options_leave_out_specials_and_names_that_are_not_utf8(tmp_path):
    corpus = generate(tmp_path / "t", CorpusSpec(files=10, total_mb=0.2, specials=False, utf8_only=True))
    entries = snapshot(corpus.root, skip_special=False)
    assert {entry[0] for entry in entries.values()} == {"file", "dir", "link"}
    assert all(_decodes(rel) for rel in entries)
    assert corpus.specials() == set() and "non_utf8_name" not in corpus.entries
    assert corpus.entries["newline_name"] and corpus.entries["symlink_loop"]


def test_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "keep").write_text("mine")
    with pytest.raises(FileExistsError):
        generate(tmp_path / "t", CorpusSpec(files=5, total_mb=0.1))
    assert os.listdir(tmp_path / "t") == ["keep"]
