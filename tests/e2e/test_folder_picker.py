"""The folder picker in a real browser: the dialog opens over the project form, a folder's level loads when
it is opened, and "use this folder" fills the field (a line added to the sources, the destination replaced)."""

from __future__ import annotations

import json
import os

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def prepare_stack(stack):
    """A server confined to one browse root, so the tree starts where the test's folders are."""
    share = stack.root / "share"
    for folder in ("projects/设计稿", "projects/video", "backups"):
        (share / folder).mkdir(parents=True)
    (share / "projects" / "notes.txt").write_text("a file: never listed in the picker")
    stack.env["STAGEBACKUP_BROWSE_ROOTS"] = json.dumps([str(share)])


def _open_picker(page, field: str):
    page.click(f'[data-picker-for="{field}"]')
    dialog = page.locator("#folder-picker")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".picker-tree")).to_be_visible()
    return dialog


def _open_folder(dialog, path: str):
    node = dialog.locator(f'li.picker-node[data-path="{path}"]')
    node.locator("> details > summary .picker-label").click()
    return node


def test_the_picker_fills_the_project_form(stack, page):
    share = stack.root / "share"
    page.goto(stack.url + "/backup/projects/new")
    page.fill("#name", "选择器项目")

    dialog = _open_picker(page, "sources")
    projects = _open_folder(dialog, str(share)).locator(f'li.picker-node[data-path="{share}/projects"]')
    expect(projects).to_be_visible()  # the root's level loaded when it was opened
    _open_folder(dialog, f"{share}/projects")
    design = dialog.locator(f'li.picker-node[data-path="{share}/projects/设计稿"]')
    expect(design).to_be_visible()
    expect(dialog).not_to_contain_text("notes.txt")
    design.locator(".picker-use").first.click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#sources")).to_have_value(f"{share}/projects/设计稿")

    dialog = _open_picker(page, "sources")  # a second source is added as its own line
    _open_folder(dialog, str(share))
    _open_folder(dialog, f"{share}/projects")
    dialog.locator(f'li.picker-node[data-path="{share}/projects/video"] .picker-use').first.click()
    expect(page.locator("#sources")).to_have_value(f"{share}/projects/设计稿\n{share}/projects/video")

    dialog = _open_picker(page, "dest_dir")
    _open_folder(dialog, str(share))
    dialog.locator(f'li.picker-node[data-path="{share}/backups"] .picker-use').first.click()
    expect(page.locator("#dest_dir")).to_have_value(f"{share}/backups")

    page.click("#save-project")
    expect(page.locator(".flash")).to_contain_text("已创建项目 选择器项目")
    [(dest, sources)] = stack.query("SELECT dest_path, sources FROM projects WHERE name = '选择器项目'")
    assert os.fsdecode(dest) == f"{share}/backups"
    assert json.loads(sources) == [f"{share}/projects/设计稿", f"{share}/projects/video"]
    assert page.csp_errors == []
