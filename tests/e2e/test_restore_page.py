"""Restoring, in a real browser: a real worker backs up a hostile tree; the operator finds the backup on
/restore, browses into its non-UTF-8 folder, searches by name, picks a folder and files with the checkboxes
and restores them into the restore root, where they land byte for byte. A target outside the restore roots is
refused on the page and starts nothing; an unchanged sync mirror's second run browses like the first."""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import expect

from stagebackup.paths import path_token
from tests.conftest import build_hostile_tree
from tests.treecompare import snapshot

pytestmark = pytest.mark.slow

FINISHED = ("succeeded", "warning", "failed", "cancelled")
STATUS_JS = "document.querySelector('.job-card .job-status')?.dataset.status"
JOB_PAGE = re.compile(r"/backup/jobs/\d+$")  # restore jobs have the shared job page and card


def _wait_for_job(stack, job_id: int, timeout: float = 30) -> str:
    """A job's status once the real worker ended it (read from the database, not the page)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [(status,)] = stack.query("SELECT status FROM jobs WHERE id = ?", job_id)
        if status in FINISHED:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s (status {status})")


def _wait_for_card(page, timeout: float = 30) -> str:
    """The job card's status once it shows a finished job. Polled with page.evaluate: the page's CSP
    forbids the string evaluation page.wait_for_function would need."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = page.evaluate(STATUS_JS)
        if status in FINISHED:
            return status
        page.wait_for_timeout(100)
    raise AssertionError(f"the job card still shows {status!r} after {timeout} s")


def _run_backup(stack, name: str) -> int:
    job_id = int(stack.flask("jobs", "run", name).stdout.strip())
    status = _wait_for_job(stack, job_id)
    assert status in ("succeeded", "warning"), stack.query("SELECT error_message FROM jobs WHERE id = ?", job_id)
    return job_id


def _open_folder(page, folder) -> None:
    """From a backup's browse page, click down the folders of an absolute path, one listing at a time."""
    for part in str(folder).strip("/").split("/"):
        page.locator("#restore-listing tr[data-kind=dir] a", has_text=part).first.click()
        expect(page.locator("#restore-path .breadcrumb-item").last).to_have_text(part)


def _row(page, path):
    """A listing row, found by the exact bytes its checkbox carries."""
    token = path_token(os.fsencode(path).lstrip(b"/"))
    return page.locator("#restore-listing tbody tr", has=page.locator(f'input[value="{token}"]'))


@pytest.fixture(scope="module")
def hostile_backup(stack):
    src = build_hostile_tree(stack.root / "hostile")
    stack.flask("projects", "add", "异名树", "--source", str(src), "--dest-dir", str(stack.root / "hostile-dest"))
    return src, _run_backup(stack, "异名树")


