"""Archive groups: one archive per group, copy overlapping compression, direct streaming, cache discipline."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from flask import current_app

from stagebackup.extensions import db
from stagebackup.jobs import backup_task, queue
from stagebackup.models import Archive, ArchiveMember, JobStage
from tests.conftest import make_app
from tests.integration.test_backup_job import create_project, extract_with_gnu_tar, log_lines, restored, run_one
from tests.treecompare import assert_same_tree

MiB = 1024 * 1024


def tree_of_files(root: Path, count: int, size: int) -> Path:
    (root / "a" / "b").mkdir(parents=True)
    (root / "c").mkdir()
    for i in range(count):
        folder = root / ("a/b" if i % 3 == 0 else "a" if i % 3 == 1 else "c")
        (folder / f"file{i:02d}.bin").write_bytes(os.urandom(size))
    os.symlink("a/b", root / "link-to-b")
    for path in (root / "a" / "b", root / "a", root / "c"):
        os.utime(path, (1_500_000_000, 1_500_000_000))
    return root


def wrap_sink(monkeypatch, on_put=None, on_stream_write=None):
    """Watch the real DirectorySink from inside the copy (which runs on its own thread)."""
    real = backup_task.make_sink

    def make_sink(settings, job_id, reporter):
        sink = real(settings, job_id, reporter)
        real_put, real_open = sink.put, sink.open_stream
        app = current_app._get_current_object()

        def put(staged, name, sha256, seq):
            if on_put:
                with app.app_context():  # the copy thread has none: the pipeline writes no database there
                    on_put(job_id, staged, seq)
            return real_put(staged, name, sha256, seq)

        def open_stream(name, seq):
            stream = real_open(name, seq)
            real_write = stream.write

            def write(data):
                if on_stream_write:
                    on_stream_write(job_id, seq)
                return real_write(data)

            stream.write = write
            return stream

        sink.put, sink.open_stream = put, open_stream
        return sink

    monkeypatch.setattr(backup_task, "make_sink", make_sink)


def cached_archives(app) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(app.config["CACHE_DIR"]):
        found += [os.path.join(dirpath, f) for f in files if ".tar.gz" in f or f.endswith(".7z")]
    return found


@pytest.mark.parametrize("fmt", ["tgz", "7z"])
def test_groups_make_archives_that_each_extract_on_their_own_while_copy_overlaps(app, tmp_path, monkeypatch, fmt):
    src = tree_of_files(tmp_path / "src", 9, 400_000)
    seen = []

    def on_put(job_id, staged, seq):
        stages = {row.code: row for row in db.session.query(JobStage).filter_by(job_id=job_id)}
        compress, copy = stages["compress"], stages["copy"]
        both_blue = compress.finished_at is None and copy.finished_at is None and copy.started_at is not None
        seen.append((seq, both_blue, len(cached_archives(app))))
        db.session.rollback()
        time.sleep(0.3)  # a slow destination: the next group is compressed meanwhile

    wrap_sink(monkeypatch, on_put=on_put)
    job = run_one(app, create_project("groups", [src], tmp_path / "dest", archive_format=fmt, level=1,
                                      group_max_bytes=1 * MiB))
    assert job.status == "succeeded", (job.error_message, log_lines(job.id, "ERROR"))
    archives = db.session.query(Archive).filter_by(job_id=job.id).order_by(Archive.seq).all()
    assert [a.seq for a in archives] == [1, 2, 3, 4, 5]  # 2 files of 400 kB per MiB, the 9th alone
    assert [a.input_bytes for a in archives] == [800_000] * 4 + [400_000]
    assert all(a.path.endswith(f"_part{a.seq:03d}.{'tar.gz' if fmt == 'tgz' else '7z'}") for a in archives)
    # Compressing group k+1 overlapped the copy of group k: both badges were blue at once.
    assert [s[1] for s in seen] == [True, True, True, True, False]
    assert max(s[2] for s in seen) <= 2  # the archive being copied and the one being written, no more
    combined = tmp_path / "combined"
    for a in archives:
        alone = tmp_path / f"alone{a.seq}"
        if fmt == "tgz":
            extract_with_gnu_tar(a.path, alone)
            extract_with_gnu_tar(a.path, combined)
        else:
            subprocess.run(["7z", "x", "-snld", f"-o{alone}", a.path], check=True, capture_output=True)
            subprocess.run(["7z", "x", "-snld", "-aoa", f"-o{combined}", a.path], check=True, capture_output=True)
        assert (restored(alone, src)).is_dir()  # each archive carries its own parent directories
        names = {m.name for m in db.session.query(ArchiveMember).filter_by(archive_id=a.id)}
        assert names >= {src.name} and len(names) == a.member_count
    assert_same_tree(src, restored(combined, src))
    assert os.listdir(app.config["CACHE_DIR"]) == []


def test_direct_mode_streams_into_the_destination_without_staging(tmp_path, monkeypatch):
    app = make_app(tmp_path, COMPRESS_DIRECTLY_TO_TAPE=True)
    with app.app_context():
        src = tree_of_files(tmp_path / "src", 6, 300_000)
        staged_seen = []
        wrap_sink(monkeypatch, on_stream_write=lambda job_id, seq: staged_seen.append(len(cached_archives(app))))
        job = run_one(app, create_project("direct", [src], tmp_path / "dest", group_max_bytes=1 * MiB))
        assert job.status == "succeeded", (job.error_message, log_lines(job.id, "ERROR"))
        archives = db.session.query(Archive).filter_by(job_id=job.id).order_by(Archive.seq).all()
        assert len(archives) == 2 and staged_seen and set(staged_seen) == {0}
        for a in archives:
            digest = subprocess.run(["sha256sum", a.path], capture_output=True, text=True, check=True).stdout
            assert digest.split()[0] == a.sha256
            extract_with_gnu_tar(a.path, tmp_path / "out")
        assert_same_tree(src, restored(tmp_path / "out", src))
        assert sorted(os.listdir(tmp_path / "dest")) == sorted(os.path.basename(a.path) for a in archives)
        assert os.listdir(app.config["CACHE_DIR"]) == []
        db.session.remove()
        db.engine.dispose()


def test_cancel_during_a_copy_leaves_nothing_in_cache_or_destination(app, tmp_path, monkeypatch):
    src = tree_of_files(tmp_path / "src", 6, 300_000)

    def on_put(job_id, staged, seq):
        if seq == 2:
            queue.request_cancel(job_id, actor="test")
            time.sleep(0.5)

    wrap_sink(monkeypatch, on_put=on_put)
    job = run_one(app, create_project("cancel", [src], tmp_path / "dest", group_max_bytes=1 * MiB))
    assert job.status == "cancelled", log_lines(job.id)
    assert os.listdir(app.config["CACHE_DIR"]) == []
    # Archive 1 was durable and catalogued before the cancel, so it stays; archive 2 leaves no trace.
    [kept] = db.session.query(Archive).filter_by(job_id=job.id).all()
    assert kept.seq == 1 and os.listdir(tmp_path / "dest") == [os.path.basename(kept.path)]


def _mount_small_cache(path: Path, size_mib: int) -> None:
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("a full cache needs a small file system: mounting tmpfs needs root")
    path.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def small_cache(tmp_path):
    cache = tmp_path / "small-cache"
    _mount_small_cache(cache, 8)
    yield cache
    subprocess.run(["umount", "-l", str(cache)], check=False)


def test_a_full_cache_fails_the_job_naming_the_path_and_the_space_needed(tmp_path, small_cache):
    app = make_app(tmp_path, CACHE_DIR=str(small_cache))
    with app.app_context():
        src = tmp_path / "src"
        src.mkdir()
        (src / "random.bin").write_bytes(os.urandom(20 * MiB))  # incompressible: the archive cannot fit
        job = run_one(app, create_project("full", [src], tmp_path / "dest"))
        assert job.status == "failed" and job.error_class == "CacheFull", job.error_message
        assert str(small_cache) in job.error_message and "needs 20.0 MiB" in job.error_message
        assert os.listdir(small_cache) == []
        assert not (tmp_path / "dest").exists() or os.listdir(tmp_path / "dest") == []
        # Before a group starts: a cache that cannot hold even a quarter of it is refused at once.
        (src / "more.bin").write_bytes(os.urandom(20 * MiB))
        job = run_one(app, create_project("too-big", [src], tmp_path / "dest2"))
        assert job.status == "failed" and job.error_class == "CacheFull"
        assert "needs 11.0 MiB" in job.error_message and str(small_cache) in job.error_message
        assert os.listdir(small_cache) == []
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def other_fs_cache(tmp_path):
    cache = tmp_path / "tmpfs-cache"
    _mount_small_cache(cache, 64)
    yield cache
    subprocess.run(["umount", "-l", str(cache)], check=False)


def test_a_cache_on_another_file_system_is_copied_and_verified(tmp_path, other_fs_cache):
    app = make_app(tmp_path, CACHE_DIR=str(other_fs_cache))
    with app.app_context():
        src = tree_of_files(tmp_path / "src", 4, 200_000)
        job = run_one(app, create_project("copied", [src], tmp_path / "dest", group_max_bytes=1 * MiB))
        assert job.status == "succeeded", job.error_message
        for a in db.session.query(Archive).filter_by(job_id=job.id):
            assert os.stat(a.path).st_dev != os.stat(other_fs_cache).st_dev and os.stat(a.path).st_nlink == 1
            digest = subprocess.run(["sha256sum", a.path], capture_output=True, text=True, check=True).stdout
            assert digest.split()[0] == a.sha256
            extract_with_gnu_tar(a.path, tmp_path / "out")
        assert_same_tree(src, restored(tmp_path / "out", src))
        assert os.listdir(other_fs_cache) == []
        db.session.remove()
        db.engine.dispose()
