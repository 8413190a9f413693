"""History of finished jobs, and one job's page: badges, stage timings, archives, tape files, log."""

from __future__ import annotations

from flask import abort, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from ..auth.roles import VIEWER, requires
from ..catalog_stream import UNFINISHED
from ..extensions import db
from ..httpguard import query_int
from ..models import FINAL_STATUSES, Archive, Job, JobStage
from ..stages import JOB_KINDS, kind_filter
from ..tape.needs import tapes_for_job
from ..tape_models import Tape, TapeFile
from . import bp, cards, log_views
from .forms import RunForm

HISTORY_PAGE_SIZE = 25


@bp.get("/backup/history")
@requires(VIEWER)
def history():
    """Finished jobs, filtered by project, status and kind; an unknown kind is a 400 that says so."""
    project = request.args.get("project", "").strip()
    status = request.args.get("status", "")
    kind = request.args.get("kind", "")
    error = None
    if kind and kind not in JOB_KINDS:
        error, kind = _("未知的任务类型：%(kind)s", kind=kind), ""
    query = select(Job).where(Job.status.in_(FINAL_STATUSES))
    if project:
        query = query.where(Job.project_name == project)
    if status in FINAL_STATUSES:
        query = query.where(Job.status == status)
    if kind:
        query = query.where(kind_filter(kind))
    page = db.paginate(
        query.order_by(Job.id.desc()), page=query_int("page", 1, low=1, high=10**6), per_page=HISTORY_PAGE_SIZE,
        error_out=False,
    )
    project_names = db.session.scalars(select(Job.project_name).distinct().order_by(Job.project_name)).all()
    return render_template(
        "backup/history.html", page=page, project=project, status=status if status in FINAL_STATUSES else "",
        kind=kind, kinds=JOB_KINDS, error=error, project_names=project_names, final_statuses=FINAL_STATUSES,
    ), 400 if error else 200


@bp.get("/backup/jobs/<int:job_id>")
@requires(VIEWER)
def job_detail(job_id: int):
    card = cards.load_card(job_id)
    if card is None:
        abort(404)
    stages = {row.code: row for row in db.session.scalars(select(JobStage).where(JobStage.job_id == job_id))}
    archives = db.session.scalars(select(Archive).where(Archive.job_id == job_id, Archive.sha256 != UNFINISHED)
                                .order_by(Archive.seq)).all()  # not one still being written
    tape_files = db.session.execute(
        select(TapeFile, Tape.label)
        .join(Tape, Tape.id == TapeFile.tape_id)
        .where(TapeFile.job_id == job_id)
        .order_by(Tape.label, TapeFile.file_number)  # tape order: as an operator reads the cartridges
    ).all()
    return render_template(
        "backup/job.html", card=card, stages=stages, archives=archives, tape_files=tape_files,
        run_form=RunForm(), tapes_needed=tapes_for_job(card.job), **log_views.log_panel(job_id),
    )
