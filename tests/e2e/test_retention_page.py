"""The project page's retention section in a real browser: what the saved policy would prune, and why."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def _wait_finished(stack, job_id: int) -> str:
    deadline = time.monotonic() + 60
    while True:
        status = stack.query("SELECT status FROM jobs WHERE id = ?", job_id)[0][0]
        if status in ("succeeded", "warning", "failed", "cancelled", "interrupted"):
            return status
        assert time.monotonic() < deadline, f"job {job_id} is still {status}"
        time.sleep(0.2)


def test_the_edit_page_lists_what_the_policy_would_prune_and_why(stack, page, screenshots_dir):
    src = stack.root / "srv-retention"
    src.mkdir()
    (src / "a.txt").write_text("retention\n")
    made = stack.flask("projects", "add", "留存演示", "--source", str(src), "--dest-dir",
                       str(stack.root / "backups-retention"), "--json")
    assert made.returncode == 0, made.stderr
    project_id = json.loads(made.stdout)["id"]
    jobs = []
    for _ in range(2):
        run = stack.flask("jobs", "run", "留存演示", "--json")
        assert run.returncode == 0, run.stderr
        jobs.append(json.loads(run.stdout)["id"])
        assert _wait_finished(stack, jobs[-1]) == "succeeded"
    assert stack.flask("projects", "edit", "留存演示", "--keep-last", "1").returncode == 0

    page.goto(stack.url + f"/backup/projects/{project_id}/edit")
    section = page.locator("fieldset.retention")
    expect(section.locator("legend")).to_have_text("保留策略")
    expect(page.locator("#keep_last")).to_have_value("1")
    expect(section.locator(f"tr.retention-prune[data-job='{jobs[0]}']")).to_contain_text("超出保留策略")
    expect(section.locator(f"tr.retention-keep[data-job='{jobs[1]}']")).to_contain_text("属于最近 1 个")
    section.screenshot(path=str(screenshots_dir / "retention-policy.png"))

    page.check("input[name=mode][value=sync]")  # a sync mirror keeps no history: the section hides
    expect(section).to_be_hidden()
