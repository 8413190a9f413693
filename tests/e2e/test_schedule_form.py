"""A schedule set in the project form, in a real browser: presets show their fields, the card shows the
schedule in words and its next three runs."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from stagebackup.schedule import cron

pytestmark = pytest.mark.slow


def test_set_a_weekly_schedule_in_the_form_and_see_the_next_runs_on_the_card(stack, page):
    src = stack.root / "srv-scheduled"
    src.mkdir()
    page.goto(stack.url + "/backup/projects/new")
    page.fill("#name", "夜间备份")
    page.fill("#sources", str(src))
    page.fill("#dest_dir", str(stack.root / "backups-scheduled"))
    expect(page.locator("#schedule_time")).to_be_hidden()  # no schedule by default: its fields are hidden

    page.check("input[name=schedule_preset][value=weekly]")
    expect(page.locator("#schedule_time")).to_be_visible()
    expect(page.locator("#schedule_weekday")).to_be_visible()
    expect(page.locator("#schedule_day")).to_be_hidden()
    expect(page.locator("#schedule_cron")).to_be_hidden()
    page.fill("#schedule_time", "03:15")
    page.select_option("#schedule_weekday", "3")
    page.fill("#schedule_timezone", "Asia/Shanghai")
    page.click("#save-project")
    expect(page.locator(".flash")).to_contain_text("已创建项目 夜间备份")

    card = page.locator(".project-card", has_text="夜间备份")
    expect(card.locator(".schedule-text")).to_have_text("每周三 03:15 (Asia/Shanghai)")
    expected = [run.strftime("%Y-%m-%d %H:%M") for run in cron.next_runs("15 3 * * 3", "Asia/Shanghai")]
    expect(card.locator(".next-runs time")).to_have_text(expected)
    assert stack.query("SELECT schedule_cron, schedule_timezone, schedule_enabled FROM projects "
                       "WHERE name = '夜间备份'") == [("15 3 * * 3", "Asia/Shanghai", 1)]

    # A free cron expression; a wrong one first, refused on its field.
    card.locator("a", has_text="编辑").click()
    expect(page.locator("input[name=schedule_preset][value=weekly]")).to_be_checked()
    page.check("input[name=schedule_preset][value=cron]")
    page.fill("#schedule_cron", "0 0 30 2 *")
    page.click("#save-project")
    expect(page.locator(".field-schedule_cron .invalid-feedback")).to_have_text(
        "定时 0 0 30 2 * 永远不会运行（没有这样的日期）")
    page.fill("#schedule_cron", "0 8-18 * * 1-5")
    page.click("#save-project")
    card = page.locator(".project-card", has_text="夜间备份")
    expect(card.locator(".schedule-text")).to_have_text("cron 0 8-18 * * 1-5 (Asia/Shanghai)")
    expected = [run.strftime("%Y-%m-%d %H:%M") for run in cron.next_runs("0 8-18 * * 1-5", "Asia/Shanghai")]
    expect(card.locator(".next-runs time")).to_have_text(expected)
    assert page.csp_errors == []
