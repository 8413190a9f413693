"""The sync's helper process (pipeline/sync_copier.py): small files copied by a second process must give the
same mirror, the same errors and the same crash guarantees as the job's own copies."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from stagebackup import project_checks, projects
from stagebackup.pipeline import sync_apply, sync_copier
from tests.conftest import build_hostile_tree
from tests.faults.support import enqueue, errors, fault_env, recover, run_job, start_worker, wait_paused
from tests.integration.test_sync import (
    assert_exact_mirror,
    change_tree,
    log_lines,
    run_sync,
    sync_project,
    temp_files,
)
from tests.integration.test_worker_processes import wait_for

MiB = 1 << 20


class HelperLog:
    def __init__(self):
        self.sent: list[bytes] = []  # sources handed to the helper
        self.copied: list[int] = []  # sizes of the files it copied


@pytest.fixture
def helper(monkeypatch) -> HelperLog:
    """The helper takes every run of files, however short; what it was given and what it copied is noted."""
    log = HelperLog()
    real_send, real_receive = sync_copier.CopyHelper.send, sync_copier.CopyHelper.receive

    def send(self, pairs):
        log.sent.extend(src for src, _ in pairs)
        return real_send(self, pairs)

    def receive(self, temps):
        sizes = real_receive(self, temps)
        log.copied.extend(size for size in sizes if size is not None)
        return sizes

    monkeypatch.setattr(sync_apply, "HELPER_MIN_FILES", 1)
    monkeypatch.setattr(sync_copier.CopyHelper, "send", send)
    monkeypatch.setattr(sync_copier.CopyHelper, "receive", receive)
    return log


def many_small_files(root: Path, count: int = 300) -> Path:
    for i in range(count):
        folder = root / f"d{i % 7}" / f"sub{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:04d}.txt").write_bytes(os.urandom(i * 37 % 5000))
        os.chmod(folder / f"f{i:04d}.txt", 0o640 if i % 2 else 0o604)
        os.utime(folder / f"f{i:04d}.txt", ns=(1_600_000_000_123_456_789 + i, 1_500_000_000_987_654_321 + i))
    return root


def tree_the_helper_leaves_alone(root: Path) -> None:
    """A file above its size limit and a sparse one: the job copies those itself."""
    (root / "large.bin").write_bytes(os.urandom(sync_copier.SMALL_BYTES + 1))
    with open(root / "sparse.img", "wb") as fh:
        fh.truncate(8 * MiB)
        fh.seek(4 * MiB)
        fh.write(b"data in the middle")


def test_a_hostile_tree_is_mirrored_exactly_by_both_processes(any_db_app, tmp_path, helper):
    src = many_small_files(build_hostile_tree(tmp_path / "src"))
    tree_the_helper_leaves_alone(src)
    project_id = sync_project("helper", [src], tmp_path / "dest")
    job = run_sync(any_db_app, project_id)
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    assert_exact_mirror(src, tmp_path / "dest" / "src")
    assert 100 < len(helper.copied) < job.files_total  # both processes copied
    assert sync_copier.SMALL_BYTES + 1 not in helper.copied and 8 * MiB not in helper.copied
    assert os.stat(tmp_path / "dest" / "src" / "sparse.img").st_blocks * 512 < 8 * MiB  # still sparse
    assert temp_files(tmp_path / "dest") == []

    change_tree(src)  # every kind of change, then a second run through the helper
    before = len(helper.copied)
    job = run_sync(any_db_app, project_id)
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    assert_exact_mirror(src, tmp_path / "dest" / "src")
    assert len(helper.copied) > before


def test_files_changed_after_the_scan_are_refused_as_without_the_helper(app, tmp_path, helper, monkeypatch):
    """A file replaced by a link or a FIFO, or removed, between the scan and the copy: the helper declines it,
    the job copies it itself and says why; nothing follows the link, nothing blocks on the FIFO."""
    src = many_small_files(tmp_path / "src", 120)
    victims = sorted(src.rglob("*.txt"))[-30::10]  # late in the plan: the helper's half
    project_id = sync_project("raced", [src], tmp_path / "dest")
    real_apply = sync_apply.Applier.apply

    def change_then_apply(self, records):
        victims[0].unlink()
        victims[0].symlink_to("/etc/passwd")
        victims[1].unlink()
        os.mkfifo(victims[1])
        victims[2].unlink()
        return real_apply(self, records)

    monkeypatch.setattr(sync_apply.Applier, "apply", change_then_apply)
    job = run_sync(app, project_id)
    assert job.status == "warning"
    mirror = tmp_path / "dest" / "src"
    problems = "\n".join(log_lines(job.id, "ERROR") + log_lines(job.id, "SKIP"))
    assert "Too many levels of symbolic links" in problems and "is no longer a regular file" in problems
    assert "vanished since the scan" in problems
    for victim in victims:
        assert not (mirror / victim.relative_to(src)).exists()
    assert set(map(os.fsencode, victims)) <= set(helper.sent)  # the helper had them first
    assert len(helper.copied) == len(helper.sent) - 3
    assert temp_files(tmp_path / "dest") == []


def test_a_helper_that_dies_leaves_the_job_to_copy_alone(app, tmp_path, helper, monkeypatch):
    src = many_small_files(tmp_path / "src")
    real_send = sync_copier.CopyHelper.send

    def send_then_die(self, pairs):
        sent = real_send(self, pairs)
        first_temp = pairs[0][1]
        while not os.path.exists(first_temp):  # mid-request: it has begun writing files (no answer yet)
            pass
        os.kill(self._child.pid, signal.SIGKILL)
        return sent

    monkeypatch.setattr(sync_copier.CopyHelper, "send", send_then_die)
    project_id = sync_project("orphaned", [src], tmp_path / "dest")
    job = run_sync(app, project_id)
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    assert any("copy helper process stopped" in line for line in log_lines(job.id, "INFO"))
    assert helper.sent and helper.copied == []  # and its temporary files are gone (below)
    assert_exact_mirror(src, tmp_path / "dest" / "src")
    assert temp_files(tmp_path / "dest") == []


def helper_pids(worker_pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == worker_pid and b"sync_copier.py" in cmdline:
            found.append(int(entry))
    return found


@pytest.mark.slow
def test_sigkill_of_the_worker_mid_copy_ends_the_helper_and_the_next_run_completes(app, tmp_path):
    """A real worker (the helper's real threshold), killed inside a file it copies while the helper has a
    request: the helper exits, nothing partial is under a final name, and the next run mirrors exactly."""
    src = many_small_files(tmp_path / "src", 600)
    (src / "d0" / "noise.bin").write_bytes(os.urandom(3 * MiB))
    dest = tmp_path / "dest"
    projects.create(project_checks.ProjectSpec(name="killed", sources=[str(src)], dest_dir=str(dest), mode="sync",
                                               sync_strategy="overwrite"), actor="test")
    job_id = enqueue("killed")
    mark = tmp_path / "paused"
    worker = start_worker(fault_env(app, pause_at="sync-file", mark=mark))
    try:
        wait_paused(worker, mark)
        helpers = helper_pids(worker.pid)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
    assert helpers, "the helper process was not running"
    wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in helpers), interval=0.01)
    recover(app)
    mirror = dest / "src"
    for path in mirror.rglob("*"):  # whatever the dead sync renamed into place is whole
        if path.is_file() and not path.name.startswith(".sbsync-"):
            assert path.read_bytes() == (src / path.relative_to(mirror)).read_bytes(), path
    job = run_job(app, enqueue("killed"))
    assert job.status == "succeeded", (job.error_message, errors(job.id))
    assert_exact_mirror(src, mirror, ignore=set())
    assert temp_files(dest) == []
    assert job_id != job.id


def test_a_folder_swapped_for_a_link_after_the_plan_is_refused_by_the_helper_too(app, tmp_path, helper, monkeypatch):
    """The helper process reads through checked folders as the job does (test_source_confinement)."""
    from tests.integration.test_source_confinement import SECRET, assert_refused, attack_tree, swapping_before

    src, outside = attack_tree(tmp_path, files=40)
    swapping_before(monkeypatch, sync_apply.Applier, "apply", src, outside)
    job = run_sync(app, sync_project("swapped", [src], tmp_path / "dest"))
    assert_refused(job, 40)
    handed_own = [path for path in helper.sent if b"/own/" in path]
    assert handed_own and len(helper.copied) == len(helper.sent) - len(handed_own)  # it copied none of them
    mirror = tmp_path / "dest" / "src"
    assert not any(SECRET in p.read_bytes() for p in mirror.rglob("*") if p.is_file())
    assert temp_files(tmp_path / "dest") == []
