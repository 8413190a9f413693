"""Restoring to the original location: members under one folder written relative to that folder.

Archive members are named by their original absolute path without the leading ``/`` (``srv/projects/a.ai``).
To put them back where they were, the restore's target is the folder they share (``/srv/projects``, which
the restore roots must allow) and each member is written under it by the rest of its name. ``Rebased`` is
the extractor seen through that prefix: every name the readers hand it is rebased, and one outside the
prefix is refused, never written elsewhere.
"""

from __future__ import annotations

import os

from .extract import SafeExtractor
from .member_names import Refused


def common_folder(paths: list[str]) -> str:
    """The deepest folder holding every path (``""``: the root)."""
    parents = [p.strip("/").rpartition("/")[0] for p in paths]
    return os.path.commonpath(parents) if all(parents) else ""


def prefix_of(folder: str) -> str:
    return folder.strip("/") + "/" if folder.strip("/") else ""


def rebase_names(names: set[str] | None, folder: str) -> set[str] | None:
    """The catalog names of hard links and their sources as the extractor sees them under ``folder``."""
    if names is None:
        return None
    prefix = prefix_of(folder)
    return {name[len(prefix):] for name in names if name.startswith(prefix)}


class Rebased:
    def __init__(self, extractor: SafeExtractor, prefix: str):
        self._ex = extractor
        self._prefix = prefix_of(prefix)

    def __getattr__(self, attr: str):  # stats, finish, close, written…: the extractor's own
        return getattr(self._ex, attr)

    def _name(self, name: str | bytes) -> str:
        text = os.fsdecode(name).lstrip("/")
        if not text.startswith(self._prefix):
            raise Refused(f"outside the original location /{self._prefix.rstrip('/')}")
        return text[len(self._prefix):]

    def _or_refuse(self, name, write) -> object:
        try:
            rebased = self._name(name)
        except Refused as exc:
            self._ex.refuse(name, str(exc))
            return None
        return write(rebased)

    def begin_file(self, name, mode, mtime_ns, owner=None, *, size_of=None, catalogued_as=None):
        return self._or_refuse(name, lambda rebased: self._ex.begin_file(
            rebased, mode, mtime_ns, owner, size_of=size_of, catalogued_as=catalogued_as or os.fsdecode(name)))

    def directory(self, name, mode, mtime_ns, owner=None) -> None:
        self._or_refuse(name, lambda rebased: self._ex.directory(rebased, mode, mtime_ns, owner))

    def symlink(self, name, target, mtime_ns, owner=None) -> None:
        self._or_refuse(name, lambda rebased: self._ex.symlink(rebased, target, mtime_ns, owner))

    def hardlink(self, name, target_member) -> None:
        try:
            source = self._name(target_member)
        except Refused as exc:
            self._ex.refuse(name, f"hard link to {os.fsdecode(target_member)}: {exc}")
            return
        self._or_refuse(name, lambda rebased: self._ex.hardlink(rebased, source))

    def alias(self, member, written_as) -> None:
        try:
            self._ex.alias(self._name(member), self._name(written_as))
        except Refused:
            pass  # outside the location: nothing was written for it

    def was_restored(self, name) -> bool:
        return self._known(name, self._ex.was_restored)

    def was_skipped(self, name) -> bool:
        return self._known(name, self._ex.was_skipped)

    def _known(self, name, ask) -> bool:
        try:
            return ask(self._name(name))
        except Refused:
            return False
