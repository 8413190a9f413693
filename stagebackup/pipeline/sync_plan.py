"""Sync, scan stage: compare each source with its mirror and write down what must change.

Nothing in the destination changes here. The plan is a file of ``<op> <root> <number> <rel>\\0`` records
(``rel`` relative to the source root, bytes-exact), read back by the copy stage; writing it first lets the
job count every deletion before it deletes anything (the mass-delete safety limit).

The source is walked once, by ``scan.walk`` (same rules, same order: a directory, its files and links
sorted by name, then its subdirectories). The mirror is never walked as a whole: each mirrored directory
is listed once (``os.scandir``), when the walk enters its source directory, and what is left of that
listing when the walk leaves the directory is what the source no longer has. Memory is bounded by the
listings of the directories on the current path, not by the size of the tree.

The planner also writes the catalog of the mirror as it will be after the run (``catalog`` records,
paths relative to the destination), so finalize records it without walking the mirror again.
"""

from __future__ import annotations

import os
import pickle
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from ..errors import N_, StageBackupError
from .report import Reporter
from .scan import DIR, FILE, SYMLINK, Entry, Rules

# Plan operations.
NEW_FILE, CHANGED_FILE, ATTRS, LINK, MKDIR, DIR_ATTRS, DELETE, REPLACE, CLEAN_TEMP = (
    b"n", b"c", b"a", b"l", b"m", b"t", b"d", b"r", b"x"
)
# Temporary names in the mirror: short (a 255-byte name leaves no room for a suffix) and recognisable,
# so a crashed run's leftovers are removed by the next one.
TEMP_PREFIX = b".sbsync-"
TEMP_RE = re.compile(rb"\A\.sbsync-\d+-\d+\.tmp\Z")


class SourceEmpty(StageBackupError):
    template = N_("source %(source)s is empty but its mirror %(mirror)s is not: is the source unmounted? Nothing "
                  "was deleted. If the source really is empty now, clear the mirror by hand")
    params = ("source", "mirror")


@dataclass(frozen=True)
class Root:
    """One source and where it is mirrored: ``DEST/<basename of the source>``."""

    index: int
    src: bytes  # as the scan names it
    real: bytes  # where it is read (sync_apply): the operator named the root, a link above it is followed once
    name: bytes
    dest: bytes


@dataclass
class PlanCounts:
    copies: int = 0  # files and links to write
    file_copies: int = 0  # of which regular files: what the job's file count counts
    folders_created: int = 0  # shown beside the files: a first mirror counts the tree as a backup does
    copy_bytes: int = 0
    deletions: int = 0  # top-level entries removed
    deleted_files: int = 0  # non-directories removed, counting everything inside removed directories
    dest_files: int = 0  # non-directories seen in the mirror
    actions: int = 0  # every record of the plan


@dataclass
class _OpenDir:
    rel: bytes
    listing: dict[bytes, os.stat_result]  # what the mirror has here and the source has not matched yet
    src_stat: os.stat_result | None
    dest_stat: os.stat_result | None  # None: created by this run
    src_abs: bytes
    touched: bool = False  # something inside changes, so the mtime must be set again
    blocked: bool = False  # the mirror's directory could not be listed: nothing below it is touched


MEMBER_KINDS = {FILE: "file", DIR: "dir", SYMLINK: "symlink"}
# One catalog row: (path relative to the destination, kind, size, mtime_ns, st_mode, link target or None,
# uid, gid). The catalog keeps no owners; they are here for the digest a root's mirror records (``listing``).
Member = tuple[bytes, str, int, int, int, bytes | None, int, int]


def member(path: bytes, kind: str, st: os.stat_result, target: bytes | None = None) -> Member:
    """``kind`` is a catalog kind: "file", "dir" or "symlink"."""
    return (path, kind, st.st_size if kind == "file" else 0, st.st_mtime_ns, st.st_mode, target, st.st_uid,
            st.st_gid)


