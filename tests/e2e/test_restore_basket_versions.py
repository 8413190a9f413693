"""The basket and a file's versions, in a real browser: ticks made in one folder, another folder and a search
are all kept and listed with their count and size before the restore, which takes exactly them; overwrite
waits for its confirmation; 历史版本 lists both backups of a file and restores the older one."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from stagebackup.paths import path_token
from tests.e2e.test_restore_page import JOB_PAGE, _open_folder, _row, _run_backup, _wait_for_card

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_backups(stack):
    src = stack.root / "篮子"
    for folder, files in (("客户A", {"logo_v3.ai": 3072, "notes.txt": 10}), ("客户B", {"plan.pdf": 2048})):
        (src / folder).mkdir(parents=True)
        for name, size in files.items():
            (src / folder / name).write_bytes(b"1" * size)
    stack.flask("projects", "add", "篮子", "--source", str(src), "--dest-dir", str(stack.root / "basket-dest"))
    first = _run_backup(stack, "篮子")
    (src / "客户A" / "logo_v3.ai").write_bytes(b"2" * 5000)
    second = _run_backup(stack, "篮子")
    return src, first, second


def _box(page, path):
    return _row(page, path).locator("input[type=checkbox]")


def test_ticks_survive_folders_and_searches_and_are_listed_before_the_restore(stack, page, two_backups):
    src, _first, second = two_backups
    page.goto(f"{stack.url}/restore/backups/{second}")
    _open_folder(page, src / "客户A")
    _box(page, src / "客户A" / "logo_v3.ai").check()
    basket = page.locator("#restore-basket")
    expect(page.locator("#restore-basket-count")).to_have_text("1 项")

    # Another folder: the first tick stays in the panel.
    page.locator("#restore-path .breadcrumb-item a", has_text=src.name).click()
    expect(basket).to_contain_text("logo_v3.ai")
    _box(page, src / "客户B").check()
    expect(page.locator("#restore-basket-count")).to_have_text("2 项")

    # A search: its result ticks into the same basket; the panel keeps all three.
    page.fill("#restore-search", "notes")
    page.press("#restore-search", "Enter")
    page.locator("#restore-results input[type=checkbox]").first.check()
    expect(page.locator("#restore-basket-count")).to_have_text("3 项")
    expect(page.locator("#restore-basket-size")).to_have_text("6.9 KiB")  # 5000 + 2048 + 10 bytes

    # Back in the folder the first tick was made in, its box is still ticked; unticking it in the panel
    # unticks the box too.
    page.goto(f"{stack.url}/restore/backups/{second}?p={path_token(str(src / '客户A').lstrip('/'))}")
    logo = _box(page, src / "客户A" / "logo_v3.ai")
    expect(logo).to_be_checked()
    notes = _box(page, src / "客户A" / "notes.txt")
    expect(notes).to_be_checked()
    basket.locator("li", has_text="notes.txt").locator(".restore-basket-remove").click()
    expect(page.locator("#restore-basket-count")).to_have_text("2 项")
    expect(notes).not_to_be_checked()

    # Overwrite waits for its confirmation.
    target = stack.data / "restore" / "篮子"
    (target / str(src / "客户A").lstrip("/")).mkdir(parents=True)
    (target / str(src / "客户A" / "logo_v3.ai").lstrip("/")).write_text("in the way")
    page.fill("#restore-target", str(target))
    page.select_option("#restore-conflict", "overwrite")
    page.locator("#restore-submit").click()
    expect(page.locator("#restore-conflict-error")).to_be_visible()
    expect(page.locator("#restore-basket-count")).to_have_text("2 项")
    page.locator("#restore-confirm-overwrite").check()
    page.locator("#restore-submit").click()
    expect(page).to_have_url(JOB_PAGE)
    assert _wait_for_card(page) == "succeeded", page.locator(".job-card").inner_text()
    restored = target / str(src).lstrip("/")
    assert (restored / "客户A" / "logo_v3.ai").read_bytes() == b"2" * 5000
    assert (restored / "客户B" / "plan.pdf").exists() and not (restored / "客户A" / "notes.txt").exists()
    assert page.csp_errors == []


def test_versions_of_a_file_restore_the_chosen_one(stack, page, two_backups):
    src, first, second = two_backups
    page.goto(f"{stack.url}/restore/backups/{second}")
    _open_folder(page, src / "客户A")
    _row(page, src / "客户A" / "logo_v3.ai").get_by_role("link", name="历史版本").click()
    versions = page.locator("#versions tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.nth(0)).to_have_attribute("data-job", str(second))
    expect(versions.nth(0)).to_contain_text("4.9 KiB")
    expect(versions.nth(1)).to_contain_text("3.0 KiB")
    expect(versions.nth(1).locator(".version-where")).to_contain_text("basket-dest")
    versions.nth(1).locator("input[type=radio]").check()
    target = stack.data / "restore" / "旧版"
    page.fill("#restore-target", str(target))
    page.locator("#restore-submit").click()
    expect(page).to_have_url(JOB_PAGE)
    assert _wait_for_card(page) == "succeeded", page.locator(".job-card").inner_text()
    restored = target / str(src).lstrip("/")
    assert os.listdir(restored) == ["客户A"] and os.listdir(restored / "客户A") == ["logo_v3.ai"]
    assert (restored / "客户A" / "logo_v3.ai").read_bytes() == b"1" * 3072
    assert page.csp_errors == []
