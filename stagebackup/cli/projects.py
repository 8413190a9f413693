"""``flask projects``: add, edit, list, show, remove."""

from __future__ import annotations

import os

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .. import project_checks, projects
from ..errors import ValidationError
from ..extensions import db
from ..models import Project
from .common import actor, echo_json, operator_errors, read_password

projects_group = AppGroup("projects", help="Manage backup projects.")
BYTES = click.IntRange(1, 2**63 - 1)  # a BIGINT column: a larger number would overflow the database


class MiBPerSecond(click.ParamType):
    """A read limit in MiB/s ("20", "0.5"), as bytes per second: the same parsing and message as the form's."""

    name = "mib/s"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return project_checks.read_limit_from_mib(value)
        except ValidationError as exc:
            self.fail(str(exc), param, ctx)


def _retention_options() -> list:
    """Retention (archive mode): each rule is off unless given; 0 turns it off again on ``edit``."""
    count = click.IntRange(0, project_checks.KEEP_MAX)
    periods = {"daily": "day", "weekly": "week", "monthly": "month", "yearly": "year"}
    return [
        click.option("--keep-last", "keep_last", type=count, metavar="N", help="Keep the newest N backups."),
        *[click.option(f"--keep-{rule}", f"keep_{rule}", type=count, metavar="N",
                       help=f"Keep the newest backup of each of the last N {unit}s that have one.")
          for rule, unit in periods.items()],
        click.option("--keep-within-days", "keep_within_days", type=count, metavar="D",
                     help="Keep every backup younger than D days."),
    ]


def _project_options(for_add: bool):
    """The options of ``add`` and ``edit``: ``edit`` has no defaults, so an option not given is None (kept)."""

    def default(value):
        return value if for_add else None

    options = [
        click.option("--source", "sources", multiple=True, required=for_add,
                     help="Directory or file to back up (repeat; edit: replaces the list)."),
        click.option("--include", "includes", multiple=True,
                     help="gitignore-style pattern to include (repeat; edit: replaces the list)."),
        click.option("--exclude", "excludes", multiple=True,
                     help="gitignore-style pattern to exclude (repeat; edit: replaces the list)."),
        click.option("--mode", type=click.Choice(project_checks.MODES), default=default("archive"),
                     show_default=for_add,
                     help="archive: compress into archives; sync: mirror the files into --dest-dir."),
        click.option("--format", "archive_format", type=click.Choice(project_checks.FORMATS), default=default("tgz"),
                     show_default=for_add),
        click.option("--level", type=click.IntRange(0, 9), default=default(6), show_default=for_add,
                     help="Compression level."),
        click.option("--password-stdin", is_flag=True,
                     help="Encrypt archives (AES-256) with a password read from the first line of standard input."),
        click.option("--strategy", "sync_strategy", type=click.Choice(project_checks.STRATEGIES),
                     default=default("overwrite"), show_default=for_add,
                     help="Sync mode: overwrite mirrors (deletes too), incremental only adds."),
        click.option("--group-max-bytes", type=BYTES, default=None,
                     help="Input bytes per archive (default: STAGEBACKUP_ARCHIVE_GROUP_MAX_BYTES)."),
        click.option("--dest-dir", help="Directory the archives (or the sync mirror) are written to."),
        click.option("--dest-tape", "dest_drive",
                     help="Tape drive the archives are written to (see `flask tape status`)."),
        click.option("--pool", "dest_pool", help="Tape pool to take cartridges from (with --dest-tape)."),
        click.option("--verify/--no-verify", "verify_after_write", default=default(True), show_default=for_add,
                     help="Read every tape file back and compare its SHA-256 after writing."),
        click.option("--catalog-copy/--no-catalog-copy", "catalog_copy_to_tape", default=default(False),
                     show_default=for_add, help="Append a copy of the catalog to the tape after each session."),
        click.option("--job-timeout-min", type=click.IntRange(1, project_checks.TIMEOUT_MAX_MIN), default=None,
                     help="A job running longer than this many minutes ends failed (default: no limit)."),
        click.option("--read-limit-mib", "read_limit_bytes_s", type=MiBPerSecond(), default=None, metavar="MIB/S",
                     help="Read the sources at most this fast, in MiB/s (e.g. 20 or 0.5), averaged over the job; "
                          "0: no limit (the default)."),
        click.option("--max-age-h", "max_age_h", type=click.IntRange(1, project_checks.MAX_AGE_MAX_H), default=None,
                     help="Without a schedule: the health panel turns yellow when the last good backup is older "
                          "than this many hours, red past twice it (default: STAGEBACKUP_HEALTH_MAX_AGE_H)."),
        click.option("--schedule", "schedule_cron", metavar="CRON",
                     help="Run at these times: 5 cron fields, e.g. '0 2 * * *' (daily at 02:00)."),
        click.option("--timezone", "schedule_timezone", metavar="TZ",
                     help="IANA time zone of the schedule, e.g. Asia/Shanghai (default: the server's)."),
        click.option("--enable-schedule/--disable-schedule", "schedule_enabled", default=default(True),
                     help="Pause or resume the schedule without forgetting it."),
        *_retention_options(),
        click.option("--json", "as_json", is_flag=True),
    ]

    def apply(func):
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def _paths_from_here(fields: dict) -> dict:
    """Relative paths on the command line mean the operator's working directory (the server refuses them)."""
    sources = fields.get("sources")
    return {**fields, "sources": tuple(os.path.abspath(s) for s in sources) if sources else sources,
            "dest_dir": os.path.abspath(fields["dest_dir"]) if fields.get("dest_dir") else fields.get("dest_dir")}


