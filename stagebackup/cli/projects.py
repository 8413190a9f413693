"""``flask projects``: add, list, show, remove."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .. import projects
from ..extensions import db
from ..models import Project
from .common import actor, echo_json, operator_errors, read_password

projects_group = AppGroup("projects", help="Manage backup projects.")
BYTES = click.IntRange(1, 2**63 - 1)  # a BIGINT column: a larger number would overflow the database


@projects_group.command("add")
@click.argument("name")
@click.option("--source", "sources", multiple=True, required=True, help="Directory or file to back up (repeat).")
@click.option("--include", "includes", multiple=True, help="gitignore-style pattern to include (repeat).")
@click.option("--exclude", "excludes", multiple=True, help="gitignore-style pattern to exclude (repeat).")
@click.option("--mode", type=click.Choice(projects.MODES), default="archive", show_default=True,
              help="archive: compress into archives; sync: mirror the files into --dest-dir.")
@click.option("--format", "archive_format", type=click.Choice(projects.FORMATS), default="tgz", show_default=True)
@click.option("--level", type=click.IntRange(0, 9), default=6, show_default=True, help="Compression level.")
@click.option("--password-stdin", is_flag=True,
              help="Encrypt archives (AES-256) with a password read from the first line of standard input.")
@click.option("--strategy", "sync_strategy", type=click.Choice(projects.STRATEGIES), default="overwrite",
              show_default=True, help="Sync mode: overwrite mirrors (deletes too), incremental only adds.")
@click.option("--group-max-bytes", type=BYTES, default=None,
              help="Input bytes per archive (default: STAGEBACKUP_ARCHIVE_GROUP_MAX_BYTES).")
@click.option("--dest-dir", help="Directory the archives (or the sync mirror) are written to.")
@click.option("--dest-tape", "dest_drive", help="Tape drive the archives are written to (see `flask tape status`).")
@click.option("--pool", "dest_pool", help="Tape pool to take cartridges from (with --dest-tape).")
@click.option("--verify/--no-verify", "verify_after_write", default=True, show_default=True,
              help="Read every tape file back and compare its SHA-256 after writing.")
@click.option("--job-timeout-min", type=click.IntRange(1, projects.TIMEOUT_MAX_MIN), default=None,
              help="A job running longer than this many minutes ends failed (default: no limit).")
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def add(name, sources, includes, excludes, mode, archive_format, level, password_stdin, sync_strategy,
        group_max_bytes, dest_dir, dest_drive, dest_pool, verify_after_write, job_timeout_min,
        as_json):
    """Create project NAME."""
    if not (dest_dir or dest_drive):
        raise click.UsageError("a destination is needed: --dest-dir PATH or --dest-tape DRIVE")
    spec = projects.ProjectSpec(
        name=name, sources=list(sources), dest_dir=dest_dir, includes=list(includes), excludes=list(excludes),
        archive_format=archive_format, level=level, mode=mode, password=read_password() if password_stdin else None,
        sync_strategy=sync_strategy, group_max_bytes=group_max_bytes,
        dest_drive=dest_drive, dest_pool=dest_pool, verify_after_write=verify_after_write,
        job_timeout_s=job_timeout_min * 60 if job_timeout_min else None,
    )
    project = projects.create(spec, actor=actor())
    if as_json:
        echo_json(projects.to_dict(project))
    else:
        click.echo(f"project {project.name} created (id {project.id})")


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
        click.echo(f"{p.id:>4}  {p.name}  [{p.mode}/{p.archive_format}] -> {dest}")


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
@operator_errors
def remove(name):
    """Remove a project (its job history stays)."""
    projects.remove(name, actor=actor())
    click.echo(f"project {name} removed")
