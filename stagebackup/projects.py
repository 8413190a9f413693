"""Project definitions: validation and persistence shared by the CLI and the web forms."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field, fields

from flask import current_app
from sqlalchemy import select

from . import audit, keys, pathpolicy, retention
from .dbtypes import DB_INT_MAX
from .errors import N_, ConflictError, ErrorCollector, ProjectNotFound, ValidationError
from .extensions import db
from .jobs import queue
from .models import Project
from .notify.targets import forget_project as forget_notification_targets
from .paths import display, is_text
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
        max_age_h=spec.max_age_h,
        # Without a schedule "enabled" means nothing: kept True, so a schedule added later runs.
        schedule_cron=schedule_cron, schedule_timezone=schedule_timezone,
        schedule_enabled=bool(spec.schedule_enabled) or schedule_cron is None, **keep,
    )


def _apply(project: Project, spec: ProjectSpec) -> None:
    """Copy a validated spec onto a row; a new password becomes a new secret (old archives keep theirs)."""
    if spec.encrypted and spec.password is None and project.secret_id is None:
        raise ValidationError(N_("encryption needs a password (--password-stdin)"), field="password")
    if spec.encrypted and spec.password is not None:
        project.secret_id = keys.store(spec.password).id
    if not spec.encrypted:
        project.secret_id = None
    project.name, project.sources = spec.name, spec.sources
    project.includes, project.excludes = spec.includes, spec.excludes
    project.mode, project.archive_format, project.compression_level = spec.mode, spec.archive_format, spec.level
    project.encrypted = bool(spec.encrypted)
    project.sync_strategy = spec.sync_strategy
    project.allow_mass_delete = False  # no standing permission: a mass delete is confirmed run by run
    project.group_max_bytes = spec.group_max_bytes
    project.dest_kind = "tape" if spec.dest_drive else "directory"
    project.dest_path, project.dest_drive, project.dest_pool = spec.dest_dir, spec.dest_drive, spec.dest_pool
    project.verify_after_write = spec.verify_after_write
    project.catalog_copy_to_tape = spec.catalog_copy_to_tape
    project.job_timeout_s, project.max_age_h = spec.job_timeout_s, spec.max_age_h
    project.schedule_cron, project.schedule_timezone = spec.schedule_cron, spec.schedule_timezone
    project.schedule_enabled = spec.schedule_enabled
    for name in KEEP_FIELDS:
        setattr(project, name, getattr(spec, name))


def spec_of(project: Project) -> ProjectSpec:
    """A stored project as a spec (password None: keep the stored one), to change a few fields of."""
    return ProjectSpec(
        name=project.name, sources=list(project.sources), dest_dir=project.dest_path,
        includes=list(project.includes or []), excludes=list(project.excludes or []),
        archive_format=project.archive_format, level=project.compression_level, mode=project.mode,
        encrypted=project.encrypted, sync_strategy=project.sync_strategy,
        group_max_bytes=project.group_max_bytes,
        dest_drive=project.dest_drive, dest_pool=project.dest_pool, verify_after_write=project.verify_after_write,
        catalog_copy_to_tape=project.catalog_copy_to_tape,
        job_timeout_s=project.job_timeout_s, max_age_h=project.max_age_h, schedule_cron=project.schedule_cron,
        schedule_timezone=project.schedule_timezone, schedule_enabled=project.schedule_enabled,
        **{name: getattr(project, name) for name in KEEP_FIELDS},
    )


def get_by_name(name: str) -> Project:
    if not is_text(name):
        raise ProjectNotFound(display(name))
    project = db.session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise ProjectNotFound(name)
    return project


def _check_name_free(name: str) -> None:
    if db.session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise ConflictError(N_("a project named '%(name)s' already exists"), field="name", name=name)


def create(spec: ProjectSpec, *, actor: str) -> Project:
    project = add(validate(spec), actor=actor)
    db.session.commit()
    return project


def update(name: str, spec: ProjectSpec, *, actor: str) -> Project:
    """Change a project; ``spec.password`` None keeps the stored password."""
    project = get_by_name(name)
    replace(project, validate(spec), actor=actor)
    db.session.commit()
    return project


def add(spec: ProjectSpec, *, actor: str, details: dict | None = None) -> Project:
    """Insert a validated spec and its audit row, uncommitted (the caller owns the transaction)."""
    _check_name_free(spec.name)
    project = Project()
    _apply(project, spec)
    db.session.add(project)
    db.session.flush()
    audit.record(actor, "project.create", project.name, details=details)
    return project


def replace(project: Project, spec: ProjectSpec, *, actor: str, details: dict | None = None) -> None:
    """Overwrite a project with a validated spec, uncommitted; the audit row names each changed setting
    with its old and new value (a new password only as "changed", never its value)."""
    if spec.name != project.name:
        _check_name_free(spec.name)
    before, secret_before, guarded = settings(project), project.secret_id, _guarded_settings(project)
    _apply(project, spec)
    _audit_guarded_changes(actor, project, guarded)
    after = settings(project)
    changes = {key: [_shown(before[key]), _shown(after[key])] for key in SETTINGS if before[key] != after[key]}
    if project.secret_id != secret_before:
        changes["password"] = "changed"
    audit.record(actor, "project.update", project.name, details={"changes": changes, **(details or {})})
def _guarded_settings(project: Project) -> dict:
    """What an attacker changes first: where the archives go and whether they are encrypted."""
    return {"encrypted": bool(project.encrypted), "dest_kind": project.dest_kind,
            "dest_path": display(project.dest_path) if project.dest_path else None,
            "dest_drive": project.dest_drive, "dest_pool": project.dest_pool}


def _audit_guarded_changes(actor: str, project: Project, before: dict) -> None:
    """Turning encryption off and moving the destination each get their own audit event, old and new values."""
    after = _guarded_settings(project)
    if before["encrypted"] and not after["encrypted"]:
        audit.record(actor, "project.encryption_off", project.name, details={"old": True, "new": False})
    destination = ("dest_kind", "dest_path", "dest_drive", "dest_pool")
    if any(before[key] != after[key] for key in destination):
        audit.record(actor, "project.destination", project.name, details={
            "old": {key: before[key] for key in destination}, "new": {key: after[key] for key in destination}})


def remove(name: str, *, actor: str, delete_backups: bool = False) -> None:
    """Remove the project; its backups stay restorable unless ``delete_backups`` (retention.delete_backups)."""
    project = get_by_name(name)
    active = queue.active_job_for_project(project.id)
    if active is not None:
        raise ConflictError(N_("project '%(name)s' has job #%(id)s %(status)s; cancel it first"),
                            name=name, id=active.id, status=active.status)
    details = {"backups": "kept"}
    if delete_backups:
        details = {"backups": "deleted", **retention.delete_backups(project)}
        project = get_by_name(name)  # the deletion committed as it went
    # History keeps the jobs (they carry the project's name); they just lose the link.
    queue.detach_project(project.id)
    forget_notification_targets(project.id)
    db.session.delete(project)
    audit.record(actor, "project.remove", name, details=details)
    db.session.commit()


#: Every setting of a project, by its ProjectSpec name (the export format and the audit diff use these).
SETTINGS = tuple(f.name for f in fields(ProjectSpec) if f.name != "password")


def settings(project: Project) -> dict:
    """The project's settings as ProjectSpec values (paths as stored: surrogate-escaped strings); no secrets."""
    spec = spec_of(project)
    return {key: getattr(spec, key) for key in SETTINGS}


