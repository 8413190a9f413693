"""Sync's quick check: an unchanged mirror is recognised without the planner, and its catalog is reused.

The check must agree with the planner exactly: the digest it computes is compared with the one recorded
from the planner's catalog, and any difference at all must send the run back to the planner.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from stagebackup.catalog import catalog_job
from stagebackup.extensions import db
from stagebackup.models import Archive, ArchiveMember
from stagebackup.pipeline.sync import plan_roots
from stagebackup.pipeline.sync_quick import unchanged_digest
from stagebackup.restore import browse, mirror, service
from tests.conftest import build_hostile_tree
from tests.integration.test_restore_jobs import restore_root, run_queued
from tests.integration.test_sync import log_lines, run_sync, sync_project
from tests.treecompare import assert_same_tree


def quiet_tree(root: Path) -> Path:
    """The hostile tree without its FIFO (a special file always sends a run to the planner, which logs it)."""
    build_hostile_tree(root)
    os.unlink(root / "a-fifo")
    os.utime(root / "sparse.img", ns=(1_650_000_000_987_654_321, 1_650_000_000_987_654_321))
    return root


def digest_now(sources, dest) -> str | None:
    workdir = Path(dest).parent / "quick-check"
    workdir.mkdir(exist_ok=True)
    try:
        return unchanged_digest(plan_roots([str(s) for s in sources], str(dest)), os.fsencode(dest), str(workdir),
                                lambda: None)
    finally:
        assert os.listdir(workdir) == []  # the listings are removed
        workdir.rmdir()


def archive_of(job_id) -> Archive:
    return db.session.query(Archive).filter_by(job_id=job_id).one()


def member_rows(job_id) -> int:
    return db.session.query(ArchiveMember).filter_by(job_id=job_id).count()


@pytest.mark.parametrize("strategy", ["overwrite", "incremental"])
def test_an_unchanged_mirror_reuses_the_catalog_the_planner_recorded(any_db_app, tmp_path, strategy, monkeypatch):
    app = any_db_app
    monkeypatch.setattr(mirror, "STREAM_ROWS", 4)  # the mirror's catalog is read in pages, across commits
    src = quiet_tree(tmp_path / "src")
    project_id = sync_project("quick", [src], tmp_path / "dest", strategy=strategy)
    first = run_sync(app, project_id)
    assert first.status == "succeeded" and first.catalog_job_id is None
    recorded = archive_of(first.id)
    assert recorded.sha256 == digest_now([src], tmp_path / "dest")  # the check agrees with the planner's rows

    second = run_sync(app, project_id)
    assert second.status == "succeeded", log_lines(second.id, "ERROR")
    assert second.catalog_job_id == first.id and member_rows(second.id) == 0
    assert "the mirror is already the same as the source" in " ".join(log_lines(second.id, "INFO"))
    again = archive_of(second.id)
    assert (again.member_count, again.size, again.sha256) == (recorded.member_count, recorded.size, recorded.sha256)
    third = run_sync(app, project_id)
    assert third.catalog_job_id == first.id  # always the job that owns the rows, never a chain

    # Browsing and restoring the run that wrote nothing reads the first run's catalog, from the mirror.
    assert catalog_job(second.id) == first.id
    names = {entry.name for entry in browse.list_folder(first.id, "src").entries}
    assert "plain.txt" in names and "sparse.img" in names
    target = restore_root(app) / "from-reused"
    restored = run_queued(app, service.request_restore(second.id, target=str(target)).id)
    assert restored.status == "succeeded", (restored.error_message, log_lines(restored.id, "ERROR"))
    assert_same_tree(src, target / "src")


def change(kind: str, src: Path, mirror: Path) -> None:
    later = (1_700_000_000_000_000_001,) * 2
    if kind == "source file content, same size":
        (src / "plain.txt").write_text("PLAIN\n")
    elif kind == "mirror file mtime":
        os.utime(mirror / "plain.txt", ns=later)
    elif kind == "mirror file mode":
        (mirror / "script.sh").chmod(0o700)
    elif kind == "extra file in the mirror":
        (mirror / "empty-dir" / "stray").write_text("x")
    elif kind == "file missing from the mirror":
        os.unlink(mirror / "empty-file")
    elif kind == "new file in the source":
        (src / "new.txt").write_text("new")
    elif kind == "symlink target":  # only the target: the link's and its folder's mtimes are put back
        folder, link = os.lstat(src).st_mtime_ns, os.lstat(mirror / "link-to-plain").st_mtime_ns
        os.unlink(src / "link-to-plain")
        os.symlink("script.sh", src / "link-to-plain")
        os.utime(src / "link-to-plain", ns=(link, link), follow_symlinks=False)
        os.utime(src, ns=(folder, folder))
    elif kind == "directory mtime in the mirror":
        os.utime(mirror / "empty-dir", ns=later)
    elif kind == "a FIFO in the source":
        os.mkfifo(src / "fifo")
    elif kind == "file becomes a directory in the mirror":
        os.unlink(mirror / "empty-file")
        (mirror / "empty-file").mkdir()
    elif kind == "leftover temporary file at the top":
        (mirror.parent / ".sbsync-1-1.tmp").write_text("partial")
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "source file content, same size", "mirror file mtime", "mirror file mode", "extra file in the mirror",
    "file missing from the mirror", "new file in the source", "symlink target", "directory mtime in the mirror",
    "a FIFO in the source", "file becomes a directory in the mirror", "leftover temporary file at the top",
])
def test_any_difference_sends_the_run_to_the_planner(app, tmp_path, kind):
    src = quiet_tree(tmp_path / "src")
    project_id = sync_project("diff", [src], tmp_path / "dest")
    first = run_sync(app, project_id)
    assert digest_now([src], tmp_path / "dest") == archive_of(first.id).sha256
    change(kind, src, tmp_path / "dest" / "src")
    assert digest_now([src], tmp_path / "dest") is None

    job = run_sync(app, project_id)
    assert job.status in ("succeeded", "warning") and job.catalog_job_id is None
    assert member_rows(job.id) > 0  # its own catalog, written by the planner
    if kind != "a FIFO in the source":
        assert_same_tree(src, tmp_path / "dest" / "src")
        assert run_sync(app, project_id).catalog_job_id == job.id  # and the next unchanged run reuses that one


def test_an_unchanged_mirror_with_a_catalog_recorded_differently_is_planned_again(app, tmp_path):
    """Same tree, other catalog (here: edited behind our back): the digests differ, so nothing is reused."""
    src = quiet_tree(tmp_path / "src")
    project_id = sync_project("edited", [src], tmp_path / "dest")
    first = run_sync(app, project_id)
    archive_of(first.id).sha256 = "0" * 64
    db.session.commit()
    second = run_sync(app, project_id)
    assert second.catalog_job_id is None and member_rows(second.id) == member_rows(first.id)


def test_several_sources_and_rules(app, tmp_path):
    one, two = quiet_tree(tmp_path / "a" / "one"), tmp_path / "b" / "two"
    shutil.copytree(one, two, symlinks=True)
    single = tmp_path / "c" / "single.txt"  # a file source is mirrored as the file DEST/single.txt
    single.parent.mkdir()
    single.write_text("one file\n")
    os.utime(single, ns=(1_600_000_000_123_456_789,) * 2)
    project_id = sync_project("multi", [one, two, single], tmp_path / "dest")
    first = run_sync(app, project_id)
    assert run_sync(app, project_id).catalog_job_id == first.id  # the combined digest agrees too
    os.utime(tmp_path / "dest" / "single.txt", ns=(1_600_000_000_123_456_788,) * 2)
    mended = run_sync(app, project_id)
    assert mended.catalog_job_id is None
    assert os.stat(tmp_path / "dest" / "single.txt").st_mtime_ns == 1_600_000_000_123_456_789

    ruled = sync_project("ruled", [one], tmp_path / "dest2", excludes=["*.sh"])
    run_sync(app, ruled)
    assert run_sync(app, ruled).catalog_job_id is None  # with rules, the planner decides what counts
