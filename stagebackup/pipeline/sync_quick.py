"""Sync, scan stage: the quick check that a mirror is already exactly its source.

Most sync runs find nothing to do. The planner (``sync_plan``) finds that out too, but it writes a plan and a
catalog row per entry, and finalize then records tens of thousands of catalog rows identical to the previous
run's. This check lists the source and the mirror at the same time, each with ``find | sort`` (``listing``:
C programs, so the ``lstat`` calls of the two trees run on two cores at C speed, as rsync's sender and
generator do), and compares the two sorted listings byte for byte. Any difference at all sends the run to the
planner, which handles and logs it: a new, changed, missing or extra entry, another mode, mtime (to the
nanosecond) or owner, a special file, a directory find could not read, a leftover temporary file.

When nothing differs it returns the listing's digest, which equals the digest recorded with the planner's
catalog (``listing.CatalogDigest``) exactly when that catalog still describes the source. If it is the digest
the previous run recorded, the job refers to that catalog instead of writing it again.

Only for projects without include/exclude rules: with rules, which entries count is the planner's business.
A source holding the data or cache directory, which the planner skips, always differs from its mirror here
(its listing has entries the mirror lacks), so it goes to the planner too.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable

from . import listing
from .sync_plan import Root, is_temp_name


class _Differs(Exception):
    """Something in the mirror is not what the source is: the planner must run."""


class _Listing:
    """``find TOP … | sort -z -o WORKDIR/TAG.records``, and the symlink pairs in ``WORKDIR/TAG.links``."""

    def __init__(self, top: bytes, follow_top: bool, owners: bool, workdir: str, tag: str):
        self.records_path = os.path.join(workdir, f"{tag}.records")
        self.links_path = os.path.join(workdir, f"{tag}.links")
        self.processes: list[subprocess.Popen] = []
        find = subprocess.Popen(listing.find_command(top, follow_top, owners, self.links_path),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=listing.C_LOCALE)
        self.processes.append(find)
        try:
            self.processes.append(subprocess.Popen(
                listing.sort_command(workdir) + ["-o", self.records_path], stdin=find.stdout,
                stderr=subprocess.DEVNULL, env=listing.C_LOCALE,
            ))
        except OSError:
            self.stop()
            raise
        finally:
            find.stdout.close()  # sort holds the read end now

    def links(self) -> list[tuple[bytes, bytes]]:
        with open(self.links_path, "rb") as links:
            return listing.link_pairs(links.read())

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        for path in (self.records_path, self.links_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def unchanged_digest(roots: list[Root], dest: bytes, workdir: str, checkpoint: Callable[[], None]) -> str | None:
    """The listing digest when every root's mirror is exactly its source; None at the first difference."""
    try:
        if any(is_temp_name(name) for name in os.listdir(dest)):  # a crashed run's leftovers: the planner cleans
            return None
        owners = listing.owners_kept()
        return listing.combine([_check_root(root, owners, workdir, checkpoint) for root in roots])
    except (_Differs, OSError, ValueError):  # ValueError: a links file cut short
        return None


def _check_root(root: Root, owners: bool, workdir: str, checkpoint: Callable[[], None]) -> str:
    source = mirror = None
    try:
        source = _Listing(root.src, True, owners, workdir, "source")
        mirror = _Listing(root.dest, False, owners, workdir, "mirror")
        if not listing.wait_all(source.processes + mirror.processes, checkpoint):
            raise _Differs  # a tree find could not list completely (or no such mirror)
        records = hashlib.sha256()
        with open(source.records_path, "rb") as ours, open(mirror.records_path, "rb") as theirs:
            while chunk := ours.read(listing.CHUNK):
                if theirs.read(len(chunk)) != chunk:
                    raise _Differs
                records.update(chunk)
            if theirs.read(1):
                raise _Differs
        links = source.links()
        if links != mirror.links():
            raise _Differs
        return listing.tree_digest(records, links)
    finally:
        for side in (source, mirror):
            if side is not None:
                side.stop()
