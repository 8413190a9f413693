"""The CLI's documented exit codes: 2 bad input, 3 not found, 4 conflict, 1 other; always one `Error:` line."""

from __future__ import annotations

import pytest

from .test_cli import add, invoke, tree  # noqa: F401  (tree is a fixture)


@pytest.mark.parametrize(("args", "code", "message"), [
    (["jobs", "show", "999999"], 3, "unknown job: 999999"),
    (["jobs", "run", "nope"], 3, "unknown project: nope"),
    (["jobs", "run", "设计稿"], 4, "already has a queued job"),
    (["jobs", "run", "设计稿", "--remark", "x" * 2001], 2, "remark is longer than 2000"),
    (["projects", "remove", "设计稿"], 4, "cancel it first"),
    (["tape", "status", "lto9"], 3, "unknown tape drive lto9"),
])
def test_operator_errors_exit_with_their_category(runner, tmp_path, tree, args, code, message):  # noqa: F811
    assert add(runner, tmp_path, tree).exit_code == 0
    assert invoke(runner, "jobs", "run", "设计稿").exit_code == 0
    result = invoke(runner, *args)
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output


def test_a_bad_level_is_a_usage_error(runner, tmp_path, tree):  # noqa: F811
    result = add(runner, tmp_path, tree, "p", "--level", "12")
    assert result.exit_code == 2 and "Invalid value for '--level'" in result.output
