"""Writing restored members under a target directory, safely, whatever archive format they come from.

Every member name is checked (no absolute names, no ``..``, no NUL), and every write happens relative to
a directory file descriptor opened component by component with ``O_NOFOLLOW``: a symbolic link, whether
it came with the archive ("a -> /etc", then "a/passwd") or was already in the target, can never be used
as a path component, so nothing is ever written outside the target. Files are created with
``O_EXCL | O_NOFOLLOW``; a replaced file is written under a temporary name and renamed over the old one
(rename replaces a link, never follows it). Names are checked in ``member_names.py``; a file's data is
written and committed by ``file_sink.py`` (an unnamed file named only once complete).
Hard links may only point at files restored earlier in the same run. Device files, FIFOs and sockets are refused.

Symbolic links themselves are restored exactly as stored (an absolute or escaping target is data: the
link to ``/etc/localtime`` in a backup of ``/etc`` must come back as it was); they are never followed.

Modes are applied exactly (``fchmod`` with all 12 bits: no ``data``-filter owner-write), mtimes with
nanoseconds, and directories get theirs after their contents are written.

A restore never creates privilege: owners are restored only when asked (``restore_owners``) and the process
runs as root, by name first and then by id (as GNU tar does); otherwise every file comes back owned by the
restoring user, so its set-uid and set-gid bits are cleared (reported through ``on_info``), and so are they
when the archive records no owner (7z).
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from .file_sink import FileSink, new_file
from .member_names import Parts, Refused, member_parts, member_text, parts_or_none, renamed_candidate

SKIP, OVERWRITE, RENAME = "skip", "overwrite", "rename"
CONFLICT_POLICIES = (SKIP, OVERWRITE, RENAME)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_CACHED_DIR_FDS = 256
PRIVILEGE_BITS = stat.S_ISUID | stat.S_ISGID
PRIVILEGE_LINES_MAX = 100  # beyond this, files whose set-uid/set-gid bits were cleared are counted, not listed


@dataclass(frozen=True)
class Owner:
    """A member's owner as the archive records it: names (tar) and ids (tar, a mirror)."""

    uname: str | None = None
    gname: str | None = None
    uid: int | None = None
    gid: int | None = None

    def ids(self) -> tuple[int, int]:
        """(uid, gid) by name first, then by id; -1 leaves that side unchanged."""
        return (_lookup(pwd.getpwnam, "pw_uid", self.uname, self.uid),
                _lookup(grp.getgrnam, "gr_gid", self.gname, self.gid))


def _lookup(by_name, attr: str, name: str | None, fallback: int | None) -> int:
    if name:
        try:
            return getattr(by_name(name), attr)
        except (KeyError, UnicodeEncodeError):
            pass
    return fallback if fallback is not None and fallback >= 0 else -1


SizeOf = Callable[[str], int]  # a file member's catalogued size; raises Refused for a member never catalogued


FIRST_WRITTEN_KEPT = 10  # a failed restore names this many of the paths it wrote


@dataclass
class Stats:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    bytes: int = 0
    existing_skipped: int = 0
    renamed: int = 0
    overwritten: int = 0
    privilege_cleared: int = 0  # files whose set-uid/set-gid bits were cleared
    refused: list[tuple[str, str]] = field(default_factory=list)


