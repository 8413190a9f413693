"""``flask jobs``: run, list, show, cancel."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .. import projects
from ..errors import JobNotFound
from ..extensions import db
from ..jobs import queue
from ..jobs.summary import job_detail, job_dict, stages_for
from ..models import ACTIVE_STATUSES, FINAL_STATUSES, Job
from .common import actor, echo_json, operator_errors

jobs_group = AppGroup("jobs", help="Queue, inspect and cancel jobs.")
JOB_ID = click.IntRange(1, 2**63 - 1)  # larger numbers cannot be a row id (and would overflow SQLite)


@jobs_group.command("run")
@click.argument("name")
@click.option("--remark", default=None, help="Why this run; kept with the job and in the audit log.")
@click.option("--allow-mass-delete", is_flag=True,
              help="Sync mode: this run may delete more than STAGEBACKUP_SYNC_MAX_DELETE_RATIO of the mirror's files.")
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def run(name, remark, allow_mass_delete, as_json):
    """Queue a backup of project NAME now."""
    project = projects.get_by_name(name)
    params = {"allow_mass_delete": True} if allow_mass_delete else None
    job = queue.enqueue(project, actor=actor(), trigger="cli", remark=remark, params=params, audit_details=params)
    if as_json:
        echo_json({"id": job.id, "status": job.status})
    else:
        click.echo(job.id)


def _get(job_id: int) -> Job:
    job = db.session.get(Job, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


@jobs_group.command("list")
@click.option("--status", type=click.Choice(ACTIVE_STATUSES + FINAL_STATUSES), default=None,
              help="Only jobs with this status.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_(status, limit, as_json):
    """List recent jobs, newest first."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    jobs = db.session.scalars(query).all()
    if as_json:
        stages = stages_for(jobs)
        echo_json([job_dict(j, stages[j.id]) for j in jobs])
        return
    for j in jobs:
        remark = f"  « {j.remark} »" if j.remark else ""
        click.echo(f"{j.id:>6}  {j.status:<13} {j.progress:>3}%  {j.project_name}{remark}")


@jobs_group.command("show")
@click.argument("job_id", type=JOB_ID)
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def show(job_id, as_json):
    """Show a job: status, stages, archives and its last log lines."""
    data = job_detail(_get(job_id))
    if as_json:
        echo_json(data)
        return
    click.echo(f"job {data['id']} ({data['project']}): {data['status']} {data['progress']}%")
    click.echo("stages: " + "  ".join(f"{s['label']}={s['state']}" for s in data["stage_steps"]))
    if data["error"]:
        click.echo(f"error: {data['error']}")
    for archive in data["archives"]:
        where = archive["path"] or f"{archive['name']} ({archive['location']})"
        click.echo(f"archive: {where} {archive['size']} bytes sha256 {archive['sha256']}")
    for line in data["log"]:
        click.echo(f"[{line['tag']}] {line['message']}")


@jobs_group.command("cancel")
@click.argument("job_id", type=JOB_ID)
@operator_errors
def cancel(job_id):
    """Cancel a queued job, or ask a running one to stop."""
    _get(job_id)
    status = queue.request_cancel(job_id, actor=actor())
    click.echo("cancelled" if status == "cancelled" else "cancel requested; the job stops at its next file")
