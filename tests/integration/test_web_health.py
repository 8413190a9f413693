"""The health panel on /backup: each project's protection against its schedule, its last verify and its
destination's space, each pool's free capacity, in a constant number of statements."""

from __future__ import annotations

import re
from datetime import timedelta

from stagebackup.backup import health
from stagebackup.dbtypes import utcnow
from stagebackup.extensions import db
from stagebackup.models import Job
from stagebackup.tape_models import Tape

from .web_support import count_queries, make_project


def _job(project, kind="backup", status="succeeded", hours_ago=1.0) -> Job:
    at = utcnow() - timedelta(hours=hours_ago)
    job = Job(project_id=project.id, project_name=project.name, kind=kind, flow="archive_dir", status=status,
              created_at=at, started_at=at, finished_at=at)
    db.session.add(job)
    db.session.commit()
    return job


def _states(html: str) -> dict[str, str]:
    return dict(re.findall(r'class="health-project" data-project="([^"]+)" data-state="(\w+)"', html))


def test_states_follow_the_schedule_interval_or_the_configured_age(app, client, tmp_path):
    assert 'id="health-panel"' not in client.get("/backup").get_data(as_text=True)  # nothing to judge yet
    app.config["HEALTH_MAX_AGE_H"] = 48
    daily = {"schedule_cron": "0 2 * * *", "schedule_timezone": "UTC"}
    fresh = make_project(tmp_path, "fresh", **daily)
    _job(fresh, hours_ago=20)
    _job(fresh, status="failed", hours_ago=0.5)  # a failed run does not refresh protection
    stale = make_project(tmp_path, "stale", **daily)
    _job(stale, hours_ago=40)  # past 1.5 × 24 h
    old = make_project(tmp_path, "old", **daily)
    _job(old, hours_ago=80)  # past 3 × 24 h
    make_project(tmp_path, "never", **daily)
    manual = make_project(tmp_path, "manual")  # no schedule: 48 h, red past 96 h
    _job(manual, hours_ago=50)
    verified = _job(fresh, kind="verify", status="failed", hours_ago=2)

    html = client.get("/backup").get_data(as_text=True)
    assert _states(html) == {"fresh": "green", "stale": "yellow", "old": "red", "never": "red",
                             "manual": "yellow"}
    assert "4 个项目需要注意" in html
    row = html[html.index('data-project="fresh"'):]
    row = row[:row.index("</tr>")]
    assert f"#{verified.id}" in row and "失败" in row and "每 1天 一次" in row
    assert "无计划：48 小时内" in html


def test_a_project_without_a_schedule_has_its_own_age_limit(app, client, tmp_path):
    project = make_project(tmp_path, "own-limit", max_age_h=10)
    _job(project, hours_ago=12)
    assert _states(client.get("/backup").get_data(as_text=True)) == {"own-limit": "yellow"}
    result = app.test_cli_runner().invoke(args=["projects", "edit", "own-limit", "--max-age-h", "24"])
    assert result.exit_code == 0, result.output
    html = client.get("/backup").get_data(as_text=True)
    assert _states(html) == {"own-limit": "green"} and "无计划：24 小时内" in html
    refused = app.test_cli_runner().invoke(args=["projects", "edit", "own-limit", "--max-age-h", "0"])
    assert refused.exit_code == 2
    form = client.get(f"/backup/projects/{project.id}/edit").get_data(as_text=True)
    assert 'name="max_age_h"' in form and 'value="24"' in form


def test_a_weekday_schedule_is_held_to_its_longest_gap(app, tmp_path):
    weekdays = make_project(tmp_path, "weekdays", schedule_cron="0 2 * * 1-5", schedule_timezone="UTC")
    assert health.schedule_interval(weekdays) == timedelta(days=3)
    weekdays.schedule_enabled = False
    assert health.schedule_interval(weekdays) is None


def test_destination_space_and_pool_capacity(app, client, tmp_path):
    make_project(tmp_path, "disk", dest_dir=str(tmp_path / "not-made-yet"))
    db.session.add_all([
        Tape(label="A1", pool="night", uuid="u1", capacity_bytes=10 << 30, bytes_used=4 << 30),
        Tape(label="A2", pool="night", uuid="u2", capacity_bytes=10 << 30, bytes_used=10 << 30, state="full"),
        Tape(label="A3", pool="night", uuid="u3", capacity_bytes=10 << 30, write_protected=True),
        Tape(label="B1", pool="week", uuid="u4", capacity_bytes=5 << 30, bytes_used=1 << 30),
    ])
    db.session.commit()
    loaded = health.load()
    assert loaded.projects[0].dest_space.total > 0  # the nearest existing parent's file system
    assert [(p.pool, p.tapes, p.free_bytes) for p in loaded.pools] == [("night", 3, 6 << 30), ("week", 1, 4 << 30)]
    html = client.get("/backup").get_data(as_text=True)
    assert 'data-pool="night"' in html and "6.0 GiB" in html


def test_the_panel_costs_the_same_statements_for_3_or_30_projects(app, tmp_path):
    def cost() -> int:
        db.session.remove()
        with count_queries() as seen:
            health.load()
        return len(seen)

    for i in range(3):
        _job(make_project(tmp_path, f"p{i}", schedule_cron="0 2 * * *"), kind="verify")
    few = cost()
    for i in range(3, 30):
        _job(make_project(tmp_path, f"p{i}"))
    assert cost() == few == 2