def test_browse_search_and_restore_a_selection(stack, page, hostile_backup, screenshots_dir):
    src, backup_id = hostile_backup
    [(project_id,)] = stack.query("SELECT project_id FROM jobs WHERE id = ?", backup_id)

    # The finished backup is listed under its project.
    page.goto(stack.url + "/restore")
    page.locator("#restore-projects a", has_text="异名树").click()
    expect(page.locator("#restore-projects a.active")).to_contain_text("异名树")
    row = page.locator(f'#restore-backups tr[data-job="{backup_id}"]')
    expect(row).to_contain_text(f"#{backup_id}")
    row.get_by_role("link", name="浏览并还原").click()
    expect(page).to_have_url(f"{stack.url}/restore/backups/{backup_id}")

    # A name search finds the file with a newline in its name, in the non-UTF-8 folder; its path is shown
    # with the undecodable bytes escaped.
    page.fill("#restore-search", "inner")
    page.press("#restore-search", "Enter")
    results = page.locator("#restore-results tbody tr")
    expect(results).to_have_count(1)
    found = str(src).lstrip("/") + "/dir-\\xfe\\xfd/inner\\nnewline.txt"
    expect(results.first.locator("td").nth(1)).to_have_text(found)
    page.get_by_role("link", name="返回目录").click()
    expect(page.locator("#restore-listing")).to_be_visible()

    # Down to the source folder and into the non-UTF-8 folder, by clicking.
    _open_folder(page, src)
    expect(_row(page, src / "script.sh")).to_have_attribute("data-kind", "file")
    page.locator("#restore-listing a", has_text="dir-\\xfe\\xfd").click()
    expect(page.locator("#restore-path .breadcrumb-item").last).to_have_text("dir-\\xfe\\xfd")
    entries = page.locator("#restore-listing tbody tr")
    expect(entries).to_have_count(1)
    expect(entries.first).to_have_attribute("data-kind", "file")
    # The newline is shown as an escape, not as a space that would pass for another file's name.
    expect(entries.first.locator("td").nth(1)).to_have_text("inner\\nnewline.txt")

    # Back up one level through the breadcrumbs.
    page.locator("#restore-path .breadcrumb-item a", has_text=src.name).click()
    expect(page.locator("#restore-path .breadcrumb-item").last).to_have_text(src.name)

    # Pick two folders and a file (non-UTF-8 names, a 300-byte path), restore them inside the restore root.
    picked = [b"dir-\xfe\xfd", b"level00-" + b"x" * 20, b"latin1-\xe9t\xe9-\xff.bin"]
    for name in picked:
        _row(page, os.fsencode(src) + b"/" + name).locator("input[type=checkbox]").check()
    target = stack.data / "restore" / "选中的"
    page.fill("#restore-target", str(target))
    page.screenshot(path=str(screenshots_dir / "restore-browser.png"))
    page.locator("#restore-submit").click()
    expect(page).to_have_url(JOB_PAGE)
    card = page.locator(".job-card")
    expect(card).to_contain_text(str(target))
    assert _wait_for_card(page) == "succeeded", card.inner_text()
    for stage in ("locate", "read", "extract", "finalize"):
        expect(card.locator(f'[data-stage="{stage}"]')).to_have_attribute("data-state", "done")
    expect(card.locator(".progress-bar")).to_have_text("100%")
    expect(card.locator(".job-kind")).to_have_text("还原")
    expect(page.locator(".terminal .log-line", has_text="restored ")).to_be_visible()  # the shared log

    # On disk: exactly the picked entries, byte for byte (content, modes, mtimes, links).
    restored = target / str(src).lstrip("/")
    assert sorted(os.listdir(os.fsencode(restored))) == sorted(picked)
    expected = {rel: info for rel, info in snapshot(src).items()
                if any(rel == name or rel.startswith(name + b"/") for name in picked)}
    assert snapshot(restored) == expected
    assert page.csp_errors == []


