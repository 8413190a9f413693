"""``flask projects``: add, list, show, remove."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .. import projects
from ..extensions import db
from ..models import Project
from .common import actor, echo_json, operator_errors

projects_group = AppGroup("projects", help="Manage backup projects.")


@projects_group.command("add")
@click.argument("name")
@click.option("--source", "sources", multiple=True, required=True, help="Directory or file to back up (repeat).")
@click.option("--include", "includes", multiple=True, help="gitignore-style pattern to include (repeat).")
@click.option("--exclude", "excludes", multiple=True, help="gitignore-style pattern to exclude (repeat).")
@click.option("--format", "archive_format", type=click.Choice(projects.FORMATS), default="tgz", show_default=True)
@click.option("--level", type=int, default=6, show_default=True, help="Compression level.")
@click.option("--dest-dir", required=True, help="Directory the archives are written to.")
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def add(name, sources, includes, excludes, archive_format, level, dest_dir, as_json):
    """Create project NAME."""
    spec = projects.ProjectSpec(
        name=name, sources=list(sources), dest_dir=dest_dir, includes=list(includes), excludes=list(excludes),
        archive_format=archive_format, level=level,
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
        dest = projects.to_dict(p)["destination"]["path"]
        click.echo(f"{p.id:>4}  {p.name}  [{p.mode}/{p.archive_format}] -> {dest}")


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
