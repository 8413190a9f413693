"""Project definitions: storing, changing and removing them, shared by the CLI and the web forms.

What makes a spec valid is decided in ``project_checks.py``; every write here stores only a checked spec.
"""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import select

from . import audit, keys, retention
from .errors import N_, ConflictError, ProjectNotFound, ValidationError
from .extensions import db
from .jobs import queue
from .models import Project
from .notify.targets import forget_project as forget_notification_targets
from .paths import display, is_text
from .project_checks import KEEP_FIELDS, ProjectSpec, validate
from .schedule import cron


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
    project.read_limit_bytes_s = spec.read_limit_bytes_s
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
        job_timeout_s=project.job_timeout_s, max_age_h=project.max_age_h,
        read_limit_bytes_s=project.read_limit_bytes_s, schedule_cron=project.schedule_cron,
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
        "read_limit_bytes_s": project.read_limit_bytes_s,  # None: no limit
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