def test_a_target_outside_the_restore_roots_is_refused_on_the_page(stack, page, hostile_backup):
    src, backup_id = hostile_backup
    jobs_before = stack.query("SELECT COUNT(*) FROM jobs")
    outside = stack.root / "not-a-restore-root"
    page.goto(f"{stack.url}/restore/backups/{backup_id}")
    _open_folder(page, src)
    _row(page, src / "script.sh").locator("input[type=checkbox]").check()
    page.fill("#restore-target", str(outside))
    page.select_option("#restore-conflict", "rename")
    page.fill("input[name=remark]", "客户要旧版")
    page_url = page.url
    page.locator("#restore-submit").click()
    error = page.locator("#restore-target-error")  # on the field it concerns
    expect(error).to_contain_text("不在允许的恢复根目录之内")  # in the page's language
    expect(error).to_contain_text(str(outside))
    expect(page.locator("#restore-target")).to_have_class(re.compile(r"\bis-invalid\b"))
    assert page.url == page_url  # the page's address, not the POST's: a reload does not post again
    assert stack.query("SELECT COUNT(*) FROM jobs") == jobs_before
    assert not outside.exists()

    # Nothing the operator did is lost: same folder, same ticks, the target as typed, to correct in place.
    expect(page.locator("#restore-path .breadcrumb-item").last).to_have_text(src.name)
    expect(_row(page, src / "script.sh").locator("input[type=checkbox]")).to_be_checked()
    expect(page.locator("#restore-listing input[type=checkbox]:checked")).to_have_count(1)
    expect(page.locator("#restore-target")).to_have_value(str(outside))
    expect(page.locator("#restore-conflict")).to_have_value("rename")
    expect(page.locator("input[name=remark]")).to_have_value("客户要旧版")
    # The folder picker (in the form the refusal swapped in) offers the restore roots and fills the field.
    page.click('[data-picker-for="restore-target"]')
    restore_root = stack.data / "restore"
    page.locator(f'#folder-picker li.picker-node[data-path="{restore_root}"] .picker-use').first.click()
    expect(page.locator("#folder-picker")).to_be_hidden()
    expect(page.locator("#restore-target")).to_have_value(str(restore_root))
    target = stack.data / "restore" / "corrected"
    page.fill("#restore-target", str(target))
    page.locator("#restore-submit").click()
    expect(page).to_have_url(JOB_PAGE)
    assert _wait_for_card(page) == "succeeded", page.locator(".job-card").inner_text()
    restored = target / str(src).lstrip("/")
    assert os.listdir(restored) == ["script.sh"]
    assert (restored / "script.sh").read_bytes() == (src / "script.sh").read_bytes()
    assert page.csp_errors == []


def test_an_unchanged_mirror_s_second_run_browses_and_restores_like_the_first(stack, page):
    src = stack.root / "素材"
    (src / "客户B").mkdir(parents=True)
    (src / "客户B" / "logo_v3.ai").write_bytes(os.urandom(4096))
    with open(os.fsencode(src) + b"/caf\xe9.txt", "wb") as fh:  # not valid UTF-8
        fh.write(b"latin-1 name\n")
    stack.flask("projects", "add", "镜像", "--mode", "sync", "--source", str(src), "--dest-dir",
                str(stack.root / "mirror"))
    first = _run_backup(stack, "镜像")
    second = _run_backup(stack, "镜像")
    # The second run found the mirror unchanged and refers to the first run's catalog.
    assert stack.query("SELECT catalog_job_id FROM jobs WHERE id = ?", second) == [(first,)]
    assert stack.query("SELECT COUNT(*) FROM archive_members WHERE job_id = ?", second) == [(0,)]

    page.goto(stack.url + "/restore")
    page.locator("#restore-projects a", has_text="镜像").click()
    expect(page.locator("#restore-backups tbody tr")).to_have_count(2)
    page.locator(f'#restore-backups tr[data-job="{second}"]').get_by_role("link", name="浏览并还原").click()
    expect(page).to_have_url(f"{stack.url}/restore/backups/{second}")
    page.locator("#restore-listing tr[data-kind=dir] a", has_text=src.name).click()
    listing = page.locator("#restore-listing tbody")
    names = "td:nth-child(2)"
    expect(listing.locator(f"tr[data-kind=dir] {names}")).to_have_text(["客户B"])
    expect(listing.locator("tr[data-kind=dir] i.bi-folder-fill")).to_have_count(1)  # a Bootstrap icon, not an emoji
    expect(listing.locator(f"tr[data-kind=file] {names}")).to_have_text(["caf\\xe9.txt"])
    page.locator("#restore-listing a", has_text="客户B").click()
    expect(listing.locator(f"tr[data-kind=file] {names}")).to_have_text(["logo_v3.ai"])

    # Restoring the second run (nothing ticked: everything) reads the mirror the first run catalogued.
    target = stack.data / "restore" / "mirror-run2"
    page.fill("#restore-target", str(target))
    page.locator("#restore-submit").click()
    expect(page).to_have_url(JOB_PAGE)  # htmx posts in place, then goes to the job's page
    assert _wait_for_card(page) == "succeeded", page.locator(".job-card").inner_text()
    assert snapshot(target / src.name) == snapshot(src)
    assert page.csp_errors == []
