import errno
from types import SimpleNamespace

import pytest

from stagebackup.config import load_config
from stagebackup.errors import CacheFull, DestinationError, human_bytes
from stagebackup.jobs.retry import retry_delay_s
from stagebackup.paths import display, display_name, safe_filename
from stagebackup.stages import CURRENT, DONE, PENDING, STAGE_FAILED, WAITING, stage_state, stage_steps


def test_only_transient_errors_are_retried_with_backoff():
    busy = OSError(errno.EBUSY, "Device or resource busy")
    assert retry_delay_s(busy, attempts=1, max_attempts=3) == 30
    assert retry_delay_s(busy, attempts=2, max_attempts=3) == 60
    assert retry_delay_s(busy, attempts=3, max_attempts=3) is None
    assert retry_delay_s(OSError(errno.ENOENT, "gone"), 1, 3) is None
    assert retry_delay_s(ValueError("bug"), 1, 3) is None
    wrapped = DestinationError("/mnt/nas", "timed out")
    wrapped.__cause__ = OSError(errno.ETIMEDOUT, "Connection timed out")
    assert retry_delay_s(wrapped, 1, 3) == 30


def row(started=None, finished=None, failed=None):
    return SimpleNamespace(started_at=started, finished_at=finished, failed_at=failed)


@pytest.mark.parametrize(
    ("stage_row", "job_status", "state"),
    [
        (None, "running", PENDING),
        (row(started=1), "running", CURRENT),
        (row(started=1, finished=2), "running", DONE),
        (row(started=1, failed=2), "failed", STAGE_FAILED),
        (row(started=1), "failed", STAGE_FAILED),
        (row(started=1), "interrupted", STAGE_FAILED),
        (row(started=1), "waiting_media", WAITING),
        (row(started=1, finished=2), "failed", DONE),
    ],
)
def test_stage_state_is_derived_from_timestamps(stage_row, job_status, state):
    assert stage_state(stage_row, job_status) == state


def test_stage_steps_follow_the_seed_flow_and_can_overlap():
    job = SimpleNamespace(flow="backup-tape", status="running")
    rows = [
        SimpleNamespace(code="scan", started_at=1, finished_at=2, failed_at=None),
        SimpleNamespace(code="compress", started_at=2, finished_at=None, failed_at=None),
        SimpleNamespace(code="copy", started_at=3, finished_at=None, failed_at=None),
    ]
    assert stage_steps(job, rows) == [
        {"code": "scan", "label": "扫描文件", "state": "done"},
        {"code": "compress", "label": "压缩/打包", "state": "current"},
        {"code": "copy", "label": "写入磁带", "state": "current"},
        {"code": "finalize", "label": "完成", "state": "pending"},
    ]
    job.flow = "backup-directory"
    assert [s["label"] for s in stage_steps(job, [])] == ["扫描文件", "压缩/打包", "写入目标", "完成"]


def test_error_messages_fill_their_templates():
    assert str(CacheFull(path="/data/cache", needed="12.4 GiB", available="3.1 GiB")) == (
        "cache directory /data/cache is out of space: needs 12.4 GiB, 3.1 GiB available"
    )
    assert human_bytes(1536) == "1.5 KiB" and human_bytes(10) == "10 B"


def test_paths_are_displayed_without_losing_undecodable_bytes():
    assert display(b"/a/\xff\xfeb") == "/a/\\xff\\xfeb"
    assert display("/a/中文") == "/a/中文"
    # In a page a newline or a tab would look like a space: names show them as escapes.
    assert display_name(b"dir-\xfe/inner\nnew\tline\x7f.txt") == "dir-\\xfe/inner\\nnew\\tline\\x7f.txt"
    assert display_name("客户A/plain.txt") == "客户A/plain.txt"
    assert safe_filename("设计稿/2024: final") == "设计稿_2024_ final"
    assert safe_filename("..") == "project"


def test_environment_overrides_are_typed(monkeypatch, tmp_path):
    monkeypatch.setenv("STAGEBACKUP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STAGEBACKUP_WORKER_STALE_AFTER_S", "7.5")
    monkeypatch.setenv("STAGEBACKUP_SCHEMA_AUTO_UPGRADE", "no")
    config = load_config()
    assert config["WORKER_STALE_AFTER_S"] == 7.5
    assert config["SCHEMA_AUTO_UPGRADE"] is False
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path}/backup_system.db"
    assert config["CACHE_DIR"] == str(tmp_path / "cache")
    monkeypatch.setenv("STAGEBACKUP_JOB_MAX_ATTEMPTS", "three")
    with pytest.raises(SystemExit, match="STAGEBACKUP_JOB_MAX_ATTEMPTS"):
        load_config()
