"""``flask audit list``: the audit log, newest first, with the page's filters."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..auditlog import query
from ..paths import display
from .common import echo_json, operator_errors

audit_group = AppGroup("audit", help="Read the audit log (who did what and when).")


@audit_group.command("list")
@click.option("--since", help="ISO date or time (local time unless it names an offset), or an age: 30m, 2h, 1d, 1w.")
@click.option("--action", help="An action (project.update) or a family of them (project).")
@click.option("--project", help="Events about this project only.")
@click.option("--before", help="Events older than this event id (the next page).")
@click.option("--limit", type=int, default=query.PAGE_SIZE, show_default=True, help="Events to show (at most 1000).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: the events and the id for --before.")
@operator_errors
def list_(since, action, project, before, limit, as_json):
    """List audit events, newest first."""
    where = query.parse_filter({"since": since, "action": action, "project": project, "before": before},
                               limit=limit)
    result = query.page(where)
    if as_json:
        echo_json({"events": [query.as_dict(e) for e in result.events], "next_before": result.next_before})
        return
    for event in result.events:
        line = f"{event.id:>6}  {event.at:%Y-%m-%d %H:%M:%S}Z  {event.actor}  {event.action}"
        for part in (event.project, event.target if event.target != event.project else None):
            if part:
                line += f"  {display(part)}"
        if event.remark:
            line += f"  — {event.remark}"
        click.echo(line)
    if result.next_before:
        click.echo(f"(more: --before {result.next_before})")
