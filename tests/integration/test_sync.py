"""Sync mode: real mirrors of hostile trees, second runs after changes, safety refusals, crashes."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
from pathlib import Path

import pytest

from stagebackup import project_checks, projects
from stagebackup.errors import ValidationError
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.summary import job_detail
from stagebackup.jobs.sync_task import NO_DIGEST
from stagebackup.jobs.worker import Worker
from stagebackup.models import Archive, ArchiveMember, Job, JobLog, Project
from stagebackup.pipeline import sync_apply
from tests.conftest import build_hostile_tree, run_flask
from tests.integration.test_worker_processes import start_worker, wait_for
from tests.treecompare import assert_same_tree, snapshot

HOSTILE_SKIPPED = {b"a-fifo"}  # FIFOs are skipped with a [SKIP] line, as in archives


def sync_project(name, sources, dest, strategy="overwrite", **kw) -> int:
    spec = project_checks.ProjectSpec(name=name, sources=[str(s) for s in sources], dest_dir=str(dest), mode="sync",
                                sync_strategy=strategy, **kw)
    return projects.create(spec, actor="test").id


def run_sync(app, project_id, **params) -> Job:
    job_id = queue.enqueue(db.session.get(Project, project_id), actor="test", params=params or None).id
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    return db.session.get(Job, job_id)


def log_lines(job_id, tag=None):
    query = db.session.query(JobLog).filter_by(job_id=job_id)
    if tag:
        query = query.filter_by(tag=tag)
    return [line.message for line in query.order_by(JobLog.id)]


def ns_times(root) -> dict[bytes, int]:
    """rel path -> mtime in nanoseconds, for every entry (links themselves, directories included)."""
    broot = os.fsencode(root)
    times = {}
    for dirpath, dirnames, filenames in os.walk(broot):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            times[os.path.relpath(full, broot)] = os.lstat(full).st_mtime_ns
    times[b"."] = os.lstat(broot).st_mtime_ns
    return times


def temp_files(root) -> list[bytes]:
    found = []
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        found += [os.path.join(dirpath, n) for n in dirnames + filenames if n.startswith(b".sbsync-")]
    return found


def assert_exact_mirror(src, mirror, ignore=HOSTILE_SKIPPED):
    assert_same_tree(src, mirror, ignore=ignore)
    expected = {k: v for k, v in ns_times(src).items() if k not in ignore}
    assert ns_times(mirror) == expected  # mtimes to the nanosecond, directories and links included


# -- a first mirror and a second run with nothing to do ------------------------------------------------
def test_hostile_tree_is_mirrored_exactly_and_catalogued(any_db_app, tmp_path):
    app = any_db_app
    src = build_hostile_tree(tmp_path / "src")
    dest = tmp_path / "dest"
    project_id = sync_project("镜像 mirror", [src], dest)
    job = run_sync(app, project_id)
    assert job.status == "succeeded", (job.error_message, log_lines(job.id, "ERROR"))
    detail = job_detail(job)
    assert [(s["code"], s["label"], s["state"]) for s in detail["stage_steps"]] == [
        ("scan", "扫描文件", "done"), ("copy", "同步", "done"), ("finalize", "完成", "done")]
    mirror = dest / "src"
    assert_exact_mirror(src, mirror)
    assert any("a-fifo: FIFO not archived" in m for m in log_lines(job.id, "SKIP"))
    assert "src/plain.txt" in log_lines(job.id, "ADD")
    # Sparse stays sparse: 8 MiB of hole do not become 8 MiB of zeros.
    assert os.stat(mirror / "sparse.img").st_blocks * 512 < 1 << 20
    # Hard links are copied as separate files (documented, as rsync -a without -H).
    assert os.stat(mirror / "hardlink-to-plain.txt").st_ino != os.stat(mirror / "plain.txt").st_ino
    assert os.stat(mirror / "readonly.txt").st_mode & 0o777 == 0o444
    assert os.readlink(mirror / "dangling-link") == "/nonexistent/target"
    assert job.files_done == job.files_total > 0 and job.bytes_done == job.bytes_total > 0
    assert os.listdir(app.config["CACHE_DIR"]) == []

    # The catalog: one row per entry of the mirror, bytes-exact, paths relative to the destination.
    [archive] = db.session.query(Archive).filter_by(job_id=job.id).all()
    assert (archive.format, archive.location_kind, archive.path) == ("sync", "directory", str(dest))
    on_disk = {b"src"} | {b"src/" + rel for rel in snapshot(mirror)}
    rows = db.session.query(ArchiveMember).filter_by(archive_id=archive.id).all()
    catalogued = {os.fsencode(r.parent + "/" + r.name if r.parent else r.name) for r in rows}
    assert catalogued == on_disk and archive.member_count == len(on_disk)
    by_path = {os.fsencode(r.parent + "/" + r.name if r.parent else r.name): r for r in rows}
    inner = by_path[b"src/dir-\xfe\xfd/inner\nnewline.txt"]
    assert (inner.kind, inner.size) == ("file", len(b"newline in the name\n"))
    assert by_path[b"src/dangling-link"].link_target == "/nonexistent/target"
    assert by_path[b"src/plain.txt"].mtime == 1_600_000_000
    assert stat.S_IMODE(by_path[b"src/readonly.txt"].mode) == 0o444
    file_sizes = [v[2] for v in snapshot(mirror).values() if v[0] == "file"]
    assert archive.size == sum(r.size for r in rows) == sum(file_sizes)

    again = run_sync(app, project_id)
    assert again.status == "succeeded"
    assert log_lines(again.id, "ADD") == [] and log_lines(again.id, "SYNC") == []
    assert_exact_mirror(src, mirror)
    assert db.session.query(Archive).filter_by(job_id=again.id).one().member_count == len(on_disk)


def test_corpus_mirror_round_trips(app, corpus, tmp_path):
    job = run_sync(app, sync_project("corpus", [corpus.root], tmp_path / "dest", strategy="incremental"))
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    assert_exact_mirror(corpus.root, tmp_path / "dest" / corpus.root.name, ignore=corpus.specials())


# -- second runs after changes -------------------------------------------------------------------------
def change_tree(src: Path) -> None:
    """Changed, added, removed and type-changed entries, and a permission-only change."""
    plain = src / "plain.txt"
    plain.write_text("PLAIN\n")  # same size, new content and mtime
    os.utime(plain, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    (src / "script.sh").chmod(0o700)  # only the permissions
    (src / "added.txt").write_text("new\n")
    (src / "added-dir" / "sub").mkdir(parents=True)
    (src / "added-dir" / "sub" / "f").write_text("f")
    os.unlink(src / "empty-file")
    shutil.rmtree(src / ("level00-" + "x" * 20))
    os.unlink(src / "link-to-plain")  # symlink -> file
    (src / "link-to-plain").write_text("now a file\n")
    os.unlink(src / "with space and 中文 ünïcode.txt")  # file -> directory
    (src / "with space and 中文 ünïcode.txt").mkdir()
    (src / "with space and 中文 ünïcode.txt" / "inside").write_text("x")
    os.unlink(src / "readonly.txt")  # file -> symlink
    os.symlink("plain.txt", src / "readonly.txt")


def test_overwrite_second_run_mirrors_every_kind_of_change(app, tmp_path):
    src = build_hostile_tree(tmp_path / "src")
    (src / "a-dir-to-become-a-file").mkdir()
    (src / "a-dir-to-become-a-file" / "child").write_text("c")
    (src / "a-dir-to-become-a-link").mkdir()
    project_id = sync_project("ow", [src], tmp_path / "dest")
    assert run_sync(app, project_id).status == "succeeded"
    change_tree(src)
    shutil.rmtree(src / "a-dir-to-become-a-file")
    (src / "a-dir-to-become-a-file").write_text("file now")
    os.rmdir(src / "a-dir-to-become-a-link")
    os.symlink("/nonexistent", src / "a-dir-to-become-a-link")

    job = run_sync(app, project_id)
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    mirror = tmp_path / "dest" / "src"
    assert_exact_mirror(src, mirror)
    sync_lines = log_lines(job.id, "SYNC")
    assert "src/empty-file: removed" in sync_lines
    assert f"src/level00-{'x' * 20}: removed" in sync_lines  # a tree with one file in it
    assert "src/a-dir-to-become-a-file: removed" in sync_lines
    assert "src/with space and 中文 ünïcode.txt: replaced by a directory" in sync_lines
    assert "src/plain.txt" in sync_lines and "src/added.txt" in log_lines(job.id, "ADD")
    assert "src/script.sh: permissions, owner or time" in sync_lines
    assert temp_files(tmp_path / "dest") == []
    catalogued = {os.fsencode(r.parent + "/" + r.name if r.parent else r.name)
                  for r in db.session.query(ArchiveMember).filter_by(job_id=job.id)}
    assert catalogued == {b"src"} | {b"src/" + rel for rel in snapshot(mirror)}


def test_incremental_copies_new_and_changed_files_and_never_deletes(app, tmp_path):
    src = build_hostile_tree(tmp_path / "src")
    project_id = sync_project("inc", [src], tmp_path / "dest", strategy="incremental")
    assert run_sync(app, project_id).status == "succeeded"
    before = snapshot(tmp_path / "dest" / "src")
    change_tree(src)

    job = run_sync(app, project_id)
    mirror = tmp_path / "dest" / "src"
    # The one change incremental refuses: a directory of the mirror where the source now has a file/link.
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    after = snapshot(mirror)
    current = {k: v for k, v in snapshot(src).items() if k not in HOSTILE_SKIPPED}
    for rel, value in current.items():  # every source entry is mirrored exactly...
        assert after.get(rel) == value, rel
    removed = set(before) - set(current)  # ...and nothing the source lost was deleted
    assert removed and all(after[rel] == before[rel] for rel in removed)
    assert b"empty-file" in removed
    assert sorted(log_lines(job.id, "SYNC")) == [
        "src/hardlink-to-plain.txt",  # shares its inode (and so its new mtime) with plain.txt
        "src/link-to-plain", "src/plain.txt", "src/readonly.txt: -> plain.txt",
        "src/script.sh: permissions, owner or time", "src/with space and 中文 ünïcode.txt: replaced by a directory",
    ]
    assert not any("removed" in line for line in log_lines(job.id))


def test_incremental_never_replaces_a_directory(app, tmp_path):
    app.config["ERROR_FAIL_RATIO"] = 1.0  # a tree of a few files: its one error stays a warning
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "keep").write_text("keep")
    project_id = sync_project("inc-dir", [src], tmp_path / "dest", strategy="incremental")
    assert run_sync(app, project_id).status == "succeeded"
    shutil.rmtree(src / "d")
    (src / "d").write_text("a file now")
    job = run_sync(app, project_id)
    assert job.status == "warning"
    assert any("incremental sync never deletes directories" in m for m in log_lines(job.id, "ERROR"))
    assert (tmp_path / "dest" / "src" / "d" / "keep").read_text() == "keep"


def test_several_sources_go_to_their_own_names_and_foreign_entries_stay(app, tmp_path):
    (tmp_path / "a" / "docs").mkdir(parents=True)
    (tmp_path / "a" / "docs" / "x.txt").write_text("x")
    single = tmp_path / "b" / "notes.txt"
    single.parent.mkdir()
    single.write_text("notes")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "not-ours.txt").write_text("someone else's")
    project_id = sync_project("multi", [tmp_path / "a" / "docs", single], dest)
    job = run_sync(app, project_id)
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    assert sorted(os.listdir(dest)) == ["docs", "not-ours.txt", "notes.txt"]
    assert_exact_mirror(tmp_path / "a" / "docs", dest / "docs", ignore=set())
    assert (dest / "notes.txt").read_text() == "notes"
    assert os.stat(dest / "notes.txt").st_mtime_ns == os.stat(single).st_mtime_ns
    single.write_text("notes, changed")
    assert run_sync(app, project_id).status == "succeeded"
    assert (dest / "notes.txt").read_text() == "notes, changed" and (dest / "not-ours.txt").exists()


def test_excluded_files_are_not_copied_and_never_deleted_from_the_mirror(app, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "keep.txt").write_text("keep")
    (src / "work.tmp").write_text("tmp")
    dest = tmp_path / "dest"
    (dest / "src").mkdir(parents=True)
    (dest / "src" / "old.tmp").write_text("from before the rule")
    job = run_sync(app, sync_project("excl", [src], dest, excludes=["*.tmp"]))
    assert job.status == "succeeded"
    assert sorted(os.listdir(dest / "src")) == ["keep.txt", "old.tmp"]


# -- validation and safety -----------------------------------------------------------------------------
def test_layout_is_validated(app, tmp_path):
    (tmp_path / "one" / "data").mkdir(parents=True)
    (tmp_path / "two" / "data").mkdir(parents=True)
    with pytest.raises(ValidationError, match="same name 'data'"):
        sync_project("dup", [tmp_path / "one" / "data", tmp_path / "two" / "data"], tmp_path / "dest")
    (tmp_path / "dest" / "inside").mkdir(parents=True)
    with pytest.raises(ValidationError, match="inside destination"):
        sync_project("in", [tmp_path / "dest" / "inside"], tmp_path / "dest")
    with pytest.raises(ValidationError, match="inside source"):
        sync_project("out", [tmp_path / "one"], tmp_path / "one" / "mirror")
    # Archive mode is not concerned: two "data" sources are fine there.
    projects.create(project_checks.ProjectSpec(name="tgz", sources=[str(tmp_path / "one" / "data"),
                                                            str(tmp_path / "two" / "data")],
                                         dest_dir=str(tmp_path / "d2")), actor="test")


def mirror_ten_then_remove_seven(app, name, tmp_path) -> tuple[Path, int]:
    """A mirrored folder of ten files, seven of which are then deleted from the source."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(10):
        (src / f"f{i}.txt").write_text(str(i))
    project_id = sync_project(name, [src], tmp_path / "dest")
    assert run_sync(app, project_id).status == "succeeded"
    for i in range(7):
        os.unlink(src / f"f{i}.txt")
    return src, project_id


