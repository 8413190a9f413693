"""A full cache, a full destination and an unreadable source file, in a real worker process.

ENOSPC comes from a real, small tmpfs where this process may mount one (root), else from a fault injected at
``os.write`` in the worker (tests/faults/inject.py). EIO on a source read is injected at the read
(``ExactReader.read``): a device-mapper ``error`` target or FUSE needs more than a test may assume here.
Each ends in a defined state with a message an operator can act on, and a rerun once the fault is gone works.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.models import Archive, Job
from tests.conftest import build_hostile_tree, make_app
from tests.faults.support import (
    assert_clean_ending,
    enqueue,
    errors,
    fault_env,
    files_under,
    request_restore,
    run_job,
    start_worker,
)
from tests.treecompare import assert_same_tree

pytestmark = pytest.mark.slow
MiB = 1 << 20


@contextlib.contextmanager
def small_disk(path: Path, size_mib: int):
    """``path`` on a tmpfs of ``size_mib``; yields the faults the worker needs instead when none can be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield () if mounted else (f"enospc:{path}",)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=True)


def source_tree(root: Path, noise_mib: int) -> Path:
    build_hostile_tree(root)
    (root / "noise.bin").write_bytes(os.urandom(noise_mib * MiB))  # does not compress
    return root


def run_in_process(app, job_id: int, faults: tuple[str, ...], **extra: str):
    worker = start_worker(fault_env(app, faults=faults, **extra), "--burst")
    output, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, output[-3000:]
    db.session.expire_all()


def restore_matches(app, backup_id: int, source: Path) -> None:
    target = Path(app.config["RESTORE_ROOTS"][0]) / f"r{backup_id}"
    restore = run_job(app, request_restore(backup_id, target))
    assert restore.status == "succeeded", (restore.error_message, errors(restore.id))
    assert_same_tree(source, target / str(source).lstrip("/"))


def test_a_full_cache_fails_the_backup_with_the_space_it_needs(tmp_path):
    cache = tmp_path / "small-cache"
    with small_disk(cache, 5) as faults:
        app = make_app(tmp_path, CACHE_DIR=str(cache))
        with app.app_context():
            source = source_tree(tmp_path / "src", noise_mib=6)
            dest = tmp_path / "dest"
            projects.create(project_checks.ProjectSpec(name="cache", sources=[str(source)], dest_dir=str(dest)),
                            actor="test")
            job_id = enqueue("cache")
            run_in_process(app, job_id, faults)
            job = assert_clean_ending(app, job_id, "failed", "CacheFull", dest)
            assert job.error_message.startswith(f"cache directory {cache} is out of space: needs ")
            assert files_under(dest) == [] and db.session.query(Archive).count() == 0
            assert os.listdir(cache) == []
            db.session.remove()
            db.engine.dispose()
    app = make_app(tmp_path)  # the cache back on a big disk
    with app.app_context():
        again = run_job(app, enqueue("cache"))
        assert again.status == "succeeded", (again.error_message, errors(again.id))
        restore_matches(app, again.id, source)
        db.session.remove()
        db.engine.dispose()


def test_a_full_destination_fails_the_backup_and_leaves_nothing_there(app, tmp_path):
    source = source_tree(tmp_path / "src", noise_mib=4)
    dest = tmp_path / "small-dest"
    with small_disk(dest, 2) as faults:
        spec = project_checks.ProjectSpec(name="dest", sources=[str(source)], dest_dir=str(dest))
        projects.create(spec, actor="test")
        job_id = enqueue("dest")
        run_in_process(app, job_id, ("no-link", *faults))
        job = assert_clean_ending(app, job_id, "failed", "DestinationError", dest)
        assert job.error_message == f"cannot write to destination {dest}: No space left on device"
        assert files_under(dest) == [] and db.session.query(Archive).count() == 0
    again = run_job(app, enqueue("dest"))  # the tmpfs is gone: the same folder on the big disk
    assert again.status == "succeeded", (again.error_message, errors(again.id))
    restore_matches(app, again.id, source)


def test_an_unreadable_source_file_is_an_error_line_and_the_rest_is_backed_up(app, tmp_path):
    source = source_tree(tmp_path / "src", noise_mib=1)
    projects.create(project_checks.ProjectSpec(name="eio", sources=[str(source)], dest_dir=str(tmp_path / "dest")),
                    actor="test")
    job_id = enqueue("eio")
    run_in_process(app, job_id, ("eio:noise.bin",))
    job = db.session.get(Job, job_id)
    assert (job.status, job.error_message) == ("warning", "1 error(s): see [ERROR] lines in the log"), errors(job_id)
    [line] = errors(job_id)
    assert line.endswith("noise.bin: read error (Input/output error); the rest of the file is zero-filled"), line
    target = Path(app.config["RESTORE_ROOTS"][0]) / "zero-filled"
    restore = run_job(app, request_restore(job_id, target))
    assert restore.status == "succeeded", (restore.error_message, errors(restore.id))
    restored = target / str(source).lstrip("/")
    assert (restored / "noise.bin").read_bytes() == bytes(MiB)  # the size kept, the unreadable bytes zero
    (restored / "noise.bin").unlink()  # (the root folder itself is not compared: its mtime may change)
    assert_same_tree(source, restored, ignore={b"noise.bin"})


def test_a_slow_disk_paces_the_backup_and_changes_nothing_in_it(app, tmp_path):
    """The slow-disk fault bench/bench_poll.py gives its workers (jobs that run long without using the CPU):
    the job takes at least its bytes over the rate, and the archive restores to the same tree."""
    source = source_tree(tmp_path / "src", noise_mib=2)
    total = sum(entry.stat().st_size for entry in source.rglob("*") if entry.is_file() and not entry.is_symlink())
    rate = 1 * MiB
    projects.create(project_checks.ProjectSpec(name="slow", sources=[str(source)], dest_dir=str(tmp_path / "dest")),
                    actor="test")
    job_id = enqueue("slow")
    run_in_process(app, job_id, (f"slow-read:{source}:{rate}",))
    job = db.session.get(Job, job_id)
    assert job.status == "succeeded", (job.error_message, errors(job_id))
    assert (job.finished_at - job.started_at).total_seconds() >= total / rate * 0.95
    restore_matches(app, job_id, source)
