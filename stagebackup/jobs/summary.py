"""Jobs as plain dicts for the CLI's --json and the JSON API (seed 000's running-tasks shape)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select

from ..catalog_stream import UNFINISHED
from ..extensions import db
from ..models import Archive, Job, JobLog, JobStage
from ..paths import display
from ..stages import stage_steps
from ..tape.needs import tapes_for_job


def _iso(value):
    return value.isoformat() + "Z" if value else None


def stages_for(jobs: Sequence[Job]) -> dict[int, list[JobStage]]:
    """All stage rows of these jobs in one query."""
    rows: dict[int, list[JobStage]] = defaultdict(list)
    if jobs:
        for row in db.session.scalars(select(JobStage).where(JobStage.job_id.in_([j.id for j in jobs]))):
            rows[row.job_id].append(row)
    return rows


def job_dict(job: Job, stages: list[JobStage]) -> dict:
    return {
        "id": job.id,
        "project": job.project_name,
        "kind": job.kind,
        "status": job.status,
        "trigger": job.trigger,
        "progress": job.progress,
        "remark": job.remark,
        "stage_steps": stage_steps(job, stages),
        "bytes_done": job.bytes_done,
        "bytes_total": job.bytes_total,
        "files_done": job.files_done,
        "files_total": job.files_total,
        "folders_total": job.folders_total,
        "current_file": job.current_file,
        "error_count": job.error_count,
        "error": job.error_message,
        "error_class": job.error_class,
        "attempts": job.attempts,
        "worker_id": job.worker_id,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "heartbeat_at": _iso(job.heartbeat_at),
    }


def job_detail(job: Job, log_tail: int = 50) -> dict:
    data = job_dict(job, stages_for([job])[job.id])
    data["tapes_needed"] = tapes_for_job(job)  # a restore or verify: the tapes it reads, in that order
    archives = db.session.scalars(select(Archive).where(Archive.job_id == job.id, Archive.sha256 != UNFINISHED)
                                .order_by(Archive.seq))  # not one still being written
    data["archives"] = [
        {"seq": a.seq, "name": display(a.name or ""), "path": display(a.path or ""), "location": a.location_kind,
         "size": a.size, "sha256": a.sha256, "format": a.format, "encrypted": a.encrypted,
         "kdf_iterations": a.kdf_iterations, "members": a.member_count, "input_bytes": a.input_bytes}
        for a in archives
    ]
    lines = db.session.scalars(
        select(JobLog).where(JobLog.job_id == job.id).order_by(JobLog.id.desc()).limit(log_tail)
    ).all()
    data["log"] = [
        {"seq": line.id, "at": _iso(line.at), "tag": line.tag, "message": line.message} for line in reversed(lines)
    ]
    return data
