"""Helpers shared by the command groups."""

from __future__ import annotations

import functools
import getpass
import json

import click

from ..errors import StageBackupError
from ..extensions import db


class PlainText(click.ParamType):
    """Text a name column can hold: valid UTF-8 without NUL (a non-UTF-8 byte from the command line arrives
    surrogate-escaped, and the database driver would raise on it)."""

    name = "text"

    def convert(self, value, param, ctx):
        if "\0" in value:
            self.fail("contains a NUL character", param, ctx)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("is not valid UTF-8", param, ctx)
        return value


class File(click.File):
    """``click.File`` that answers a NUL in the name with a usage error instead of a ValueError."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and "\0" in value:
            self.fail("the file name contains a NUL character", param, ctx)
        return super().convert(value, param, ctx)


class PathArg(click.Path):
    """``click.Path`` that answers a NUL in the name with a usage error instead of a ValueError."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and "\0" in value:
            self.fail("the path contains a NUL character", param, ctx)
        return super().convert(value, param, ctx)


NAME = PlainText()


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


def third_party_errors(func):
    """For commands we do not own (Flask-Migrate's ``db``): any exception becomes one line and exit code 1."""
    if getattr(func, "_third_party_errors", False):
        return func

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - their errors, shown as a message rather than a traceback
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc

    wrapper._third_party_errors = True
    return wrapper
