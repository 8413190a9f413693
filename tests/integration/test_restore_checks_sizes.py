"""Restore writes no more for a member than the catalog lists: a decompression bomb, or a damaged or foreign
archive under a backup's name, fails the job naming the member and both sizes instead of filling the disk."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from stagebackup.extensions import db
from stagebackup.models import Archive, ArchiveMember
from tests.integration.test_restore_jobs import create_project, log_lines, restore, restore_root, run_queued

BIG = 300_000


def backed_up(app, tmp_path, fmt="tgz") -> tuple[Path, int]:
    from stagebackup.jobs import queue

    src = tmp_path / "src"
    src.mkdir()
    (src / "a-small.txt").write_text("small\n")
    (src / "big.bin").write_bytes(bytes(range(256)) * (BIG // 256))
    project = create_project(f"sizes-{fmt}", [src], tmp_path / "dest", archive_format=fmt)
    job = run_queued(app, queue.enqueue(project, actor="test").id)
    assert job.status == "succeeded", log_lines(job.id, "ERROR")
    return src, job.id


def catalog_row(job_id: int, name: str) -> ArchiveMember:
    return db.session.query(ArchiveMember).filter_by(job_id=job_id, name=name).one()


@pytest.mark.parametrize("fmt", ["tgz", "7z"])
def test_a_member_larger_than_catalogued_fails_the_restore(app, tmp_path, fmt):
    _, backup_id = backed_up(app, tmp_path, fmt)
    catalog_row(backup_id, "big.bin").size = 48_000
    db.session.commit()
    target = restore_root(app) / f"shrunk-{fmt}"
    job = restore(app, backup_id, target)
    assert job.status == "failed" and job.error_class == "MemberOutgrewCatalog", job.error_message
    assert "big.bin is larger than its catalogued size (the catalog lists 48000 bytes" in job.error_message
    assert not list(target.rglob("big.bin")) and not list(target.rglob(".big.bin*"))
    assert [p.read_text() for p in target.rglob("a-small.txt")] == ["small\n"]  # written before: it stays


def test_an_untouched_catalog_restores(app, tmp_path):
    src, backup_id = backed_up(app, tmp_path)
    target = restore_root(app) / "intact"
    job = restore(app, backup_id, target)
    assert job.status == "succeeded", (job.error_message, log_lines(job.id, "ERROR"))
    [big] = target.rglob("big.bin")
    assert big.read_bytes() == (src / "big.bin").read_bytes()


def _zeros_member(name: str, size: int) -> tuple[tarfile.TarInfo, io.RawIOBase]:
    class Zeros(io.RawIOBase):
        def readinto(self, buffer):
            buffer[:] = bytes(len(buffer))
            return len(buffer)

    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 1_600_000_000
    return info, Zeros()


def test_a_tar_gz_bomb_placed_as_the_archive_writes_no_more_than_the_catalog(app, tmp_path):
    _, backup_id = backed_up(app, tmp_path)
    [archive] = db.session.query(Archive).filter_by(job_id=backup_id).all()
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(*_zeros_member("never-catalogued.bin", 1 << 20))
        big = catalog_row(backup_id, "big.bin")
        tar.addfile(*_zeros_member(f"{big.parent}/big.bin", 256 << 20))  # 256 MiB of zeros: ~250 KB compressed
    bomb = raw.getvalue()
    assert len(bomb) < 1 << 20
    Path(archive.path).write_bytes(bomb)
    archive.sha256, archive.size = hashlib.sha256(bomb).hexdigest(), len(bomb)  # as if forged with the archive
    db.session.commit()
    target = restore_root(app) / "bomb"
    job = restore(app, backup_id, target)
    assert job.status == "failed" and job.error_class == "MemberOutgrewCatalog", job.error_message
    assert f"the catalog lists {BIG // 256 * 256} bytes" in job.error_message
    errors = log_lines(job.id, "ERROR")
    assert any(line.startswith("never-catalogued.bin: refused: not in the catalog") for line in errors), errors
    written = sum(p.stat().st_blocks * 512 for p in target.rglob("*") if p.is_file())
    assert written < 1 << 20


def test_sizes_are_read_for_the_chosen_rows_only_while_they_fit_the_window():
    """Narrowed rows are in no index's id order: each page of them reads all of them again. So only a choice
    that fits the window is narrowed; choosing most of a big backup reads its file rows by id, page by page."""
    from stagebackup.restore.sizes import WINDOW_MAX, MemberSizes

    def statement(chosen_files):
        return str(MemberSizes(1, 1, lambda path: True, ["srv/projects"], chosen_files)._files())

    assert "archive_members.parent >=" in statement(WINDOW_MAX)
    assert "archive_members.parent >=" not in statement(WINDOW_MAX + 1)
    assert "archive_members.parent >=" not in statement(None)
