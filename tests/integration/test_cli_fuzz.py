"""Every ``flask`` command answers bad input with a message: empty, huge, negative, NUL-containing, non-UTF-8
and wrong-typed values for each of its parameters, one parameter at a time, never give a traceback, an
exception other than SystemExit, or an exit code outside 0-4 (2 bad input, 3 not found, 4 conflict, 1 other).

The commands are found by walking the app's click tree, so a command added later is fuzzed too.
"""

from __future__ import annotations

import click

from stagebackup.extensions import db

# Commands that run until stopped, or write into the source tree (Alembic's migration scripts), or open an
# editor; the other ``db`` commands only read (or are given a revision that does not exist).
SKIPPED = {
    ("run",), ("shell",), ("routes",), ("scheduler", "run"),
    ("db", "init"), ("db", "revision"), ("db", "migrate"), ("db", "merge"), ("db", "edit"),
    ("db", "upgrade"), ("db", "downgrade"), ("db", "stamp"),
}
FORCED = {("worker", "run"): ["--burst"]}  # never a worker that waits for work

BAD_VALUES = [
    "",  # empty
    "1" + "0" * 30,  # 10^30: beyond every integer column
    "x" * 100_000,  # a 100 kB string
    "-1",  # negative
    "a\0b",  # NUL
    "\udcff\udcfe-not-utf8",  # bytes that are not UTF-8, as the command line hands them over
    "abc",  # not a number
    "1.5",  # not an integer
]


def plausible(param: click.Parameter) -> str:
    """A value of the right shape, so that the parameter under test is what the command objects to."""
    if isinstance(param.type, click.Choice):
        return str(param.type.choices[0])
    if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
        return "1"
    return "nothing-here"


def commands(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if path + (name,) in SKIPPED:
            continue
        if isinstance(command, click.Group):
            yield from commands(command, ctx, path + (name,))
        else:
            yield path + (name,), command


def as_args(param: click.Parameter, value: str) -> list[str]:
    if isinstance(param, click.Argument):
        return [value] * max(param.nargs, 1)
    if param.is_flag:
        return [param.opts[0]]
    return [param.opts[0], value]


def invocations(path: tuple[str, ...], command: click.Command):
    """(args) lists: no arguments; then each parameter in turn given each bad value (the required others
    plausible ones), and each flag on its own."""
    params = [p for p in command.params if p.name != "help"]
    forced = FORCED.get(path, [])
    yield [*path, *forced]
    for under_test in params:
        values = [None] if isinstance(under_test, click.Option) and under_test.is_flag else BAD_VALUES
        for value in values:
            args: list[str] = []
            for param in params:
                if param is under_test:
                    args += as_args(param, value or "")
                elif param.required:
                    args += as_args(param, plausible(param))
            yield [*path, *forced, *_options_first(args, params)]


def _options_first(args: list[str], params) -> list[str]:
    """Options, then ``--``, then arguments: a bad value that starts with "-" stays an argument."""
    options, positional, i = [], [], 0
    option_names = {opt for p in params if isinstance(p, click.Option) for opt in p.opts}
    flags = {opt for p in params if isinstance(p, click.Option) and p.is_flag for opt in p.opts}
    while i < len(args):
        if args[i] in option_names:
            take = 1 if args[i] in flags else 2
            options += args[i:i + take]
            i += take
        else:
            positional.append(args[i])
            i += 1
    return options + (["--", *positional] if positional else [])


def test_every_command_answers_bad_input_with_a_message(app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `projects export NAME` writes NAME in the current folder
    runner = app.test_cli_runner()
    ctx = click.Context(app.cli)
    found = list(commands(app.cli, ctx))
    assert {("projects", "add"), ("restore", "run"), ("tape", "load"), ("users", "create"), ("audit", "list"),
            ("keys", "rotate"), ("worker", "run"), ("db", "current"), ("jobs", "show")} <= {p for p, _ in found}
    failures = []
    for path, command in found:
        for args in invocations(path, command):
            result = runner.invoke(args=args, input="")
            db.session.remove()  # as a new process would start: nothing held from the last command
            escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
            if "Traceback" in result.output or escaped or result.exit_code not in (0, 1, 2, 3, 4):
                shown = [a if len(a) < 40 else a[:20] + f"...({len(a)})" for a in args]
                failures.append(f"{shown}: exit {result.exit_code}, {result.exception!r}, "
                                f"{result.output[-300:]!r}")
    assert not failures, "\n".join(failures)
