"""Restore and verify jobs end to end: real backups by a real worker, restored by a real worker, compared
byte for byte (content, modes, mtimes, links, empty folders, non-UTF-8 names)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.jobs.summary import job_detail
from stagebackup.jobs.worker import Worker
from stagebackup.models import Archive, ArchiveMember, Job, JobLog, Secret
from stagebackup.restore import service
from tests.conftest import build_hostile_tree
from tests.integration.test_sync import ns_times
from tests.treecompare import assert_same_tree


def create_project(name, sources, dest, **kw):
    spec = project_checks.ProjectSpec(name=name, sources=[str(s) for s in sources], dest_dir=str(dest), **kw)
    return projects.create(spec, actor="test")


def run_queued(app, job_id) -> Job:
    db.session.rollback()
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    return db.session.get(Job, job_id)


def backup(app, project) -> Job:
    from stagebackup.jobs import queue

    job = run_queued(app, queue.enqueue(project, actor="test").id)
    assert job.status == "succeeded", (job.error_message, log_lines(job.id, "ERROR"))
    return job


def log_lines(job_id, tag=None):
    query = db.session.query(JobLog).filter_by(job_id=job_id)
    if tag:
        query = query.filter_by(tag=tag)
    return [line.message for line in query.order_by(JobLog.id)]


def restore_root(app) -> Path:
    return Path(app.config["RESTORE_ROOTS"][0])


def inside(target: Path, source: Path) -> Path:
    """Where a source folder lands in a restore target (archive names are absolute paths minus '/')."""
    return target / str(source).lstrip("/")


def restore(app, backup_job_id, target, **kw) -> Job:
    job = service.request_restore(backup_job_id, target=str(target), **kw)
    return run_queued(app, job.id)


@pytest.fixture
def hostile_backup(app, tmp_path):
    src = build_hostile_tree(tmp_path / "src")
    job = backup(app, create_project("hostile", [src], tmp_path / "dest"))
    return src, job.id


def test_tgz_backup_restores_byte_for_byte(app, hostile_backup):
    src, backup_id = hostile_backup
    target = restore_root(app) / "full"
    job = restore(app, backup_id, target)
    assert job.status == "succeeded", (job.error_message, log_lines(job.id, "ERROR"))
    detail = job_detail(job)
    assert [(s["label"], s["state"]) for s in detail["stage_steps"]] == [
        ("定位", "done"), ("读取", "done"), ("解压/还原", "done"), ("完成", "done")]
    assert detail["progress"] == 100
    out = inside(target, src)
    assert_same_tree(src, out, ignore={b"a-fifo"})  # the backup skipped the FIFO
    assert os.stat(out / "hardlink-to-plain.txt").st_ino == os.stat(out / "plain.txt").st_ino
    assert any("SHA-256 verified" in line for line in log_lines(job.id, "INFO"))


def test_restore_into_existing_files_follows_the_conflict_policy(app, hostile_backup):
    src, backup_id = hostile_backup
    target = restore_root(app) / "again"
    assert restore(app, backup_id, target).status == "succeeded"
    mine = inside(target, src) / "plain.txt"
    os.chmod(mine, 0o644)
    mine.write_text("changed by someone")
    skipped = restore(app, backup_id, target, paths=[str(src / "plain.txt")])
    assert skipped.status == "succeeded", log_lines(skipped.id)
    assert mine.read_text() == "changed by someone"
    assert any("plain.txt: already exists" in line for line in log_lines(skipped.id, "SKIP"))
    renamed = restore(app, backup_id, target, paths=[str(src / "plain.txt")], conflict="rename")
    assert renamed.status == "succeeded" and (mine.parent / "plain.restored-1.txt").read_text() == "plain\n"
    over = restore(app, backup_id, target, paths=[str(src / "plain.txt")], conflict="overwrite")
    assert over.status == "succeeded" and mine.read_text() == "plain\n"


def test_partial_restore_by_path_and_glob(app, hostile_backup):
    src, backup_id = hostile_backup
    target = restore_root(app) / "partial"
    job = restore(app, backup_id, target, paths=[str(src / "empty-dir"), "*.sh", str(src / "link-to-plain")])
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    out = inside(target, src)
    assert sorted(os.listdir(out)) == ["empty-dir", "link-to-plain", "script.sh"]
    assert os.readlink(out / "link-to-plain") == "plain.txt"
    assert oct(os.stat(out / "script.sh").st_mode & 0o7777) == "0o755"


def test_target_outside_the_restore_roots_is_refused_and_nothing_is_queued(app, hostile_backup, tmp_path):
    _, backup_id = hostile_backup
    before = db.session.query(Job).count()
    for bad in (tmp_path / "elsewhere", restore_root(app) / ".." / "escape", "/etc"):
        with pytest.raises(service.ValidationError, match="outside the allowed restore roots"):
            service.request_restore(backup_id, target=str(bad))
    os.makedirs(restore_root(app), exist_ok=True)
    os.symlink(tmp_path, restore_root(app) / "sneaky")
    with pytest.raises(service.ValidationError, match="outside the allowed restore roots"):
        service.request_restore(backup_id, target=str(restore_root(app) / "sneaky" / "x"))
    db.session.rollback()
    assert db.session.query(Job).count() == before


def test_corrupted_archive_fails_verify_and_restore_clearly(app, hostile_backup):
    _, backup_id = hostile_backup
    verify = run_queued(app, service.request_verify(backup_id).id)
    assert verify.status == "succeeded", (verify.error_message, log_lines(verify.id, "ERROR"))
    assert [s["label"] for s in job_detail(verify)["stage_steps"]] == ["定位", "读取", "校验", "完成"]
    [archive] = db.session.query(Archive).filter_by(job_id=backup_id).all()
    data = bytearray(Path(archive.path).read_bytes())
    data[len(data) // 2] ^= 0x01
    Path(archive.path).write_bytes(bytes(data))
    verify = run_queued(app, service.request_verify(backup_id).id)
    assert verify.status == "failed" and verify.error_class == "IntegrityError"
    assert "is damaged: its SHA-256 is" in verify.error_message
    target = restore_root(app) / "damaged"
    job = restore(app, backup_id, target)
    assert job.status == "failed" and job.error_class == "IntegrityError"
    assert "nothing was extracted" in job.error_message
    assert not target.exists()  # the folder the job created is gone with it
    states = {s["code"]: s["state"] for s in job_detail(job)["stage_steps"]}
    assert states == {"locate": "done", "read": "failed", "extract": "pending", "finalize": "pending"}


def test_typed_password_is_forgotten_when_the_job_ends(app, hostile_backup):
    _, backup_id = hostile_backup
    job = service.request_restore(backup_id, target=str(restore_root(app) / "pw"), password="typed secret")
    secret_id = job.params["secret_id"]
    assert db.session.get(Secret, secret_id) is not None and job.max_attempts == 1
    job = run_queued(app, job.id)
    assert job.status == "succeeded"
    assert db.session.get(Secret, secret_id) is None
    assert not any("typed secret" in line for line in log_lines(job.id))


def test_typed_password_is_forgotten_when_the_job_is_cancelled_before_it_runs(app, hostile_backup):
    from stagebackup.jobs import queue

    _, backup_id = hostile_backup
    job = service.request_restore(backup_id, target=str(restore_root(app) / "pw2"), password="typed secret")
    job_id, secret_id = job.id, job.params["secret_id"]
    assert queue.request_cancel(job_id, actor="test") == "cancelled"
    db.session.rollback()
    assert db.session.get(Secret, secret_id) is None


def test_cli_run_and_verify(app, runner, hostile_backup):
    src, backup_id = hostile_backup
    target = restore_root(app) / "cli"
    result = runner.invoke(args=["restore", "run", str(backup_id), "--to", str(target), "--path",
                                 str(src / "plain.txt"), "--conflict", "rename", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["source_job"] == backup_id and data["target"] == str(target.resolve())
    job = run_queued(app, data["id"])
    assert job.status == "succeeded" and (inside(target, src) / "plain.txt").read_text() == "plain\n"
    result = runner.invoke(args=["restore", "verify", str(backup_id)])
    assert result.exit_code == 0 and result.output.strip().isdigit()
    assert run_queued(app, int(result.output)).status == "succeeded"


@pytest.mark.parametrize(("args", "message"), [
    (["run", "999999", "--to", "{root}/x"], "unknown job: 999999"),
    (["run", "{job}", "--to", "/etc/x"], "outside the allowed restore roots"),
    (["run", "{job}", "--to", "{root}/x", "--conflict", "merge"], "Invalid value for '--conflict'"),
    (["run", "{job}", "--to", "{root}/x", "--path", "../up"], "contains '..'"),
    (["run", "{job}", "--to", "{root}/x", "--password-stdin"], "empty password"),
    (["run", "{job}"], "Missing option '--to'"),
    (["verify", "0"], "0 is not in the range"),
])
def test_cli_bad_input_is_one_line_and_queues_nothing(app, runner, hostile_backup, args, message):
    _, backup_id = hostile_backup
    root = restore_root(app)
    before = db.session.query(Job).count()
    result = runner.invoke(args=["restore", *[a.format(job=backup_id, root=root) for a in args]], input="")
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and message in errors[0], result.output  # one line (click may add its usage)
    assert "Traceback" not in result.output
    db.session.rollback()
    assert db.session.query(Job).count() == before


NOT_UTF8 = {b"latin1-\xe9t\xe9-\xff.bin", b"dir-\xfe\xfd", b"dir-\xfe\xfd/inner\nnewline.txt"}


@pytest.mark.parametrize(("fmt", "password"), [("tgz", None), ("tgz", "pw 密码"), ("7z", None), ("7z", "pw 密码")])
def test_every_format_round_trips_and_verifies(app, tmp_path, fmt, password):
    from stagebackup.jobs import queue

    # 7z leaves out this small tree's 3 non-UTF-8 names: above the default 10 % that fails a job.
    app.config["ERROR_FAIL_RATIO"] = 0.5
    src = build_hostile_tree(tmp_path / "src")
    project = create_project(f"{fmt}-{bool(password)}", [src], tmp_path / "dest", archive_format=fmt,
                             password=password)
    job = run_queued(app, queue.enqueue(project, actor="test").id)
    # 7z keeps names as UTF-16: names that are not UTF-8 are refused by the backup ([ERROR], warning).
    ignore = {b"a-fifo"} | (NOT_UTF8 if fmt == "7z" else set())
    assert job.status == ("warning" if fmt == "7z" else "succeeded"), log_lines(job.id, "ERROR")
    archives = db.session.query(Archive).filter_by(job_id=job.id).all()
    assert archives and all(a.encrypted == bool(password) for a in archives)
    assert db.session.query(ArchiveMember).filter_by(job_id=job.id).count() > 10

    target = restore_root(app) / f"{fmt}-{bool(password)}"
    restored = restore(app, job.id, target)
    assert restored.status == "succeeded", (restored.error_message, log_lines(restored.id, "ERROR"))
    assert_same_tree(src, inside(target, src), ignore=ignore)
    verify = run_queued(app, service.request_verify(job.id).id)
    assert verify.status == "succeeded", (verify.error_message, log_lines(verify.id, "ERROR"))
    assert any("catalog members present" in line for line in log_lines(verify.id, "INFO"))
    if password:  # a typed password overrides the stored one
        wrong = restore(app, job.id, restore_root(app) / "wrong", password="not it")
        assert wrong.status == "failed" and wrong.error_class == "WrongPassword", wrong.error_message
        assert "does not open with this password" in wrong.error_message
        assert not (restore_root(app) / "wrong").exists()  # nothing written: no empty folder left behind
        assert any("removed the empty target folder" in line for line in log_lines(wrong.id, "INFO"))


def test_crafted_archive_in_a_restore_job_writes_nothing_outside_and_reports_refusals(app, hostile_backup, tmp_path):
    import hashlib
    import tarfile

    from tests.unit.test_extract import _info, write_tgz

    _, backup_id = hostile_backup
    app.config["ERROR_FAIL_RATIO"] = 0.5  # 2 refusals among the catalog's few regular files: a warning
    outside = tmp_path / "outside"
    outside.mkdir()
    [archive] = db.session.query(Archive).filter_by(job_id=backup_id).all()
    crafted = write_tgz(Path(archive.path), [
        _info("../../../../evil.txt", data=b"x"), _info("esc", tarfile.SYMTYPE, linkname=str(outside)),
        _info("esc/pwned.txt", data=b"x"), _info("ok.txt", data=b"fine"),
    ])
    archive.sha256 = hashlib.sha256(crafted.read_bytes()).hexdigest()  # as if the catalog had been forged too
    for parent, name in (("", "ok.txt"), ("esc", "pwned.txt")):  # the catalog lists them: safety still holds
        db.session.add(ArchiveMember(job_id=backup_id, archive_id=archive.id, parent=parent, name=name, kind="file",
                                     size=4))
    db.session.commit()
    target = restore_root(app) / "crafted"
    job = restore(app, backup_id, target)
    assert job.status == "warning" and job.error_count == 2
    errors = log_lines(job.id, "ERROR")
    assert any(line.startswith("../../../../evil.txt: refused: '..' in the path") for line in errors)
    assert any(line.startswith("esc/pwned.txt: refused: esc is a symbolic link") for line in errors)
    assert os.listdir(outside) == [] and (target / "ok.txt").read_text() == "fine"
    assert not (restore_root(app).parent / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_sync_mirror_restores_and_verifies(app, tmp_path):
    from stagebackup.jobs import queue

    src = build_hostile_tree(tmp_path / "src")
    project = create_project("mirror", [src], tmp_path / "mirror", mode="sync")
    job = run_queued(app, queue.enqueue(project, actor="test").id)
    assert job.status in ("succeeded", "warning"), (job.error_message, log_lines(job.id, "ERROR"))
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    assert archive.format == "sync"
    mirror_root = Path(archive.path)
    target = restore_root(app) / "from-mirror"
    restored = restore(app, job.id, target)
    assert restored.status == "succeeded", (restored.error_message, log_lines(restored.id, "ERROR"))
    assert_same_tree(mirror_root, target)
    assert_same_tree(src, target / "src", ignore={b"a-fifo"})  # the mirror keeps DEST/<basename of the source>
    verify = run_queued(app, service.request_verify(job.id).id)
    assert verify.status == "succeeded", (verify.error_message, log_lines(verify.id, "ERROR"))
    (mirror_root / "src" / "plain.txt").rename(mirror_root / "src" / "moved-away")
    broken = run_queued(app, service.request_verify(job.id).id)
    assert broken.status == "failed" and "catalog difference" in broken.error_message


@pytest.mark.parametrize("mode", ["archive", "sync"])
def test_restore_keeps_mtimes_to_the_nanosecond(app, tmp_path, mode):
    """Sub-second mtimes are the rule on real systems; a float on the way (seconds as a double) loses them."""
    src = tmp_path / "src"
    (src / "folder").mkdir(parents=True)
    (src / "folder" / "file.txt").write_text("data")
    (src / "top.bin").write_bytes(b"\0" * 10)
    os.symlink("top.bin", src / "link")
    for rel, ns in ((b"folder/file.txt", 1_600_000_000_123_456_789), (b"top.bin", 1_650_000_000_000_000_001),
                    (b"link", 1_700_000_000_999_999_999), (b"folder", 1_500_000_000_987_654_321)):
        os.utime(os.fsencode(src) + b"/" + rel, ns=(ns, ns), follow_symlinks=False)
    if mode == "sync":
        spec = project_checks.ProjectSpec(name="ns-sync", sources=[str(src)], dest_dir=str(tmp_path / "dest"),
                                          mode="sync")
        job = backup(app, projects.create(spec, actor="test"))
        restored_under = "src"
    else:
        job = backup(app, create_project("ns-tgz", [src], tmp_path / "dest"))
        restored_under = str(src).lstrip("/")
    assert job.status == "succeeded"
    target = restore_root(app) / f"ns-{mode}"
    restored = restore(app, job.id, target)
    assert restored.status == "succeeded", (restored.error_message, log_lines(restored.id, "ERROR"))
    assert ns_times(target / restored_under) == ns_times(src)


def test_a_restore_failing_midway_lists_what_it_wrote(app, tmp_path):
    """The archive's bytes damaged past its middle, its recorded SHA-256 made to match (as if damaged before
    it was hashed): the first files are written, then decompression fails."""
    import hashlib

    src = tmp_path / "src"
    src.mkdir()
    for n in range(20):
        (src / f"file-{n:02}.txt").write_text("".join(f"line {n} {i} {i * i}\n" for i in range(20000)))
    job = backup(app, create_project("midway", [src], tmp_path / "dest"))
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    data = bytearray(Path(archive.path).read_bytes())
    for at in range(len(data) * 3 // 4, len(data) * 3 // 4 + 64):
        data[at] ^= 0xFF
    Path(archive.path).write_bytes(bytes(data))
    archive.sha256 = hashlib.sha256(data).hexdigest()
    db.session.commit()
    target = restore_root(app) / "midway"
    failed = restore(app, job.id, target)
    assert failed.status == "failed", log_lines(failed.id)
    written = sorted(p for p in target.rglob("*") if p.is_file())
    assert written, "the restore failed before writing anything: the test damaged the wrong place"
    [line] = [line for line in log_lines(failed.id, "INFO") if "the restore stopped after writing" in line]
    assert f"writing {len(written)} item(s)" in line
    assert str(written[0].relative_to(target)) in line


@pytest.mark.parametrize("fmt", ["tgz", "7z"])
def test_a_chosen_folder_whose_hard_link_holds_its_data_elsewhere_is_restored_whole(app, tmp_path, fmt):
    """The archive stores a hard-linked file's data once, under its first name; choosing only the folder of
    its second name must still bring the data (read from the first name, size-checked against the catalog)."""
    src = tmp_path / "src"
    (src / "a-data").mkdir(parents=True)
    (src / "b-links").mkdir()
    (src / "a-data" / "original.bin").write_bytes(b"linked data " * 1000)
    os.link(src / "a-data" / "original.bin", src / "b-links" / "copy.bin")
    (src / "b-links" / "own.txt").write_text("own\n")
    backup_id = backup(app, create_project("links", [src], tmp_path / "dest", archive_format=fmt)).id
    target = restore_root(app) / f"links-{fmt}"
    job = restore(app, backup_id, target, paths=[str(src / "b-links")])
    assert job.status == "succeeded", (job.error_message, log_lines(job.id, "ERROR"))
    out = inside(target, src)
    assert sorted(os.listdir(out)) == ["b-links"]
    assert (out / "b-links" / "copy.bin").read_bytes() == b"linked data " * 1000
    assert (out / "b-links" / "own.txt").read_text() == "own\n"
