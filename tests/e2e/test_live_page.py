"""Nothing stale, in a real browser against gunicorn and a real worker: the backup page follows jobs started
from the CLI and from the page (drive card, project badge, recently finished list) without a reload, its
pollers rest while the tab is hidden, and a job's page opens at its top with a long log below."""

from __future__ import annotations

import os
import re
import sqlite3
import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow

SHOWN_WITHIN_MS = 3_000  # the page polls every second and promises the truth within two; slack for load


def _wait_for_row(stack, sql, *params, timeout_s=90.0):
    """The first row the query returns, polled with a deadline (the worker writes; we only read)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = stack.query(sql, *params)
        if rows:
            return rows[0]
        time.sleep(0.05)
    raise AssertionError(f"no row for {sql} {params} within {timeout_s} s")


def _project_id(stack, name) -> int:
    return stack.query("SELECT id FROM projects WHERE name = ?", name)[0][0]


def _mark_page(page):
    """A flag in the page's window: still there later means the page was never reloaded."""
    page.evaluate("window.notReloaded = true")


def _still_the_same_page(page):
    assert page.evaluate("window.notReloaded === true"), "the page was reloaded"


def test_the_backup_page_follows_jobs_from_the_cli_and_the_page_without_reload(stack, page):
    src = stack.root / "tape-src"
    src.mkdir()
    (src / "render.bin").write_bytes(os.urandom(16 << 20))
    stack.flask("tape", "label", "vtape0", "LIVE01")
    stack.flask("projects", "add", "磁带项目", "--source", str(src), "--dest-tape", "vtape0")
    stack.flask("projects", "add", "目录项目", "--source", str(src), "--dest-dir", str(stack.root / "dir-dest"),
                "--level", "1")
    tape_project = _project_id(stack, "磁带项目")

    page.goto(stack.url + "/backup")
    _mark_page(page)
    drive = page.locator('#drive-panel [data-drive="vtape0"]')
    badge = page.locator(f"#last-backup-{tape_project} .badge")
    recent = page.locator("#recent-jobs")
    expect(drive.locator(".drive-busy")).to_have_count(0)
    expect(badge).to_have_count(0)  # never backed up

    # A job from the CLI: its card appears, the drive turns busy with it, the project's badge runs.
    mark, resume = stack.hold_worker_at("copy-thread")  # inside the archive's copy to the tape: the drive is busy
    job_id = int(stack.flask("jobs", "run", "磁带项目").stdout.strip())
    stack.wait_until_held(mark)
    try:
        expect(drive.locator(".drive-busy")).to_have_text(f"忙：任务 #{job_id}", timeout=SHOWN_WITHIN_MS)
        expect(badge).to_have_attribute("data-status", "running", timeout=SHOWN_WITHIN_MS)
        expect(page.locator(f"#job-{job_id}")).to_be_visible()
        expect(recent.locator(f'tr[data-job="{job_id}"]')).to_have_count(0)
    finally:
        resume.touch()

    # It ends: the drive is idle again, the badge says how it went, the job heads the recent list.
    status = _wait_for_row(stack, "SELECT status FROM jobs WHERE id = ? AND finished_at IS NOT NULL", job_id)[0]
    assert status == "succeeded"
    _wait_for_row(stack, "SELECT 1 FROM drives WHERE name = 'vtape0' AND busy_job_id IS NULL")
    expect(drive).to_contain_text("空闲", timeout=SHOWN_WITHIN_MS)
    expect(drive.locator(".drive-busy")).to_have_count(0)
    expect(badge).to_have_attribute("data-status", "succeeded", timeout=SHOWN_WITHIN_MS)
    expect(recent.locator("tbody tr").first).to_have_attribute("data-job", str(job_id), timeout=SHOWN_WITHIN_MS)
    _still_the_same_page(page)

    # A job from the page (the run form posts and comes back to this page), then watched without reload.
    dir_project = _project_id(stack, "目录项目")
    card = page.locator(".project-card", has_text="目录项目")
    card.locator(".run-now").click()
    card.locator(".run-submit").click()
    expect(page.locator(".flash")).to_contain_text("已为 目录项目 排队任务")
    second = int(re.search(r"#(\d+)", page.locator(".flash").inner_text()).group(1))
    _mark_page(page)
    dir_badge = page.locator(f"#last-backup-{dir_project} .badge")
    _wait_for_row(stack, "SELECT 1 FROM jobs WHERE id = ? AND finished_at IS NOT NULL", second)
    expect(dir_badge).to_have_attribute("data-status", "succeeded", timeout=SHOWN_WITHIN_MS)
    expect(recent.locator("tbody tr").first).to_have_attribute("data-job", str(second), timeout=SHOWN_WITHIN_MS)
    expect(recent.locator(f'tr[data-job="{job_id}"]')).to_have_count(1)
    expect(badge).to_have_attribute("data-status", "succeeded")  # the tape project's badge kept its job
    expect(drive).to_contain_text("空闲")
    _still_the_same_page(page)
    assert page.csp_errors == []