class CatalogSpool:
    """The mirror's members, spooled to a file in pickled batches (our own file: C speed both ways)."""

    BATCH_ROWS = 4096

    def __init__(self, out: BinaryIO):
        self.out = out
        self.rows: list[Member] = []

    def add(self, path: bytes, kind: str, st: os.stat_result, target: bytes | None = None) -> None:
        self.rows.append(member(path, MEMBER_KINDS[kind], st, target))
        if len(self.rows) >= self.BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            pickle.dump(self.rows, self.out, protocol=pickle.HIGHEST_PROTOCOL)
            self.rows = []

    @staticmethod
    def read(source: BinaryIO) -> Iterator[Member]:
        while True:
            try:
                batch = pickle.load(source)  # noqa: S301 - written by this job, in its own cache directory
            except EOFError:
                return
            yield from batch


def is_temp_name(name: bytes) -> bool:
    return name.startswith(TEMP_PREFIX) and TEMP_RE.match(name) is not None


def same_content(src: os.stat_result, dst: os.stat_result) -> bool:
    """The quick check: same size and same mtime (ns) means the file is already mirrored."""
    return src.st_size == dst.st_size and src.st_mtime_ns == dst.st_mtime_ns


def same_attrs(src: os.stat_result, dst: os.stat_result, owners: bool) -> bool:
    if stat.S_IMODE(src.st_mode) != stat.S_IMODE(dst.st_mode):
        return False
    return not owners or (src.st_uid, src.st_gid) == (dst.st_uid, dst.st_gid)


def count_files(path: bytes) -> int:
    """Non-directories in a mirror subtree about to be removed (itself, if it is not a directory)."""
    if not (os.path.isdir(path) and not os.path.islink(path)):
        return 1
    count = 0
    for _dirpath, dirnames, filenames in os.walk(path):
        count += len(filenames) + sum(os.path.islink(os.path.join(_dirpath, d)) for d in dirnames)
    return count


