"""Explorer listings: sorted by name, size or mtime, paged, the first page of a big folder from one
directory read plus a stat per shown entry, and never an open of a regular file."""

from __future__ import annotations

import builtins
import json
import os
import time

import pytest

from stagebackup.explorer import listing
from stagebackup.explorer.listing import ExplorerError, list_dir, list_folders
from stagebackup.paths import path_token


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "folder"
    root.mkdir()
    for i, (name, size) in enumerate([("b-small", 10), ("a-big", 5000), ("c-mid", 300)]):
        (root / name).write_bytes(b"x" * size)
        os.utime(root / name, (1_700_000_000 + i * 100,) * 2)
    (root / "z-dir").mkdir()
    (root / "m-dir").mkdir()
    os.symlink("a-big", root / "link")
    return str(root)


def _names(result) -> list[str]:
    return [item.name for item in result.items]


def test_folders_first_then_by_name_size_or_mtime(folder):
    assert _names(list_dir(folder)) == ["m-dir", "z-dir", "a-big", "b-small", "c-mid", "link"]
    assert _names(list_dir(folder, sort="size"))[2:] == ["a-big", "c-mid", "b-small", "link"]
    by_mtime = _names(list_dir(folder, sort="mtime"))
    assert by_mtime[:2] == sorted(["m-dir", "z-dir"], key=lambda n: -os.lstat(os.path.join(folder, n)).st_mtime)
    assert by_mtime.index("c-mid") < by_mtime.index("a-big") < by_mtime.index("b-small")  # newest first
    with pytest.raises(ExplorerError, match="sort must be one of"):
        list_dir(folder, sort="colour")


def test_the_folder_tree_level_lists_folders_only(folder):
    assert list_folders(folder) == ([os.path.join(folder, "m-dir"), os.path.join(folder, "z-dir")], 2)
    assert list_folders(folder, offset=1, limit=1) == ([os.path.join(folder, "z-dir")], 2)


def test_by_name_only_the_page_is_stated(folder, monkeypatch):
    calls = []
    real_lstat = os.lstat
    monkeypatch.setattr(listing.os, "lstat", lambda p, *a, **k: calls.append(p) or real_lstat(p, *a, **k))
    page = list_dir(folder, offset=1, limit=2)
    assert page.total == 6 and _names(page) == ["z-dir", "a-big"] and len(calls) == 2
    calls.clear()
    list_folders(folder)
    assert calls == []
    list_dir(folder, sort="size", limit=1)
    assert len(calls) == 6  # sorting by size needs every entry's size


def test_listings_never_open_a_file(app, client, folder, monkeypatch):
    """Opening a file on a network mount may fetch it: every listing path works with open() failing."""
    def refusing(real):
        def guarded(path, *args, **kwargs):
            if isinstance(path, (str, bytes)) and os.fsdecode(path).startswith(folder + "/"):
                opened.append(path)
                raise PermissionError(f"opened {path!r}")
            return real(path, *args, **kwargs)
        return guarded

    opened = []
    monkeypatch.setattr(builtins, "open", refusing(builtins.open))
    monkeypatch.setattr(os, "open", refusing(os.open))
    for sort in ("name", "size", "mtime"):
        assert len(list_dir(folder, sort=sort).items) == 6
        assert client.get("/api/explorer/list", query_string={"path": folder, "sort": sort}).status_code == 200
        assert client.get("/explorer", query_string={"path": folder, "sort": sort}).status_code == 200
    assert client.get("/explorer/picker/folders", query_string={"p": path_token(folder)}).status_code == 200
    result = app.test_cli_runner().invoke(args=["explorer", "ls", folder, "--json", "--sort", "size"])
    assert result.exit_code == 0, result.output
    assert opened == []


def test_the_page_sorts_pages_and_toggles_system_mounts(client, folder):
    page = client.get("/explorer", query_string={"path": folder, "sort": "size", "limit": 3}).get_data(as_text=True)
    assert page.index("z-dir") < page.index("a-big") and "c-mid" not in page
    assert "offset=3" in page and "sort=size" in page  # the next page keeps the order
    assert 'data-kind="system"' not in page and "显示系统挂载" in page
    shown = client.get("/explorer", query_string={"path": folder, "all": "1"}).get_data(as_text=True)
    assert 'data-kind="system"' in shown and "隐藏系统挂载" in shown
    assert client.get("/api/explorer/list", query_string={"path": folder, "sort": "x"}).status_code == 400


def test_mounts_carry_their_space(client):
    mounts = client.get("/api/explorer/mounts").get_json()["mounts"]
    root = next(m for m in client.get("/api/explorer/mounts", query_string={"all": "1"}).get_json()["mounts"]
                if m["path"] == "/")
    assert root["total_bytes"] > 0 and 0 <= root["free_bytes"] <= root["total_bytes"]
    assert all({"bind", "root", "free_bytes", "total_bytes", "used_percent"} <= set(m) for m in mounts)


def test_cli_mounts_and_ls(app, folder):
    runner = app.test_cli_runner()
    shown = json.loads(runner.invoke(args=["explorer", "mounts", "--all", "--json"]).output)["mounts"]
    assert any(m["path"] == "/proc" and m["kind"] == "system" for m in shown)
    text = runner.invoke(args=["explorer", "mounts", "--all"]).output
    assert "/proc\tsystem\tproc" in text
    data = json.loads(runner.invoke(args=["explorer", "ls", folder, "--json", "--limit", "2", "--offset", "2"]).output)
    assert data["total"] == 6 and [i["name"] for i in data["items"]] == ["a-big", "b-small"]
    out = runner.invoke(args=["explorer", "ls", folder, "--sort", "size"])
    assert out.exit_code == 0 and out.output.splitlines()[2].endswith("a-big")
    missing = runner.invoke(args=["explorer", "ls", folder + "/nope"])
    assert missing.exit_code == 3 and "does not exist" in missing.output
    refused = runner.invoke(args=["explorer", "ls", app.config["DATA_DIR"]])
    assert refused.exit_code != 0 and "not browsable" in refused.output


@pytest.mark.slow
def test_a_200000_entry_folder_shows_its_first_page_fast(tmp_path):
    """Measured (docs/web-ui.md): the first page by name costs one directory read; by size every lstat."""
    big = tmp_path / "big"
    big.mkdir()
    fd = os.open(big, os.O_RDONLY)
    try:
        for i in range(200_000):
            os.close(os.open(f"f{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    started = time.monotonic()
    page = list_dir(str(big), limit=200)
    by_name = time.monotonic() - started
    started = time.monotonic()
    by_size = list_dir(str(big), limit=200, sort="size")
    sized = time.monotonic() - started
    assert page.total == by_size.total == 200_000 and page.items[0].name == "f000000"
    print(f"200,000 entries: first page by name {by_name:.2f} s, by size {sized:.2f} s")
    assert by_name < 3.0 and by_name < sized
