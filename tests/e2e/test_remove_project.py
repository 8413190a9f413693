"""Removing a project in a real browser asks what to do with its backups: kept by default (still on disk and
restorable), or deleted as well (the archive files gone, the job history kept)."""

from __future__ import annotations

import json
import os
import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def _project_with_a_backup(stack, name: str) -> tuple[int, int, str]:
    src = stack.root / f"srv-{name}"
    src.mkdir()
    (src / "a.txt").write_text(f"{name}\n" * 100)
    made = stack.flask("projects", "add", name, "--source", str(src), "--dest-dir", str(stack.root / f"dest-{name}"),
                       "--json")
    project_id = json.loads(made.stdout)["id"]
    job_id = json.loads(stack.flask("jobs", "run", name, "--json").stdout)["id"]
    deadline = time.monotonic() + 60
    while (status := stack.query("SELECT status FROM jobs WHERE id = ?", job_id)[0][0]) != "succeeded":
        assert status in ("queued", "running") and time.monotonic() < deadline, status
        time.sleep(0.2)
    [(path,)] = stack.query("SELECT path FROM archives WHERE job_id = ?", job_id)
    return project_id, job_id, path if isinstance(path, str) else os.fsdecode(path)


def _remove(page, stack, project_id: int, choice: str | None) -> None:
    page.goto(stack.url + f"/backup/projects/{project_id}/edit")
    expect(page.locator("#backups-keep")).to_be_checked()  # keeping them is the default
    if choice:
        page.check(choice)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('.delete-project button[type="submit"]')


def test_removal_keeps_the_backups_unless_asked_to_delete_them(stack, page):
    kept_id, kept_job, kept_path = _project_with_a_backup(stack, "保留备份")
    _remove(page, stack, kept_id, None)
    expect(page.locator(".flash")).to_contain_text("已删除项目 保留备份；它的备份和任务历史保留")
    assert os.path.exists(kept_path)
    assert stack.query("SELECT expired_at FROM archives WHERE job_id = ?", kept_job) == [(None,)]
    page.goto(stack.url + "/restore?orphans=1")
    expect(page.locator("body")).to_contain_text("保留备份")

    gone_id, gone_job, gone_path = _project_with_a_backup(stack, "删除备份")
    _remove(page, stack, gone_id, "#backups-delete")
    expect(page.locator(".flash")).to_contain_text("已删除项目 删除备份 及其备份")
    assert not os.path.exists(gone_path)
    assert stack.query("SELECT expired_at IS NOT NULL FROM archives WHERE job_id = ?", gone_job) == [(1,)]
    assert stack.query("SELECT count(*) FROM projects WHERE name = '删除备份'") == [(0,)]
    [(details,)] = stack.query("SELECT details FROM audit_events WHERE action = 'project.remove' AND target = ?",
                               "删除备份")
    assert json.loads(details)["backups"] == "deleted"
    assert page.csp_errors == []
