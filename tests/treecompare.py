"""Snapshot a directory tree (bytes names) so two trees can be compared entry by entry."""

from __future__ import annotations

import hashlib
import os
import stat


def snapshot(root, *, skip_special: bool = True) -> dict[bytes, tuple]:
    """rel path -> (kind, mode bits, size, sha256 or link target, mtime in whole seconds)."""
    broot = os.fsencode(root)
    result: dict[bytes, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(broot):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, broot)
            st = os.lstat(full)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                result[rel] = ("link", None, None, os.readlink(full), None)
            elif stat.S_ISDIR(st.st_mode):
                result[rel] = ("dir", mode, None, None, int(st.st_mtime))
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as fh:
                    digest = hashlib.file_digest(fh, "sha256").hexdigest()
                result[rel] = ("file", mode, st.st_size, digest, int(st.st_mtime))
            elif not skip_special:
                result[rel] = ("special", mode, None, None, None)
    return result


def assert_same_tree(expected_root, actual_root, *, ignore=()) -> None:
    expected = {k: v for k, v in snapshot(expected_root).items() if k not in ignore}
    actual = snapshot(actual_root)
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing, f"missing after restore: {missing[:10]}"
    assert not extra, f"unexpected after restore: {extra[:10]}"
    different = [k for k in expected if expected[k] != actual[k]]
    assert not different, "differ: " + "; ".join(f"{k!r}: {expected[k]} != {actual[k]}" for k in different[:5])
