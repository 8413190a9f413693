"""The backup page, its HTMX fragments (job card, the live poll), run now and cancel, and the seed's JSON
API. Views stay thin: parse, call a service, render. Poll endpoints make a bounded number of indexed
queries and render the very partials the page includes. The log's routes are in log_views.py.
"""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import func, select

from ..auth.accounts import web_actor
from ..auth.roles import ADMIN, OPERATOR, VIEWER, requires
from ..errors import AlreadyQueued, JobNotFound, StageBackupError
from ..extensions import db
from ..httpguard import query_int
from ..jobs import queue
from ..jobs.summary import job_dict, stages_for
from ..models import ACTIVE_STATUSES, Job, Project
from . import bp, cards, health, live, log_views, logs
from .forms import RunForm
from .messages import form_error
from .web import redirect_back


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


@bp.get("/")
@requires(VIEWER)
def root():
    return redirect(url_for("backup.index"))


def _tails(active: list[cards.JobCard]) -> dict[int, logs.LogPage]:
    return logs.tails([card.job.id for card in active])


@bp.get("/backup")
@requires(VIEWER)
def index():
    active = cards.active_cards()
    regions = live.load()
    return render_template(
        "backup/index.html",
        projects=db.session.scalars(select(Project).order_by(Project.name)).all(),
        cards=active,
        tails=_tails(active),
        live=regions,
        live_digest=live.digest(live.render_regions(regions)),
        newest_job_id=db.session.scalar(select(func.max(Job.id))) or 0,
        run_form=RunForm(),
        health=health.load(),
    )


@bp.get("/backup/jobs/<int:job_id>/card")
@requires(VIEWER)
def job_card(job_id: int):
    """The poll endpoint: exactly the partial the page includes. A page showing the job's log sends the log's
    cursor with it (``after``, and ``tag`` if filtered: ``hx-include``); the lines after it come back out of
    band, so an open job costs one request a second, not one for the card and one for the log.

    The card (the job's status) is read before the lines: a card seen finished stops polling, and by then
    the job has written its last line, so the lines in the same answer are the last ones.
    """
    card = cards.load_card(job_id)
    if card is None:
        abort(404)
    log_poll = log_views.poll_lines(job_id) if "after" in request.args else None
    return render_template("backup/_card_poll.html", card=card, log_poll=log_poll)


@bp.get("/backup/live")
@requires(VIEWER)
def live_poll():
    """The page's one poller: cards of jobs queued since ``after`` (by the scheduler, the CLI, another
    browser) and, out of band, the drive card, each project's last backup and the recently finished jobs.
    204 when there is no new card and the regions still hash to ``v``, the digest the page shows.
    """
    after = query_int("after", 0)
    fresh = cards.active_cards(after)
    regions, version = live.shared_rendering()
    if not fresh and version == request.args.get("v"):
        return "", 204
    return render_template(
        "backup/_live.html", cards=fresh, tails=_tails(fresh), regions=Markup(regions), live_digest=version,
        newest_job_id=fresh[-1].job.id if fresh else after,
    )


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
    return _enqueue_run(project, form.remark.data)


def _enqueue_run(project: Project, remark: str | None, params: dict | None = None, details: dict | None = None):
    """Queue a run of ``project`` from a page, audit it, and go back to the index with a message."""
    name = project.name
    try:
        job = queue.enqueue(project, actor=web_actor(), trigger="manual", remark=remark, params=params,
                            audit_details=details)
    except AlreadyQueued as exc:
        flash(_("项目 %(name)s 已有一个排队中的任务 (#%(id)s)，它会先运行。",
                name=name, id=exc.values["job_id"]), "warning")
        return _back_to_index()
    except StageBackupError as exc:
        flash(form_error(exc).message, "danger")
        return _back_to_index()
    job_id = job.id
    flash(_("已为 %(name)s 排队任务 #%(id)s。", id=job_id, name=name), "success")
    return _back_to_index(f"job-{job_id}")


@bp.post("/backup/jobs/<int:job_id>/confirm-mass-delete")
@requires(ADMIN)  # a mass delete is an admin's decision, run by run
def confirm_mass_delete(job_id: int):
    """Run again a mirror that stopped before deleting more than the allowed share: this run may delete."""
    job = db.session.get(Job, job_id)
    if job is None or job.error_class != "MassDeleteRefused" or not job.project_id:
        abort(404)
    project = db.session.get(Project, job.project_id) or abort(404)
    return _enqueue_run(project, _("确认大量删除（任务 #%(id)s）", id=job_id), params={"allow_mass_delete": True},
                        details={"allow_mass_delete": True, "confirms_job": job_id})


@bp.post("/backup/jobs/<int:job_id>/cancel")
@requires(OPERATOR)
def cancel_job(job_id: int):
    try:
        queue.request_cancel(job_id, actor=web_actor())
    except JobNotFound:
        abort(404)
    except StageBackupError as exc:  # it had already finished: say so, the card shows how
        if not is_htmx():
            flash(form_error(exc).message, "warning")
            return redirect_back()
        return render_template("backup/_card.html", card=cards.load_card(job_id))
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
