"""``--wait``: follow a queued job from the command line until it ends.

The worker runs the job; this only reads its row. While the job waits for a tape (``waiting_media``) it says
which label to load and where, once per change. Waiting for a tape has no time limit of its own (only the
job's time limit, if it has one, ends it): Ctrl-C asks the job to cancel and keeps following until it has
stopped; a second Ctrl-C leaves it to the worker.
"""

from __future__ import annotations

import time

import click

from ..extensions import db
from ..jobs import queue
from ..models import FINAL_STATUSES, SUCCEEDED, WAITING_MEDIA, WARNING, Job
from .common import actor

POLL_S = 0.5


def _waiting_note(job: Job) -> str | None:
    if job.status != WAITING_MEDIA:
        return None
    wanted = f"tape {job.waiting_label}" if job.waiting_label else "a new tape"
    return (f"job {job.id} is waiting for {wanted}: load it in {job.drive or 'a drive'}"
            f"{' (or any idle drive)' if job.waiting_label else ''}; it waits without a time limit, "
            f"Ctrl-C cancels the job")


def follow(job_id: int) -> str:
    """The job's final status; what it waits for goes to stderr as it happens."""
    said: str | None = None
    cancelling = False
    while True:
        try:
            job = db.session.get(Job, job_id)
            db.session.refresh(job)
            status, note = job.status, _waiting_note(job)
            db.session.rollback()
            if status in FINAL_STATUSES:
                return status
            if note != said:
                click.echo(note or "tape loaded: continuing", err=True)
                said = note
            time.sleep(POLL_S)
        except KeyboardInterrupt:
            if cancelling:
                raise
            cancelling = True
            db.session.rollback()
            queue.request_cancel(job_id, actor=actor())
            db.session.commit()
            click.echo(f"cancel requested: waiting for job {job_id} to stop", err=True)


def exit_for(status: str) -> None:
    """Exit 0 when the job succeeded (or ended with warnings), 1 otherwise, after naming its status."""
    click.echo(f"job ended: {status}", err=True)
    if status not in (SUCCEEDED, WARNING):
        raise SystemExit(1)
