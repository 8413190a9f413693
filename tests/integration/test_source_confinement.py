"""A backup reads only what is inside its sources, even when a folder is swapped for a link after the scan.

The attack: a user who owns a folder inside a source lets the scan list ``own/shadow`` (their own file), then,
before the job reads it, replaces ``own`` by a link to a folder outside the source holding another
``shadow``. Read by its full path, the outside file would be stored as ``own/shadow``. Each test makes that
swap at the exact moment between the scan and the read (the scan's result handed to the writer, or the
sync's plan to its copier) and checks that no byte of the outside file reached the backup, that the file
is named in an ``[ERROR]`` line, and that the job does not end as succeeded. A root named through a link is
the operator's choice and is followed, as before.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import py7zr
import pytest

from stagebackup.models import Archive
from stagebackup.pipeline import backup as backup_pipeline
from stagebackup.pipeline import sync_apply
from tests.integration.test_backup_job import create_project, extract_with_gnu_tar, log_lines, run_one
from tests.integration.test_sync import run_sync, sync_project

SECRET = b"root:$6$outside-the-source:19000:0:99999:7:::\n"
OWN = b"the user's own file\n"


def attack_tree(tmp_path: Path, files: int = 3) -> tuple[Path, Path]:
    """``src/own/shadow*`` (the user's files) and ``outside/shadow*`` (what must never be read)."""
    src, outside = tmp_path / "src", tmp_path / "outside"
    (src / "own").mkdir(parents=True)
    outside.mkdir()
    (src / "keep.txt").write_bytes(b"an ordinary file\n")
    for i in range(files):
        (src / "own" / f"shadow{i:03d}").write_bytes(OWN)
        (outside / f"shadow{i:03d}").write_bytes(SECRET)
    return src, outside


def swap_for_link(src: Path, outside: Path) -> None:
    os.rename(src / "own", src.parent / "own.moved-away")
    os.symlink(outside, src / "own")


def swapping_before(monkeypatch, module, name: str, src: Path, outside: Path) -> list[bool]:
    """Wrap ``module.name`` (the writer or the copier) so that the swap happens as it starts."""
    real, done = getattr(module, name), []

    def swapped(*args, **kwargs):
        if not done:
            swap_for_link(src, outside)
            done.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, swapped)
    return done


def assert_refused(job, files: int = 3) -> None:
    assert job.status in ("warning", "failed"), (job.status, job.error_message)
    errors = log_lines(job.id, "ERROR")
    refused = [m for m in errors if "/own/shadow" in m and "was replaced since the scan" in m]
    assert len(refused) == files, errors


def archive_bytes(job) -> list[bytes]:
    """Every member's data of the job's archives, read by the stock tools."""
    [archive] = Archive.query.filter_by(job_id=job.id).all()
    if archive.path.endswith(".7z"):
        list_cmd, data_cmd = ["7z", "l", "-ba", archive.path], ["7z", "e", "-so", archive.path]
    else:
        list_cmd, data_cmd = ["tar", "-tzf", archive.path], ["tar", "-xzOf", archive.path]
    assert b"shadow" not in subprocess.run(list_cmd, capture_output=True, check=True).stdout
    return [subprocess.run(data_cmd, capture_output=True, check=True).stdout]


@pytest.mark.parametrize("fmt", ["tgz", "7z"])
def test_archive_refuses_a_folder_swapped_for_a_link_after_the_scan(app, tmp_path, monkeypatch, fmt):
    src, outside = attack_tree(tmp_path)
    writer = "write_tgz" if fmt == "tgz" else "write_7z"
    done = swapping_before(monkeypatch, backup_pipeline, writer, src, outside)
    job = run_one(app, create_project(f"swap-{fmt}", [src], tmp_path / "dest", archive_format=fmt))
    assert done
    assert_refused(job)
    assert not any(SECRET in data for data in archive_bytes(job))


