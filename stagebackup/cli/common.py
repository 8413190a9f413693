"""Helpers shared by the command groups."""

from __future__ import annotations

import functools
import getpass
import json

import click

from ..errors import StageBackupError
from ..extensions import db


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def echo_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, default=str))


def read_password() -> str:
    """The first line of standard input, without its line ending; never echoed or logged."""
    stream = click.get_text_stream("stdin")
    raw = getattr(stream, "buffer", None)  # bytes, so a non-UTF-8 password survives
    line = raw.readline() if raw is not None else stream.readline().encode("utf-8", "surrogateescape")
    password = line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
    if not password:
        raise click.UsageError("--password-stdin: standard input gave an empty password")
    return password


def operator_errors(func):
    """Turn our errors into one line ``Error: …`` on stderr and the error's exit code, never a traceback.

    Exit codes: 2 bad input (click's usage errors too), 3 not found, 4 conflict, 1 anything else.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except StageBackupError as exc:
            db.session.rollback()
            failure = click.ClickException(str(exc))
            failure.exit_code = exc.exit_code
            raise failure from exc

    return wrapper
