"""What a project may be: the spec an operator asks for and the checks that make it a valid one.

Kept apart from ``projects.py`` (storing projects) because the form, the CLI and the import file all check a
spec the same way before anything is written; ``validate`` reports every problem found, not just the first.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from flask import current_app

from . import pathpolicy
from .dbtypes import DB_INT_MAX
from .errors import N_, ErrorCollector, ValidationError
from .paths import display, display_name, is_text
from .pipeline.scan import Rules
from .pipeline.sync import mirror_names
from .schedule import cron

MODES = ("archive", "sync")
FORMATS = ("tgz", "7z")
STRATEGIES = ("overwrite", "incremental")
LEVEL_RANGE = {"tgz": (0, 9), "7z": (0, 9)}
NAME_MAX = 200
MIB = 1024 * 1024
GROUP_MIN_BYTES = MIB
TIMEOUT_MAX_MIN = 30 * 24 * 60  # a month: longer than any single backup should run
MAX_AGE_MAX_H = 10 * 366 * 24  # ten years
KEEP_MAX = 100_000  # retention counts and days: beyond any real policy, within an INTEGER column
# A read limit above ~100 GiB/s is no limit on any disk array one job reads; kept within a BIGINT column.
READ_LIMIT_MAX_MIB = 100_000
KEEP_FIELDS = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within_days")


@dataclass
class ProjectSpec:
    """What an operator asks for. ``password`` None keeps a stored one on update; it is never read back."""

    name: str
    sources: list[str]
    dest_dir: str | None = None
    includes: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    archive_format: str = "tgz"
    level: int = 6
    mode: str = "archive"
    password: str | None = None
    encrypted: bool | None = None  # None: encrypted exactly when a password is given
    sync_strategy: str = "overwrite"
    group_max_bytes: int | None = None
    dest_drive: str | None = None
    dest_pool: str | None = None
    verify_after_write: bool = True
    catalog_copy_to_tape: bool = False  # tape: a catalog copy after each session
    job_timeout_s: int | None = None  # a job running longer ends failed; None: no limit
    read_limit_bytes_s: int | None = None  # jobs read the sources at most this fast; None or 0: no limit
    max_age_h: int | None = None  # unscheduled: the health panel's age limit; None: HEALTH_MAX_AGE_H
    schedule_cron: str | None = None  # a 5-field cron expression; None: run only when asked
    schedule_timezone: str | None = None  # an IANA name; None: the server's time zone
    schedule_enabled: bool = True
    # Retention (stagebackup/retention.py): None or 0 = that rule is off; all off = keep every backup.
    keep_last: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within_days: int | None = None


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError(N_("the project name is empty"), field="name")
    if not is_text(name):
        raise ValidationError(N_("the project name is not valid UTF-8"), field="name")
    if len(name) > NAME_MAX:
        raise ValidationError(N_("the project name is longer than %(n)s characters"), field="name", n=NAME_MAX)
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValidationError(N_("the project name contains control characters"), field="name")
    return name


def _absolute(raw: str, field: str) -> str:
    """A server path as typed must be absolute: a relative one would be resolved against the server's working
    directory, which the operator neither sees nor chose."""
    if not os.path.isabs(raw):
        raise ValidationError(N_("%(path)s is not an absolute path (it must start with /)"), field=field,
                              path=display(raw))
    return os.path.normpath(raw)


def _check_sources(sources: list[str]) -> list[str]:
    if not sources:
        raise ValidationError(N_("at least one source is needed (--source PATH)"), field="sources")
    result: list[str] = []
    for raw in sources:
        if not raw or "\0" in raw:
            raise ValidationError(N_("a source path is empty"), field="sources")
        path = _absolute(raw, "sources")
        if not os.path.exists(path):
            raise ValidationError(N_("source %(path)s does not exist"), field="sources", path=display(path))
        if not (os.path.isdir(path) or os.path.isfile(path)):
            raise ValidationError(N_("source %(path)s is not a directory or regular file"), field="sources",
                                  path=display(path))
        if path in result:
            continue
        result.append(path)
    pathpolicy.check_sources(result, pathpolicy.current())
    return result


def _check_dest_dir(dest: str, sources: list[str], *, mirror: bool) -> str:
    if not dest or "\0" in dest:
        raise ValidationError(N_("a destination directory is needed (--dest-dir PATH)"), field="dest_dir")
    path = _absolute(dest, "dest_dir")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValidationError(N_("destination %(path)s exists and is not a directory"), field="dest_dir",
                              path=display(path))
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValidationError(N_("destination %(path)s is not writable"), field="dest_dir", path=display(path))
    pathpolicy.check_destination(path, sources, pathpolicy.current(), mirror=mirror)
    return path


def _check_choice(value: str, choices: tuple[str, ...], template: str, field: str) -> str:
    """``template`` has the placeholders ``value`` and ``choices``."""
    if value not in choices:
        raise ValidationError(template, field=field, value=value, choices=", ".join(choices))
    return value


def _check_destination(spec: ProjectSpec, sources: list[str]) -> tuple[str | None, str | None]:
    """(dest_dir, dest_drive): exactly one of them."""
    if spec.dest_drive and spec.dest_dir:
        raise ValidationError(N_("choose one destination: --dest-dir or --dest-tape, not both"), field="dest_kind")
    if spec.dest_drive:
        if spec.mode == "sync":
            raise ValidationError(N_("sync mode mirrors files into a directory; it cannot write to tape"),
                                  field="dest_kind")
        drives = current_app.config["DRIVES"]
        if spec.dest_drive not in drives:
            known = ", ".join(sorted(drives)) or "none configured"
            raise ValidationError(N_("unknown tape drive '%(drive)s' (configured drives: %(known)s)"),
                                  field="dest_drive", drive=spec.dest_drive, known=known)
        return None, spec.dest_drive
    return _check_dest_dir(spec.dest_dir or "", sources, mirror=spec.mode == "sync"), None


def _check_schedule(spec: ProjectSpec) -> tuple[str | None, str | None]:
    """(cron expression, time zone), or (None, None) without a schedule; the zone defaults to the server's."""
    if spec.schedule_cron is None:
        return None, None
    tz = (spec.schedule_timezone or "").strip() or cron.server_timezone()
    return cron.check(spec.schedule_cron, tz), tz