def _shown(value):
    """A setting as the audit log shows it: paths that are not UTF-8 in their display form."""
    if isinstance(value, list):
        return [_shown(item) for item in value]
    return display(value) if isinstance(value, str) else value


def to_dict(project: Project) -> dict:
    return {
        "id": project.id,
        "name": project.name,
        "mode": project.mode,
        "sources": [display(s) for s in project.sources],
        "includes": project.includes,
        "excludes": project.excludes,
        "format": project.archive_format,
        "level": project.compression_level,
        "encrypted": project.encrypted,  # never the password
        "strategy": project.sync_strategy,
        "group_max_bytes": project.group_max_bytes,
        "job_timeout_min": project.job_timeout_s // 60 if project.job_timeout_s else None,
        "max_age_h": project.max_age_h,
        "destination": (
            {"kind": "tape", "drive": project.dest_drive, "pool": project.dest_pool,
             "verify": project.verify_after_write, "catalog_copy": project.catalog_copy_to_tape}
            if project.dest_kind == "tape" else {"kind": "directory", "path": display(project.dest_path or "")}
        ),
        "schedule": schedule_dict(project),
        "retention": {name: getattr(project, name) for name in KEEP_FIELDS if getattr(project, name)} or None,
        "created_at": project.created_at.isoformat() + "Z",
    }


def next_runs(project: Project) -> list:
    """The next run times of an enabled schedule, in its time zone ([] without one)."""
    if not (project.schedule_cron and project.schedule_enabled):
        return []
    try:
        return cron.next_runs(project.schedule_cron, project.schedule_timezone or cron.server_timezone())
    except ValidationError:  # a row written by hand or by an older version: shown, never run
        return []


def schedule_dict(project: Project) -> dict | None:
    if not project.schedule_cron:
        return None
    return {"cron": project.schedule_cron, "timezone": project.schedule_timezone,
            "enabled": project.schedule_enabled,
            "next_runs": [run.isoformat() for run in next_runs(project)]}
