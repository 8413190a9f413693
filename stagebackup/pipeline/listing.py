"""The tree listing sync's quick check compares (``sync_quick``), and its digest.

A tree is listed by GNU ``find`` and sorted by ``sort -z`` in the C locale: both are C programs on every
Debian system (findutils and coreutils are essential packages), they list 50,000 entries in a third of a
second with bounded memory, and the two trees' listings run on two cores. One record per entry::

    TYPE PERMS SIZE MTIME [UID GID] PATH \\0

TYPE is find's ``%y`` letter (f, d, l, or a special file's), PERMS ``%m`` (octal, with the set-id and
sticky bits), SIZE the file's size (0 for everything else: a directory's size depends on the file system,
not its content), MTIME ``%T@`` (seconds, a dot, nine digits of nanoseconds and a zero; the seconds are
floored, so 1 ns before the epoch is ``-1.9999999990``), UID and GID only when owners are kept (the worker
runs as root), PATH relative to the tree's top (empty for the top). PATH is last and nothing but a NUL can
end it, so a record means one entry only. Symlink targets go to a second file as ``PATH\\0TARGET\\0``
pairs, which Python sorts.

``CatalogDigest`` makes the same records from the rows the sync planner puts in a mirror's catalog, so
the digest of a source's listing equals the digest the last run recorded exactly when that catalog is
still the source's.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable
from typing import BinaryIO

C_LOCALE = {**os.environ, "LC_ALL": "C"}  # byte order for sort, no translated messages, raw names
CHUNK = 1 << 20
SORT_MEMORY = "64M"  # above that, sort spills to its temporary directory: memory stays bounded
TYPE_LETTERS = {"file": b"f", "dir": b"d", "symlink": b"l"}


def owners_kept() -> bool:
    """Only root's mirror keeps owners (the planner chowns as root), so only then are they compared."""
    return os.geteuid() == 0


def find_command(top: bytes, follow_top: bool, owners: bool, links_path: str) -> list:
    owner = " %U %G" if owners else ""
    return [
        "find", "-H" if follow_top else "-P", top,  # a source's top is followed, as scan.walk does
        "(", "-type", "f", "-printf", f"f %m %s %T@{owner} %P\\0", ")", "-o",
        "(", "-type", "l", "-printf", f"l %m 0 %T@{owner} %P\\0", "-fprintf", links_path, "%P\\0%l\\0", ")", "-o",
        "-printf", f"%y %m 0 %T@{owner} %P\\0",
    ]


def sort_command(tmpdir: str) -> list:
    return ["sort", "-z", "-S", SORT_MEMORY, "-T", tmpdir]


def mtime_text(mtime_ns: int) -> bytes:
    """find's ``%T@``: floored seconds, a dot, the nanoseconds and a zero."""
    seconds, nanoseconds = divmod(mtime_ns, 1_000_000_000)
    return b"%d.%09d0" % (seconds, nanoseconds)


def record(rel: bytes, kind: str, size: int, mtime_ns: int, mode: int, owner: tuple[int, int] | None) -> bytes:
    """The listing's record of one catalog row, as find prints it."""
    owner_text = b" %d %d" % owner if owner is not None else b""
    return b"%s %o %d %s%s %s\0" % (TYPE_LETTERS[kind], mode & 0o7777, size if kind == "file" else 0,
                                    mtime_text(mtime_ns), owner_text, rel)


def link_pairs(raw: bytes) -> list[tuple[bytes, bytes]]:
    """find's ``PATH\\0TARGET\\0`` pairs, sorted."""
    fields = iter(raw.split(b"\0")[:-1])
    return sorted(zip(fields, fields, strict=True))


def tree_digest(records_sha: hashlib._Hash, links: list[tuple[bytes, bytes]]) -> str:
    """One tree's digest: its sorted records' SHA-256, then its sorted symlink pairs'."""
    links_sha = hashlib.sha256(b"".join(path + b"\0" + target + b"\0" for path, target in links))
    return hashlib.sha256(f"{records_sha.hexdigest()} {links_sha.hexdigest()}".encode()).hexdigest()


