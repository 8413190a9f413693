"""``flask projects export`` and ``flask projects import``: project definitions as one JSON document."""

from __future__ import annotations

import click
from flask import current_app

from .. import transfer
from .common import File, actor, echo_json, operator_errors, read_password
from .projects import projects_group

ACTION_WORDS = {"create": "create", "replace": "replace", "skip": "skip (exists)", "rename": "create as"}


@projects_group.command("export")
@click.argument("file", type=File("w", encoding="utf-8", lazy=True), default="-")
@click.option("--project", "names", multiple=True, help="Export only this project (repeat); default: all.")
@operator_errors
def export(file, names):
    """Write project definitions as JSON to FILE (default: standard output). Passwords are never exported."""
    document = transfer.export_document(list(names))
    file.write(transfer.dumps(document))
    if file.name not in ("-", "<stdout>"):
        click.echo(f"{len(document['projects'])} project(s) exported to {file.name}", err=True)


@projects_group.command("import")
@click.argument("file", type=File("rb"))
@click.option("--dry-run", is_flag=True, help="Check the file and show what would happen; write nothing.")
@click.option("--on-conflict", type=click.Choice(transfer.CONFLICT_POLICIES), default="skip", show_default=True,
              help="A project whose name exists: keep it (skip), overwrite it (replace), or import it under a "
                   "free name (rename).")
@click.option("--password", "password_names", multiple=True, metavar="NAME",
              help="Encrypted project NAME's password, read from standard input: one line per --password, in "
                   "order (repeat).")
@click.option("--json", "as_json", is_flag=True)
@operator_errors
def import_(file, dry_run, on_conflict, password_names, as_json):
    """Import project definitions from FILE (a `flask projects export` document; - for standard input).

    All or nothing: every project is checked with the same rules as the form before anything is written.
    """
    if password_names and file.name in ("-", "<stdin>"):
        raise click.UsageError("--password reads standard input: give the import file by its path")
    limit = int(current_app.config["IMPORT_MAX_BYTES"])
    raw = file.read(limit + 1)
    passwords = {name: read_password() for name in password_names}
    result = transfer.import_projects(raw, on_conflict=on_conflict, max_bytes=limit, actor=actor(),
                                      dry_run=dry_run, passwords=passwords)
    if as_json:
        echo_json(_summary(result, dry_run))
        return
    for item in result.projects:
        shown = f"{item.name} -> {item.final_name}" if item.action == "rename" else item.name
        note = "  (needs its password: --password NAME)" if item.needs_password else ""
        click.echo(f"  #{item.index} {ACTION_WORDS[item.action]}: {shown}{note}")
        if item.unknown_fields:
            click.echo(f"    unknown fields ignored: {', '.join(item.unknown_fields)}")
    if result.unknown_fields:
        click.echo(f"unknown top-level fields ignored: {', '.join(result.unknown_fields)}")
    counts = ", ".join(f"{result.count(a)} {a}" for a in ACTION_WORDS)
    missing = len(result.missing_passwords)
    click.echo(("dry run, nothing written: " if dry_run else "imported: ") + counts
               + (f"; {missing} need their passwords" if missing else ""))


def _summary(result: transfer.ImportPlan, dry_run: bool) -> dict:
    return {
        "dry_run": dry_run,
        "on_conflict": result.on_conflict,
        "unknown_fields": result.unknown_fields,
        "projects": [{"index": p.index, "name": p.name, "action": p.action, "final_name": p.final_name,
                      "needs_password": p.needs_password, "unknown_fields": p.unknown_fields}
                     for p in result.projects],
    }
