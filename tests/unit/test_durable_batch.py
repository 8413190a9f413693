"""The sync copy's batched durability: renames wait for their batch's syncfs, nothing partial gets a final name."""

from __future__ import annotations

import errno
import os

import pytest

from stagebackup.pipeline import durable
from stagebackup.pipeline.durable import Batch, Deferred


def queue_copy(batch: Batch, directory, name: str, data: bytes, renamed: list) -> bytes:
    temp = os.path.join(bytes(directory), b".tmp-" + name.encode())
    with open(temp, "wb") as fh:
        fh.write(data)
    final = os.path.join(bytes(directory), name.encode())

    def rename():
        os.rename(temp, final)
        renamed.append(name)

    batch.add_file(Deferred(rename, temp, name.encode(), temp), len(data))
    return temp


def test_copies_get_their_final_names_only_after_a_syncfs(tmp_path, monkeypatch):
    synced, renamed = [], []
    real_syncfs = durable.syncfs
    monkeypatch.setattr(durable, "syncfs", lambda path: (synced.append(list(renamed)), real_syncfs(path)))
    monkeypatch.setattr(durable, "MAX_FILES", 3)
    batch = Batch(bytes(tmp_path), on_error=pytest.fail)
    for i in range(7):
        queue_copy(batch, tmp_path, f"f{i}", b"x" * i, renamed)
    # Two full batches were flushed: the first one's syncfs ran before any of its renames, which were carried
    # out when the second was full; the second one's syncfs runs (in a thread) while the seventh copy waits.
    assert renamed == ["f0", "f1", "f2"] and synced == [[], ["f0", "f1", "f2"]]
    assert not any((tmp_path / f"f{i}").exists() for i in range(3, 7))
    batch.finish()
    assert synced[2] == ["f0", "f1", "f2", "f3", "f4", "f5"]  # f6's syncfs: before its rename
    assert renamed[-1] == "f6" and (tmp_path / "f6").read_bytes() == b"x" * 6
    assert len(synced) == 4  # the last batch's syncfs, then the one that makes the renames durable


def test_a_large_file_flushes_the_batch_by_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(durable, "MAX_BYTES", 100)
    renamed = []
    batch = Batch(bytes(tmp_path), on_error=pytest.fail)
    queue_copy(batch, tmp_path, "small", b"s", renamed)
    assert renamed == []
    queue_copy(batch, tmp_path, "large", b"L" * 100, renamed)
    assert batch.syncing is not None and not batch.pending  # the batch is being made durable
    batch.finish()
    assert renamed == ["small", "large"]


def test_directory_metadata_waits_behind_the_pending_copies(tmp_path):
    renamed, order = [], []
    batch = Batch(bytes(tmp_path), on_error=pytest.fail)
    assert not batch.add_after_files(lambda: order.append("dir"))  # nothing pending: the caller does it now
    queue_copy(batch, tmp_path, "a", b"a", renamed)
    assert batch.add_after_files(lambda: order.append(("dir after", list(renamed))))
    batch.finish()
    assert order == [("dir after", ["a"])]


def test_a_discarded_batch_leaves_no_temporary_file_and_no_final_name(tmp_path):
    renamed = []
    batch = Batch(bytes(tmp_path), on_error=pytest.fail)
    temps = [queue_copy(batch, tmp_path, f"f{i}", b"data", renamed) for i in range(3)]
    batch.discard()
    assert os.listdir(tmp_path) == [] and renamed == []
    assert not any(os.path.exists(t) for t in temps)
    batch.finish()  # nothing left to do
    assert os.listdir(tmp_path) == []


def test_a_failed_rename_is_reported_and_the_others_go_on(tmp_path):
    renamed, failures = [], []
    batch = Batch(bytes(tmp_path), on_error=lambda action, exc: failures.append((action.shown, exc.errno)))
    queue_copy(batch, tmp_path, "good1", b"1", renamed)
    batch.add_file(Deferred(lambda: os.rename(tmp_path / "missing", tmp_path / "bad"), None, b"bad"), 1)
    queue_copy(batch, tmp_path, "good2", b"2", renamed)
    batch.finish()
    assert renamed == ["good1", "good2"] and failures == [(b"bad", errno.ENOENT)]


def test_a_fatal_error_leaves_the_rest_to_discard(tmp_path):
    renamed = []

    def fatal(action, exc):
        raise RuntimeError("destination full")

    batch = Batch(bytes(tmp_path), on_error=fatal)
    batch.add_file(Deferred(lambda: os.rename(tmp_path / "missing", tmp_path / "bad"), None, b"bad"), 1)
    later = queue_copy(batch, tmp_path, "later", b"x", renamed)
    with pytest.raises(RuntimeError):
        batch.finish()
    batch.discard()
    assert not os.path.exists(later) and not (tmp_path / "later").exists()


def test_syncfs_reports_a_bad_path(tmp_path):
    durable.syncfs(bytes(tmp_path))
    with pytest.raises(OSError):
        durable.syncfs(bytes(tmp_path / "gone"))


def test_a_failed_syncfs_renames_nothing_and_discard_removes_both_batches(tmp_path, monkeypatch):
    def failing_syncfs(path):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(durable, "syncfs", failing_syncfs)
    monkeypatch.setattr(durable, "MAX_FILES", 2)
    renamed = []
    batch = Batch(bytes(tmp_path), on_error=pytest.fail)
    queue_copy(batch, tmp_path, "a", b"a", renamed)
    queue_copy(batch, tmp_path, "b", b"b", renamed)  # the first batch: its syncfs fails in the helper thread
    queue_copy(batch, tmp_path, "c", b"c", renamed)
    with pytest.raises(OSError) as failed:
        batch.finish()
    assert failed.value.errno == errno.EIO and renamed == []
    batch.discard()
    assert os.listdir(tmp_path) == []


def test_directory_metadata_waits_behind_a_batch_being_made_durable(tmp_path, monkeypatch):
    monkeypatch.setattr(durable, "MAX_FILES", 1)
    renamed, order = [], []
    batch = Batch(bytes(tmp_path), on_error=pytest.fail)
    queue_copy(batch, tmp_path, "a", b"a", renamed)  # a full batch: its syncfs started, nothing pending
    assert not batch.pending and batch.syncing is not None
    assert batch.add_after_files(lambda: order.append(("dir after", list(renamed))))
    batch.finish()
    assert order == [("dir after", ["a"])]