def test_mass_delete_is_refused_before_anything_is_deleted(any_db_app, tmp_path):
    app = any_db_app
    src, project_id = mirror_ten_then_remove_seven(app, "mass", tmp_path)
    (src / "new.txt").write_text("new")

    job = run_sync(app, project_id)
    assert job.status == "failed" and job.error_class == "MassDeleteRefused"
    assert "would remove 7 of the 10 files" in job.error_message and "70%" in job.error_message
    assert "--allow-mass-delete" in job.error_message and "STAGEBACKUP_SYNC_MAX_DELETE_RATIO" in job.error_message
    assert len(os.listdir(tmp_path / "dest" / "src")) == 10  # nothing deleted, nothing copied
    assert {s["code"]: s["state"] for s in job_detail(job)["stage_steps"]} == {
        "scan": "failed", "copy": "pending", "finalize": "pending"}
    assert db.session.query(Archive).filter_by(job_id=job.id).count() == 0

    db.session.get(Project, project_id).allow_mass_delete = True  # an old standing permission is not honoured
    db.session.commit()
    assert run_sync(app, project_id).error_class == "MassDeleteRefused"
    job = run_sync(app, project_id, allow_mass_delete=True)  # confirmed for this run
    assert job.status == "succeeded"
    assert sorted(os.listdir(tmp_path / "dest" / "src")) == ["f7.txt", "f8.txt", "f9.txt", "new.txt"]


