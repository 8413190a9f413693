"""SIGKILL of a real worker at each stage boundary and inside each stage, then recovery and a rerun.

The worker pauses exactly where the test asks (tests/faults/inject.py: ``STAGEBACKUP_TEST_PAUSE_AT``; no
sleeps) and is killed there. The next worker's start-up recovery must end the job ``interrupted`` with the
reason, leave nothing partial under a final name, an empty cache, void tape files and no incomplete archive
in the catalog; a rerun must then succeed and restore byte for byte.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.pipeline.sync_plan import is_temp_name
from stagebackup.tape import admin
from tests.conftest import build_hostile_tree
from tests.faults.support import (
    assert_clean_ending,
    enqueue,
    errors,
    fault_env,
    files_under,
    kill_when_paused,
    recover,
    request_restore,
    run_job,
    start_worker,
)
from tests.treecompare import assert_same_tree

pytestmark = pytest.mark.slow
MiB = 1 << 20


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Hostile names and kinds, an 8 MiB sparse file, and 3 MiB that do not compress (several copy chunks)."""
    root = build_hostile_tree(tmp_path_factory.mktemp("faults") / "src")
    (root / "noise.bin").write_bytes(os.urandom(3 * MiB))
    return root


def kill_at(app, tmp_path, job_id: int, point: str, skip: int = 0, faults: tuple[str, ...] = (),
            recovered: bool = True) -> None:
    mark = tmp_path / f"paused-{job_id}"
    worker = start_worker(fault_env(app, pause_at=point, skip=skip, faults=faults, mark=mark))
    assert kill_when_paused(worker, mark) == point
    if recovered:
        recover(app)


def assert_interrupted(app, job_id: int, dest: Path | None = None):
    job = assert_clean_ending(app, job_id, "interrupted", "WorkerLost", dest)
    assert "died" in job.error_message
    assert any("interrupted: worker" in line for line in errors(job_id))
    return job


def rerun_and_restore(app, tmp_path, project: str, source: Path) -> None:
    backup = run_job(app, enqueue(project))
    assert backup.status == "succeeded", (backup.error_message, errors(backup.id))
    target = Path(app.config["RESTORE_ROOTS"][0]) / f"after-{backup.id}"
    restore = run_job(app, request_restore(backup.id, target))
    assert restore.status == "succeeded", (restore.error_message, errors(restore.id))
    assert_same_tree(source, target / str(source).lstrip("/"))


# -- a backup to a directory ------------------------------------------------------------------------------
# "<stage>:start" is the boundary with the stage before it (its ":end" is the statement before); "finalize:end" is
# after the last stage, before the job's ending is recorded.
DIRECTORY_POINTS = [
    ("scan:start", 0), ("scan", 0),
    ("compress:start", 0), ("compress", 3),
    ("copy:start", 0), ("copy-thread", 1),
    ("finalize:start", 0), ("finalize:end", 0),
]


@pytest.mark.parametrize(("point", "skip"), DIRECTORY_POINTS, ids=[p for p, _ in DIRECTORY_POINTS])
def test_backup_to_a_directory_killed_at(app, tmp_path, source, point, skip):
    dest = tmp_path / "dest"
    projects.create(project_checks.ProjectSpec(name="dir", sources=[str(source)], dest_dir=str(dest)), actor="test")
    job_id = enqueue("dir")
    kill_at(app, tmp_path, job_id, point, skip, faults=("no-link",), recovered=False)  # a real copy, by chunks
    cache = Path(app.config["CACHE_DIR"])
    if point == "compress":  # the dead worker left a half-written archive in the cache…
        assert any(p.name.endswith(".tar.gz") for p in files_under(cache))
    if point == "copy-thread":  # …or a half-copied one in the destination, under its temporary name only
        assert [p.name.endswith(".partial") for p in files_under(dest)] == [True]
    recover(app)
    assert_interrupted(app, job_id, dest)
    rerun_and_restore(app, tmp_path, "dir", source)


# -- a backup to the virtual tape drive ---------------------------------------------------------------------
TAPE_POINTS = [("copy-thread", 2), ("tape-confirmed", 0), ("copy:end", 0), ("finalize:start", 0)]


@pytest.mark.parametrize(("point", "skip"), TAPE_POINTS, ids=[p for p, _ in TAPE_POINTS])
def test_backup_to_tape_killed_at(app, tmp_path, source, point, skip):
    admin.label(app.config, "vtape0", "TAPE001")
    projects.create(project_checks.ProjectSpec(name="tape", sources=[str(source)], dest_drive="vtape0"), actor="test")
    job_id = enqueue("tape")
    kill_at(app, tmp_path, job_id, point, skip)
    assert_interrupted(app, job_id)
    db.session.rollback()
    rerun_and_restore(app, tmp_path, "tape", source)


# -- a sync (mirror) ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("point", "skip"), [("scan", 0), ("copy:start", 0), ("sync-file", 0), ("finalize:start", 0)])
def test_sync_killed_at(app, tmp_path, source, point, skip):
    dest = tmp_path / "mirror"
    projects.create(project_checks.ProjectSpec(name="sync", sources=[str(source)], dest_dir=str(dest), mode="sync",
                                         sync_strategy="overwrite"), actor="test")
    job_id = enqueue("sync")
    kill_at(app, tmp_path, job_id, point, skip)
    assert_interrupted(app, job_id)
    temps = [p for p in files_under(dest / source.name) if is_temp_name(os.fsencode(p.name))]
    assert bool(temps) == (point == "sync-file")  # killed mid-file: the file is only under its temporary name
    for path in files_under(dest / source.name):  # whatever the dead sync renamed into place is whole
        if path.is_file() and not path.is_symlink() and not is_temp_name(os.fsencode(path.name)):
            original = source / path.relative_to(dest / source.name)
            assert path.read_bytes() == original.read_bytes(), path
    job = run_job(app, enqueue("sync"))
    assert job.status == "succeeded", (job.error_message, errors(job.id))
    assert_same_tree(source, dest / source.name)


# -- a restore ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("point", "skip"), [("extract", 0), ("restore-file", 0), ("extract:end", 0)])
def test_restore_killed_at(app, tmp_path, source, point, skip):
    projects.create(project_checks.ProjectSpec(name="dir", sources=[str(source)], dest_dir=str(tmp_path / "dest")),
                    actor="test")
    backup = run_job(app, enqueue("dir"))
    assert backup.status == "succeeded"
    target = Path(app.config["RESTORE_ROOTS"][0]) / "killed"
    job_id = request_restore(backup.id, target)
    kill_at(app, tmp_path, job_id, point, skip)
    assert_clean_ending(app, job_id, "interrupted", "WorkerLost")
    restored = target / str(source).lstrip("/")
    for path in files_under(restored):  # no partial file under a final name
        if path.is_file() and not path.is_symlink():
            assert path.read_bytes() == (source / path.relative_to(restored)).read_bytes(), path
    again = run_job(app, request_restore(backup.id, target))  # the same target: what is there is skipped
    assert again.status == "succeeded", (again.error_message, errors(again.id))
    assert_same_tree(source, restored)
