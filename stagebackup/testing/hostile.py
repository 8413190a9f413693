"""The entries of a generated tree that break naive backup code, each recorded under its kind.

They are spread over the tree's random folders (so some sit below unicode or deep folders) and come on
top of the bulk. Their names are fixed, so a test can look for them; their folders, bytes and times follow
the tree's seed.
"""

from __future__ import annotations

import os
import random
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stagebackup.testing.corpus import Corpus

HOSTILE_KINDS = (
    "non_utf8_name", "newline_name", "shell_chars_name", "unicode_name", "long_name", "deep_path",
    "file_symlink", "dir_symlink", "dangling_symlink", "symlink_loop", "ancestor_symlink", "hardlink",
    "empty_file", "empty_dir", "sparse_file", "readonly_file", "executable_file", "fifo", "socket",
)
DEEP_LEVELS = 40
LONG_NAME_BYTES = 250
_SHELL_NAMES = (b"-leading-dash", b" leading and trailing space ", b"glob*?[ab].txt", b"back\\slash",
                b"quote'\"$(echo x)`;&|.txt", b"tab\there")
# "café" composed (NFC) and decomposed (NFD): two different names on Linux, one on macOS.
_UNICODE_NAMES = ("caf\u00e9.txt", "cafe\u0301.txt", "中文 文件名.txt", "😀 emoji.md", "Ελληνικά.txt")


class _Maker:
    def __init__(self, corpus: Corpus, rng: random.Random, dirs: list[bytes]):
        self.corpus, self.rng, self.dirs = corpus, rng, dirs
        self.broot = os.fsencode(corpus.root)

    def full(self, rel: bytes) -> bytes:
        return os.path.join(self.broot, rel)

    def somewhere(self, name: bytes) -> bytes:
        return os.path.join(self.rng.choice(self.dirs), name)

    def file(self, kind: str | None, rel: bytes, data: bytes | None = None) -> bytes:
        with open(self.full(rel), "wb") as out:
            out.write(self.rng.randbytes(self.rng.randint(1, 4096)) if data is None else data)
        os.chmod(self.full(rel), 0o644)  # the same modes whatever the umask
        self.stamp(rel)
        if kind:
            self.corpus.add(kind, rel)
        return rel

    def symlink(self, kind: str, rel: bytes, target: bytes) -> None:
        os.symlink(target, self.full(rel))
        mtime = self.mtime()
        os.utime(self.full(rel), ns=(mtime, mtime), follow_symlinks=False)
        self.corpus.add(kind, rel)

    def mtime(self) -> int:
        return 1_577_836_800 * 10**9 + self.rng.randrange(3 * 365 * 86400 * 10**9)

    def stamp(self, rel: bytes) -> None:
        mtime = self.mtime()
        os.utime(self.full(rel), ns=(mtime, mtime))


def _names(make: _Maker, utf8_only: bool) -> None:
    folder = make.somewhere(b"dir-utf-8 only" if utf8_only else b"dir-\xfe\xfd not utf-8")
    os.mkdir(make.full(folder))
    if not utf8_only:
        make.corpus.add("non_utf8_name", folder)
        make.file("non_utf8_name", os.path.join(folder, b"latin1-caf\xe9-\xff.txt"))
    make.file("newline_name", make.somewhere(b"line\nbreak.txt"))
    make.file("newline_name", os.path.join(folder, b"\ncarriage\rreturn\n"))
    for name in _SHELL_NAMES:
        make.file("shell_chars_name", make.somewhere(name))
    for name in _UNICODE_NAMES:
        make.file("unicode_name", os.path.join(folder.rpartition(b"/")[0], name.encode()))
    make.file("long_name", make.somewhere(b"L" * (LONG_NAME_BYTES - 4) + b".txt"))
    make.file("long_name", make.somewhere("长".encode() * (LONG_NAME_BYTES // 3)))  # 83 characters, 249 bytes


def _deep_chain(make: _Maker) -> bytes:
    path = make.rng.choice(make.dirs)
    for level in range(DEEP_LEVELS):
        path = os.path.join(path, b"level%02d-%s" % (level, b"d" * 20))
        os.mkdir(make.full(path))
    make.file("deep_path", os.path.join(path, b"bottom.txt"))
    return path


def _links(make: _Maker, deep: bytes) -> None:
    target = make.file(None, make.somewhere(b"link-target.txt"))
    here = make.rng.choice(make.dirs)
    make.symlink("file_symlink", os.path.join(here, b"link-to-file"), os.path.relpath(target, here or b"."))
    folder = make.rng.choice(make.dirs[1:])
    make.symlink("dir_symlink", os.path.join(here, b"link-to-dir"), os.path.relpath(folder or b".", here or b"."))
    make.symlink("dangling_symlink", make.somewhere(b"dangling-relative"), b"does/not/exist")
    make.symlink("dangling_symlink", make.somewhere(b"dangling-absolute"), b"/nonexistent/stagebackup/target")
    make.symlink("symlink_loop", os.path.join(here, b"loop-self"), b"loop-self")
    make.symlink("symlink_loop", os.path.join(here, b"loop-a"), b"loop-b")
    make.symlink("symlink_loop", os.path.join(here, b"loop-b"), b"loop-a")
    make.symlink("ancestor_symlink", os.path.join(deep, b"up-five"), b"../../../../..")  # a cycle if followed


def _file_kinds(make: _Maker) -> None:
    first = make.file("hardlink", make.somewhere(b"hardlinked.bin"))
    for name in (b"hardlink-2.bin", b"hardlink-3.bin"):
        rel = make.somewhere(name)
        os.link(make.full(first), make.full(rel))
        make.corpus.add("hardlink", rel)
    make.file("empty_file", make.somewhere(b"empty-file"), b"")
    for name in (b"empty-dir", b"another empty dir"):
        rel = make.somewhere(name)
        os.mkdir(make.full(rel))
        make.corpus.add("empty_dir", rel)
    for name, offset in ((b"sparse-hole-first.img", 2 << 20), (b"sparse-hole-last.img", 0)):
        rel = make.file("sparse_file", make.somewhere(name), b"")
        with open(make.full(rel), "r+b") as out:
            out.seek(offset)
            out.write(make.rng.randbytes(4096))
            out.truncate(4 << 20)
        make.stamp(rel)
    for kind, name, mode in (("readonly_file", b"read-only.txt", 0o444), ("executable_file", b"run.sh", 0o755)):
        rel = make.file(kind, make.somewhere(name), b"#!/bin/sh\necho hi\n")
        os.chmod(make.full(rel), mode)


def _specials(make: _Maker) -> None:
    fifo = make.somewhere(b"a-fifo")
    os.mkfifo(make.full(fifo))
    socket = make.somewhere(b"a-socket")
    os.mknod(make.full(socket), stat.S_IFSOCK)  # bind() would limit the path to 108 bytes
    for kind, rel in (("fifo", fifo), ("socket", socket)):
        os.chmod(make.full(rel), 0o600)
        make.stamp(rel)
        make.corpus.add(kind, rel)


def add_hostile_entries(corpus: Corpus, rng: random.Random, dirs: list[bytes], *, specials: bool,
                        utf8_only: bool) -> None:
    make = _Maker(corpus, rng, dirs)
    _names(make, utf8_only)
    deep = _deep_chain(make)
    _links(make, deep)
    _file_kinds(make)
    if specials:
        _specials(make)