class ErrorWatch:
    """A reporter that remembers the source paths the walk could not read, so their mirror is kept."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.paths: set[bytes] = set()

    def log_path(self, tag: str, path: str | bytes, note: str = "") -> None:
        if tag == "ERROR":
            self.paths.add(os.fsencode(path))
        self.reporter.log_path(tag, path, note)

    def __getattr__(self, name):
        return getattr(self.reporter, name)


def _kind_of(st: os.stat_result) -> str:
    if stat.S_ISDIR(st.st_mode):
        return DIR
    if stat.S_ISLNK(st.st_mode):
        return SYMLINK
    if stat.S_ISREG(st.st_mode):
        return FILE
    return "special"


def _list(path: bytes) -> dict[bytes, os.stat_result]:
    with os.scandir(path) as it:
        return {e.name: e.stat(follow_symlinks=False) for e in it}


@dataclass
class Planner:
    """Feeds on one root's walk; writes plan and catalog records."""

    root: Root
    rules: Rules
    overwrite: bool
    plan: BinaryIO
    catalog: CatalogSpool
    reporter: Reporter
    errors: ErrorWatch
    counts: PlanCounts
    owners: bool = field(default_factory=lambda: os.geteuid() == 0)  # only root can give files away
    source_entries: int = 0
    dest_root_entries: int = 0

    # -- records ---------------------------------------------------------------------------------
    def _op(self, op: bytes, rel: bytes, number: int = 0) -> None:
        self.plan.write(b"%s %d %d %s\0" % (op, self.root.index, number, rel))
        self.counts.actions += 1

    def _member(self, rel: bytes, kind: str, st: os.stat_result, target: bytes | None = None) -> None:
        self.catalog.add(self.root.name + b"/" + rel if rel else self.root.name, kind, st, target)

    def _dest(self, rel: bytes) -> bytes:
        return self.root.dest + b"/" + rel if rel else self.root.dest

    # -- the walk --------------------------------------------------------------------------------
    def run(self, entries: Iterable[Entry]) -> None:
        """Compare the mirror with the source, one walk entry at a time."""
        src_len = len(self.root.src) + 1
        top = self._open_top()
        stack: list[_OpenDir] = [top]
        checkpoint = self.reporter.checkpoint
        for seen, entry in enumerate(entries):
            if not seen & 0xFF:  # a stat per entry: checking for cancel every 256 is plenty and cheap
                checkpoint()
            rel = entry.path[src_len:] if entry.path != self.root.src else b""
            parent, _, name = rel.rpartition(b"/")
            if not rel:
                parent, name = None, self.root.name
            while stack[-1].rel != parent:
                self._close(stack.pop())
            here = stack[-1]
            if rel:
                self.source_entries += 1
            if here.blocked:
                if entry.kind == DIR:
                    stack.append(_OpenDir(rel=rel, listing={}, src_stat=None, dest_stat=None, src_abs=entry.path,
                                          blocked=True))
                continue
            st = entry.stat
            if st is None:  # a parent emitted for an included file; the root itself is followed
                st = os.lstat(entry.path) if rel else os.stat(entry.path)
            dest_st = here.listing.pop(name, None)
            if entry.kind == DIR:
                stack.append(self._dir(rel, entry.path, st, dest_st, here))
            elif entry.kind == FILE:
                self._file(rel, st, dest_st, here)
            else:
                self._link(rel, entry.path, st, dest_st, here)
        while len(stack) > 1:
            self._close(stack.pop())

    def _open_top(self) -> _OpenDir:
        """The destination itself: only this root's name is ours there (its temporary files are cleaned
        once for all roots, by the caller)."""
        try:
            listing = {self.root.name: os.lstat(self.root.dest)}
        except FileNotFoundError:
            listing = {}
        return _OpenDir(rel=None, listing=listing, src_stat=None, dest_stat=None, src_abs=b"")

    def _replace(self, rel: bytes, dest_st: os.stat_result, wanted: str) -> bool:
        """The mirror has another kind of entry at ``rel``: plan its removal if needed; False if refused.

        A file or link is replaced by the rename of the new file or link (no removal); a directory is
        removed first, which incremental sync refuses; a file or link where a directory must go is removed.
        """
        if stat.S_ISDIR(dest_st.st_mode):
            if not self.overwrite:
                self.reporter.log_path(
                    "ERROR", self._dest(rel),
                    f"is a directory in the mirror but a {'file' if wanted == FILE else 'symlink'} in the source; "
                    "incremental sync never deletes directories (remove it by hand or use overwrite)",
                )
                return False
            files = count_files(self._dest(rel))
            self.counts.dest_files += files
            self.counts.deletions += 1
            self.counts.deleted_files += files
            self._op(DELETE, rel, files)
        elif wanted == DIR:
            self._op(REPLACE, rel)
        return True

    def _file(self, rel: bytes, st: os.stat_result, dest_st: os.stat_result | None, here: _OpenDir) -> None:
        if dest_st is not None:
            self.counts.dest_files += not stat.S_ISDIR(dest_st.st_mode)
            if stat.S_ISREG(dest_st.st_mode):
                if same_content(st, dest_st):
                    if not same_attrs(st, dest_st, self.owners):
                        self._op(ATTRS, rel)
                        here.touched = True
                    self._member(rel, FILE, st)
                    return
            elif not self._replace(rel, dest_st, FILE):
                self._keep_member(rel, dest_st)
                return
        self._copy(NEW_FILE if dest_st is None else CHANGED_FILE, rel, st, here)

    def _copy(self, op: bytes, rel: bytes, st: os.stat_result, here: _OpenDir) -> None:
        self._op(op, rel, st.st_size)
        self.counts.copies += 1
        self.counts.file_copies += 1
        self.counts.copy_bytes += st.st_size
        here.touched = True
        self._member(rel, FILE, st)

    def _link(self, rel: bytes, path: bytes, st: os.stat_result, dest_st: os.stat_result | None,
              here: _OpenDir) -> None:
        try:
            target = os.readlink(path)
        except OSError as exc:
            self.errors.log_path("ERROR", path, f"cannot read the link: {exc.strerror}")
            if dest_st is not None:
                self._keep_member(rel, dest_st)
            return
        if dest_st is not None:
            self.counts.dest_files += not stat.S_ISDIR(dest_st.st_mode)
            if stat.S_ISLNK(dest_st.st_mode):
                if os.readlink(self._dest(rel)) == target:
                    if st.st_mtime_ns != dest_st.st_mtime_ns or not same_attrs(st, dest_st, self.owners):
                        self._op(ATTRS, rel)
                        here.touched = True
                    self._member(rel, SYMLINK, st, target)
                    return
            elif not self._replace(rel, dest_st, SYMLINK):
                self._keep_member(rel, dest_st)
                return
        self._op(LINK, rel, 0 if dest_st is None else 1)
        self.counts.copies += 1
        here.touched = True
        self._member(rel, SYMLINK, st, target)

    def _dir(self, rel: bytes, path: bytes, st: os.stat_result, dest_st: os.stat_result | None,
             here: _OpenDir) -> _OpenDir:
        listing: dict[bytes, os.stat_result] = {}
        if dest_st is not None and not stat.S_ISDIR(dest_st.st_mode):
            self.counts.dest_files += 1
            self._replace(rel, dest_st, DIR)  # never refused: the mirror's entry is not a directory
            dest_st = None
        if dest_st is None:
            self._op(MKDIR, rel)
            self.counts.folders_created += 1
            here.touched = True
        else:
            try:
                listing = _list(self._dest(rel))
            except OSError as exc:
                # A mirror directory we cannot read is not ours to judge: leave it, say so, go on.
                self.reporter.log_path("ERROR", self._dest(rel), f"cannot list the mirror: {exc.strerror}")
                self._member(rel, DIR, dest_st)
                return _OpenDir(rel=rel, listing={}, src_stat=st, dest_stat=dest_st, src_abs=path, blocked=True)
            if not rel:
                self.dest_root_entries = len(listing)
        self._member(rel, DIR, st)
        return _OpenDir(rel=rel, listing=listing, src_stat=st, dest_stat=dest_st, src_abs=path)

    def _close(self, done: _OpenDir) -> None:
        """The walk has left a directory: what the mirror still lists there is gone from the source."""
        if done.blocked:
            return
        for name, dest_st in sorted(done.listing.items()):
            rel = done.rel + b"/" + name if done.rel else name
            is_dir = stat.S_ISDIR(dest_st.st_mode)
            if not is_dir:
                self.counts.dest_files += 1
            if is_temp_name(name):
                self._op(CLEAN_TEMP, rel)
                done.touched = True
            elif self._kept(rel, done.src_abs + b"/" + name, is_dir, done.src_abs):
                self._keep_member(rel, dest_st)
            else:
                files = count_files(self._dest(rel)) if is_dir else 1
                if is_dir:
                    self.counts.dest_files += files
                self.counts.deletions += 1
                self.counts.deleted_files += files
                self._op(DELETE, rel, files)
                done.touched = True
        if done.dest_stat is None or done.touched or not self._same_dir(done.src_stat, done.dest_stat):
            self._op(DIR_ATTRS, done.rel)

    def _same_dir(self, src: os.stat_result, dst: os.stat_result) -> bool:
        return src.st_mtime_ns == dst.st_mtime_ns and same_attrs(src, dst, self.owners)

    def _kept(self, rel: bytes, src_path: bytes, is_dir: bool, src_dir: bytes) -> bool:
        """Entries only the mirror has that stay: incremental mode, rules that leave them out, read errors."""
        if not self.overwrite or src_dir in self.errors.paths or src_path in self.errors.paths:
            return True
        if is_dir:
            return self.rules.excluded(rel, is_dir=True)
        return not self.rules.wanted_file(rel)

    def _keep_member(self, rel: bytes, dest_st: os.stat_result) -> None:
        """Catalog an entry the run leaves as it is in the mirror (a directory with everything in it)."""
        kind = _kind_of(dest_st)
        if kind == "special":
            return
        path = self._dest(rel)
        self._member(rel, kind, dest_st, os.readlink(path) if kind == SYMLINK else None)
        if kind != DIR:
            return
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                st = os.lstat(full)
                kind = _kind_of(st)
                if kind != "special":
                    sub = rel + full[len(path):]
                    self._member(sub, kind, st, os.readlink(full) if kind == SYMLINK else None)
