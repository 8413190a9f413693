"""Real backups, run by a real worker loop in this process, checked with GNU tar."""

import os
import subprocess
from pathlib import Path

import pytest

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.summary import job_detail
from stagebackup.jobs.worker import Worker
from stagebackup.models import Archive, AuditEvent, Job, JobLog
from tests.conftest import build_hostile_tree
from tests.treecompare import assert_same_tree


def create_project(name, sources, dest, **kw):
    spec = project_checks.ProjectSpec(name=name, sources=[str(s) for s in sources], dest_dir=str(dest), **kw)
    return projects.create(spec, actor="test")


def run_one(app, project, remark=None) -> Job:
    job = queue.enqueue(project, remark=remark, actor="test")
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    return db.session.get(Job, job.id)


def log_lines(job_id, tag=None):
    query = db.session.query(JobLog).filter_by(job_id=job_id)
    if tag:
        query = query.filter_by(tag=tag)
    return [line.message for line in query.order_by(JobLog.id)]


def extract_with_gnu_tar(archive_path, dest) -> subprocess.CompletedProcess:
    dest.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["tar", "-xzf", archive_path, "-C", str(dest)], capture_output=True, check=True)


def restored(root_in_extract: Path, source: Path) -> Path:
    return root_in_extract / str(source).lstrip("/")


def test_corpus_backup_round_trips_through_gnu_tar(app, corpus, tmp_path):
    project = create_project("语料 corpus", [corpus.root], tmp_path / "dest")
    job = run_one(app, project, remark="首次全量")
    assert job.status == "succeeded", (job.error_message, log_lines(job.id, "ERROR"))
    assert job.progress == 100 and job.remark == "首次全量"
    detail = job_detail(job)
    assert [s["state"] for s in detail["stage_steps"]] == ["done"] * 4
    assert [s["label"] for s in detail["stage_steps"]] == ["扫描文件", "压缩/打包", "写入目标", "完成"]
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    path = Path(archive.path)
    assert path.parent == tmp_path / "dest" and path.name.endswith(".tar.gz")
    assert archive.size == path.stat().st_size
    assert archive.sha256 == subprocess.run(["sha256sum", path], capture_output=True, text=True).stdout.split()[0]
    subprocess.run(["gzip", "-t", path], check=True)
    extract_with_gnu_tar(path, tmp_path / "out")
    out = restored(tmp_path / "out", corpus.root)
    assert_same_tree(corpus.root, out)
    [first, *others] = corpus.entries["hardlink"]
    assert {os.lstat(out / os.fsdecode(rel)).st_ino for rel in others} == {os.lstat(out / os.fsdecode(first)).st_ino}
    skipped = "\n".join(log_lines(job.id, "SKIP"))
    assert all(os.fsdecode(os.path.basename(rel)) in skipped for rel in corpus.specials())
    assert os.listdir(app.config["CACHE_DIR"]) == []  # nothing left in the cache
    assert log_lines(job.id, "PACK")


def test_hostile_names_and_file_kinds_round_trip(app, tmp_path):
    src = build_hostile_tree(tmp_path / "src")
    sub_second = {b"plain.txt": 1_600_000_000_123_456_789,
                  b"dir-\xfe\xfd/inner\nnewline.txt": 1_500_000_000_000_000_001}
    for rel, ns in sub_second.items():
        os.utime(os.fsencode(src) + b"/" + rel, ns=(ns, ns))
    project = create_project("hostile", [src], tmp_path / "dest")
    job = run_one(app, project)
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    assert any("a-fifo: FIFO not archived" in line for line in log_lines(job.id, "SKIP"))
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    extract_with_gnu_tar(archive.path, tmp_path / "out")
    out = restored(tmp_path / "out", src)
    assert_same_tree(src, out, ignore={b"a-fifo"})
    assert os.stat(out / "hardlink-to-plain.txt").st_ino == os.stat(out / "plain.txt").st_ino
    for rel, ns in sub_second.items():  # pax mtimes to the nanosecond, as GNU tar restores them
        assert os.stat(os.fsencode(out) + b"/" + rel).st_mtime_ns == ns, rel
    assert os.fsencode(out) + b"/dir-\xfe\xfd/inner\nnewline.txt" in [
        os.path.join(os.fsencode(out) + b"/dir-\xfe\xfd", n) for n in os.listdir(os.fsencode(out) + b"/dir-\xfe\xfd")
    ]


