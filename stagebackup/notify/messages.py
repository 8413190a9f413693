"""Each outbox row as a title and body in its target's language, with a link to the job's page."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, url_for
from flask_babel import force_locale, gettext

from ..backup.i18n import job_error
from ..errors import N_, fill
from ..extensions import db
from ..models import Job, Notification, NotificationTarget, Project
from .events import FAILED_EVENT, STALE_EVENT, SUCCEEDED_EVENT, WAITING_EVENT, WARNING_EVENT


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    kind: str  # an Apprise NotifyType value (info, success, warning, failure)


TITLES = {
    FAILED_EVENT: N_("[StageBackup] %(project)s: job #%(id)s failed"),
    WARNING_EVENT: N_("[StageBackup] %(project)s: job #%(id)s ended with warnings"),
    SUCCEEDED_EVENT: N_("[StageBackup] %(project)s: job #%(id)s succeeded"),
    WAITING_EVENT: N_("[StageBackup] %(project)s: job #%(id)s is waiting for a tape"),
    STALE_EVENT: N_("[StageBackup] %(project)s: no good backup for %(hours)s hours"),
    "test": N_("[StageBackup] test message"),
}
BODIES = {
    FAILED_EVENT: N_("Job #%(id)s (%(kind)s) of project %(project)s failed: %(reason)s"),
    WARNING_EVENT: N_("Job #%(id)s (%(kind)s) of project %(project)s ended with warnings: %(reason)s"),
    SUCCEEDED_EVENT: N_("Job #%(id)s (%(kind)s) of project %(project)s succeeded."),
    WAITING_EVENT: N_("Job #%(id)s of project %(project)s is waiting for a tape of pool %(pool)s in drive "
                      "%(drive)s: %(prompt)s"),
    STALE_EVENT: N_("Project %(project)s has had no good backup for more than %(hours)s hours (last good "
                    "backup: %(last)s)."),
    "test": N_("This is a test message from StageBackup to target %(target)s."),
}
KINDS = {FAILED_EVENT: "failure", WARNING_EVENT: "warning", WAITING_EVENT: "warning", SUCCEEDED_EVENT: "success",
         STALE_EVENT: "failure", "test": "info"}
OPEN_JOB = N_("Open the job: %(url)s")
OPEN_PAGE = N_("Open StageBackup: %(url)s")


def link(endpoint: str, **values) -> str:
    """An absolute link under ``STAGEBACKUP_BASE_URL`` (the address people open the pages at)."""
    base = str(current_app.config["BASE_URL"]).rstrip("/")
    with current_app.test_request_context(base_url=base + "/"):
        return url_for(endpoint, _external=True, **values)


def _values(row: Notification, target: NotificationTarget) -> dict:
    details = row.details or {}
    job = db.session.get(Job, row.job_id) if row.job_id else None
    project = db.session.get(Project, row.project_id) if row.project_id else None
    values = {"target": target.name, "hours": details.get("hours", "?"),
              "last": details.get("last") or gettext("never"), "prompt": details.get("prompt") or ""}
    if project is not None:
        values.update(project=project.name, pool=project.dest_pool or "default")
    if job is not None:
        values.update(id=job.id, kind=job.kind, project=job.project_name, drive=job.drive or "?",
                      reason=job_error(job) or job.status)
    return values


def render(row: Notification, target: NotificationTarget) -> Message:
    with force_locale(target.language):
        values = _values(row, target)
        body = fill(gettext(BODIES[row.event]), values)
        if row.job_id:
            body += "\n\n" + fill(gettext(OPEN_JOB), {"url": link("backup.job_detail", job_id=row.job_id)})
        else:
            body += "\n\n" + fill(gettext(OPEN_PAGE), {"url": link("backup.index")})
        return Message(fill(gettext(TITLES[row.event]), values), body, KINDS[row.event])


def test_message(target: NotificationTarget) -> Message:
    return render(Notification(event="test", target_id=target.id), target)
