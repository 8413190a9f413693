"""Who did what, with the operator's remark: append-only.

Each row names the project it concerns (``project``: a copy of the name, so the audit page filters by project
after the project is removed or its jobs are pruned). Callers name it, or put it in ``details["project"]``;
otherwise an event about a job (target ``job:N``) takes the job's project, and ``project.*`` and
``schedule.*`` events, whose target is the project's name, take their target.
"""

from __future__ import annotations

from .extensions import db
from .models import AuditEvent, Job

PROJECT_TARGET_ACTIONS = ("project.", "schedule.")  # action prefixes whose target is a project's name


def record(actor: str, action: str, target: str | None = None, *, remark: str | None = None,
           details: dict | None = None, project: str | None = None) -> None:
    db.session.add(AuditEvent(actor=actor, action=action, target=target, remark=remark, details=details,
                              project=project or _project_of(action, target, details)))


def _project_of(action: str, target: str | None, details: dict | None) -> str | None:
    named = (details or {}).get("project")
    if isinstance(named, str):
        return named
    if action.startswith(PROJECT_TARGET_ACTIONS):
        return target
    if target and target.startswith("job:") and target[4:].isdigit():
        job = db.session.get(Job, int(target[4:]))
        return job.project_name if job is not None else None
    return None
