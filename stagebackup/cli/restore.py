"""``flask restore``: restore or verify a finished backup (both queue a job and print its id)."""

from __future__ import annotations

import os

import click
from flask.cli import AppGroup

from ..extensions import db
from ..restore import service
from ..restore.extract import CONFLICT_POLICIES, SKIP
from ..tape.needs import tapes_for_job
from .common import actor, echo_json, operator_errors, read_password
from .follow import exit_for, follow
from .jobs import JOB_ID

restore_group = AppGroup("restore", help="Restore or verify a finished backup.")


def _arg_path(value: str) -> str:
    """Command-line bytes as the file system spells them (a non-UTF-8 name stays exact)."""
    return os.fsdecode(os.fsencode(value))


@restore_group.command("run")
@click.argument("job_id", type=JOB_ID)
@click.option("--to", "target", required=True, help="Target folder (inside STAGEBACKUP_RESTORE_ROOTS).")
@click.option("--path", "paths", multiple=True,
              help="Member path or glob to restore (repeatable); a folder brings all of its contents. "
                   "Default: everything.")
@click.option("--conflict", type=click.Choice(CONFLICT_POLICIES), default=SKIP, show_default=True,
              help="What to do with files that already exist in the target.")
@click.option("--password-stdin", is_flag=True, help="Read the archive password from the first line of stdin.")
@click.option("--owners/--no-owners", "restore_owners", default=False, show_default=True,
              help="Give files their recorded owners (by name, then id; needs root). Without it, restored files "
                   "belong to the worker's user and lose their set-uid/set-gid bits.")
@click.option("--remark", default=None, help="Why this restore; kept with the job and in the audit log.")
@click.option("--wait", "wait", is_flag=True,
              help="Stay until the job ends, saying which tape to load when it waits for one (no time limit; "
                   "Ctrl-C cancels the job); exit 1 unless it succeeded.")
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def run(job_id, target, paths, conflict, password_stdin, restore_owners, remark, wait, as_json):
    """Queue a restore of backup job JOB_ID into a folder; prints the restore job's id."""
    password = read_password() if password_stdin else None
    job = service.request_restore(
        job_id, target=os.path.abspath(_arg_path(target)),  # the CLI's cwd is the operator's
        paths=[_arg_path(p) for p in paths], conflict=conflict,
        password=password, trigger="cli", actor=actor(), remark=remark, restore_owners=restore_owners,
    )
    data = {"id": job.id, "status": job.status, "source_job": job_id, "target": job.params["target"],
            "tapes_needed": tapes_for_job(job)}
    db.session.commit()
    _report(data, as_json, wait)


@restore_group.command("verify")
@click.argument("job_id", type=JOB_ID)
@click.option("--password-stdin", is_flag=True, help="Read the archive password from the first line of stdin.")
@click.option("--wait", "wait", is_flag=True,
              help="Stay until the job ends, saying which tape to load when it waits for one (no time limit; "
                   "Ctrl-C cancels the job); exit 1 unless it succeeded.")
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def verify(job_id, password_stdin, wait, as_json):
    """Queue a verify of backup job JOB_ID (reads every archive back, writes nothing); prints its id."""
    password = read_password() if password_stdin else None
    job = service.request_verify(job_id, password=password, trigger="cli", actor=actor())
    data = {"id": job.id, "status": job.status, "source_job": job_id, "tapes_needed": tapes_for_job(job)}
    db.session.commit()
    _report(data, as_json, wait)


def _report(data: dict, as_json: bool, wait: bool) -> None:
    """The job's id on stdout (or its JSON); the tapes it reads on stderr; with ``wait``, follow it to its end."""
    if as_json:
        echo_json(data)
    else:
        click.echo(data["id"])
        if data["tapes_needed"]:
            click.echo(f"tapes needed, in the order they are read: {', '.join(data['tapes_needed'])}", err=True)
    if wait:
        exit_for(follow(data["id"]))
