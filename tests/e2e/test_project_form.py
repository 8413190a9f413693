"""A refused project form in a real browser: every value kept, the password asked for again, never saved
unencrypted because the password field came back empty."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def test_a_refused_encrypted_project_is_saved_only_once_the_password_is_typed_again(stack, page):
    src = stack.root / "srv-encrypted"
    src.mkdir()
    page.goto(stack.url + "/backup/projects/new")
    page.fill("#name", "加密项目")
    page.fill("#sources", str(src))
    page.fill("#excludes", "*.tmp")
    page.check("#encrypted")
    page.fill("#password", "correct horse")
    page.fill("#dest_dir", str(src / "backups"))  # inside the source: refused
    page.click("#save-project")

    expect(page.locator(".field-dest_dir .invalid-feedback")).to_be_visible()
    expect(page.locator("#encrypted")).to_be_checked()
    expect(page.locator("#excludes")).to_have_value("*.tmp")
    expect(page.locator("#password")).to_have_value("")
    expect(page.locator(".field-password .invalid-feedback")).to_contain_text("重新输入")

    page.fill("#dest_dir", str(stack.root / "backups-encrypted"))
    page.click("#save-project")
    expect(page.locator(".field-password .invalid-feedback")).to_contain_text("需要密码")
    assert stack.query("SELECT count(*) FROM projects WHERE name = '加密项目'") == [(0,)]

    page.fill("#password", "correct horse")
    page.click("#save-project")
    expect(page.locator(".flash")).to_contain_text("已创建项目 加密项目")
    assert stack.query("SELECT encrypted FROM projects WHERE name = '加密项目'") == [(1,)]
    assert page.csp_errors == []