def combine(parts: list[str]) -> str:
    """One digest for the sources' digests, in order (a single source's is its own)."""
    if len(parts) == 1:
        return parts[0]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def wait_all(processes: list[subprocess.Popen], checkpoint: Callable[[], None]) -> bool:
    """Wait for every process, calling ``checkpoint`` (heartbeat, cancel) twice a second; all exited 0?"""
    for process in processes:
        while True:
            try:
                process.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                checkpoint()
    return all(process.returncode == 0 for process in processes)


def hash_into(stream: BinaryIO, sha: hashlib._Hash) -> None:
    while chunk := stream.read(CHUNK):
        sha.update(chunk)


class CatalogDigest:
    """The digest of one tree's listing, made from the catalog rows of its mirror ``(path, kind, size,
    mtime_ns, st_mode, link target, uid, gid)``, paths starting with the mirror's name. The records are
    sorted by a ``sort -z`` process as they come, so memory does not grow with the tree."""

    def __init__(self, name: bytes, owners: bool, tmpdir: str):
        self._prefix = len(name) + 1
        self._owners = owners
        self._links: list[tuple[bytes, bytes]] = []
        self._failed = False
        try:
            self._sort = subprocess.Popen(sort_command(tmpdir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, env=C_LOCALE)
        except OSError:
            self._sort, self._failed = None, True

    def add(self, row: tuple) -> None:
        path, kind, size, mtime_ns, mode, target, uid, gid = row
        rel = path[self._prefix:]
        if kind == "symlink":
            self._links.append((rel, target))
        if self._failed:
            return
        try:  # sort reads to the end before it writes anything: this never waits on our reading
            self._sort.stdin.write(record(rel, kind, size, mtime_ns, mode, (uid, gid) if self._owners else None))
        except OSError:
            self._failed = True

    def hexdigest(self) -> str:
        """The digest; "" if sort failed (the next run then cannot reuse this catalog, nothing worse)."""
        if self._sort is None:
            return ""
        sha = hashlib.sha256()
        try:
            self._sort.stdin.close()
            hash_into(self._sort.stdout, sha)
        except OSError:
            self._failed = True
        finally:
            self._sort.stdout.close()
            self._sort.wait()
        if self._failed or self._sort.returncode != 0:
            return ""
        return tree_digest(sha, sorted(self._links))

    def abandon(self) -> None:
        """The catalog was not recorded: stop the sort process."""
        if self._sort is None:
            return
        self._sort.kill()
        self._sort.wait()
        for pipe in (self._sort.stdin, self._sort.stdout):
            try:
                pipe.close()
            except OSError:
                pass


class MirrorDigest:
    """The digest of a whole mirror's catalog: one ``CatalogDigest`` per source (rows come source by source,
    each under its own top-level name), combined. Recorded as the sync archive's ``sha256``."""

    def __init__(self, owners: bool, tmpdir: str | None = None):
        self._owners = owners
        self._tmpdir = tmpdir or tempfile.gettempdir()
        self._parts: list[str] = []
        self._top: bytes | None = None
        self._current: CatalogDigest | None = None

    def add(self, row: tuple) -> None:
        top = row[0].split(b"/", 1)[0]
        if top != self._top:
            self._close()
            self._top, self._current = top, CatalogDigest(top, self._owners, self._tmpdir)
        self._current.add(row)

    def _close(self) -> None:
        if self._current is not None:
            self._parts.append(self._current.hexdigest())
            self._current = None

    def hexdigest(self) -> str:
        self._close()
        if not self._parts or "" in self._parts:
            return ""
        return combine(self._parts)

    def abandon(self) -> None:
        """The catalog was not recorded: stop the sort process."""
        if self._current is not None:
            self._current.abandon()
            self._current = None
