"""An operator's night, in a real browser: create a project, run it with a remark, watch the badges and the
log while a real worker runs the backup, and see a failing job turn red with its reason."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def _make_source(root):
    src = root / "srv" / "projects"
    (src / "客户A").mkdir(parents=True)
    for i in range(60):
        (src / "客户A" / f"drawing-{i:03d}.txt").write_text(f"line {i}\n" * 200)
    # Incompressible bytes make the copy stage last long enough to matter (and to be caught, below).
    (src / "render.bin").write_bytes(os.urandom(48 << 20))
    (src / "cache").mkdir()
    (src / "cache" / "x.tmp").write_text("excluded")
    return src


def test_run_with_a_remark_and_watch_the_card(stack, page, screenshots_dir):
    src = _make_source(stack.root)
    dest = stack.root / "backups"

    # Create the project through the form.
    page.goto(stack.url + "/backup/projects/new")
    page.fill("#name", "设计稿")
    page.fill("#sources", str(src))
    page.fill("#excludes", "*.tmp\ncache/")
    page.fill("#level", "1")
    page.fill("#dest_dir", str(dest))
    page.click("#save-project")
    expect(page.locator(".flash")).to_contain_text("已创建项目 设计稿")

    # Run now with a remark.
    card = page.locator(".project-card", has_text="设计稿")
    card.locator(".run-now").click()
    card.locator("input[name=remark]").fill("首次全量")
    mark, resume = stack.hold_worker_at("copy:start")  # its badge is blue while the worker waits
    card.locator(".run-submit").click()

    job = page.locator("#job-1")
    expect(job.locator(".job-remark")).to_contain_text("首次全量")
    copy_badge = job.locator('[data-stage="copy"]')
    expect(copy_badge).to_have_text("写入目标")
    stack.wait_until_held(mark)
    try:
        expect(copy_badge).to_have_attribute("data-state", "current", timeout=10_000)
        expect(copy_badge).to_have_class("badge bg-primary")
        expect(job.locator('[data-stage="scan"]')).to_have_class("badge bg-success")
        expect(job.locator('[data-stage="finalize"]')).to_have_class("badge bg-secondary")
        expect(job.locator(".log-line").first).to_be_visible()
        job.screenshot(path=str(screenshots_dir / "job-running.png"))
        page.screenshot(path=str(screenshots_dir / "backup-page.png"), full_page=True)
    finally:
        resume.touch()

    expect(copy_badge).to_have_attribute("data-state", "done", timeout=30_000)
    expect(copy_badge).to_have_class("badge bg-success")
    expect(job.locator('[data-stage="finalize"]')).to_have_class("badge bg-success", timeout=10_000)
    expect(job.locator(".job-status")).to_have_attribute("data-status", "succeeded", timeout=10_000)
    expect(job.locator(".progress-bar")).to_have_text("100%")
    # The log filled in by appending, with coloured tags; it grew in place (no inner scroll bar).
    expect(job.locator(".log-line", has_text="written to")).to_be_visible(timeout=10_000)
    assert job.locator(".log-tag.tag-ok").count() > 10 and job.locator(".log-tag.tag-info").count() >= 3
    terminal = job.locator(".terminal")
    assert terminal.evaluate("t => t.scrollHeight <= t.clientHeight + 1 && getComputedStyle(t).overflowY")  \
        == "visible"
    assert page.evaluate("getComputedStyle(document.querySelector('.log-tag.tag-info')).color") \
        == "rgb(34, 211, 238)"  # cyan
    job.screenshot(path=str(screenshots_dir / "job-finished.png"))

    # Polling stopped by itself: no more card requests (they bring the log too) once the job ended.
    requests = []
    page.on("request", lambda r: "/card" in r.url and requests.append(r.url))
    page.wait_for_timeout(2500)
    assert requests == []

    # The history shows the job with its remark; the archive is where the card said.
    page.goto(stack.url + "/backup/history")
    expect(page.locator('tr[data-job="1"] .job-remark')).to_have_text("首次全量")
    assert len(list(dest.glob("*_job1_part001.tar.gz"))) == 1
    page.goto(stack.url + "/backup/jobs/1")
    expect(page.locator("#job-1 .job-status")).to_have_attribute("data-status", "succeeded")
    page.screenshot(path=str(screenshots_dir / "job-page.png"))
    assert page.csp_errors == []


def test_a_failed_job_shows_a_red_badge_and_the_error(stack, page, tmp_path):
    src = stack.root / "vanishing"
    src.mkdir()
    (src / "a.txt").write_text("a")
    stack.flask("projects", "add", "会消失", "--source", str(src), "--dest-dir", str(stack.root / "b2"))
    (src / "a.txt").unlink()
    src.rmdir()  # the disk went away before the night's run

    page.goto(stack.url + "/backup")
    card = page.locator(".project-card", has_text="会消失")
    card.locator(".run-now").click()
    card.locator(".run-submit").click()
    job = page.locator(".job-card", has_text="会消失")
    expect(job.locator(".job-status")).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(job.locator('[data-stage="scan"]')).to_have_class("badge bg-danger")
    expect(job.locator(".job-error")).to_contain_text("不存在或不可读")  # SourceMissing, in the page's language
    expect(job.locator(".log-tag.tag-error").first).to_be_visible()
    assert page.csp_errors == []


def test_language_switch_and_cancel_in_the_browser(stack, page):
    page.goto(stack.url + "/backup")
    page.click("#language-switch >> text=English")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".run-now").first).to_have_text("Run now")
    # Cancel a queued job from its card, through the confirmation dialog (the worker is stopped so the job
    # stays queued).
    stack.stop_worker()
    try:
        card = page.locator(".project-card", has_text="设计稿")
        card.locator(".run-now").click()
        card.locator(".run-submit").click()
        job = page.locator(".job-card", has_text="设计稿").last
        page.once("dialog", lambda dialog: dialog.accept())
        job.locator(".job-cancel").click()
        expect(job.locator(".job-status")).to_have_attribute("data-status", "cancelled", timeout=10_000)
        expect(job.locator('[data-stage="scan"]')).to_have_text("Scan files")
    finally:
        stack.start_worker()
    assert page.csp_errors == []


def _append_log(stack, job_id, count, start):
    """Log lines as a worker writes them (the worker itself is stopped: the job stays queued and polled)."""
    import sqlite3

    conn = sqlite3.connect(stack.data / "backup_system.db", timeout=10)
    with conn:
        conn.executemany(
            "INSERT INTO job_logs (job_id, at, tag, message) VALUES (?, CURRENT_TIMESTAMP, 'PACK', ?)",
            [(job_id, f"/srv/line-{start + i:04d}") for i in range(count)],
        )
    conn.close()


def test_the_log_follows_the_end_unless_the_operator_scrolled_up(stack, page):
    (stack.root / "long-log").mkdir()
    stack.flask("projects", "add", "长日志", "--source", str(stack.root / "long-log"), "--dest-dir",
                str(stack.root / "b3"))
    stack.stop_worker()
    try:
        job_id = int(stack.flask("jobs", "run", "长日志").stdout.strip())
        polls = []
        page.on("request", lambda r: "/backup/jobs/" in r.url and polls.append(r.url))
        page.goto(f"{stack.url}/backup/jobs/{job_id}")
        _append_log(stack, job_id, 120, 0)
        expect(page.locator(".log-line", has_text="/srv/line-0119")).to_be_visible(timeout=10_000)
        # One request a second for the open job: the card's poll, carrying the log's cursor.
        assert polls[0] == f"{stack.url}/backup/jobs/{job_id}" and len(polls) >= 2
        assert all(re.fullmatch(rf"{re.escape(stack.url)}/backup/jobs/{job_id}/card\?after=\d+", url)
                   for url in polls[1:]), polls
        at_end = "window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 48"
        # Polled, not slept: on a loaded machine the scroll may land a few frames after the swap.
        # (wait_for_function would evaluate a string, which the page's CSP rightly forbids.)
        for _ in range(50):
            if page.evaluate(at_end):
                break
            page.wait_for_timeout(100)
        assert page.evaluate(at_end), "the page did not follow the new lines"
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(200)
        _append_log(stack, job_id, 60, 120)
        expect(page.locator(".log-line", has_text="/srv/line-0179")).to_be_attached(timeout=10_000)
        page.wait_for_timeout(300)
        assert page.evaluate("window.scrollY") == 0, "the page jumped although the operator had scrolled up"
        # One scroll bar: the terminal grew with its lines instead of scrolling inside.
        assert page.evaluate("(() => { const t = document.querySelector('.terminal');"
                             " return t.scrollHeight <= t.clientHeight + 1; })()")
    finally:
        stack.start_worker()
