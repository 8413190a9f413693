"""``--wait``: follow a queued job from the command line until it ends.

The worker runs the job; this only reads its row. While the job waits for a tape (``waiting_media``) it says
which label to load and where, once per change. Waiting for a tape has no time limit of its own (only the
job's time limit, if it has one, ends it): Ctrl-C asks the job to cancel and keeps following until it has
stopped; a second Ctrl-C leaves it to the worker.
"""

from __future__ import annotations

import signal
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
    """The job's final status; what it waits for goes to stderr as it happens.

    Ctrl-C only sets a flag that the loop reads between polls: a ``KeyboardInterrupt`` raised inside a
    database call could leave the session (and its connection's lock) in any state, and the cancel that
    follows must be written through that same session."""
    interrupts: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: interrupts.append(1))
    try:
        return _follow(job_id, interrupts)
    finally:
        signal.signal(signal.SIGINT, previous)


def _follow(job_id: int, interrupts: list[int]) -> str:
    said: str | None = None
    cancelling = False
    while True:
        if len(interrupts) > 1:
            raise KeyboardInterrupt  # a second Ctrl-C: stop following, the worker finishes the cancel
        if interrupts and not cancelling:
            cancelling = True
            queue.request_cancel(job_id, actor=actor())
            db.session.commit()
            click.echo(f"cancel requested: waiting for job {job_id} to stop", err=True)
        job = db.session.get(Job, job_id)
        db.session.refresh(job)
        status, note = job.status, _waiting_note(job)
        db.session.rollback()
        if status in FINAL_STATUSES:
            return status
        if note != said and not cancelling:
            click.echo(note or "tape loaded: continuing", err=True)
            said = note
        time.sleep(POLL_S)  # a Ctrl-C during it is acted on when it returns (PEP 475: it sleeps the rest)


def exit_for(status: str) -> None:
    """Exit 0 when the job succeeded (or ended with warnings), 1 otherwise, after naming its status."""
    click.echo(f"job ended: {status}", err=True)
    if status not in (SUCCEEDED, WARNING):
        raise SystemExit(1)