def test_pollers_rest_while_the_tab_is_hidden_and_resume_when_it_shows(stack, page):
    page.goto(stack.url + "/backup")
    expect(page.locator("#live-poller")).to_be_attached()
    polls = []
    page.on("request", lambda request: "/backup/live" in request.url and polls.append(request.url))
    # Count the poller's ticks that app.js cancelled (a listener added after app.js's sees its verdict).
    page.evaluate("""() => {
        window.skippedPolls = 0;
        document.addEventListener('htmx:beforeRequest', (event) => {
            if (event.detail.elt.id === 'live-poller' && event.defaultPrevented) window.skippedPolls += 1;
        });
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    deadline = time.monotonic() + 10
    while page.evaluate("window.skippedPolls") < 1:
        assert time.monotonic() < deadline, "the poller did not tick while hidden"
        page.wait_for_timeout(50)
    sent_before = len(polls)
    while page.evaluate("window.skippedPolls") < 3:  # three more ticks, all held back
        assert time.monotonic() < deadline + 10, "the poller stopped ticking"
        page.wait_for_timeout(50)
    assert len(polls) == sent_before, "a poll was sent while the tab was hidden"

    with page.expect_request(lambda request: "/backup/live" in request.url, timeout=SHOWN_WITHIN_MS):
        page.evaluate("""() => {
            delete document.visibilityState;
            document.dispatchEvent(new Event('visibilitychange'));
        }""")
    assert page.csp_errors == []


def _append_log(stack, job_id, lines):
    conn = sqlite3.connect(stack.data / "backup_system.db", timeout=10)
    with conn:
        conn.executemany("INSERT INTO job_logs (job_id, at, tag, message) VALUES (?, CURRENT_TIMESTAMP, ?, ?)",
                         [(job_id, tag, message) for tag, message in lines])
    conn.close()


def test_a_job_page_opens_at_the_top_and_a_long_log_is_read_by_tag_error_and_download(stack, page):
    (stack.root / "quiet").mkdir()
    stack.flask("projects", "add", "长日志", "--source", str(stack.root / "quiet"), "--dest-dir",
                str(stack.root / "quiet-dest"))
    stack.stop_worker()  # the job stays queued: its page keeps polling while we look
    try:
        job_id = int(stack.flask("jobs", "run", "长日志").stdout.strip())
        _append_log(stack, job_id, [("PACK", f"/srv/early-{i:05d}") for i in range(1500)]
                    + [("ERROR", "cannot read /srv/broken")]
                    + [("SKIP" if i % 10 == 0 else "PACK", f"/srv/late-{i:05d}") for i in range(3000)])
        page.goto(f"{stack.url}/backup/jobs/{job_id}")
        expect(page.locator(".log-line").last).to_contain_text("/srv/late-02999")
        assert page.evaluate("document.documentElement.scrollHeight > 3 * window.innerHeight")  # a long page
        assert page.evaluate("window.scrollY") == 0
        expect(page.locator(".job-status")).to_be_in_viewport()
        expect(page.locator(".stage-timings")).to_be_in_viewport()
        expect(page.locator("h2", has_text="归档")).to_be_in_viewport()
        # One scroll bar, the page's: neither the terminal nor its lines scroll by themselves.
        for selector in (".terminal", ".terminal-lines"):
            overflow = page.evaluate("(selector) => { const s = getComputedStyle(document.querySelector(selector));"
                                     " return [s.overflowY, s.overflowX]; }", selector)
            assert not {"auto", "scroll"} & set(overflow), (selector, overflow)
        assert page.evaluate("(() => { const t = document.querySelector('.terminal');"
                             " return t.scrollHeight <= t.clientHeight + 1; })()")
        # New lines while the operator reads the top: the page stays where it is.
        _append_log(stack, job_id, [("INFO", "a line written meanwhile")])
        expect(page.locator(".log-line", has_text="a line written meanwhile")).to_be_attached(timeout=10_000)
        assert page.evaluate("window.scrollY") == 0, "the page followed the log although the operator was at the top"

        # Jump to the first error, far back (not in the 500 lines shown): it is loaded on the server.
        assert page.locator(".log-line", has_text="cannot read /srv/broken").count() == 0
        page.click(".log-first-error")
        error_line = page.locator(".log-line", has_text="cannot read /srv/broken")
        expect(error_line.locator(".log-tag")).to_have_text("[ERROR]")
        deadline = time.monotonic() + 10  # the browser scrolls to the anchor once the page has loaded
        while not 0 <= error_line.evaluate("line => line.getBoundingClientRect().top") < 200:
            assert time.monotonic() < deadline, "the page did not scroll the first error to the top"
            page.wait_for_timeout(50)
        assert page.evaluate("window.scrollY") > 0

        # Only one tag's lines, filtered on the server.
        page.click('.log-filter [data-tag="SKIP"]')
        expect(page.locator('.log-filter [data-tag="SKIP"]')).to_have_class(re.compile(r"\bactive\b"))
        tags = page.locator(".terminal .log-tag").all_inner_texts()
        assert len(tags) == 300 and set(tags) == {"[SKIP]"}

        # The whole log as a file.
        with page.expect_download() as download:
            page.click(".log-download")
        assert download.value.suggested_filename == f"job-{job_id}.log"
        text = open(download.value.path(), encoding="utf-8").read()
        lines = text.splitlines()
        assert len(lines) >= 4502 and lines[-1].endswith("[INFO] a line written meanwhile")
        assert "[ERROR] cannot read /srv/broken" in lines[lines.index(next(x for x in lines if "early-01499" in x)) + 1]
    finally:
        stack.start_worker()
    assert page.csp_errors == []