def test_a_limit_from_the_configuration_allows_a_smaller_mirror_change(app, tmp_path):
    app.config["SYNC_MAX_DELETE_RATIO"] = 0.8
    _src, project_id = mirror_ten_then_remove_seven(app, "ratio", tmp_path)
    assert run_sync(app, project_id).status == "succeeded"
    assert len(os.listdir(tmp_path / "dest" / "src")) == 3


def test_a_missing_or_empty_source_never_wipes_the_mirror(app, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "precious.txt").write_text("precious")
    project_id = sync_project("gone", [src], tmp_path / "dest")
    assert run_sync(app, project_id).status == "succeeded"

    src.rename(tmp_path / "elsewhere")  # unmounted, renamed, lost
    job = run_sync(app, project_id)
    assert job.status == "failed" and job.error_class == "SourceMissing"
    assert (tmp_path / "dest" / "src" / "precious.txt").read_text() == "precious"

    src.mkdir()  # an empty mount point: even a confirmed mass delete does not wipe the mirror
    job = run_sync(app, project_id, allow_mass_delete=True)
    assert job.status == "failed" and job.error_class == "SourceEmpty"
    assert "unmounted" in job.error_message
    assert (tmp_path / "dest" / "src" / "precious.txt").read_text() == "precious"


# -- read errors and crashes ---------------------------------------------------------------------------
def test_unreadable_file_keeps_the_old_copy_and_the_job_ends_warning(app, tmp_path, monkeypatch):
    app.config["ERROR_FAIL_RATIO"] = 1.0  # a tree of a few files: its one error stays a warning
    src = tmp_path / "src"
    src.mkdir()
    (src / "secret.txt").write_text("version 1")
    (src / "ok.txt").write_text("fine")
    project_id = sync_project("unreadable", [src], tmp_path / "dest")
    assert run_sync(app, project_id).status == "succeeded"
    (src / "secret.txt").write_text("version 2, longer")
    (src / "ok.txt").write_text("fine, changed")
    real_open = sync_apply._open_source

    def deny_secret(folders, path):  # root reads everything, so the failure is injected at the open call
        if path.endswith(b"secret.txt"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(folders, path)

    monkeypatch.setattr(sync_apply, "_open_source", deny_secret)
    job = run_sync(app, project_id)
    assert job.status == "warning" and job.error_count == 1
    assert any(m.endswith("secret.txt: cannot open: Permission denied") for m in log_lines(job.id, "ERROR"))
    mirror = tmp_path / "dest" / "src"
    assert (mirror / "secret.txt").read_text() == "version 1"
    assert (mirror / "ok.txt").read_text() == "fine, changed"
    # The catalog describes what the mirror holds: the old copy.
    row = db.session.query(ArchiveMember).filter_by(job_id=job.id, name="secret.txt").one()
    assert row.size == len("version 1")
    archive = db.session.query(Archive).filter_by(job_id=job.id).one()
    rows = db.session.query(ArchiveMember).filter_by(job_id=job.id).all()
    assert archive.member_count == len(rows) == 3  # the source's top and its two files
    assert archive.size == sum(r.size for r in rows) == len("version 1") + len("fine, changed")
    # Not the planned catalog: no digest for a later quick check to trust; the next good run records one.
    assert archive.sha256 == NO_DIGEST
    monkeypatch.setattr(sync_apply, "_open_source", real_open)
    again = run_sync(app, project_id)
    assert again.status == "succeeded"
    assert (mirror / "secret.txt").read_text() == "version 2, longer"
    assert len(db.session.query(Archive).filter_by(job_id=again.id).one().sha256) == 64


def test_a_mirror_directory_that_cannot_be_listed_is_left_alone(app, tmp_path, monkeypatch):
    app.config["ERROR_FAIL_RATIO"] = 1.0  # a tree of a few files: its one error stays a warning
    src = tmp_path / "src"
    (src / "locked" / "deeper").mkdir(parents=True)
    (src / "locked" / "a.txt").write_text("a")
    (src / "other.txt").write_text("o")
    project_id = sync_project("unlistable", [src], tmp_path / "dest")
    assert run_sync(app, project_id).status == "succeeded"
    os.unlink(src / "locked" / "a.txt")  # would be removed from the mirror...
    (src / "locked" / "deeper" / "new.txt").write_text("n")  # ...and this added
    (src / "other.txt").write_text("other, changed")
    from stagebackup.pipeline import sync_plan

    real_list = sync_plan._list

    def cannot_list_locked(path):  # root lists everything, so the failure is injected
        if path.endswith(b"/locked"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_list(path)

    monkeypatch.setattr(sync_plan, "_list", cannot_list_locked)
    job = run_sync(app, project_id)
    assert job.status == "warning"
    assert any("locked: cannot list the mirror: Permission denied" in m for m in log_lines(job.id, "ERROR"))
    mirror = tmp_path / "dest" / "src"
    assert (mirror / "locked" / "a.txt").exists() and not (mirror / "locked" / "deeper" / "new.txt").exists()
    assert (mirror / "other.txt").read_text() == "other, changed"


def test_a_read_error_mid_file_leaves_no_half_written_file(app, tmp_path, monkeypatch):
    app.config["ERROR_FAIL_RATIO"] = 1.0  # a tree of a few files: its one error stays a warning
    src = tmp_path / "src"
    src.mkdir()
    big = src / "big.bin"
    big.write_bytes(b"old" * 1000)
    project_id = sync_project("midread", [src], tmp_path / "dest")
    assert run_sync(app, project_id).status == "succeeded"
    big.write_bytes(os.urandom(3 << 20))
    real_chunk = sync_apply._copy_chunk
    seen = []

    def fail_after_first_chunk(fin, fout, offset, count, state):
        if seen:
            raise OSError(errno.EIO, "Input/output error")
        seen.append(offset)
        return real_chunk(fin, fout, offset, min(count, 1 << 20), state)

    monkeypatch.setattr(sync_apply, "_copy_chunk", fail_after_first_chunk)
    job = run_sync(app, project_id)
    assert job.status == "warning"
    assert any("big.bin: read error, the mirror keeps its old copy: Input/output error" in m
               for m in log_lines(job.id, "ERROR"))
    assert (tmp_path / "dest" / "src" / "big.bin").read_bytes() == b"old" * 1000
    assert temp_files(tmp_path / "dest") == []  # the partial copy was removed


def test_a_stale_temporary_file_is_removed_by_the_next_run(app, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("f")
    project_id = sync_project("stale", [src], tmp_path / "dest", strategy="incremental")
    assert run_sync(app, project_id).status == "succeeded"
    (tmp_path / "dest" / "src" / "d" / ".sbsync-99-1.tmp").write_bytes(b"half")
    (tmp_path / "dest" / ".sbsync-99-2.tmp").write_bytes(b"half")
    job = run_sync(app, project_id)
    assert job.status == "succeeded"
    assert temp_files(tmp_path / "dest") == []
    assert sum("removed a partial file left by an interrupted sync" in m for m in log_lines(job.id, "INFO")) == 2


def writing_temp(dest: Path) -> Path | None:
    found = temp_files(dest)
    return Path(os.fsdecode(found[0])) if found and os.path.getsize(found[0]) > 0 else None


@pytest.mark.slow
def test_sigkill_mid_copy_leaves_only_a_temporary_file_which_the_next_run_removes(app, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.txt").write_text("small")
    dest = tmp_path / "dest"
    project_id = sync_project("killed", [src], dest)
    assert run_sync(app, project_id).status == "succeeded"
    big = src / "big.img"
    with open(big, "wb") as fh:  # allocated, not sparse: the copy has to write every block
        os.posix_fallocate(fh.fileno(), 0, 768 << 20)
    job_id = queue.enqueue(db.session.get(Project, project_id), actor="test").id
    db.session.commit()

    worker = start_worker(app)
    try:
        temp = wait_for(lambda: writing_temp(dest), interval=0.005)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert not (dest / "src" / "big.img").exists()  # never a half-written file under the real name
    assert temp.exists() and temp.parent == dest / "src"

    result = run_flask(app, "worker", "run", "--burst")  # recovers the dead worker's job
    assert result.returncode == 0, result.stderr[-2000:]
    db.session.expire_all()
    assert db.session.get(Job, job_id).status == "interrupted"
    assert (dest / "src" / "small.txt").read_text() == "small"  # the mirror is not a partial output

    job = run_sync(app, project_id)
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    assert not temp.exists() and temp_files(dest) == []
    assert any("removed a partial file left by an interrupted sync" in m for m in log_lines(job.id, "INFO"))
    assert os.path.getsize(dest / "src" / "big.img") == 768 << 20


FILES_TO_CANCEL = 20000


def test_cancel_stops_a_sync_between_files(app, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(FILES_TO_CANCEL):  # long enough to be caught mid-way
        (src / f"f{i:05d}").write_bytes(b"x" * 100)
    project_id = sync_project("cancel", [src], tmp_path / "dest")
    job_id = queue.enqueue(db.session.get(Project, project_id), actor="test").id
    db.session.commit()
    worker = start_worker(app, "--burst")
    mirror = tmp_path / "dest" / "src"
    wait_for(lambda: mirror.is_dir() and len(os.listdir(mirror)) > 20, interval=0.002)  # temporary names too
    status = queue.request_cancel(job_id, actor="test")
    db.session.rollback()  # reading the status after the commit opened a transaction: never wait holding it
    worker.communicate(timeout=60)
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    if status != "running":  # the copy outran the cancel: nothing to check on this machine
        pytest.skip(f"the job was {status} before the cancel arrived")
    assert job.status == "cancelled"
    copied = os.listdir(mirror)  # the batches made durable before the cancel; the pending one is discarded
    assert len(copied) < FILES_TO_CANCEL and temp_files(tmp_path / "dest") == []
    assert all((mirror / name).read_bytes() == b"x" * 100 for name in copied)  # whole files only
    assert db.session.query(Archive).filter_by(job_id=job_id).count() == 0


# -- the CLI -------------------------------------------------------------------------------------------
def test_cli_creates_and_runs_a_sync_project(app, tmp_path):
    src = build_hostile_tree(tmp_path / "src")
    dest = tmp_path / "mirror-dest"
    run_flask(app, "projects", "add", "mirror", "--mode", "sync", "--strategy", "overwrite", "--source", str(src),
              "--dest-dir", str(dest))
    job_id = run_flask(app, "jobs", "run", "mirror", "--json").stdout
    result = run_flask(app, "worker", "run", "--burst")
    assert result.returncode == 0
    db.session.expire_all()
    job = db.session.query(Job).order_by(Job.id.desc()).first()
    assert str(job.id) in job_id and job.status == "succeeded"
    assert_exact_mirror(src, dest / "src")
