"""Sync, scan stage: the quick check that a mirror is already exactly its source.

Most sync runs find nothing to do. The planner (``sync_plan``) finds that out too, but it writes a plan and a
catalog row per entry, and finalize then records tens of thousands of catalog rows identical to the previous
run's. This check lists the mirror in a ``treelist`` process and the source here, with the same code (the ``lstat``
calls of the two trees run on two cores, as rsync's sender and generator do), and compares their listings
directory by directory. It gives up at the first difference of any kind: a new, changed, missing or extra entry, another
mode, mtime or owner, a special file, an unreadable directory, a leftover temporary file. The job then runs
the planner as before, which handles and logs all of those.

When nothing differs it returns the digest of the catalog the planner would have recorded (``CatalogDigest``
over the same rows in the same order). If that is the digest the previous run recorded, the catalog has not
changed and the job refers to it instead of writing it again.

Only for projects without include/exclude rules: with rules, which entries count is the planner's business.
"""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys

from . import treelist
from .sync_plan import Root, is_temp_name


class _Differs(Exception):
    """Something in the mirror is not what the source is: the planner must run."""


def unchanged_digest(roots: list[Root], dest: bytes, checkpoint) -> str | None:
    """The catalog digest when every root's mirror is exactly its source; None at the first difference."""
    try:
        if any(is_temp_name(name) for name in os.listdir(dest)):  # a crashed run's leftovers: the planner cleans
            return None
    except OSError:
        return None
    owners = os.geteuid() == 0  # the mirror keeps owners only when run as root, and the planner compares them
    try:
        return treelist.combine([_check_root(root, owners, checkpoint) for root in roots])
    except (_Differs, OSError, EOFError, pickle.UnpicklingError):
        return None


def _same_root(src: os.stat_result, dst: os.stat_result, owners: bool) -> bool:
    return (stat.S_ISDIR(src.st_mode) and src.st_mode == dst.st_mode and src.st_mtime_ns == dst.st_mtime_ns
            and (not owners or (src.st_uid, src.st_gid) == (dst.st_uid, dst.st_gid)))


def _lister(top: bytes, owners: bool, name: bytes | None) -> subprocess.Popen:
    args = [sys.executable, "-I", "-S", treelist.__file__]
    if owners:
        args.append("--owners")
    if name is not None:
        args += ["--name", os.fsdecode(name)]
    return subprocess.Popen(args + [os.fsdecode(top)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _check_root(root: Root, owners: bool, checkpoint) -> str:
    if not _same_root(os.stat(root.src), os.lstat(root.dest), owners):  # the source root is followed
        raise _Differs
    # The lister computes the digest from the mirror's rows: when every listing is equal, they are the source's.
    mirror = _lister(root.dest, owners, root.name)
    count = 0

    def compare(listing: list) -> None:
        nonlocal count
        if pickle.load(mirror.stdout) != treelist.fingerprint(listing):
            raise _Differs
        count += 1
        if not count & 0xFF:
            checkpoint()

    try:
        treelist.walk(root.src, owners, None, compare)  # the source, here, beside the mirror's lister
        end = pickle.load(mirror.stdout)
        if not isinstance(end, tuple) or end[0] != "end":  # the mirror has more directories, or an error
            raise _Differs
        return end[1]
    finally:
        mirror.kill()
        mirror.wait()
        mirror.stdout.close()