def _check_retention(spec: ProjectSpec) -> dict[str, int | None]:
    """The retention rules, 0 as None; a sync mirror has no history to keep, so it takes none."""
    keep: dict[str, int | None] = {}
    for name in KEEP_FIELDS:
        value = getattr(spec, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= KEEP_MAX):
            raise ValidationError(N_("a retention count must be between 0 (off) and %(n)s"), field=name, n=KEEP_MAX)
        keep[name] = value or None
    if spec.mode == "sync" and any(keep.values()):
        raise ValidationError(N_("a sync mirror has no backups to keep or prune: retention needs archive mode"),
                              field=next(name for name, value in keep.items() if value))
    return keep


def _check_limits(spec: ProjectSpec) -> None:
    low, high = LEVEL_RANGE[spec.archive_format]
    if not isinstance(spec.level, int) or not low <= spec.level <= high:
        raise ValidationError(N_("compression level must be between %(low)s and %(high)s"), field="level",
                              low=low, high=high)


def _check_group_size(size: int | None) -> None:
    if size is not None and size < GROUP_MIN_BYTES:
        raise ValidationError(N_("the archive group size must be at least %(mib)s MiB (%(n)s bytes)"),
                              field="group_max_mib", mib=GROUP_MIN_BYTES // MIB, n=GROUP_MIN_BYTES)
    if size is not None and size > DB_INT_MAX:
        raise ValidationError(N_("the archive group size must be at most %(n)s bytes"), field="group_max_mib",
                              n=DB_INT_MAX)


def _check_timeout(timeout_s: int | None) -> None:
    if timeout_s is not None and not 60 <= timeout_s <= TIMEOUT_MAX_MIN * 60:
        raise ValidationError(N_("the job time limit must be between 1 and %(n)s minutes"), field="job_timeout_min",
                              n=TIMEOUT_MAX_MIN)


def read_limit_from_mib(text: str | None) -> int | None:
    """A read limit as typed, in MiB/s ("20", "0.5"; empty: none), in bytes per second; raises ValidationError.

    Rounded up, so a small positive limit never becomes 0 (no limit) by rounding."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        mib = Decimal(text)
    except InvalidOperation:
        mib = None
    if mib is None or not mib.is_finite():
        raise ValidationError(N_("the read limit '%(value)s' is not a number of MiB/s (for example 20 or 0.5)"),
                              field="read_limit_mib", value=display_name(text[:40]))
    if not 0 <= mib <= READ_LIMIT_MAX_MIB:
        raise _read_limit_range_error()
    return int((mib * MIB).to_integral_value(rounding=ROUND_CEILING))


def read_limit_as_mib(limit: int) -> str:
    """Bytes per second as the form shows them: the shortest MiB/s figure that reads back as the same limit."""
    for places in range(7):
        text = f"{limit / MIB:.{places}f}"
        if read_limit_from_mib(text) == limit:
            return text
    return format((Decimal(limit) / MIB).normalize(), "f")  # exact: MIB is a power of two


def _read_limit_range_error() -> ValidationError:
    return ValidationError(N_("the read limit must be between 0 (no limit) and %(n)s MiB/s (%(bytes)s bytes per "
                              "second)"), field="read_limit_mib", n=READ_LIMIT_MAX_MIB, bytes=READ_LIMIT_MAX_MIB * MIB)


def _check_read_limit(limit: int | None) -> int | None:
    """Bytes per second; 0 is stored as None (no limit)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or not 0 <= limit <= READ_LIMIT_MAX_MIB * MIB):
        raise _read_limit_range_error()
    return limit or None


