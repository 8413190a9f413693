"""``flask notify``: where StageBackup sends messages (Apprise URLs) and for which events."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from .. import projects
from ..notify import delivery, messages, targets
from ..notify.events import EVENTS
from .common import NAME, actor, echo_json, operator_errors, read_password

notify_group = AppGroup("notify", help="Manage notification targets (mail, webhooks, Telegram, … via Apprise).")


@notify_group.command("add")
@click.argument("name", type=NAME)
@click.option("--project", "project_name", type=NAME, default=None, help="Only this project's events (default: all).")
@click.option("--event", "events", type=click.Choice(EVENTS), multiple=True,
              help="Repeat for each event (default: every event but succeeded).")
@click.option("--stale-after-hours", type=click.IntRange(min=1), default=None,
              help="X in \"no good backup for longer than X hours\" (default 48).")
@click.option("--language", type=click.Choice(targets.LANGUAGES), default="zh_CN", show_default=True)
@operator_errors
def add(name, project_name, events, stale_after_hours, language):
    """Add a target; its Apprise URL is read from the first line of standard input (it holds secrets)."""
    url = read_password()
    project = projects.get_by_name(project_name) if project_name else None
    target = targets.add(name, url, project=project, events=list(events) or None,
                         stale_after_hours=stale_after_hours, language=language, actor=actor())
    click.echo(f"target {name} added: {target.masked_url} ({', '.join(target.events)})")


@notify_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_targets(as_json):
    """The targets, their (masked) URLs, scope and events."""
    rows = [{"name": t.name, "url": t.masked_url, "project": targets.project_name(t),
             "events": t.events, "stale_after_hours": t.stale_after_hours, "language": t.language}
            for t in targets.all_targets()]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']}\t{row['url']}\t{row['project'] or 'all projects'}\t{','.join(row['events'])}")
    if not rows:
        click.echo("no notification targets")


@notify_group.command("remove")
@click.argument("name", type=NAME)
@operator_errors
def remove(name):
    """Remove a target and its undelivered messages."""
    targets.remove(name, actor=actor())
    click.echo(f"target {name} removed")


@notify_group.command("test")
@click.argument("name", type=NAME)
@operator_errors
def test(name):
    """Send a test message to a target now and say whether it arrived."""
    target = targets.find(name)
    error = delivery.send(targets.url_of(target), messages.test_message(target))
    if error:
        raise click.ClickException(f"sending to {name} failed: {error}")
    click.echo(f"test message sent to {name}")
