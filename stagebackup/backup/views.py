"""Backup pages and the seed's JSON API. Views stay thin: query, then render."""

from __future__ import annotations

from flask import jsonify, redirect, render_template, url_for
from sqlalchemy import select

from ..extensions import db
from ..jobs.summary import job_dict, stages_for
from ..models import ACTIVE_STATUSES, Job, Project
from ..stages import BADGE_CLASSES, stage_steps
from . import bp

RECENT_JOBS = 20


@bp.get("/")
def root():
    return redirect(url_for("backup.index"))


@bp.get("/backup")
def index():
    projects = db.session.scalars(select(Project).order_by(Project.name)).all()
    jobs = db.session.scalars(select(Job).order_by(Job.id.desc()).limit(RECENT_JOBS)).all()
    stages = stages_for(jobs)
    steps = {job.id: stage_steps(job, stages[job.id]) for job in jobs}
    return render_template(
        "backup/index.html", projects=projects, jobs=jobs, steps=steps, badge_classes=BADGE_CLASSES,
    )


@bp.get("/api/backup/running-tasks")
def running_tasks():
    jobs = db.session.scalars(select(Job).where(Job.status.in_(ACTIVE_STATUSES)).order_by(Job.id)).all()
    stages = stages_for(jobs)
    return jsonify({"tasks": [job_dict(job, stages[job.id]) for job in jobs]})
