"""Moving projects in a real browser (journey 5): download the export, upload it, read the preview (one needs its
password), type the password, import, and find the import in the audit log."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import REPO

pytestmark = pytest.mark.slow


def _flask(stack, *args, stdin: str = ""):
    return subprocess.run([sys.executable, "-m", "flask", "--app", "stagebackup", *args], cwd=REPO, env=stack.env,
                          input=stdin, capture_output=True, text=True, check=True, timeout=60)


def test_export_then_import_with_a_password_in_the_browser(stack, page, tmp_path):
    src = stack.root / "srv"
    src.mkdir()
    _flask(stack, "projects", "add", "设计稿", "--source", str(src), "--dest-dir", str(stack.root / "d1"),
           "--exclude", "*.tmp")
    _flask(stack, "projects", "add", "财务", "--source", str(src), "--dest-dir", str(stack.root / "d2"),
           "--password-stdin", stdin="s3cret\n")

    page.goto(stack.url + "/backup")
    page.click("nav >> text=导入/导出")
    with page.expect_download() as download:
        page.click("#export-download")
    exported = tmp_path / "projects.json"
    download.value.save_as(exported)
    document = json.loads(exported.read_text(encoding="utf-8"))
    assert [p["name"] for p in document["projects"]] == ["设计稿", "财务"]
    assert document["projects"][1]["password_required"] is True

    _flask(stack, "projects", "remove", "财务")
    page.set_input_files("#file", str(exported))
    page.click("#import-preview")
    expect(page.locator("#import-summary")).to_contain_text("1 个需要重新输入密码")
    expect(page.locator('tr[data-import="1"]')).to_have_attribute("data-action", "skip")
    expect(page.locator('tr[data-import="2"]')).to_have_attribute("data-action", "create")
    page.fill('input[name="password-2"]', "typed-again")
    page.click("#import-confirm")
    expect(page.locator(".flash")).to_contain_text("新建 1 个")
    assert stack.query("SELECT encrypted FROM projects WHERE name = '财务'") == [(1,)]

    page.click("nav >> text=审计日志")
    page.fill("#audit-action", "project.import")
    page.click("#audit-filter button[type=submit]")
    expect(page.locator("#audit-events tbody tr")).to_have_count(1)
    expect(page.locator("#audit-events")).to_contain_text("财务")
    assert page.csp_errors == []