@projects_group.command("add")
@click.argument("name")
@_project_options(for_add=True)
@operator_errors
def add(name, password_stdin, job_timeout_min, as_json, **fields):
    """Create project NAME."""
    if not (fields["dest_dir"] or fields["dest_drive"]):
        raise click.UsageError("a destination is needed: --dest-dir PATH or --dest-tape DRIVE")
    fields = _paths_from_here(fields)
    spec = project_checks.ProjectSpec(
        name=name, **{key: list(value) if isinstance(value, tuple) else value for key, value in fields.items()},
        password=read_password() if password_stdin else None,
        job_timeout_s=job_timeout_min * 60 if job_timeout_min else None,
    )
    _report(projects.create(spec, actor=actor()), "created", as_json)


@projects_group.command("edit")
@click.argument("name")
@_project_options(for_add=False)
@click.option("--no-schedule", is_flag=True, help="Remove the schedule: the project runs only when asked.")
@operator_errors
def edit(name, password_stdin, job_timeout_min, as_json, no_schedule, **fields):
    """Change project NAME: only the options given change."""
    if no_schedule and (fields["schedule_cron"] or fields["schedule_timezone"]):
        raise click.UsageError("--no-schedule cannot be combined with --schedule or --timezone")
    spec = projects.spec_of(projects.get_by_name(name))
    fields = _paths_from_here(fields)
    given = {key: list(value) if isinstance(value, tuple) else value for key, value in fields.items()
             if value is not None and value != ()}
    if "dest_dir" in given:
        spec.dest_drive = spec.dest_pool = None
    if "dest_drive" in given:
        spec.dest_dir = None
    for key, value in given.items():
        setattr(spec, key, value)
    if no_schedule:
        spec.schedule_cron = spec.schedule_timezone = None
    if password_stdin:
        spec.password, spec.encrypted = read_password(), True
    if job_timeout_min:
        spec.job_timeout_s = job_timeout_min * 60
    _report(projects.update(name, spec, actor=actor()), "changed", as_json)


def _report(project: Project, done: str, as_json: bool) -> None:
    if as_json:
        echo_json(projects.to_dict(project))
        return
    click.echo(f"project {project.name} {done} (id {project.id})")
    schedule = projects.schedule_dict(project)
    if schedule:
        click.echo(f"schedule: {schedule['cron']} ({schedule['timezone']})"
                   + (f", next runs: {', '.join(schedule['next_runs'])}" if schedule["enabled"] else ", disabled"))


@projects_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json):
    """List projects."""
    rows = db.session.scalars(select(Project).order_by(Project.name)).all()
    if as_json:
        echo_json([projects.to_dict(p) for p in rows])
        return
    for p in rows:
        dest = _destination(projects.to_dict(p)["destination"])
        schedule = f"  @ {p.schedule_cron} ({p.schedule_timezone})" if p.schedule_cron else ""
        paused = " paused" if p.schedule_cron and not p.schedule_enabled else ""
        click.echo(f"{p.id:>4}  {p.name}  [{p.mode}/{p.archive_format}] -> {dest}{schedule}{paused}")


def _destination(dest: dict) -> str:
    if dest["kind"] == "tape":
        return f"tape {dest['drive']}" + (f" (pool {dest['pool']})" if dest["pool"] else "")
    return dest["path"]


@projects_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def show(name, as_json):
    """Show one project."""
    data = projects.to_dict(projects.get_by_name(name))
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key}: {value}")


@projects_group.command("remove")
@click.argument("name")
@click.option("--delete-backups", is_flag=True,
              help="Delete its backups too: archive files in directories are removed, tape files marked expired. "
                   "Without it the backups stay restorable and verifiable.")
@operator_errors
def remove(name, delete_backups):
    """Remove a project (its job history stays; its backups too, unless --delete-backups)."""
    projects.remove(name, actor=actor(), delete_backups=delete_backups)
    click.echo(f"project {name} removed" + (" with its backups" if delete_backups else "; its backups are kept"))
