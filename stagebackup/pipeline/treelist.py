"""List a directory tree with lstat, in ``scan.walk``'s order: sync's quick check (``sync_quick``).

The check walks the source with ``walk`` in the worker and the mirror with this module run as its own
process (``python -I -S treelist.py [--owners] [--name NAME] TOP``), which writes the ``fingerprint`` of
each directory's list to stdout (pickled), then ``("end", catalog digest)`` — or ``("error", why)`` and
stops. The ``lstat`` calls of the two trees then run on two cores, as rsync's sender and generator do.
Standard library only, so the process starts in milliseconds.

A directory's list holds ``(name, st_mode, size, mtime_ns, uid, gid, link target)`` for each entry, sorted
by name: size is 0 for directories (it depends on the file system, not the content), owners are 0 unless
``--owners`` (only root's mirror keeps them), the link target is None except for symlinks.

With ``--name``, the lister also computes the ``CatalogDigest`` of the catalog the sync planner would
record for this tree mirrored as NAME: the same rows in the same order (a directory, its files and links
sorted by name, then its subdirectories depth first), so equal listings give the planner's digest.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys

KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink"}
ROW = b"%s\0%s\0%d\0%r\0%d\0%s\0\n"  # one catalog row: path, kind, size, mtime (float), st_mode, link target
_S_IFREG, _S_IFLNK, _S_IFDIR = stat.S_IFREG, stat.S_IFLNK, stat.S_IFDIR
_ROW_KINDS = {stat.S_IFREG: b"file", stat.S_IFLNK: b"symlink"}


class CatalogDigest:
    """SHA-256 over a mirror's catalog rows ``(path, kind, size, mtime, st_mode, link target)``, in order."""

    def __init__(self):
        self._sha = hashlib.sha256()

    def add(self, row: tuple) -> None:
        path, kind, size, mtime, mode, target = row
        self._sha.update(ROW % (path, kind.encode(), size, mtime, mode, target or b""))

    def update(self, encoded: bytes) -> None:
        """Rows already encoded with ``ROW`` (the lister's fast path)."""
        self._sha.update(encoded)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class MirrorDigest:
    """The digest of a whole mirror's catalog: one ``CatalogDigest`` per source (rows come source by source,
    each under its own top-level name), combined. ``treelist`` computes each source's part on its own."""

    def __init__(self):
        self._parts: list[str] = []
        self._top: bytes | None = None
        self._current: CatalogDigest | None = None

    def add(self, row: tuple) -> None:
        top = row[0].split(b"/", 1)[0]
        if top != self._top:
            self._close()
            self._top, self._current = top, CatalogDigest()
        self._current.add(row)

    def _close(self) -> None:
        if self._current is not None:
            self._parts.append(self._current.hexdigest())
            self._current = None

    def hexdigest(self) -> str:
        self._close()
        return combine(self._parts)


def combine(parts: list[str]) -> str:
    """One digest for the sources' digests, in order (a single source's is its own)."""
    if len(parts) == 1:
        return parts[0]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def walk(top: bytes, owners: bool, name: bytes | None, emit) -> str | None:
    """``emit`` each directory's list; returns the catalog digest (with ``name``)."""
    digest = CatalogDigest() if name is not None else None
    st = os.stat(top)  # the source root is followed, as scan.walk does
    stack = [(top, name, st.st_mode, st.st_mtime_ns)]
    while stack:
        directory, path, mode, mtime_ns = stack.pop()
        if digest is not None:
            digest.add((path, "dir", 0, mtime_ns / 1e9, mode, None))
        listing, subdirs, rows = [], [], []
        append = listing.append
        with os.scandir(directory) as it:
            for child in it:  # the hot loop (once per entry): locals only
                st = child.stat(follow_symlinks=False)
                mode = st.st_mode
                fmt = mode & 0o170000
                name = child.name
                target = os.readlink(child.path) if fmt == _S_IFLNK else None
                size = st.st_size if fmt == _S_IFREG else 0
                append((name, mode, size, st.st_mtime_ns, st.st_uid if owners else 0, st.st_gid if owners else 0,
                        target))
                if fmt == _S_IFDIR:
                    subdirs.append((name, mode, st.st_mtime_ns))
                elif digest is not None and fmt in _ROW_KINDS:
                    rows.append(ROW % (path + b"/" + name, _ROW_KINDS[fmt], size, st.st_mtime_ns / 1e9, mode,
                                       target or b""))
        # Sorted by name (names are unique): plain tuple and bytes comparisons, no key function. Encoded rows
        # sort as their names do: each starts with "path/name" and a NUL.
        listing.sort()
        if rows:
            rows.sort()
            digest.update(b"".join(rows))
        subdirs.sort()
        emit(listing)
        stack.extend((directory + b"/" + name, path + b"/" + name if digest else None, mode, mtime_ns)
                     for name, mode, mtime_ns in reversed(subdirs))
    return digest.hexdigest() if digest is not None else None


def fingerprint(listing: list) -> bytes:
    """What the lister sends for a directory: a hash of its list (the same code makes the same bytes)."""
    return hashlib.blake2b(pickle.dumps(listing, protocol=pickle.HIGHEST_PROTOCOL), digest_size=16).digest()


def main(argv: list[bytes]) -> None:
    owners, name = False, None
    while argv[0].startswith(b"--"):
        option = argv.pop(0)
        if option == b"--owners":
            owners = True
        elif option == b"--name":
            name = argv.pop(0)
    out = sys.stdout.buffer

    def emit(item) -> None:
        pickle.dump(item, out, protocol=pickle.HIGHEST_PROTOCOL)

    try:
        digest = walk(argv[0], owners, name, lambda listing: emit(fingerprint(listing)))
    except OSError as exc:
        emit(("error", f"{exc.strerror}: {os.fsdecode(exc.filename or b'')}"))
    else:
        emit(("end", digest))
    out.flush()


if __name__ == "__main__":
    main([os.fsencode(arg) for arg in sys.argv[1:]])
