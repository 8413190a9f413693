"""The sign-in page in a real browser: a wrong password, signing in back to the page asked for, signing out."""

from __future__ import annotations

from playwright.sync_api import expect

PASSWORD = "viewer password 1"


def test_sign_in_and_sign_out(stack, anonymous_page):
    page = anonymous_page
    stack.flask("users", "create", "e2e-viewer", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n")
    page.goto(stack.url + "/backup/history")
    expect(page).to_have_url(f"{stack.url}/sign-in?next=/backup/history")

    page.fill("#name", "e2e-viewer")
    page.fill("#password", "not the password")
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#sign-in-error")).to_have_text("用户名或密码不正确。")
    expect(page.locator("#signed-in-user")).to_have_count(0)

    page.fill("#password", PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    expect(page).to_have_url(f"{stack.url}/backup/history")  # back to the page asked for
    expect(page.locator("#signed-in-user")).to_contain_text("e2e-viewer")
    expect(page.locator("#signed-in-user")).to_contain_text("查看者")

    page.click("#sign-out")
    expect(page).to_have_url(f"{stack.url}/sign-in")
    page.goto(stack.url + "/backup")
    expect(page).to_have_url(f"{stack.url}/sign-in?next=/backup")
    assert page.csp_errors == []