def test_excluded_paths_are_not_archived(app, tmp_path):
    src = tmp_path / "src"
    (src / "cache").mkdir(parents=True)
    (src / "cache" / "big.bin").write_bytes(b"x" * 1000)
    (src / "work.tmp").write_text("tmp")
    (src / "keep.txt").write_text("keep")
    project = create_project("excl", [src], tmp_path / "dest", excludes=["*.tmp", "cache/"])
    job = run_one(app, project)
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    names = subprocess.run(["tar", "-tzf", archive.path], capture_output=True, text=True, check=True).stdout.split()
    assert sorted(n.rsplit("/src", 1)[-1] for n in names) == ["/", "/keep.txt"]
    assert archive.member_count == 2


def add_fillers(folder, count=20):
    for i in range(count):
        (folder / f"filler-{i:02d}.txt").write_text(f"filler {i}\n")


def test_unreadable_file_is_an_error_line_and_the_job_ends_warning(app, tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("fine")
    (src / "secret.txt").write_text("no access")
    add_fillers(src)  # one unreadable file among 22: a warning (above STAGEBACKUP_ERROR_FAIL_RATIO it fails)
    from stagebackup.pipeline import source as source_module

    real_open = source_module.open_regular

    def deny_secret(files, path):  # root reads everything, so the failure is injected at the open call
        if path.endswith(b"secret.txt"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(files, path)

    monkeypatch.setattr(source_module, "open_regular", deny_secret)
    project = create_project("warn", [src], tmp_path / "dest")
    job = run_one(app, project)
    assert job.status == "warning"
    assert job.error_message == "1 error(s): see [ERROR] lines in the log" and job.error_count == 1
    assert any("secret.txt: cannot open: Permission denied" in m for m in log_lines(job.id, "ERROR"))
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    extract_with_gnu_tar(archive.path, tmp_path / "out")
    out = restored(tmp_path / "out", src)
    assert (out / "ok.txt").read_text() == "fine" and not (out / "secret.txt").exists()


def test_file_that_shrinks_while_archived_keeps_the_archive_valid(app, tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    victim = src / "growing.log"
    victim.write_bytes(b"a" * 100_000)
    (src / "z-after.txt").write_text("after")
    add_fillers(src)  # one damaged file among 22: a warning (above STAGEBACKUP_ERROR_FAIL_RATIO it fails)
    from stagebackup.pipeline import source as source_module

    class ShrinkingReader(source_module.ExactReader):
        def __init__(self, fd, size, path, reporter, step, **options):
            super().__init__(fd, size, path, reporter, step, **options)
            if path.endswith(b"growing.log"):  # header written with 100,000 bytes; now it shrinks
                os.truncate(path, 10)

    monkeypatch.setattr(source_module, "ExactReader", ShrinkingReader)
    job = run_one(app, create_project("shrink", [src], tmp_path / "dest"))
    assert job.status == "warning"
    assert any("shrank" in m for m in log_lines(job.id, "ERROR"))
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    extract_with_gnu_tar(archive.path, tmp_path / "out")
    out = restored(tmp_path / "out", src)
    assert (out / "growing.log").read_bytes() == b"a" * 10 + bytes(100_000 - 10)
    assert (out / "z-after.txt").read_text() == "after"


def test_missing_source_fails_the_job_with_the_reason(app, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    project = create_project("gone", [src], tmp_path / "dest")
    src.rmdir()
    job = run_one(app, project)
    assert job.status == "failed" and job.error_class == "SourceMissing"
    assert str(src) in job.error_message and "does not exist" in job.error_message
    states = {s["code"]: s["state"] for s in job_detail(job)["stage_steps"]}
    assert states == {"scan": "failed", "compress": "pending", "copy": "pending", "finalize": "pending"}
    assert not (tmp_path / "dest").exists() or os.listdir(tmp_path / "dest") == []
    assert os.listdir(app.config["CACHE_DIR"]) == []


def test_unwritable_destination_fails_at_the_copy_stage_and_leaves_nothing(app, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    project = create_project("blocked", [src], tmp_path / "dest")
    (tmp_path / "dest").write_text("a file where the directory should be")
    job = run_one(app, project)
    assert job.status == "failed" and job.error_class == "DestinationError"
    states = {s["code"]: s["state"] for s in job_detail(job)["stage_steps"]}
    assert states["copy"] == "failed" and states["compress"] == "done"
    assert os.listdir(app.config["CACHE_DIR"]) == []
    assert db.session.query(Archive).filter_by(job_id=job.id).count() == 0


@pytest.mark.parametrize("level", [1, 9])
def test_compression_level_is_applied(app, tmp_path, level):
    src = tmp_path / "src"
    src.mkdir()
    (src / "text.txt").write_text("backup archive tape " * 50_000)
    job = run_one(app, create_project(f"lvl{level}", [src], tmp_path / "dest", level=level))
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    assert job.status == "succeeded" and archive.size < 1_000_000 / (5 if level == 1 else 50)


def test_run_remark_is_audited(app, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    project = create_project("audited", [src], tmp_path / "dest")
    assert db.session.query(AuditEvent).filter_by(action="project.create", target="audited").count() == 1
    job = run_one(app, project, remark="before migration")
    assert job.remark == "before migration"
    assert log_lines(job.id)[0] == "queued (manual): before migration"


def test_source_and_destination_paths_that_are_not_utf8(app, tmp_path):
    src = os.fsencode(tmp_path) + b"/src-\xff"
    os.mkdir(src)
    with open(src + b"/f-\xfe.txt", "wb") as fh:
        fh.write(b"bytes")
    dest = os.fsdecode(os.fsencode(tmp_path) + b"/dest-\xfd")
    job = run_one(app, create_project("bytes", [os.fsdecode(src)], dest))
    assert job.status == "succeeded", job.error_message
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    assert archive.path.startswith(dest + "/")
    assert any("dest-\\xfd/" in m for m in log_lines(job.id))  # shown escaped, stored exactly
    out = tmp_path / "out"
    extract_with_gnu_tar(archive.path, out)
    with open(os.fsencode(out) + src + b"/f-\xfe.txt", "rb") as fh:
        assert fh.read() == b"bytes"


def test_a_failure_after_the_copy_leaves_no_archive_in_the_destination(app, tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    from stagebackup.jobs import backup_task as runner

    class CatalogDown(Exception):
        pass

    def broken_record(*args, **kwargs):
        raise CatalogDown("catalog unavailable")

    real_context = runner.BackupContext

    def context_with_broken_catalog(**kwargs):
        kwargs["record_archive"] = broken_record
        return real_context(**kwargs)

    monkeypatch.setattr(runner, "BackupContext", context_with_broken_catalog)
    job = run_one(app, create_project("late", [src], tmp_path / "dest"))
    assert job.status == "failed" and "catalog unavailable" in job.error_message
    # Each archive is catalogued as soon as its copy is durable, so the copy stage is the one that fails.
    assert {s["code"]: s["state"] for s in job_detail(job)["stage_steps"]}["copy"] == "failed"
    assert os.listdir(tmp_path / "dest") == []


def test_the_worker_survives_a_bug_while_ending_a_job(app, tmp_path, monkeypatch):
    real_finish = queue.finish
    calls = []

    def finish_with_a_bug_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("bug in the reporting path")
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(queue, "finish", finish_with_a_bug_once)
    src = tmp_path / "src"
    src.mkdir()
    first = create_project("first", [src], tmp_path / "dest")
    src.rmdir()  # the job fails, and ending it hits the bug
    other_src = tmp_path / "other"
    other_src.mkdir()
    second = create_project("second", [other_src], tmp_path / "dest")
    failing = queue.enqueue(first, actor="test").id
    fine = queue.enqueue(second, actor="test").id
    assert Worker(app, burst=True).run() == 0  # the worker lives on
    db.session.expire_all()
    job = db.session.get(Job, failing)
    assert job.status == "failed" and job.error_class == "InternalError"
    assert "bug in the reporting path" in job.error_message
    assert db.session.get(Job, fine).status == "succeeded"


def test_several_sources_including_a_single_file_go_into_one_archive(app, tmp_path):
    projects_dir = tmp_path / "srv" / "projects"
    (projects_dir / "客户A").mkdir(parents=True)
    (projects_dir / "客户A" / "logo_v3.ai").write_bytes(b"\x00ai" * 1000)
    fonts_file = tmp_path / "srv" / "fonts.ttf"
    fonts_file.write_bytes(b"font")
    job = run_one(app, create_project("设计稿", [projects_dir, fonts_file], tmp_path / "dest"))
    assert job.status == "succeeded"
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    extract_with_gnu_tar(archive.path, tmp_path / "out")
    assert_same_tree(projects_dir, restored(tmp_path / "out", projects_dir))
    assert restored(tmp_path / "out", fonts_file).read_bytes() == b"font"


def test_a_catalogued_archive_survives_a_failure_that_comes_after_it(app, tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    real_finish = queue.finish
    calls = []

    def success_cannot_be_recorded_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(queue, "finish", success_cannot_be_recorded_once)
    job = run_one(app, create_project("kept", [src], tmp_path / "dest"))
    assert job.status == "failed" and "database went away" in job.error_message
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    assert os.path.exists(archive.path)  # the catalog never points at a deleted file
