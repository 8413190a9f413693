"""Copy a finished archive into a destination directory, atomically and verified.

The copy is written under a hidden temporary name, fsynced, checked against the SHA-256 computed while
compressing, renamed to its final name and the directory fsynced: a crash leaves either nothing under
the final name or the whole, verified archive.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from ..errors import DestinationError
from .report import Reporter

COPY_CHUNK_BYTES = 1 << 20


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unique_path(directory: str, name: str) -> str:
    """``name`` in ``directory``, with -1, -2… before the extension if it is taken."""
    stem, dot, ext = name.partition(".")
    candidate, n = os.path.join(directory, name), 0
    while os.path.lexists(candidate):
        n += 1
        candidate = os.path.join(directory, f"{stem}-{n}{dot}{ext}")
    return candidate


def copy_to_directory(
    source: str, dest_dir: str, name: str, *, expected_sha256: str, reporter: Reporter,
    register_partial: Callable[[str], None],
) -> str:
    try:
        os.makedirs(dest_dir, exist_ok=True)
    except OSError as exc:
        raise DestinationError(dest_dir, exc.strerror) from exc
    final = unique_path(dest_dir, name)
    temp = os.path.join(dest_dir, f".{os.path.basename(final)}.partial")
    # Both names: until the catalog records the archive, even the renamed file belongs to an unfinished
    # job, and recovery or failure handling deletes it rather than leave an uncatalogued archive behind.
    register_partial(temp)
    register_partial(final)
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as src:
            out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                while chunk := src.read(COPY_CHUNK_BYTES):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view):]
                    digest.update(chunk)
                    reporter.checkpoint()
                os.fsync(out)
            finally:
                os.close(out)
        if digest.hexdigest() != expected_sha256:
            raise DestinationError(dest_dir, "the copy does not match the archive's SHA-256")
        os.chmod(temp, 0o640)
        os.rename(temp, final)
        _fsync_dir(dest_dir)
    except OSError as exc:
        raise DestinationError(dest_dir, exc.strerror or str(exc)) from exc
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
    return final