def test_sync_refuses_a_folder_swapped_for_a_link_after_the_plan(app, tmp_path, monkeypatch):
    # Enough files in the folder for the copy helper process to take half of them: both readers are tested.
    files = 2 * sync_apply.HELPER_MIN_FILES
    src, outside = attack_tree(tmp_path, files=files)
    for i in range(2000):  # so that the refused files stay a warning's worth of errors (below the fail ratio)
        (src / f"filler{i:04d}").write_bytes(b"f")
    done = swapping_before(monkeypatch, sync_apply.Applier, "apply", src, outside)
    job = run_sync(app, sync_project("swap-sync", [src], tmp_path / "dest"))
    assert done
    assert_refused(job, files)
    mirror = tmp_path / "dest" / "src"
    assert not (mirror / "own").is_symlink()
    copied = [p for p in mirror.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(copied) >= 2001 and not any(SECRET in p.read_bytes() for p in copied)


def test_a_link_inside_the_source_swapped_to_a_folder_is_still_refused_as_a_link(app, tmp_path, monkeypatch):
    """The other way round: the scan saw a link (archived as a link); its target is never read."""
    src, outside = attack_tree(tmp_path, files=1)
    os.symlink(outside, src / "door")
    job = run_one(app, create_project("door", [src], tmp_path / "dest"))
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    [archive] = Archive.query.filter_by(job_id=job.id).all()
    out = tmp_path / "out"
    extract_with_gnu_tar(archive.path, out)
    door = out / str(src).lstrip("/") / "door"
    assert door.is_symlink() and os.readlink(door) == str(outside)


@pytest.mark.parametrize("mode", ["tgz", "7z", "sync"])
def test_a_root_named_through_a_link_is_followed(app, tmp_path, mode):
    """The operator named the root: a link at or above it is followed (names stay as the operator wrote them)."""
    real, _ = attack_tree(tmp_path)
    (tmp_path / "via").mkdir()
    named = tmp_path / "via" / "named"
    os.symlink(real, named)
    if mode == "sync":
        job = run_sync(app, sync_project("named-sync", [named], tmp_path / "dest"))
        assert job.status == "succeeded", log_lines(job.id, "ERROR")
        assert (tmp_path / "dest" / "named" / "own" / "shadow000").read_bytes() == OWN
        return
    job = run_one(app, create_project(f"named-{mode}", [named], tmp_path / "dest", archive_format=mode))
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    [archive] = Archive.query.filter_by(job_id=job.id).all()
    if mode == "7z":
        with py7zr.SevenZipFile(archive.path) as z:
            names = z.getnames()
    else:
        names = subprocess.run(["tar", "-tzf", archive.path], capture_output=True, check=True,
                               text=True).stdout.split()
    prefix = str(named).lstrip("/")
    assert prefix + "/own/shadow000" in names and prefix + "/keep.txt" in names


# -- the mirror: a folder of it swapped for a link between the plan and the copy ---------------------------------
# A user who owns a folder in the source owns its copy in the mirror (owners are kept), so they can replace
# that copy by a link, e.g. to /etc, after the plan: the copy stage must then change nothing outside the mirror.
MIRROR_CHANGES = {
    "new file": lambda own: (own / "new.txt").write_bytes(b"planted\n"),
    "changed file": lambda own: (own / "f.txt").write_bytes(b"longer content, planted\n"),
    "permissions of a file": lambda own: os.chmod(own / "f.txt", 0o666),
    "permissions of the folder": lambda own: os.chmod(own, 0o777),
    "removed file": lambda own: (own / "old.txt").unlink(),
    "file replaced by a folder": lambda own: ((own / "old.txt").unlink(), (own / "old.txt").mkdir()),
}


def victim_state(victim: Path) -> dict:
    return {p.name: (p.lstat().st_mode, p.lstat().st_uid, p.lstat().st_mtime_ns,
                     p.read_bytes() if p.is_file() else None) for p in [victim, *victim.iterdir()]}


@pytest.mark.parametrize("change", sorted(MIRROR_CHANGES))
def test_sync_changes_nothing_outside_the_mirror_when_a_mirror_folder_becomes_a_link(app, tmp_path, monkeypatch,
                                                                                     change):
    src, victim = tmp_path / "src", tmp_path / "victim"
    (src / "own").mkdir(parents=True)
    for name in ("f.txt", "old.txt"):
        (src / "own" / name).write_bytes(b"the user's\n")
    os.chown(src / "own", 4321, 4321)
    victim.mkdir(mode=0o700)
    for name in ("f.txt", "old.txt", "new.txt"):
        (victim / name).write_bytes(b"outside the mirror\n")
        os.chmod(victim / name, 0o600)
    project_id = sync_project("mirror-swap", [src], tmp_path / "dest")
    assert run_sync(app, project_id).status == "succeeded"
    MIRROR_CHANGES[change](src / "own")
    before = victim_state(victim)
    mirror_own = tmp_path / "dest" / "src" / "own"

    def swap_mirror_folder():
        os.rename(mirror_own, tmp_path / "own.mirror.moved")
        os.symlink(victim, mirror_own)

    real_apply = sync_apply.Applier.apply
    monkeypatch.setattr(sync_apply.Applier, "apply", lambda self, records: (swap_mirror_folder(),
                                                                            real_apply(self, records))[1])
    job = run_sync(app, project_id)
    assert victim_state(victim) == before
    assert job.status != "succeeded", log_lines(job.id)
    monkeypatch.undo()  # the next run puts the folder back in place of the link, still outside nothing
    again = run_sync(app, project_id)
    assert again.status == "succeeded", log_lines(again.id, "ERROR")
    assert mirror_own.is_dir() and not mirror_own.is_symlink()
    assert victim_state(victim) == before
    assert sorted(p.name for p in mirror_own.iterdir()) == sorted(p.name for p in (src / "own").iterdir())


@pytest.mark.parametrize("mode", ["tgz", "sync"])
def test_a_root_written_with_a_double_slash_is_read(app, tmp_path, mode):
    """POSIX keeps a leading ``//`` (``normpath('//srv')``); the kernel names the folder ``/srv``."""
    real, _ = attack_tree(tmp_path)
    named = "/" + str(real)
    if mode == "sync":
        job = run_sync(app, sync_project("slashes-sync", [named], tmp_path / "dest"))
        assert job.status == "succeeded", log_lines(job.id, "ERROR")
        assert (tmp_path / "dest" / "src" / "own" / "shadow000").read_bytes() == OWN
        return
    job = run_one(app, create_project("slashes", [named], tmp_path / "dest"))
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    [archive] = Archive.query.filter_by(job_id=job.id).all()
    names = subprocess.run(["tar", "-tzf", archive.path], capture_output=True, check=True, text=True).stdout.split()
    assert str(real).lstrip("/") + "/own/shadow000" in names
