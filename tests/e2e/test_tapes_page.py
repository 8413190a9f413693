"""The tapes page in a real browser, with a real worker: label the blank virtual tape, watch the backup page's
drive card change without a reload, then load another cartridge from the shelf."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def test_label_and_load_from_the_tapes_page(stack, page, browser, signed_in_state):
    backup_context = browser.new_context(storage_state=signed_in_state, locale="zh-CN")
    backup = backup_context.new_page()
    try:
        backup.goto(stack.url + "/backup")
        card = backup.locator('#drive-panel [data-drive="vtape0"] .drive-state')
        # The worker reports the drive at start: the out-of-the-box blank cartridge, worded in Chinese only.
        expect(card).to_have_attribute("data-state", "blank", timeout=30_000)
        expect(card).to_contain_text("已装入空白磁带：请先写入卷标")

        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(stack.url + "/tapes")
        page.fill("#label-vtape0", "E2E001")
        page.fill("#pool-vtape0", "night")
        page.click('#drive-vtape0 .label-form button[type="submit"]')
        expect(page.locator(".flash")).to_contain_text("已在 vtape0 中为磁带写入卷标 E2E001（池 night）")
        expect(page.locator('tr.tape-row[data-label="E2E001"]')).to_contain_text("磁带机 vtape0")

        # The backup page was not reloaded: its live poll brings the new state.
        expect(card).to_have_attribute("data-state", "loaded", timeout=15_000)
        expect(card).to_contain_text("已装入磁带 E2E001 · 池 night")

        page.fill("#cartridge-name", "e2e-spare")
        page.click('#create-cartridge button[type="submit"]')
        expect(page.locator(".flash")).to_contain_text("已创建空白虚拟磁带 e2e-spare")
        page.select_option("#cartridge-vtape0", "e2e-spare")
        page.click('#drive-vtape0 .load-form button[type="submit"]')
        expect(page.locator(".flash")).to_contain_text("已在 vtape0 中装入 e2e-spare")
        expect(page.locator('tr.cartridge-row[data-cartridge="e2e-spare"]')).to_contain_text("磁带机 vtape0")
        expect(page.locator('tr.tape-row[data-label="E2E001"]')).to_contain_text("架上")

        expect(card).to_have_attribute("data-state", "blank", timeout=15_000)
        assert backup.evaluate("performance.getEntriesByType('navigation').length") == 1
        assert not page.csp_errors
    finally:
        backup_context.close()
