"""The backup page, its HTMX fragments (job card, log lines, new jobs), run now and cancel, and the
seed's JSON API. Views stay thin: parse, call a service, render. Poll endpoints make one or two indexed
queries and render the very partial the page includes.
"""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from .. import audit
from ..auth.accounts import web_actor
from ..auth.roles import OPERATOR, VIEWER, requires
from ..errors import AlreadyQueued, JobNotFound, StageBackupError
from ..extensions import db
from ..jobs import queue
from ..jobs.summary import job_dict, stages_for
from ..models import ACTIVE_STATUSES, FINAL_STATUSES, Job, Project
from . import bp, cards, drives, logs
from .forms import RunForm
from .messages import form_error
from .web import redirect_back

RECENT_FINISHED = 10
NEW_JOBS_POLL = "every 5s"


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


@bp.get("/")
@requires(VIEWER)
def root():
    return redirect(url_for("backup.index"))


def _last_jobs_by_project() -> dict[int, Job]:
    latest = select(func.max(Job.id)).where(Job.project_id.is_not(None)).group_by(Job.project_id)
    return {job.project_id: job for job in db.session.scalars(select(Job).where(Job.id.in_(latest)))}


@bp.get("/backup")
@requires(VIEWER)
def index():
    projects = db.session.scalars(select(Project).order_by(Project.name)).all()
    active = cards.active_cards()
    recent = db.session.scalars(
        select(Job).where(Job.status.in_(FINAL_STATUSES)).order_by(Job.id.desc()).limit(RECENT_FINISHED)
    ).all()
    return render_template(
        "backup/index.html",
        projects=projects,
        last_jobs=_last_jobs_by_project(),
        cards=active,
        tails=logs.tails([card.job.id for card in active]),
        recent=recent,
        newest_job_id=db.session.scalar(select(func.max(Job.id))) or 0,
        drive_panel=drives.panel(),
        run_form=RunForm(),
    )


@bp.get("/backup/jobs/<int:job_id>/card")
@requires(VIEWER)
def job_card(job_id: int):
    """The poll endpoint: exactly the partial the page includes."""
    card = cards.load_card(job_id)
    if card is None:
        abort(404)
    return render_template("backup/_card.html", card=card)


@bp.get("/backup/jobs/<int:job_id>/log")
@requires(VIEWER)
def job_log(job_id: int):
    """Lines after ``after`` plus the poller for the next request (out of band).

    The job's status is read before the lines: a job seen finished has written its last line, so the
    poller rendered without a trigger cannot miss one.
    """
    after = request.args.get("after", 0, type=int)
    status = db.session.scalar(select(Job.status).where(Job.id == job_id))
    if status is None:
        abort(404)
    lines = logs.after(job_id, after)
    more = len(lines) >= logs.POLL_MAX_LINES
    polling = status in ACTIVE_STATUSES or more
    if not lines and polling:
        return "", 204  # nothing new: htmx leaves the page alone, the poller keeps its trigger
    return render_template(
        "backup/_log_update.html", job_id=job_id, lines=lines,
        after=lines[-1].id if lines else after, polling=polling,
    )


@bp.get("/backup/jobs/<int:job_id>/log/earlier")
@requires(VIEWER)
def job_log_earlier(job_id: int):
    page = logs.before(job_id, request.args.get("before", 0, type=int))
    return render_template("backup/_log_earlier.html", job_id=job_id, page=page)


@bp.get("/backup/jobs/new")
@requires(VIEWER)
def new_jobs():
    """Cards of jobs queued since the page was rendered (by the scheduler, the CLI, another browser)."""
    after = request.args.get("after", 0, type=int)
    fresh = cards.active_cards(after)
    if not fresh:
        return "", 204
    return render_template(
        "backup/_new_jobs.html", cards=fresh,
        tails=logs.tails([card.job.id for card in fresh]),
        newest_job_id=fresh[-1].job.id, drive_panel=drives.panel(),
    )


@bp.get("/backup/drives")
@requires(VIEWER)
def drive_panel():
    return render_template("backup/_drives.html", drive_panel=drives.panel())


def _back_to_index(anchor: str | None = None):
    """A redirect; for htmx (the rerun button) the same target as an HX-Redirect the browser follows."""
    target = url_for("backup.index", _anchor=anchor)
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target)


@bp.post("/backup/projects/<int:project_id>/run")
@requires(OPERATOR)
def run_project(project_id: int):
    project = db.session.get(Project, project_id) or abort(404)
    form = RunForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(error, "danger")
        return _back_to_index()
    name = project.name
    try:
        job = queue.enqueue(project, trigger="manual", remark=form.remark.data)
    except AlreadyQueued as exc:
        flash(_("项目 %(name)s 已有一个排队中的任务 (#%(id)s)，它会先运行。",
                name=name, id=exc.args[1]), "warning")
        return _back_to_index()
    except StageBackupError as exc:
        flash(form_error(exc).message, "danger")
        return _back_to_index()
    job_id = job.id
    audit.record(web_actor(), "job.run", f"job:{job_id}", remark=job.remark, details={"project": name})
    db.session.commit()
    flash(_("已为 %(name)s 排队任务 #%(id)s。", id=job_id, name=name), "success")
    return _back_to_index(f"job-{job_id}")


@bp.post("/backup/jobs/<int:job_id>/cancel")
@requires(OPERATOR)
def cancel_job(job_id: int):
    try:
        status = queue.request_cancel(job_id)
    except JobNotFound:
        abort(404)
    audit.record(web_actor(), "job.cancel", f"job:{job_id}", details={"status": status})
    db.session.commit()
    if is_htmx():
        return render_template("backup/_card.html", card=cards.load_card(job_id))
    flash(_("已请求取消任务 #%(id)s。", id=job_id), "info")
    return redirect_back()


@bp.get("/api/backup/running-tasks")
@requires(VIEWER)
def running_tasks():
    jobs = db.session.scalars(select(Job).where(Job.status.in_(ACTIVE_STATUSES)).order_by(Job.id)).all()
    stages = stages_for(jobs)
    return jsonify({"tasks": [job_dict(job, stages[job.id]) for job in jobs]})
