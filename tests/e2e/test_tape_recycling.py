"""A tape's life in a real browser, with a real worker: define a pool, label a tape into it, back up to it, remove
the project with its backups, see the tape become reusable, mark it expired, and erase it."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def _wait_succeeded(stack, job_id: int) -> None:
    deadline = time.monotonic() + 90
    while (status := stack.query("SELECT status FROM jobs WHERE id = ?", job_id)[0][0]) != "succeeded":
        assert status in ("queued", "running") and time.monotonic() < deadline, status
        time.sleep(0.2)


def test_pool_expiry_recycle_and_erase_from_the_pages(stack, page):
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(stack.url + "/tapes")
    page.fill("#pool-name", "nightly")
    page.fill("#pool-retention", "30")
    page.select_option("#pool-allocation", "job")
    page.click('#save-pool button[type="submit"]')
    expect(page.locator(".flash")).to_contain_text("已保存磁带池 nightly")
    expect(page.locator('tr.pool-row[data-pool="nightly"]')).to_contain_text("每个任务用新磁带")

    page.fill("#label-vtape0", "RECYC1")
    page.fill("#pool-vtape0", "nightly")
    page.click('#drive-vtape0 .label-form button[type="submit"]')
    expect(page.locator('tr.tape-row[data-label="RECYC1"]')).to_contain_text("空白")

    src = stack.root / "srv-tape"
    src.mkdir()
    (src / "a.txt").write_text("to tape\n" * 1000)
    made = stack.flask("projects", "add", "上磁带", "--source", str(src), "--dest-tape", "vtape0", "--pool", "nightly",
                       "--json")
    project_id = json.loads(made.stdout)["id"]
    _wait_succeeded(stack, json.loads(stack.flask("jobs", "run", "上磁带", "--json").stdout)["id"])
    page.goto(stack.url + "/tapes?pool=nightly")
    expect(page.locator('tr.tape-row[data-label="RECYC1"]')).to_contain_text("可追加")
    expect(page.locator("#reusable-tapes")).to_contain_text("没有可重复使用的磁带")

    page.goto(stack.url + f"/backup/projects/{project_id}/edit")
    page.check("#backups-delete")
    page.click('.delete-project button[type="submit"]')
    expect(page.locator(".flash")).to_contain_text("已删除项目 上磁带 及其备份")

    page.goto(stack.url + "/tapes")
    expect(page.locator('tr.reusable-row[data-label="RECYC1"]')).to_contain_text("全部文件已过期，待标记")
    page.click('#recycle-tapes button[type="submit"]')
    expect(page.locator(".flash")).to_contain_text("已标记为过期的磁带：RECYC1")
    expect(page.locator('tr.tape-row[data-label="RECYC1"]')).to_contain_text("已过期")

    page.fill("#erase-vtape0", "RECYC1")
    page.click('#drive-vtape0 .erase-form button[type="submit"]')
    expect(page.locator(".flash")).to_contain_text("已擦除 vtape0 中的磁带 RECYC1")
    assert stack.query("SELECT state FROM tapes WHERE label LIKE 'RECYC1~%'") == [("retired",)]
    assert page.csp_errors == []
