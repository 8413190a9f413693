"""Split a scan's manifest into archive groups of at most ``max_bytes`` of file data each.

Every group becomes one archive, and each archive must extract on its own with its directories' metadata:
so a group that starts inside a directory tree first repeats the entries of the directories above its
first member (the manifest is in pre-order, parents first). A file larger than the limit gets a group of
its own; ``max_bytes`` 0 means one group. Group manifests are files in the job's cache directory, written
in one pass over the manifest, so nothing proportional to the tree is kept in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from .scan import DIR, Entry, read_manifest, write_manifest


@dataclass(frozen=True)
class Group:
    seq: int  # 1-based: the archive's _partNNN
    manifest: str  # path of this group's manifest file
    entries: int
    input_bytes: int

    def read(self):
        """The group's entries, streamed (a context manager yielding an iterator)."""
        return _ManifestReader(self.manifest)


class _ManifestReader:
    def __init__(self, path: str):
        self.path = path

    def __enter__(self):
        self.fh = open(self.path, "rb")
        return read_manifest(self.fh)

    def __exit__(self, *exc):
        self.fh.close()


def _is_under(path: bytes, directory: bytes) -> bool:
    return path.startswith(directory.rstrip(b"/") + b"/") or directory == b"/"


def split(entries: Iterable[Entry], max_bytes: int, workdir: str) -> list[Group]:
    groups: list[Group] = []
    open_dirs: list[Entry] = []  # the directory chain above the current entry
    out = None
    count = size = 0

    def close() -> None:
        nonlocal out
        if out is not None:
            out.close()
            groups.append(Group(len(groups) + 1, out.name, count, size))
            out = None

    def start() -> None:
        nonlocal out, count, size
        out = open(os.path.join(workdir, f"group-{len(groups) + 1:03d}"), "wb")
        count, size = write_manifest(open_dirs, out)  # the new archive's own copy of the parents

    for entry in entries:
        while open_dirs and not _is_under(entry.path, open_dirs[-1].path):
            open_dirs.pop()
        if out is None:
            start()
        elif max_bytes and size > 0 and size + entry.size > max_bytes:
            close()
            start()
        write_manifest((entry,), out)
        count += 1
        size += entry.size
        if entry.kind == DIR:
            open_dirs.append(entry)
    if out is None:
        start()  # an empty backup still makes one (empty) archive
    close()
    return groups
