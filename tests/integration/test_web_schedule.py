"""The schedule in the project form (presets and a free cron field) and as text with next runs on the card."""

import re
from datetime import UTC, datetime

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.models import Project
from stagebackup.schedule import cron

from .test_web_projects import _field_errors, _form
from .web_support import csrf_token, make_project


def _post_new(client, tmp_path, **schedule):
    return client.post("/backup/projects/new",
                       data={**_form(tmp_path), **schedule, "csrf_token": csrf_token(client)})


def _card(client, lang="zh_CN"):
    client.set_cookie("lang", lang)
    with client.application.app_context():  # a fresh ``g``: Flask-Babel keeps the locale it chose there
        html = client.get("/backup").get_data(as_text=True)
    block = re.search(r'<div class="small mt-1 project-schedule">(.*?)</div>', html, re.S)
    return block and re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", block.group(1))).strip()


def test_a_weekly_preset_is_saved_as_cron_and_shown_as_text_with_the_next_three_runs(client, tmp_path):
    response = _post_new(client, tmp_path, schedule_preset="weekly", schedule_time="03:15", schedule_weekday="1",
                         schedule_timezone="Asia/Shanghai", schedule_enabled="y")
    assert response.status_code == 302
    project = db.session.scalar(db.select(Project))
    assert (project.schedule_cron, project.schedule_timezone, project.schedule_enabled) == (
        "15 3 * * 1", "Asia/Shanghai", True)
    runs = [run.strftime("%Y-%m-%d %H:%M") for run in cron.next_runs("15 3 * * 1", "Asia/Shanghai")]
    assert all(datetime.strptime(run, "%Y-%m-%d %H:%M").weekday() == 0 for run in runs)
    assert _card(client) == f"定时计划: 每周一 03:15 (Asia/Shanghai) · 下次运行: {', '.join(runs)}"
    assert _card(client, "en") == f"Schedule: Weekly on Monday 03:15 (Asia/Shanghai) · Next runs: {', '.join(runs)}"


def test_the_edit_form_shows_the_preset_and_saving_it_unchanged_keeps_the_schedule(client, tmp_path):
    project = make_project(tmp_path, schedule_cron="0 1 15 * *", schedule_timezone="Europe/Berlin")
    html = client.get(f"/backup/projects/{project.id}/edit").get_data(as_text=True)
    assert re.search(r'<input[^>]*checked[^>]*value="monthly"|<input[^>]*value="monthly"[^>]*checked', html)
    assert 'value="01:00"' in html and 'name="schedule_day" type="number" value="15"' in html
    assert "每月 15 日 01:00 (Europe/Berlin)" in html  # the current schedule and its next runs under the fields
    response = client.post(f"/backup/projects/{project.id}/edit", data={
        **_form(tmp_path, name=project.name, sources=project.sources[0]), "csrf_token": csrf_token(client),
        "schedule_preset": "monthly", "schedule_time": "01:00", "schedule_day": "15",
        "schedule_timezone": "Europe/Berlin", "schedule_enabled": "y"})
    assert response.status_code == 302
    db.session.expire_all()
    assert (project.schedule_cron, project.schedule_timezone) == ("0 1 15 * *", "Europe/Berlin")


def test_a_disabled_schedule_is_shown_as_such_without_next_runs(client, tmp_path):
    make_project(tmp_path, schedule_cron="*/10 * * * *", schedule_timezone="UTC", schedule_enabled=False)
    assert _card(client) == "定时计划: cron */10 * * * * (UTC) · 已停用"
    assert _card(client, "en") == "Schedule: cron */10 * * * * (UTC) · disabled"


def test_no_schedule_shows_nothing_and_an_empty_time_zone_means_the_servers(client, tmp_path):
    assert _post_new(client, tmp_path, schedule_preset="").status_code == 302
    assert _card(client) is None
    project = db.session.scalar(db.select(Project))
    projects.update(project.name, project_checks.ProjectSpec(**{**projects.spec_of(project).__dict__,
                                                          "schedule_cron": "0 2 * * *"}), actor="test")
    assert project.schedule_timezone == cron.server_timezone()


def test_bad_schedules_are_shown_on_their_field_in_the_page_language(client, tmp_path):
    cases = [
        ({"schedule_preset": "cron", "schedule_cron": "61 * * * *"}, "schedule_cron", "分钟 61 超出范围（0-59）"),
        ({"schedule_preset": "cron", "schedule_cron": "*/0 * * * *"}, "schedule_cron", "无效的定时 */0 * * * *"),
        ({"schedule_preset": "cron", "schedule_cron": "0 0 30 2 *"}, "schedule_cron",
         "定时 0 0 30 2 * 永远不会运行（没有这样的日期）"),
        ({"schedule_preset": "cron", "schedule_cron": ""}, "schedule_cron", "定时为空"),
        ({"schedule_preset": "daily", "schedule_time": "02:00", "schedule_timezone": "Mars/Olympus"},
         "schedule_timezone", "未知的时区 Mars/Olympus"),
        ({"schedule_preset": "daily", "schedule_time": ""}, "schedule_time", "请填写时间"),
    ]
    for overrides, field, expected in cases:
        response = _post_new(client, tmp_path, **overrides)
        assert response.status_code == 422, overrides
        errors = _field_errors(response.get_data(as_text=True), field)
        assert len(errors) == 1 and expected in errors[0], (overrides, errors)
    assert db.session.scalar(db.select(db.func.count(Project.id))) == 0


def test_the_next_runs_follow_the_time_zone(client, tmp_path):
    make_project(tmp_path, schedule_cron="0 2 * * *", schedule_timezone="America/New_York")
    text = _card(client, "en")
    first = cron.next_runs("0 2 * * *", "America/New_York")[0]
    assert first.astimezone(UTC).hour in (6, 7)  # 02:00 New York is 07:00 UTC in winter, 06:00 in summer
    assert text.startswith("Schedule: Daily 02:00 (America/New_York) · Next runs: ") and text.count("02:00") == 4
