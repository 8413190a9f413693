"""Where the server may read and write: one decision for project validation, the explorer, restore and the worker.

StageBackup's own folders (the data directory with the database and the keys, the cache, the virtual tapes
and the restore roots) are never a source nor a destination; a source that contains one skips it during the
scan. Every check compares real paths (symbolic links resolved), so a destination reached through a link
into its source is seen for what it is. Operators may confine sources, destinations and the storage
explorer to configured roots (``STAGEBACKUP_SOURCE_ROOTS``, ``STAGEBACKUP_DEST_ROOTS``,
``STAGEBACKUP_BROWSE_ROOTS``); empty means anywhere but StageBackup's own folders.

The worker asks again when a job starts: paths change between saving a project and running it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app

from .errors import N_, ValidationError
from .paths import display, is_within


class PathRefused(ValidationError):
    """A path the guard rails refuse (the message says which rule and which folder)."""

    template = None  # free-form: each raise site passes its N_ template


def real(path: str) -> str:
    """The absolute path with every symbolic link resolved (what the kernel will actually use)."""
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


@dataclass(frozen=True)
class Policy:
    data_dir: str
    cache_dir: str
    vtape_dir: str
    restore_roots: tuple[str, ...]
    source_roots: tuple[str, ...] = ()
    dest_roots: tuple[str, ...] = ()
    browse_roots: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Mapping) -> Policy:
        def roots(key: str) -> tuple[str, ...]:
            return tuple(real(r) for r in config.get(key) or ())

        return cls(real(config["DATA_DIR"]), real(config["CACHE_DIR"]), real(config["VTAPE_DIR"]),
                   roots("RESTORE_ROOTS"), roots("SOURCE_ROOTS"), roots("DEST_ROOTS"), roots("BROWSE_ROOTS"))

    def own_dirs(self) -> list[tuple[str, str]]:
        """(what, real path) of every folder that belongs to StageBackup itself."""
        return [("data directory", self.data_dir), ("cache", self.cache_dir), ("virtual-tape folder", self.vtape_dir),
                *(("restore root", root) for root in self.restore_roots)]

    def skip_dirs(self) -> dict[str, str]:
        """Folders a scan passes over, with the reason shown in the job log."""
        return {path: f"StageBackup's own {what}" for what, path in self.own_dirs()}


def current() -> Policy:
    return Policy.from_config(current_app.config)


def _own_dir_holding(path: str, policy: Policy) -> tuple[str, str] | None:
    return next(((what, own) for what, own in policy.own_dirs() if is_within(path, own)), None)


def _confine(path: str, roots: tuple[str, ...], setting: str, field: str, kind: str) -> None:
    if roots and not any(is_within(path, root) for root in roots):
        raise PathRefused(N_("%(kind)s %(path)s is outside the allowed roots (%(roots)s; see %(setting)s)"),
                          field=field, kind=kind, path=display(path), roots=", ".join(map(display, roots)),
                          setting=setting)


def _check_placement(raw: str, path: str, policy: Policy, template: str, roots: tuple[str, ...], setting: str,
                     field: str, kind: str) -> None:
    """``path`` (the real path of ``raw``) is outside StageBackup's own folders and inside ``roots`` when set;
    ``template`` names the own folder that holds it (placeholders ``path``, ``what``, ``dir``)."""
    own = _own_dir_holding(path, policy)
    if own is not None:
        raise PathRefused(template, field=field, path=display(raw), what=own[0], dir=display(own[1]))
    _confine(path, roots, setting, field, kind)


def check_sources(sources: list[str], policy: Policy) -> None:
    """No source is (or lies inside) StageBackup's own folders, none overlaps another, all are confined."""
    seen: list[str] = []
    for source in sources:
        path = real(source)
        _check_placement(source, path, policy, N_("source %(path)s is inside StageBackup's own %(what)s %(dir)s"),
                         policy.source_roots, "STAGEBACKUP_SOURCE_ROOTS", "sources", "source")
        for other in seen:
            if is_within(path, other) or is_within(other, path):
                raise PathRefused(N_("sources overlap: %(a)s and %(b)s"), field="sources", a=display(source),
                                  b=display(other))
        seen.append(path)


