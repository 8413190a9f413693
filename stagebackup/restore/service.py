"""Asking for a restore or a verify: validation shared by the CLI and the web form, then one queued job.

Bad input raises ValidationError with a one-line message and queues nothing. A password typed for this
restore is stored as a secret (encrypted with the master key) for the worker, which deletes it when the
job ends; it never appears in params, logs or the audit trail.
"""

from __future__ import annotations

import os

from flask import current_app
from sqlalchemy import func, select

from .. import keys, pathpolicy
from ..catalog import catalog_job
from ..errors import N_, BackupNotFound, ValidationError
from ..extensions import db
from ..jobs import queue
from ..models import SUCCEEDED, WARNING, Archive, Job, Project
from ..paths import display
from ..retention import count_expired
from .extract import CONFLICT_POLICIES, SKIP
from .rebase import common_folder
from .selection import WILDCARDS, Selection

RESTORABLE_STATUSES = (SUCCEEDED, WARNING)


def resolve_target(raw: str) -> str:
    """The real absolute path of a restore target, as the path policy allows it (inside a restore root)."""
    if not raw or not raw.strip() or "\0" in raw:
        raise ValidationError(N_("the restore target folder is empty"), field="target")
    path = pathpolicy.check_restore_target(raw.strip(), pathpolicy.current())
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ValidationError(N_("restore target %(path)s exists and is not a folder"), field="target",
                              path=display(path))
    return path


def source_backup(job_id: int) -> tuple[Job, Project | None]:
    """A finished backup job that can be restored, and its project (None when it was removed, or for a backup
    rebuilt from tape: restore needs only the backup's own rows — archives, members, tape pieces, and the
    archive's own stored password or one typed for the job)."""
    job = db.session.get(Job, job_id)
    if job is None or job.kind != "backup":
        raise BackupNotFound(job_id)
    if job.status not in RESTORABLE_STATUSES:
        raise ValidationError(N_("backup job %(id)s is %(status)s: only finished backups (succeeded or warning) "
                                 "can be restored"), id=job_id, status=job.status)
    if count_expired(job_id):
        raise ValidationError(N_("backup job %(id)s was pruned by its project's retention policy: its archives are "
                                 "gone"), id=job_id)
    project = db.session.get(Project, job.project_id) if job.project_id else None
    count = db.session.scalar(select(func.count(Archive.id)).where(Archive.job_id == job_id))
    if not count:
        raise ValidationError(N_("backup job %(id)s recorded no archives: there is nothing to restore"), id=job_id)
    return job, project


def _needs_password(job_id: int) -> bool:
    """An encrypted archive without a stored key."""
    return db.session.scalar(
        select(func.count(Archive.id)).where(
            Archive.job_id == job_id, Archive.encrypted.is_(True), Archive.secret_id.is_(None)
        )
    ) > 0


def _drive_for(source: Job, project: Project | None) -> str | None:
    """The drive a restore reads tape with (held for the job, so it never runs beside a backup on that drive):
    the project's, else the one the backup was written with, else the first configured drive (a backup
    rebuilt from tape with ``flask tape scan``)."""
    on_tape = db.session.scalar(
        select(func.count(Archive.id)).where(Archive.job_id == source.id, Archive.location_kind == "tape")
    )
    if not on_tape:
        return None
    if project is not None and project.dest_drive:
        return project.dest_drive
    return source.drive or next(iter(current_app.config["DRIVES"] or {}), None)


def _typed_secret(source_job_id: int, password: str | None) -> int | None:
    """The secret row of a password typed for this job (None: none typed); refuses an empty one, and none
    at all when the backup is encrypted without a stored password."""
    if password is None:
        if _needs_password(source_job_id):
            raise ValidationError(N_("backup job %(id)s is encrypted and has no stored password: type it"),
                                  field="password", id=source_job_id)
        return None
    if not password:
        raise ValidationError(N_("the password is empty"), field="password")
    return keys.store(password).id


def request_restore(
    source_job_id: int, *, target: str, paths: list[str] | None = None, conflict: str = SKIP,
    password: str | None = None, trigger: str = "manual", actor: str = "web", remark: str | None = None,
    restore_owners: bool = False, to_original: bool = False,
) -> Job:
    source, project = source_backup(source_job_id)
    if conflict not in CONFLICT_POLICIES:
        raise ValidationError(N_("unknown conflict policy '%(value)s': choose %(choices)s"), field="conflict",
                              value=conflict, choices=", ".join(CONFLICT_POLICIES))
    selection = Selection(paths)  # validates the patterns
    original = original_folder(source.id, selection) if to_original else None
    target_path = resolve_target("/" + original if original is not None else target)
    secret_id = _typed_secret(source_job_id, password)
    params = {"target": target_path, "paths": selection.patterns, "conflict": conflict,
              "restore_owners": bool(restore_owners)}
    if original is not None:
        params["original"] = original
    if secret_id is not None:
        params["secret_id"] = secret_id
    return queue.enqueue(
        project, actor=actor, kind="restore", trigger=trigger, remark=remark, source_job_id=source.id,
        project_name=source.project_name, params=params, drive=_drive_for(source, project), audit_details={
            "source_job": source.id, "target": display(target_path), "paths": len(selection.patterns),
            "conflict": conflict, "original_location": original is not None, "typed_password": secret_id is not None,
            "restore_owners": bool(restore_owners),
        },
    )


def original_folder(source_job_id: int, selection: Selection) -> str:
    """The folder the chosen paths share, where a restore to the original location writes them (catalog names
    of archives are original absolute paths without the leading ``/``; a mirror's are relative to it)."""
    if selection.everything or any(WILDCARDS.search(p) for p in selection.patterns):
        raise ValidationError(N_("choose the files or folders to put back where they were (no wildcards)"),
                              field="target")
    mirror = db.session.scalar(select(func.count(Archive.id)).where(Archive.job_id == catalog_job(source_job_id),
                                                                    Archive.format == "sync"))
    if mirror:
        raise ValidationError(N_("a mirror's paths are relative to the mirror: restore it to a folder"),
                              field="target")
    return common_folder(selection.patterns)


def request_verify(source_job_id: int, *, password: str | None = None, trigger: str = "manual",
                   actor: str = "web") -> Job:
    source, project = source_backup(source_job_id)
    secret_id = _typed_secret(source_job_id, password)
    params: dict = {}
    if secret_id is not None:
        params["secret_id"] = secret_id
    return queue.enqueue(
        project, actor=actor, kind="verify", trigger=trigger, source_job_id=source.id, params=params,
        project_name=source.project_name, drive=_drive_for(source, project), audit_details={"source_job": source.id},
    )

