"""`flask projects add --schedule` and `flask projects edit`: only what is given changes; bad input, one line."""

import json
from datetime import datetime

from stagebackup.schedule import cron

from .test_cli import add, invoke, tree  # noqa: F401 - the fixture


def shown(runner, name="设计稿"):
    result = invoke(runner, "projects", "show", name, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_add_with_a_schedule_shows_it_and_its_next_three_runs(runner, tmp_path, tree):  # noqa: F811
    result = add(runner, tmp_path, tree, "设计稿", "--schedule", "0  2 * * 1-5", "--timezone", "Asia/Shanghai")
    assert result.exit_code == 0, result.output
    assert "schedule: 0 2 * * 1-5 (Asia/Shanghai), next runs: " in result.output
    schedule = shown(runner)["schedule"]
    assert (schedule["cron"], schedule["timezone"], schedule["enabled"]) == ("0 2 * * 1-5", "Asia/Shanghai", True)
    runs = [datetime.fromisoformat(run) for run in schedule["next_runs"]]
    assert len(runs) == 3 and all(run.strftime("%H:%M %z") == "02:00 +0800" and run.weekday() < 5 for run in runs)


def test_add_without_a_time_zone_takes_the_servers(runner, tmp_path, tree):  # noqa: F811
    assert add(runner, tmp_path, tree, "设计稿", "--schedule", "0 2 * * *").exit_code == 0
    assert shown(runner)["schedule"]["timezone"] == cron.server_timezone()


def test_bad_schedules_are_refused_in_one_line_and_create_nothing(runner, tmp_path, tree):  # noqa: F811
    cases = [(["--schedule", "61 * * * *"], "minute 61 is out of range (0-59)"),
             (["--schedule", "0 0 30 2 *"], "never runs"),
             (["--schedule", "0 2 * * *", "--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
             (["--schedule", ""], "the schedule is empty")]
    for extra, message in cases:
        result = add(runner, tmp_path, tree, "设计稿", *extra)
        assert result.exit_code == 2 and result.output.startswith("Error: ") and message in result.output, extra
        assert "Traceback" not in result.output
    assert json.loads(invoke(runner, "projects", "list", "--json").output) == []


def test_edit_changes_only_what_is_given(runner, tmp_path, tree):  # noqa: F811
    assert add(runner, tmp_path, tree).exit_code == 0
    before = shown(runner)
    assert invoke(runner, "projects", "edit", "设计稿", "--schedule", "30 3 * * 0").exit_code == 0
    after = shown(runner)
    assert after["schedule"]["cron"] == "30 3 * * 0" and after["schedule"]["enabled"]
    assert {k: v for k, v in after.items() if k != "schedule"} == {k: v for k, v in before.items() if k != "schedule"}

    assert invoke(runner, "projects", "edit", "设计稿", "--timezone", "Europe/Berlin").exit_code == 0
    assert shown(runner)["schedule"]["cron"] == "30 3 * * 0"
    assert shown(runner)["schedule"]["timezone"] == "Europe/Berlin"

    result = invoke(runner, "projects", "edit", "设计稿", "--disable-schedule")
    assert result.exit_code == 0 and "schedule: 30 3 * * 0 (Europe/Berlin), disabled" in result.output
    assert shown(runner)["schedule"]["next_runs"] == []
    assert invoke(runner, "projects", "edit", "设计稿", "--enable-schedule").exit_code == 0
    assert len(shown(runner)["schedule"]["next_runs"]) == 3

    assert invoke(runner, "projects", "edit", "设计稿", "--level", "2", "--exclude", "*.iso").exit_code == 0
    edited = shown(runner)
    assert (edited["level"], edited["excludes"], edited["schedule"]["cron"]) == (2, ["*.iso"], "30 3 * * 0")

    assert invoke(runner, "projects", "edit", "设计稿", "--disable-schedule").exit_code == 0
    assert invoke(runner, "projects", "list").output.rstrip().endswith("@ 30 3 * * 0 (Europe/Berlin) paused")
    assert invoke(runner, "projects", "edit", "设计稿", "--no-schedule").exit_code == 0
    assert shown(runner)["schedule"] is None
    assert "@" not in invoke(runner, "projects", "list").output
    # A schedule given again starts enabled: "paused" belonged to the schedule that was removed.
    assert invoke(runner, "projects", "edit", "设计稿", "--schedule", "0 4 * * *").exit_code == 0
    assert shown(runner)["schedule"]["enabled"] and shown(runner)["schedule"]["timezone"] == cron.server_timezone()


def test_edit_refuses_contradictions_bad_schedules_and_unknown_projects(runner, tmp_path, tree):  # noqa: F811
    assert add(runner, tmp_path, tree, "设计稿", "--schedule", "0 2 * * *").exit_code == 0
    result = invoke(runner, "projects", "edit", "设计稿", "--no-schedule", "--schedule", "0 3 * * *")
    assert result.exit_code == 2 and "--no-schedule cannot be combined" in result.output
    result = invoke(runner, "projects", "edit", "设计稿", "--schedule", "0 2 * * * *")
    assert result.exit_code == 2 and "a schedule has 5 fields" in result.output
    assert shown(runner)["schedule"]["cron"] == "0 2 * * *"
    result = invoke(runner, "projects", "edit", "nope", "--schedule", "0 2 * * *")
    assert result.exit_code == 3 and "unknown project: nope" in result.output


def test_edit_can_move_the_destination_to_tape_and_back(runner, tmp_path, tree):  # noqa: F811
    assert add(runner, tmp_path, tree).exit_code == 0
    assert invoke(runner, "projects", "edit", "设计稿", "--dest-tape", "vtape0", "--pool", "p1").exit_code == 0
    assert shown(runner)["destination"] == {"kind": "tape", "drive": "vtape0", "pool": "p1", "verify": True,
                                                 "catalog_copy": False}
    assert invoke(runner, "projects", "edit", "设计稿", "--dest-dir", str(tmp_path / "d2")).exit_code == 0
    assert shown(runner)["destination"] == {"kind": "directory", "path": str(tmp_path / "d2")}
