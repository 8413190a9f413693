"""Walk the sources with include/exclude rules and stream a manifest.

Paths are bytes throughout (names need not be UTF-8). Rules use gitignore syntax (pathspec) and match
paths relative to each source root. Symlinks are recorded, never followed; sockets, FIFOs and
devices are skipped with a ``[SKIP]`` line; unreadable entries are ``[ERROR]`` lines and the job ends
as a warning. The manifest is a file, read back as a stream, so no whole-tree list is kept in memory.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from operator import itemgetter
from typing import BinaryIO, NamedTuple

import pathspec

from ..errors import N_, SourceChanged, SourceMissing, ValidationError
from .report import Reporter

FILE, DIR, SYMLINK = "f", "d", "l"
_FIRST = itemgetter(0)
REPLACED_DIR = "was replaced while being scanned (a link, a file or another folder is there now): not followed"
SPECIAL_KINDS = {
    stat.S_IFSOCK: "socket", stat.S_IFIFO: "FIFO", stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


class Entry(NamedTuple):
    """One manifest entry (a tuple: made once per file, so made at C speed)."""

    kind: str  # FILE | DIR | SYMLINK
    size: int  # bytes of data for files, 0 otherwise
    path: bytes  # absolute
    # The walk's own lstat (the root's stat is followed); None for directories emitted only as parents
    # of included files, and for entries read back from a manifest. Sync compares it with the mirror
    # without a second system call per entry.
    stat: os.stat_result | None = None


def _compile(patterns: list[str], field: str) -> pathspec.GitIgnoreSpec:
    try:
        return pathspec.GitIgnoreSpec.from_lines(patterns)
    except (ValueError, TypeError, re.error) as exc:  # re.error: e.g. a bad range like [z-a]
        raise ValidationError(N_("invalid include/exclude pattern: %(reason)s"), field=field, reason=str(exc)) from exc


class Rules:
    """Include/exclude rules in gitignore syntax. No includes means everything is included."""

    def __init__(self, includes: Iterable[str] = (), excludes: Iterable[str] = ()):
        self.includes = [p for p in includes if p.strip()]
        self.excludes = [p for p in excludes if p.strip()]
        self._include = _compile(self.includes, "includes") if self.includes else None
        self._exclude = _compile(self.excludes, "excludes")

    def excluded(self, rel: bytes, is_dir: bool) -> bool:
        if not self.excludes:  # the common case, and pathspec costs microseconds per call
            return False
        name = os.fsdecode(rel) + ("/" if is_dir else "")
        return self._exclude.match_file(name)

    def wanted_file(self, rel: bytes) -> bool:
        if self.excluded(rel, is_dir=False):
            return False
        return self._include is None or self._include.match_file(os.fsdecode(rel))


def _dir_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def walk(
    sources: Iterable[str], rules: Rules, reporter: Reporter, skip_dirs: Mapping[str, str] | None = None
) -> Iterator[Entry]:
    """Yield entries of every source, parents before children, names sorted within a directory.

    ``skip_dirs`` (folder -> why) are passed over with an ``[INFO]`` line (StageBackup's own folders)."""
    skip = {ident: reason for path, reason in (skip_dirs or {}).items() if (ident := _dir_identity(path))}
    for source in sources:
        yield from _walk_source(os.fsencode(os.path.abspath(source)), rules, reporter, skip)


def _walk_source(root: bytes, rules: Rules, reporter: Reporter, skip: dict) -> Iterator[Entry]:
    try:
        st = os.stat(root)  # the root itself is followed: the operator named it
    except OSError as exc:
        raise SourceMissing(os.fsdecode(root), exc.strerror) from exc
    if stat.S_ISREG(st.st_mode):
        yield Entry(FILE, st.st_size, root, st)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise SourceMissing(os.fsdecode(root), "not a directory or regular file")

    # With include rules, a directory is emitted only once something under it is (so parents keep
    # their metadata without the archive filling up with empty directories).
    lazy_dirs = rules._include is not None
    base = root.rstrip(b"/")  # "/" itself: its entries are "/etc", not "//etc" (the kernel's name for a folder)
    emitted: set[bytes] = set()

    def ancestors(rel: bytes) -> Iterator[Entry]:
        parts = rel.split(b"/")[:-1]
        chain = [b""] + [b"/".join(parts[: i + 1]) for i in range(len(parts))]
        for prefix in chain:
            if prefix not in emitted:
                emitted.add(prefix)
                yield Entry(DIR, 0, base + b"/" + prefix if prefix else root)

    stack: list[tuple[bytes, os.stat_result]] = [(b"", st)]
    while stack:
        rel_dir, dir_stat = stack.pop()
        abs_dir = base + b"/" + rel_dir if rel_dir else root
        if not lazy_dirs:
            # Strict pre-order: a directory's entry comes right before its contents, as GNU tar
            # expects (it applies a directory's mtime once a member outside it appears).
            yield Entry(DIR, 0, abs_dir, dir_stat)
        children = _list_dir(abs_dir, dir_stat, is_root=not rel_dir, reporter=reporter)
        subdirs = []
        prefix = abs_dir if abs_dir.endswith(b"/") else abs_dir + b"/"
        for name, cst in children:
            rel = rel_dir + b"/" + name if rel_dir else name
            mode = cst.st_mode
            if stat.S_ISDIR(mode):
                if rules.excluded(rel, is_dir=True):
                    continue
                if (cst.st_dev, cst.st_ino) in skip:
                    reporter.log_path("INFO", prefix + name, f"skipped: {skip[cst.st_dev, cst.st_ino]}")
                    continue
                subdirs.append((rel, cst))
            elif stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                if not rules.wanted_file(rel):
                    continue
                if lazy_dirs:
                    yield from ancestors(rel)
                if stat.S_ISREG(mode):
                    yield Entry(FILE, cst.st_size, prefix + name, cst)
                else:
                    yield Entry(SYMLINK, 0, prefix + name, cst)
            else:
                if rules.excluded(rel, is_dir=False):
                    continue
                kind = SPECIAL_KINDS.get(stat.S_IFMT(mode), "special file")
                reporter.log_path("SKIP", prefix + name, f"{kind} not archived")
        stack.extend(reversed(subdirs))
    _check_root_unchanged(root, st)


def _list_dir(path: bytes, expected: os.stat_result, *, is_root: bool, reporter: Reporter
              ) -> list[tuple[bytes, os.stat_result]]:
    """(name, lstat) of a directory's entries, sorted by name; [] after an ``[ERROR]`` line.

    The directory is opened without following a link and must be the one its parent listed (same device and
    inode), and its entries are stat'ed in that descriptor: between the parent's listing and this one, a
    folder replaced by a link (to ``/etc``, say) would otherwise be walked, and files from outside the source
    backed up under names inside it."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | (0 if is_root else os.O_NOFOLLOW)  # the root is followed
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        note = REPLACED_DIR if exc.errno in (errno.ELOOP, errno.ENOTDIR) else f"cannot list directory: {exc.strerror}"
        reporter.log_path("ERROR", path, note)
        return []
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (expected.st_dev, expected.st_ino):
            reporter.log_path("ERROR", path, REPLACED_DIR)
            return []
        with os.scandir(fd) as it:  # names are str here: encoded back to the bytes they were
            entries = sorted(((os.fsencode(entry.name), entry) for entry in it), key=_FIRST)
        children = []
        for name, entry in entries:
            try:
                children.append((name, entry.stat(follow_symlinks=False)))  # fstatat in fd: needs fd open
            except OSError as exc:
                reporter.log_path("ERROR", path.rstrip(b"/") + b"/" + name, f"cannot stat: {exc.strerror}")
        return children
    except OSError as exc:
        reporter.log_path("ERROR", path, f"cannot list directory: {exc.strerror}")
        return []
    finally:
        os.close(fd)


def _check_root_unchanged(root: bytes, before: os.stat_result) -> None:
    """A root renamed, removed or replaced while it was walked leaves a scan of nothing (thousands of
    errors and an empty archive): that must fail the job, never pass as a backup with warnings."""
    try:
        after = os.stat(root)
    except OSError as exc:
        raise SourceChanged(os.fsdecode(root), f"it disappeared during the scan ({exc.strerror})") from exc
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        raise SourceChanged(os.fsdecode(root), "it was replaced during the scan: another directory is there now")


# -- manifest: "<kind> <size> <path>\0" records ----------------------------------------------------
def write_manifest(entries: Iterable[Entry], out: BinaryIO) -> tuple[int, int]:
    """Stream entries to ``out``; returns (entry count, total file bytes)."""
    count = total = 0
    for entry in entries:
        out.write(b"%s %d %s\0" % (entry.kind.encode(), entry.size, entry.path))
        count += 1
        total += entry.size
    return count, total


def read_manifest(source: BinaryIO, chunk_size: int = 1 << 20) -> Iterator[Entry]:
    pending = b""
    while True:
        chunk = source.read(chunk_size)
        if not chunk:
            break
        records = (pending + chunk).split(b"\0")
        pending = records.pop()
        for record in records:
            kind, size, path = record.split(b" ", 2)
            yield Entry(kind.decode(), int(size), path)
    if pending:
        raise ValueError("truncated manifest record")
