"""No page is wider than a 1,280 px window with the longest names the corpus has (250 characters, no space
to break at), and the navbar collapses into a menu button on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from stagebackup.paths import path_token
from tests.e2e.test_restore_page import _wait_for_job

pytestmark = pytest.mark.slow

LONG = 250
WIDTH_JS = "document.documentElement.scrollWidth"


@pytest.fixture(scope="module")
def long_names(stack):
    src = stack.root / "long-names"
    folder = src / ("目" * 80)  # 240 bytes of UTF-8: a long name in another script
    folder.mkdir(parents=True)
    (folder / ("f" * (LONG - 4) + ".txt")).write_text("x")
    (src / ("a" * LONG)).write_text("y")
    name = "n" * 200  # the longest project name
    stack.flask("projects", "add", name, "--source", str(src), "--dest-dir", str(stack.root / ("d" * LONG)))
    job_id = int(stack.flask("jobs", "run", name).stdout.strip())
    assert _wait_for_job(stack, job_id) == "succeeded"
    return src, folder, job_id


def test_no_page_is_wider_than_the_window_with_250_character_names(stack, page, long_names):
    src, folder, job_id = long_names
    page.set_viewport_size({"width": 1280, "height": 900})
    pages = {
        "backup": "/backup",
        "job": f"/backup/jobs/{job_id}",
        "history": "/backup/history",
        "restore browser": f"/restore/backups/{job_id}?p={path_token(str(src).lstrip('/'))}",
        "restore inside": f"/restore/backups/{job_id}?p={path_token(str(folder).lstrip('/'))}",
        "explorer": f"/explorer?p={path_token(str(src))}",
    }
    for what, url in pages.items():
        page.goto(stack.url + url)
        expect(page.locator("main")).to_be_visible()
        assert page.evaluate(WIDTH_JS) <= 1280, (what, page.evaluate(WIDTH_JS))
    # The full text stays reachable: on hover (title) and through the copy button.
    page.goto(f"{stack.url}/backup/jobs/{job_id}")
    sha = page.locator("td.sha code.long-text").first
    expect(sha).to_have_attribute("title", sha.inner_text())
    expect(page.locator("td.sha .copy-text").first).to_have_attribute("data-copy", sha.inner_text())
    assert page.csp_errors == []


def test_the_navbar_collapses_into_a_menu_button_on_a_phone(stack, page):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(stack.url + "/backup")
    toggle = page.locator("#nav-toggle")
    expect(toggle).to_be_visible()
    history = page.locator("#main-nav a.nav-link", has_text="历史")
    expect(history).to_be_hidden()
    toggle.click()
    expect(history).to_be_visible()
    assert page.evaluate(WIDTH_JS) <= 390
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(toggle).to_be_hidden()
    expect(history).to_be_visible()