def check_destination(dest: str, sources: list[str], policy: Policy, *, mirror: bool) -> None:
    """A destination folder is outside StageBackup's folders and outside every source (a backup would archive
    itself); a mirror (``mirror``) also holds no source and none of StageBackup's folders, which it could
    overwrite or delete."""
    path = real(dest)
    _check_placement(dest, path, policy, N_("destination %(path)s is inside StageBackup's own %(what)s %(dir)s"),
                     policy.dest_roots, "STAGEBACKUP_DEST_ROOTS", "dest_dir", "destination")
    for source in sources:
        if is_within(path, real(source)):
            raise PathRefused(
                N_("destination %(path)s is inside source %(source)s: the backup would archive itself"),
                field="dest_dir", path=display(dest), source=display(source),
            )
        if mirror and is_within(real(source), path):
            raise PathRefused(
                N_("source %(source)s is inside destination %(path)s: a mirror cannot contain its source"),
                field="dest_dir", source=display(source), path=display(dest),
            )
    if mirror:
        for what, own_dir in policy.own_dirs():
            if is_within(own_dir, path):
                raise PathRefused(N_("destination %(path)s holds StageBackup's own %(what)s %(dir)s: a mirror "
                                     "could overwrite or delete it"), field="dest_dir", path=display(dest),
                                  what=what, dir=display(own_dir))


def check_project_paths(sources: list[str], dest_dir: str | None, policy: Policy, *, mirror: bool) -> None:
    """What a job checks when it starts, since paths change after a project is saved (``dest_dir`` None: tape)."""
    check_sources(sources, policy)
    if dest_dir is not None:
        check_destination(dest_dir, sources, policy, mirror=mirror)


def check_restore_target(raw: str, policy: Policy) -> str:
    """The real path of a restore target: inside a restore root, outside the cache and the virtual tapes, and
    not holding the data directory (a restore must not replace the database or the keys)."""
    if not os.path.isabs(raw):  # else resolved against the server's working directory
        raise PathRefused(N_("%(path)s is not an absolute path (it must start with /)"), field="target",
                          path=display(raw))
    path = real(raw)
    if not any(is_within(path, root) for root in policy.restore_roots):
        raise PathRefused(
            N_("restore target %(path)s is outside the allowed restore roots (%(roots)s; see "
               "STAGEBACKUP_RESTORE_ROOTS)"),
            field="target", path=display(path), roots=", ".join(map(display, policy.restore_roots)),
        )
    for what, own_dir in (("data directory", policy.data_dir), ("cache", policy.cache_dir),
                          ("virtual-tape folder", policy.vtape_dir)):
        if is_within(own_dir, path) or (what != "data directory" and is_within(path, own_dir)):
            raise PathRefused(N_("restore target %(path)s overlaps StageBackup's own %(what)s %(dir)s"),
                              field="target", path=display(path), what=what, dir=display(own_dir))
    return path


def check_browse(path: str, policy: Policy) -> None:
    """The storage explorer lists only inside the browse roots (when set), never StageBackup's data directory
    (restore roots excepted: restored files may be looked at)."""
    resolved = real(path)
    _confine(resolved, policy.browse_roots, "STAGEBACKUP_BROWSE_ROOTS", "path", "folder")
    if any(is_within(resolved, root) for root in policy.restore_roots):
        return
    own = _own_dir_holding(resolved, policy)
    if own is not None:
        raise PathRefused(N_("%(path)s is StageBackup's own %(what)s: it is not browsable"), field="path",
                          path=display(path), what=own[0])


def browse_start(policy: Policy) -> str:
    """Where the explorer opens: the first browse root, else ``/``."""
    return policy.browse_roots[0] if policy.browse_roots else "/"
