"""``flask retention prune``: apply each project's retention policy now, or show what it would do."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from .. import projects, retention
from .common import actor, echo_json, operator_errors

retention_group = AppGroup("retention", help="Prune backups past each project's retention policy.")


@retention_group.command("prune")
@click.option("--project", "name", help="Only this project (default: every project with a policy).")
@click.option("--dry-run", is_flag=True, help="Show what would be kept and deleted, and why; delete nothing.")
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def prune(name, dry_run, as_json):
    """Delete directory archives past the policy; tape archives are marked expired."""
    if name is not None:
        projects.get_by_name(name)  # a name that does not exist is an error, not "nothing to do"
    results = [retention.prune_project(project, actor=actor(), dry_run=dry_run)
               for project in retention.projects_with_policy(name)]
    if as_json:
        echo_json([result.to_dict() for result in results])
        return
    if not results:
        click.echo("no project has a retention policy" if name is None else f"project {name} has no retention policy")
    for result in results:
        data = result.to_dict()
        verb = "would prune" if dry_run else "pruned"
        click.echo(f"{data['project']}: {verb} {len(data['pruned'])} backup(s)"
                   + ("" if dry_run else f", {data['deleted_files']} file(s), {data['freed_bytes']} bytes freed"))
        for backup in data["backups"]:
            mark = "keep " if backup["keep"] else ("prune" if dry_run else "gone ")
            click.echo(f"  {mark} #{backup['job']}  {backup['at']}  {'; '.join(backup['reasons'])}")