class SafeExtractor:
    """Restores members under ``target`` (an existing directory); one instance per restore job.

    ``on_refused(path, reason)`` reports members refused for safety; ``on_skipped(path, reason)`` those left
    alone because of the conflict policy. ``linked``: the only names hard links involve (from the catalog), so
    only those are remembered as restored or skipped; None remembers every name (a backup without a catalog).
    """

    def __init__(self, target: str | bytes, conflict: str = SKIP, *, restore_owners: bool = False,
                 on_refused: Callable[[str, str], None] | None = None,
                 on_skipped: Callable[[str, str], None] | None = None,
                 on_info: Callable[[str, str], None] | None = None, linked: set[str] | None = None):
        if conflict not in CONFLICT_POLICIES:
            raise ValueError(f"unknown conflict policy {conflict!r}")
        self.conflict = conflict
        self.restore_owners = restore_owners and os.geteuid() == 0  # only root can give a file away
        self._on_info = on_info or (lambda path, reason: None)
        self.root_fd = os.open(os.fsencode(target), _DIR_FLAGS)
        self.stats = Stats()
        self._on_refused = on_refused or (lambda path, reason: None)
        self._on_skipped = on_skipped or (lambda path, reason: None)
        self._dir_fds: dict[Parts, int] = {}
        self._dirs: list[tuple[Parts, int, int, Owner | None]] = []  # (parts, mode, mtime_ns, owner) for finish()
        self._restored: dict[Parts, Parts] = {}  # member path -> where its data went (for hard links)
        # What a failed restore reports: a count and the first few paths, not every path (memory stays flat).
        self.written_count = 0
        self._first_written: list[Parts] = []
        self._skipped: set[Parts] = set()
        self._linked = None if linked is None else set(filter(None, map(parts_or_none, linked)))
        self._created: list[Parts] = []  # folders this restore made, so a failed one can take them back

    # -- reporting ----------------------------------------------------------------------------------
    def refuse(self, name: str | bytes | Parts, reason: str) -> None:
        path = member_text(name) if isinstance(name, tuple) else os.fsdecode(name)
        self.stats.refused.append((path, reason))
        self._on_refused(path, reason)

    def owned_mode(self, fd: int, parts: Parts, mode: int, owner: Owner | None) -> int:
        """Give the open file its owner when owners are restored; else the mode without set-uid/set-gid."""
        if self.restore_owners and owner is not None:
            os.fchown(fd, *owner.ids())  # before fchmod: a change of owner clears the set-uid bits
            return mode
        if mode & PRIVILEGE_BITS:
            self.stats.privilege_cleared += 1
            if self.stats.privilege_cleared <= PRIVILEGE_LINES_MAX:
                self._on_info(member_text(parts), "set-uid/set-gid bits cleared (owner not restored)")
        return mode & ~PRIVILEGE_BITS

    def _remembers(self, parts: Parts) -> bool:
        return self._linked is None or parts in self._linked

    def _skip_existing(self, parts: Parts, reason: str = "already exists") -> None:
        self.stats.existing_skipped += 1
        if self._remembers(parts):
            self._skipped.add(parts)
        self._on_skipped(member_text(parts), reason)

    # -- directories --------------------------------------------------------------------------------
    def _open_dir(self, parts: Parts, *, create: bool) -> int:
        """A descriptor of the directory ``parts`` below the root, never through a symbolic link."""
        if not parts:
            return self.root_fd
        cached = self._dir_fds.get(parts)
        if cached is not None:
            return cached
        parent = self._open_dir(parts[:-1], create=create)
        name = parts[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise Refused(f"folder {member_text(parts)} does not exist") from None
            os.mkdir(name, 0o777, dir_fd=parent)  # an implied folder: the umask's usual mode
            self._created.append(parts)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise Refused(f"{member_text(parts)} is a symbolic link or not a folder") from None
            raise
        if len(self._dir_fds) >= MAX_CACHED_DIR_FDS:
            self._close_dir_fds()
        self._dir_fds[parts] = fd
        return fd

    def _close_dir_fds(self) -> None:
        for fd in self._dir_fds.values():
            os.close(fd)
        self._dir_fds.clear()

    def directory(self, name: str | bytes, mode: int, mtime_ns: int, owner: Owner | None = None) -> None:
        try:
            parts = member_parts(name)
            if not parts:
                return  # the archive's "." entry: the target keeps its own mode
            parent = self._open_dir(parts[:-1], create=True)
            try:
                os.mkdir(parts[-1], 0o700, dir_fd=parent)  # writable for us until finish()
                self._created.append(parts)
            except FileExistsError:
                st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    if self.conflict != OVERWRITE:
                        self._skip_existing(parts, "exists and is not a folder")
                        return
                    os.unlink(parts[-1], dir_fd=parent)
                    os.mkdir(parts[-1], 0o700, dir_fd=parent)
            self._open_dir(parts, create=False)
        except Refused as exc:
            self.refuse(name, str(exc))
            return
        self.stats.dirs += 1
        self._dirs.append((parts, stat.S_IMODE(mode), mtime_ns, owner))

    # -- names for new entries ----------------------------------------------------------------------
    def _place(self, parts: Parts, create: Callable[[int, bytes], None]) -> tuple[int, bytes, bytes | None] | None:
        """Create an entry with ``create(dir_fd, name)`` under the conflict policy.

        Returns ``(dir_fd, final name, temporary name or None)``; None when the member is skipped. With a
        temporary name the caller renames it to the final name once the entry is complete.
        """
        dir_fd = self._open_dir(parts[:-1], create=True)
        name = parts[-1]
        try:
            create(dir_fd, name)
            return dir_fd, name, None
        except FileExistsError:
            pass
        existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if self.conflict == SKIP:
            self._skip_existing(parts)
            return None
        if self.conflict == OVERWRITE:
            if stat.S_ISDIR(existing.st_mode):
                raise Refused("a folder with this name is in the way")
            for n in range(1, 1000):
                temp = b".%s.restoring-%d-%d" % (name[:200], os.getpid(), n)
                try:
                    create(dir_fd, temp)
                except FileExistsError:
                    continue
                self.stats.overwritten += 1
                return dir_fd, name, temp
        else:
            for n in range(1, 10000):
                candidate = renamed_candidate(name, n)
                try:
                    create(dir_fd, candidate)
                except FileExistsError:
                    continue
                self.stats.renamed += 1
                self._on_skipped(member_text(parts), f"exists; restored as {os.fsdecode(candidate)}")
                return dir_fd, candidate, None
        raise Refused("no free name for it")

    # -- files and links ----------------------------------------------------------------------------
    def begin_file(self, name: str | bytes, mode: int, mtime_ns: int, owner: Owner | None = None, *,
                   size_of: SizeOf | None = None, catalogued_as: str | None = None) -> FileSink | None:
        """Open a new file for a member's data; None when it is refused or skipped (drain its data).

        ``size_of(catalogued_as or name)``: the member's catalogued size, which its data may not outgrow
        (MemberOutgrewCatalog); None: a backup without member rows.
        """
        opened: list[tuple[int, bool]] = []

        def create(dir_fd: int, entry: bytes) -> None:
            opened.append(new_file(dir_fd, entry))

        try:
            parts = member_parts(name)
            if not parts:
                raise Refused("a file without a name")
            limit = size_of(catalogued_as or name) if size_of is not None else None
            placed = self._place(parts, create)
        except Refused as exc:
            self.refuse(name, str(exc))
            return None
        if placed is None:
            return None
        dir_fd, final, temp = placed
        fd, unnamed = opened[-1]
        return FileSink(self, parts, fd, dir_fd, temp, final, stat.S_IMODE(mode), mtime_ns, owner, limit,
                        unnamed=unnamed)

    def _note_written(self, where: Parts) -> None:
        self.written_count += 1
        if len(self._first_written) < FIRST_WRITTEN_KEPT:
            self._first_written.append(where)

    def file_restored(self, parts: Parts, final: bytes) -> None:
        self.stats.files += 1
        self._note_written(parts[:-1] + (final,))
        if self._remembers(parts):
            self._restored[parts] = parts[:-1] + (final,)

    def symlink(self, name: str | bytes, target: str | bytes, mtime_ns: int, owner: Owner | None = None) -> None:
        link_target = os.fsencode(target)

        def create(dir_fd: int, entry: bytes) -> None:
            os.symlink(link_target, entry, dir_fd=dir_fd)

        try:
            parts = member_parts(name)
            if not parts or not link_target or b"\0" in link_target:
                raise Refused("a symbolic link without a name or target")
            placed = self._place(parts, create)
        except Refused as exc:
            self.refuse(name, str(exc))
            return
        if placed is None:
            return
        dir_fd, final, temp = placed
        if self.restore_owners and owner is not None:
            os.chown(temp or final, *owner.ids(), dir_fd=dir_fd, follow_symlinks=False)
        os.utime(temp or final, ns=(mtime_ns, mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
        if temp is not None:
            os.rename(temp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        self.stats.symlinks += 1

    def hardlink(self, name: str | bytes, target_member: str | bytes) -> None:
        """A hard link to a member restored earlier in this run (never to anything else)."""
        try:
            parts = member_parts(name)
            source = self._restored.get(member_parts(target_member))
            if not parts:
                raise Refused("a hard link without a name")
            if source is None:
                raise Refused(f"hard link to {os.fsdecode(target_member)}, which this restore did not write")
            source_dir = self._open_dir(source[:-1], create=False)

            def create(dir_fd: int, entry: bytes) -> None:
                os.link(source[-1], entry, src_dir_fd=source_dir, dst_dir_fd=dir_fd, follow_symlinks=False)

            placed = self._place(parts, create)
        except Refused as exc:
            self.refuse(name, str(exc))
            return
        if placed is None:
            return
        dir_fd, final, temp = placed
        if temp is not None:
            os.rename(temp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        self.stats.hardlinks += 1
        self._note_written(parts[:-1] + (final,))
        if self._remembers(parts):
            self._restored[parts] = parts[:-1] + (final,)

    def alias(self, member: str | bytes, written_as: str | bytes) -> None:
        """``member``'s data went to ``written_as`` (a hard link restored without its first name)."""
        where = self._restored.get(member_parts(written_as))
        if where is not None:
            self._restored[member_parts(member)] = where

    def remove_created_folders(self) -> None:
        """Remove the folders this restore made that are still empty, deepest first (a failed restore that
        wrote nothing leaves nothing behind; a folder that holds anything stays)."""
        self._close_dir_fds()
        for parts in sorted(self._created, key=len, reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(b"/".join(parts), dir_fd=self.root_fd)

    def written(self) -> list[str]:
        """The first paths written (files and hard links, under the target), in the order they were written;
        ``written_count`` counts them all."""
        return [member_text(parts) for parts in self._first_written]

    def was_restored(self, name: str | bytes) -> bool:
        try:
            return member_parts(name) in self._restored
        except Refused:
            return False

    def was_skipped(self, name: str | bytes) -> bool:
        try:
            return member_parts(name) in self._skipped
        except Refused:
            return False

    # -- the end --------------------------------------------------------------------------------------
    def finish(self) -> None:
        """Folders' modes and mtimes, deepest first (writing inside a folder changes its mtime)."""
        try:
            for parts, mode, mtime_ns, owner in sorted(self._dirs, key=lambda d: len(d[0]), reverse=True):
                try:
                    fd = self._open_dir(parts, create=False)
                except Refused:
                    continue
                if self.restore_owners and owner is not None:
                    os.fchown(fd, *owner.ids())
                os.fchmod(fd, mode)
                os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            self.close()

    def close(self) -> None:
        self._close_dir_fds()
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

