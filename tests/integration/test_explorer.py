"""Storage explorer: mounts classified, listings from metadata only, exact bytes in names."""

import os
from pathlib import Path

import pytest

from stagebackup.explorer.mounts import DISK, NETWORK, SYSTEM, mount_for, parse_mountinfo, visible
from stagebackup.paths import path_from_token, path_token

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mountinfo"


def _mounts(name: str) -> dict:
    return {m.path: m for m in parse_mountinfo((FIXTURES / name).read_text())}


def _offered(name: str) -> list[str]:
    return [m.path for m in visible(list(_mounts(name).values()), show_system=False)]


def test_docker_mountinfo_tells_bind_mounts_and_system_paths_apart():
    mounts = _mounts("docker.txt")
    assert _offered("docker.txt") == ["/data", "/mnt/archive", "/mnt/backup disk", "/srv/projects"]
    data = mounts["/data"]
    assert data.kind == DISK and data.bind and data.root == "/srv/stagebackup/data"
    assert data.source == "/dev/sda1[/srv/stagebackup/data]" and data.dev == "8:1"
    assert mounts["/mnt/backup disk"].kind == DISK and not mounts["/mnt/backup disk"].bind
    assert mounts["/mnt/archive"].read_only and mounts["/mnt/archive"].root == "/archive/2025"
    assert mounts["/"].kind == SYSTEM and mounts["/proc/kcore"].kind == SYSTEM
    assert mounts["/etc/hosts"].kind == SYSTEM  # a file bind-mounted from the host disk
    assert mount_for("/data/projects/a", list(mounts.values())).path == "/data"
    assert mount_for("/mnt/backup disk/x", list(mounts.values())).path == "/mnt/backup disk"
    assert mount_for("/usr/bin", list(mounts.values())).path == "/"


def test_host_mountinfo_offers_the_disks_not_the_system():
    mounts = _mounts("host.txt")
    assert _offered("host.txt") == ["/", "/export/active", "/home", "/media/usb backup", "/srv"]
    assert mounts["/export/active"].source == "/dev/sda1[/projects/active]"
    assert mounts["/media/usb backup"].read_only
    for system in ("/boot/efi", "/snap/core22/1380", "/run/user/1000", "/sys/fs/cgroup", "/dev/shm", "/run/lock"):
        assert mounts[system].kind == SYSTEM, system
    assert len(visible(list(mounts.values()), show_system=True)) == len(mounts)


def test_network_mounts_are_network_and_escaped_names_are_decoded():
    mounts = _mounts("nas-host.txt")
    assert {p for p in _offered("nas-host.txt") if mounts[p].kind == NETWORK} == {
        "/mnt/nas", "/mnt/render", "/mnt/office share", "/mnt/finance", "/mnt/cloud", "/mnt/tab\tname"}
    assert mounts["/mnt/office share"].device == "//fileserver/Office Share"
    assert mounts["/mnt/finance"].bind and mounts["/mnt/finance"].source == "//fileserver/Office Share[/Finance]"
    assert mounts["/backup"].kind == DISK and mounts["/var"].kind == DISK
    assert mounts["/proc/fs/nfsd"].kind == SYSTEM and mounts["/run/rpc_pipefs"].kind == SYSTEM


def test_a_mount_point_mounted_over_shows_its_last_mount():
    text = ("30 1 8:1 / /mnt/x rw - ext4 /dev/sda1 rw\n"
            "31 30 8:17 / /mnt/x rw - xfs /dev/sdb1 rw\n"
            "garbage line\n")
    assert [m.device for m in visible(parse_mountinfo(text), show_system=False)] == ["/dev/sdb1"]


def test_path_tokens_round_trip_any_bytes():
    for raw in [b"/", b"/srv/d\xff/n\xe9me\nx", "/srv/设计稿".encode()]:
        assert os.fsencode(path_from_token(path_token(raw))) == raw
    with pytest.raises(ValueError):
        path_from_token("!!!")
    with pytest.raises(ValueError):
        path_from_token(path_token(b"/a\0b"))


@pytest.fixture
def tree(tmp_path):
    root = os.fsencode(tmp_path / "tree")
    os.makedirs(root + b"/sub-\xfe")
    with open(root + b"/f-\xff.bin", "wb") as fh:
        fh.write(b"x" * 1234)
    unreadable = root + b"/secret"
    with open(unreadable, "wb") as fh:
        fh.write(b"never read")
    os.chmod(unreadable, 0)  # lstat still works: a listing never opens a file
    os.symlink(b"/nowhere", root + b"/dangling")
    for i in range(25):
        open(root + b"/bulk-%02d" % i, "wb").close()
    return root


def test_listing_uses_metadata_and_keeps_exact_names(client, tree):
    response = client.get("/api/explorer/list", query_string={"p": path_token(tree), "limit": 10})
    assert response.status_code == 200
    data = response.get_json()
    assert data["total"] == 29 and len(data["items"]) == 10
    assert data["items"][0]["kind"] == "dir" and data["items"][0]["name"] == "sub-\\xfe"
    assert os.fsencode(path_from_token(data["items"][0]["token"])) == tree + b"/sub-\xfe"
    rest = client.get("/api/explorer/list", query_string={"p": path_token(tree), "offset": 10, "limit": 100})
    items = {i["name"]: i for i in data["items"] + rest.get_json()["items"]}
    assert len(items) == 29
    assert items["f-\\xff.bin"]["size"] == 1234 and items["f-\\xff.bin"]["kind"] == "file"
    assert items["dangling"] == {**items["dangling"], "kind": "symlink", "link_target": "/nowhere"}
    assert items["secret"]["mode"] & 0o777 == 0


def test_the_page_lists_a_folder_with_a_hostile_name(client, tree):
    page = client.get("/explorer", query_string={"p": path_token(tree + b"/sub-\xfe")})
    assert page.status_code == 200
    assert "sub-\\xfe" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "status", "message", "shown"),
    [
        ({"path": "/definitely/not/here"}, 404, "does not exist", "不存在"),
        ({"path": "relative/path"}, 400, "an absolute path is needed", "需要绝对路径"),
        ({"p": "%%%"}, 400, "damaged", "路径参数已损坏"),
        ({"path": "/", "offset": "x"}, 400, "whole numbers", "必须是整数"),
    ],
)
def test_bad_requests_get_clear_errors(client, query, status, message, shown):
    api = client.get("/api/explorer/list", query_string=query)  # the API speaks English
    assert api.status_code == status and message in api.get_json()["error"]
    page = client.get("/explorer", query_string=query)  # the page speaks the page's language
    assert page.status_code == status and shown in page.get_data(as_text=True)


def test_a_file_is_not_a_directory(client, tree):
    response = client.get("/api/explorer/list", query_string={"p": path_token(tree + b"/f-\xff.bin")})
    assert response.status_code == 400 and "is not a directory" in response.get_json()["error"]


def test_mounts_api_hides_system_paths_unless_asked(client):
    shown = client.get("/api/explorer/mounts").get_json()["mounts"]
    assert all(m["kind"] != SYSTEM for m in shown)
    everything = client.get("/api/explorer/mounts", query_string={"all": "1"}).get_json()["mounts"]
    assert any(m["path"] == "/proc" for m in everything)
