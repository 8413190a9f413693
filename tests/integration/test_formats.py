"""7z and tar.gz backups checked with the real 7z and GNU tar, and the member catalog they leave."""

import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from stagebackup.extensions import db
from stagebackup.models import Archive, ArchiveMember
from tests.conftest import build_hostile_tree
from tests.integration.test_backup_job import create_project, log_lines, restored, run_one
from tests.treecompare import assert_same_tree

NOT_UTF8 = {b"latin1-\xe9t\xe9-\xff.bin", b"dir-\xfe\xfd", b"dir-\xfe\xfd/inner\nnewline.txt"}
PASSWORD = "correct horse 电池 staple"


def seven_zip(*args, check=True, **kw) -> subprocess.CompletedProcess:
    """7-Zip as an operator runs it: with the usual umask (StageBackup's own processes run with 077)."""
    return subprocess.run(["sh", "-c", 'umask 022; exec 7z "$@"', "7z", *args], capture_output=True,
                          stdin=subprocess.DEVNULL, check=check, **kw)


def hostile_tree(root: Path) -> Path:
    src = build_hostile_tree(root)
    os.symlink("no-such-file", src / "dangling-relative")
    (src / "sub").mkdir()
    os.symlink("../plain.txt", src / "sub" / "up-link")
    os.utime(src / "sub", (1_500_000_000, 1_500_000_000))
    return src


def members_of(job_id) -> dict[str, ArchiveMember]:
    rows = db.session.query(ArchiveMember).filter_by(job_id=job_id).all()
    return {f"{m.parent}/{m.name}" if m.parent else m.name: m for m in rows}


def test_7z_keeps_links_modes_and_mtimes_and_refuses_to_alter_names(app, tmp_path):
    # 3 names refused in a tree of 10 regular files: above the default 10 % that fails a job.
    app.config["ERROR_FAIL_RATIO"] = 0.5
    src = hostile_tree(tmp_path / "src")
    job = run_one(app, create_project("seven", [src], tmp_path / "dest", archive_format="7z", level=1))
    assert job.status == "warning", job.error_message
    errors = log_lines(job.id, "ERROR")
    for name in (r"latin1-\xe9t\xe9-\xff.bin", r"dir-\xfe\xfd", "inner\nnewline.txt"):
        assert any(name in line and "not valid UTF-8" in line for line in errors), (name, errors)
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    assert archive.path.endswith("_part001.7z") and archive.format == "7z" and not archive.encrypted
    assert seven_zip("t", archive.path).returncode == 0
    technical = seven_zip("l", "-slt", archive.path).stdout.decode()
    assert set(re.findall(r"^Method = (.+)$", technical, re.M)) == {"LZMA2:20"}  # preset 1, no BCJ filter
    out = tmp_path / "out"
    seven_zip("x", "-snld", f"-o{out}", archive.path)
    # 7-Zip re-roots absolute link targets under -o on extraction: the link is checked, then set aside.
    absolute_link = restored(out, src) / "dangling-link"
    assert os.readlink(absolute_link).endswith("/nonexistent/target")
    absolute_link.unlink()
    assert_same_tree(src, restored(out, src), ignore={b"a-fifo", b"dangling-link"} | NOT_UTF8)
    assert os.readlink(restored(out, src) / "dangling-relative") == "no-such-file"
    assert re.search(r"Path = .*/dangling-link\n(?:.*\n)*?Size = 19\n", technical)  # "/nonexistent/target"
    assert os.listdir(app.config["CACHE_DIR"]) == []


def test_7z_with_a_password_hides_names_and_opens_with_it(app, tmp_path):
    src = tmp_path / "src"
    (src / "客户A").mkdir(parents=True)
    (src / "客户A" / "secret-plan.txt").write_text("plan\n" * 1000)
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o750)
    job = run_one(app, create_project("seven-enc", [src], tmp_path / "dest", archive_format="7z",
                                      password=PASSWORD))
    assert job.status == "succeeded", (job.error_message, log_lines(job.id, "ERROR"))
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    assert archive.encrypted and archive.secret_id is not None and archive.kdf_iterations is None
    listing = seven_zip("l", archive.path, check=False)  # no password: cannot even list the names
    assert listing.returncode != 0 and b"secret-plan" not in listing.stdout + listing.stderr
    wrong = seven_zip("l", "-pwrong", archive.path, check=False)
    assert wrong.returncode != 0 and b"secret-plan" not in wrong.stdout + wrong.stderr
    assert seven_zip("t", f"-p{PASSWORD}", archive.path).returncode == 0
    out = tmp_path / "out"
    seven_zip("x", f"-p{PASSWORD}", "-snld", f"-o{out}", archive.path)
    assert_same_tree(src, restored(out, src))
    assert all(PASSWORD not in line for line in log_lines(job.id))


