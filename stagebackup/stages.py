"""Stage flows per job kind, and the badge state of each stage.

A stage's state is derived from its recorded timestamps, so stages may overlap (compressing group
k+1 while group k is copied): each badge has its own state and two can be blue at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_

from .models import FAILED, INTERRUPTED, WAITING_MEDIA, Job, JobStage

# Seed 000's STAGE_FLOW_DEFINITION, per destination.
FLOWS: dict[str, list[tuple[str, str]]] = {
    "backup-tape": [("scan", "扫描文件"), ("compress", "压缩/打包"), ("copy", "写入磁带"), ("finalize", "完成")],
    "backup-directory": [
        ("scan", "扫描文件"), ("compress", "压缩/打包"), ("copy", "写入目标"), ("finalize", "完成"),
    ],
    "sync": [("scan", "扫描文件"), ("copy", "同步"), ("finalize", "完成")],
    "restore": [("locate", "定位"), ("read", "读取"), ("extract", "解压/还原"), ("finalize", "完成")],
    # Verify writes nothing: its third stage checks the members against the catalog.
    "verify": [("locate", "定位"), ("read", "读取"), ("check", "校验"), ("finalize", "完成")],
}

PENDING, CURRENT, DONE, STAGE_FAILED, WAITING = "pending", "current", "done", "failed", "waiting"

BADGE_CLASSES = {
    DONE: "bg-success",
    CURRENT: "bg-primary",
    PENDING: "bg-secondary",
    STAGE_FAILED: "bg-danger",
    WAITING: "bg-warning",
}


# What the operator calls a job: a sync project's run is a sync, not a backup (its kind is "backup"
# because it is restored like one). The labels live beside the other status words in backup/web.py.
JOB_KINDS = ("backup", "sync", "restore", "verify")


def job_kind(job: Job) -> str:
    return "sync" if job.flow == "sync" else job.kind


def kind_filter(kind: str) -> ColumnElement[bool]:
    """``job_kind(job) == kind`` as SQL."""
    if kind == "sync":
        return Job.flow == "sync"
    if kind == "backup":
        return and_(Job.kind == "backup", Job.flow != "sync")
    return Job.kind == kind


def flow_for(kind: str, dest_kind: str, mode: str = "archive") -> str:
    if kind in ("restore", "verify"):
        return kind
    if mode == "sync":
        return "sync"
    return f"backup-{dest_kind}"


def stage_state(row: JobStage | None, job_status: str) -> str:
    """A badge's state from a stage's timestamps: a ``JobStage`` or a row of its columns (``cards.StageTimes``)."""
    if row is None or row.started_at is None:
        return PENDING
    if row.failed_at is not None:
        return STAGE_FAILED
    if row.finished_at is not None:
        return DONE
    if job_status == WAITING_MEDIA:
        return WAITING
    if job_status in (FAILED, INTERRUPTED):
        # A stage left open by a job that ended badly did not complete.
        return STAGE_FAILED
    return CURRENT


def stage_steps(job: Job, rows: Iterable[JobStage]) -> list[dict[str, str]]:
    """``[{code, label, state}]`` in flow order, the shape seed 000's API returns. ``job`` may be a row of the
    ``jobs`` table's columns and ``rows`` ``cards.StageTimes`` (a card's plain rows)."""
    by_code = {row.code: row for row in rows}
    return [
        {"code": code, "label": label, "state": stage_state(by_code.get(code), job.status)}
        for code, label in FLOWS[job.flow]
    ]