def _check_max_age(hours: int | None) -> None:
    if hours is not None and not 1 <= hours <= MAX_AGE_MAX_H:
        raise ValidationError(N_("the backup age limit must be between 1 and %(n)s hours"), field="max_age_h",
                              n=MAX_AGE_MAX_H)


def _check_password(spec: ProjectSpec, mode: str) -> bool:
    """Whether the project is encrypted."""
    if spec.password is not None and not spec.password:
        raise ValidationError(N_("the password is empty"), field="password")
    if spec.password is not None and "\n" in spec.password:
        raise ValidationError(N_("the password contains a line break"), field="password")
    encrypted = spec.encrypted if spec.encrypted is not None else spec.password is not None
    if encrypted and mode == "sync":
        raise ValidationError(N_("sync mode copies files as they are; encryption needs archive mode"),
                              field="encrypted")
    return encrypted


def _check_pool(pool: str | None) -> None:
    if pool is not None and not (pool.strip() and len(pool) <= 64):
        raise ValidationError(N_("the tape pool name must be 1 to 64 characters"), field="dest_pool")


def validate(spec: ProjectSpec) -> ProjectSpec:
    """The checked spec; raises one ValidationError, or a ValidationErrors holding every one found."""
    check = ErrorCollector()
    name = check(_check_name, spec.name)
    mode = check(_check_choice, spec.mode, MODES, N_("unknown mode '%(value)s' (one of: %(choices)s)"), "mode")
    archive_format = check(_check_choice, spec.archive_format, FORMATS,
                           N_("unknown archive format '%(value)s' (one of: %(choices)s)"), "archive_format")
    check(_check_choice, spec.sync_strategy, STRATEGIES,
          N_("unknown sync strategy '%(value)s' (one of: %(choices)s)"), "sync_strategy")
    if archive_format:
        check(_check_limits, spec)
    check(_check_group_size, spec.group_max_bytes)
    check(_check_timeout, spec.job_timeout_s)
    check(_check_max_age, spec.max_age_h)
    read_limit = check(_check_read_limit, spec.read_limit_bytes_s)
    encrypted = check(_check_password, spec, mode)
    sources = check(_check_sources, spec.sources, fallback=[])
    dest_dir, dest_drive = check(_check_destination, spec, sources, fallback=(None, None))
    if mode == "sync" and sources:
        check(mirror_names, sources)  # a mirror goes to DEST/<source name>: names must differ
    check(_check_pool, spec.dest_pool)
    check(Rules, spec.includes, spec.excludes)  # raises on a bad pattern
    schedule_cron, schedule_timezone = check(_check_schedule, spec, fallback=(None, None))
    keep = check(_check_retention, spec, fallback={})
    check.raise_any()
    return ProjectSpec(
        name=name, sources=sources, dest_dir=dest_dir, includes=list(spec.includes), excludes=list(spec.excludes),
        archive_format=spec.archive_format, level=spec.level, mode=mode, password=spec.password,
        encrypted=encrypted, sync_strategy=spec.sync_strategy,
        group_max_bytes=spec.group_max_bytes, dest_drive=dest_drive,
        dest_pool=(spec.dest_pool.strip() if spec.dest_pool else None) if dest_drive else None,
        verify_after_write=bool(spec.verify_after_write), job_timeout_s=spec.job_timeout_s,
        catalog_copy_to_tape=bool(spec.catalog_copy_to_tape) and dest_drive is not None,
        max_age_h=spec.max_age_h, read_limit_bytes_s=read_limit,
        # Without a schedule "enabled" means nothing: kept True, so a schedule added later runs.
        schedule_cron=schedule_cron, schedule_timezone=schedule_timezone,
        schedule_enabled=bool(spec.schedule_enabled) or schedule_cron is None, **keep,
    )
