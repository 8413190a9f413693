"""The folder picker's server side: roots (browse roots, restore roots or the data mounts with their space),
one tree level per request with folders only, paging, and names a form field cannot hold."""

from __future__ import annotations

import os
import re

from stagebackup.explorer import picker
from stagebackup.paths import path_token


def _nodes(html: str) -> list[str]:
    return re.findall(r'<li class="picker-node" data-path="([^"]*)"', html)


def test_the_dialog_opens_on_the_data_mounts_or_the_browse_roots(app, client, tmp_path):
    body = client.get("/explorer/picker").get_data(as_text=True)
    assert "picker-tree" in body and "/proc" not in _nodes(body)
    (tmp_path / "share").mkdir()
    (tmp_path / "restores").mkdir()
    app.config["BROWSE_ROOTS"] = [str(tmp_path / "share")]
    app.config["RESTORE_ROOTS"] = [str(tmp_path / "restores")]
    assert _nodes(client.get("/explorer/picker").get_data(as_text=True)) == [str(tmp_path / "share")]
    app.config["BROWSE_ROOTS"] = []  # (browse roots confine restore roots too: the one path policy)
    restore = client.get("/explorer/picker", query_string={"scope": "restore"}).get_data(as_text=True)
    assert _nodes(restore) == [str(tmp_path / "restores")]


def test_a_level_lists_sub_folders_and_offers_text_paths_only(client, tmp_path):
    root = os.fsencode(tmp_path / "tree")
    for name in (b"b", b"a", "设计稿".encode(), b"bad-\xff"):
        os.makedirs(root + b"/" + name)
    open(root + b"/file.txt", "wb").close()
    html = client.get("/explorer/picker/folders", query_string={"p": path_token(root)}).get_data(as_text=True)
    assert _nodes(html) == [f"{tmp_path}/tree/{name}" for name in ("a", "b", "bad-\\xff", "设计稿")]
    assert "file.txt" not in html
    assert html.count('class="btn btn-sm btn-outline-primary py-0 picker-use"') == 3  # not the non-UTF-8 one
    assert f'data-path="{tmp_path}/tree/设计稿"' in html and "使用此文件夹" in html
    assert 'hx-trigger="toggle once"' in html


def test_a_big_level_pages_with_a_more_row(client, tmp_path, monkeypatch):
    monkeypatch.setattr(picker, "PICKER_PAGE", 2)
    for name in "abcde":
        (tmp_path / name).mkdir()
    first = client.get("/explorer/picker/folders", query_string={"p": path_token(str(tmp_path))}).get_data(as_text=True)
    assert len(_nodes(first)) == 2 and "picker-more" in first and "offset=2" in first
    last = client.get("/explorer/picker/folders", query_string={"p": path_token(str(tmp_path)), "offset": 4})
    html = last.get_data(as_text=True)
    assert _nodes(html) == [str(tmp_path / "e")] and "picker-more" not in html


def test_system_mount_points_are_not_offered(client):
    top = _nodes(client.get("/explorer/picker/folders", query_string={"path": "/"}).get_data(as_text=True))
    assert "/proc" not in top and "/sys" not in top and "/usr" in top


def test_a_folder_that_cannot_be_opened_says_why_in_the_tree(client, app):
    missing = client.get("/explorer/picker/folders", query_string={"path": "/no/such/folder"})
    assert missing.status_code == 404 and "picker-error" in missing.get_data(as_text=True)
    own = client.get("/explorer/picker/folders", query_string={"path": app.config["DATA_DIR"]})
    assert own.status_code == 403 and "picker-error" in own.get_data(as_text=True)


def test_the_project_form_and_the_restore_target_have_a_picker(client):
    form = client.get("/backup/projects/new").get_data(as_text=True)
    assert 'data-picker-for="sources"' in form and 'data-picker-for="dest_dir"' in form
    assert 'id="folder-picker"' in form and "/explorer/picker" in form