def test_tgz_members_in_the_catalog_match_the_archive_byte_for_byte(app, tmp_path):
    src = hostile_tree(tmp_path / "src")
    job = run_one(app, create_project("catalog", [src], tmp_path / "dest"))
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    members = members_of(job.id)
    with tarfile.open(archive.path, "r:gz", encoding="utf-8", errors="surrogateescape") as tar:
        stored = {info.name.rstrip("/"): info for info in tar.getmembers()}
    assert set(members) == set(stored) and archive.member_count == len(members)
    kinds = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}
    for name, member in members.items():
        info = stored[name]
        assert info.type == kinds[member.kind], name
        assert info.size == member.size and int(member.mtime) == int(info.mtime), name
        assert member.mode & 0o7777 == info.mode, name
        assert (member.link_target or "") == info.linkname, name
        path = "/" + name
        assert member.mode == os.lstat(os.fsencode(path)).st_mode, name
    base = str(src).lstrip("/")
    assert members[f"{base}/hardlink-to-plain.txt"].kind == "file"  # the first name seen keeps the data
    assert members[f"{base}/plain.txt"].kind == "hardlink"
    assert members[f"{base}/plain.txt"].link_target == f"{base}/hardlink-to-plain.txt"
    assert members[f"{base}/dangling-link"].link_target == "/nonexistent/target"
    assert os.fsencode(members[f"{base}/dir-\udcfe\udcfd/inner\nnewline.txt"].name) == b"inner\nnewline.txt"
    assert members[f"{base}/sparse.img"].size == (8 << 20) + 3
    assert archive.input_bytes == sum(m.size for m in members.values() if m.kind == "file")


def test_7z_members_follow_the_same_convention(app, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f.txt").write_text("x" * 100)
    os.symlink("d/f.txt", src / "ln")
    job = run_one(app, create_project("cat7", [src], tmp_path / "dest", archive_format="7z"))
    members = members_of(job.id)
    base = str(src).lstrip("/")
    assert {k: v.kind for k, v in members.items()} == {
        base: "dir", f"{base}/d": "dir", f"{base}/d/f.txt": "file", f"{base}/ln": "symlink",
    }
    assert members[f"{base}/d/f.txt"].size == 100 and members[f"{base}/ln"].link_target == "d/f.txt"
    assert members[f"{base}/ln"].mode == os.lstat(src / "ln").st_mode


@pytest.fixture
def fast_kdf_app(tmp_path):
    from stagebackup.extensions import db as _db
    from tests.conftest import make_app

    application = make_app(tmp_path, KDF_ITERATIONS=12_345)
    with application.app_context():
        yield application
        _db.session.remove()
        _db.engine.dispose()


def test_encrypted_tgz_decrypts_with_openssl_and_extracts_with_gnu_tar(fast_kdf_app, tmp_path):
    app = fast_kdf_app
    src = hostile_tree(tmp_path / "src")
    job = run_one(app, create_project("enc", [src], tmp_path / "dest", password=PASSWORD))
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    assert archive.path.endswith("_part001.tar.gz.enc") and archive.name.endswith(".tar.gz.enc")
    assert archive.encrypted and archive.secret_id is not None and archive.kdf_iterations == 12_345
    digest = subprocess.run(["sha256sum", archive.path], capture_output=True, text=True, check=True).stdout
    assert archive.sha256 == digest.split()[0] and archive.size == os.path.getsize(archive.path)
    assert open(archive.path, "rb").read(8) == b"Salted__"
    plain = tmp_path / "plain.tar.gz"
    subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-pbkdf2", "-iter", "12345", "-md", "sha256",
         "-in", archive.path, "-out", str(plain), "-pass", "stdin"],
        input=(PASSWORD + "\n").encode(), check=True,
    )
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xzf", str(plain), "-C", str(out)], check=True, capture_output=True)
    assert_same_tree(src, restored(out, src), ignore={b"a-fifo"})
    wrong = subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-pbkdf2", "-iter", "12345", "-md", "sha256", "-in", archive.path,
         "-pass", "pass:wrong"], capture_output=True,
    )
    assert wrong.returncode != 0 or not wrong.stdout.startswith(b"\x1f\x8b")
    assert all(PASSWORD not in line for line in log_lines(job.id))
    assert len(members_of(job.id)) == archive.member_count > 20


def test_cli_project_with_7z_password_and_groups_runs_end_to_end(app, tmp_path):
    import json

    from stagebackup.jobs.worker import Worker

    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}.bin").write_bytes(os.urandom(700_000))
    runner = app.test_cli_runner()
    added = runner.invoke(args=[
        "projects", "add", "cli7", "--source", str(src), "--dest-dir", str(tmp_path / "dest"), "--format", "7z",
        "--level", "1", "--password-stdin", "--group-max-bytes", str(2 * 1024 * 1024),
    ], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    queued = runner.invoke(args=["jobs", "run", "cli7", "--json"])
    job_id = json.loads(queued.output)["id"]
    db.session.rollback()
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    shown = json.loads(runner.invoke(args=["jobs", "show", str(job_id), "--json"]).output)
    assert shown["status"] == "succeeded"
    archives = shown["archives"]
    assert [a["seq"] for a in archives] == [1, 2, 3] and all(a["encrypted"] for a in archives)
    assert all(a["name"].endswith(f"_part00{a['seq']}.7z") and a["input_bytes"] > 0 for a in archives)
    assert sum(a["input_bytes"] for a in archives) == 6 * 700_000
    out = tmp_path / "out"
    for a in archives:
        seven_zip("x", f"-p{PASSWORD}", "-snld", f"-o{out}", a["path"])
    assert_same_tree(src, restored(out, src))
    assert PASSWORD not in json.dumps(shown)
