"""``flask users``: who may sign in to the web pages, and with which role."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..auth import accounts
from ..auth.roles import ROLES, VIEWER
from ..extensions import db
from .common import NAME, actor, echo_json, operator_errors, read_password

users_group = AppGroup("users", help="Manage the users who sign in to the web pages.")

FIRST_ADMIN_HINT = "No admin yet: create one with `flask users create NAME --role admin` before signing in."


def _password(from_stdin: bool) -> str:
    """From the first line of standard input, or typed twice without echo."""
    if from_stdin:
        return read_password()
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_group.command("create")
@click.argument("name", type=NAME)
@click.option("--role", type=click.Choice(ROLES), default=VIEWER, show_default=True,
              help="viewer: sees pages; operator: also runs, cancels, restores, verifies; admin: everything.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@operator_errors
def create(name: str, role: str, password_stdin: bool):
    """Create a user who can sign in."""
    accounts.create(name, role, _password(password_stdin), actor=actor())
    db.session.commit()
    click.echo(f"user {name} created ({role})")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def list_users(as_json: bool):
    """The users, their roles and when they last signed in."""
    rows = [{"name": user.name, "role": user.role, "created_at": user.created_at,
             "last_sign_in_at": user.last_sign_in_at} for user in accounts.all_users()]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']}\t{row['role']}\tlast sign-in: {row['last_sign_in_at'] or 'never'}")
    if not rows:
        click.echo("no users")


@users_group.command("passwd")
@click.argument("name", type=NAME)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@operator_errors
def passwd(name: str, password_stdin: bool):
    """Set a user's password (their open sessions end)."""
    accounts.find(name)  # an unknown name fails before the password is asked for
    accounts.set_password(name, _password(password_stdin), actor=actor())
    db.session.commit()
    click.echo(f"password of {name} changed; their sessions are signed out")


@users_group.command("remove")
@click.argument("name", type=NAME)
@operator_errors
def remove(name: str):
    """Remove a user (never the last admin)."""
    accounts.remove(name, actor=actor())
    db.session.commit()
    click.echo(f"user {name} removed")


@users_group.command("needs-admin")
def needs_admin():
    """Say how to create the first admin when there is none (``make run`` calls this)."""
    if accounts.admin_count() == 0:
        click.echo(FIRST_ADMIN_HINT)
