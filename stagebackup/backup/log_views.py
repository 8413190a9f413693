"""A job's terminal log on the web: the poll that appends lines ``after`` a sequence number, pages of
earlier and later lines, one tag's lines (``?tag=ERROR``), a window from the first error, and the whole
log as a text download. Every answer is a bounded range scan (see logs.py).
"""

from __future__ import annotations

from flask import Response, abort, render_template, request, stream_with_context
from sqlalchemy import select

from ..auth.roles import VIEWER, requires
from ..extensions import db
from ..httpguard import query_int
from ..models import ACTIVE_STATUSES, LOG_TAGS, Job
from . import bp, logs
from .web import localtime_filter


def tag_arg() -> str | None:
    """The validated ``tag`` argument; a tag we do not know is a 400 that names the ones we do."""
    try:
        return logs.parse_tag(request.args.get("tag"))
    except logs.BadLogTag as exc:
        abort(400, str(exc))


def _status(job_id: int) -> str:
    status = db.session.scalar(select(Job.status).where(Job.id == job_id))
    if status is None:
        abort(404)
    return status


def log_panel(job_id: int) -> dict:
    """What the job page's log shows: the tail, or ``limit`` lines from ``?start=seq`` (the first-error
    link), of every line or of one ``?tag=``; plus what the toolbar needs."""
    tag = tag_arg()
    start = query_int("start", 0)
    page = logs.window(job_id, start, tag=tag) if start else logs.tail(job_id, tag=tag)
    return {"log_page": page, "log_tag": tag, "log_start": start, "log_tags": LOG_TAGS,
            "first_error": logs.first_error(job_id)}


@bp.get("/backup/jobs/<int:job_id>/log")
@requires(VIEWER)
def job_log(job_id: int):
    """Lines after ``after`` plus the poller for the next request (out of band).

    The job's status is read before the lines: a job seen finished has written its last line, so the
    poller rendered without a trigger cannot miss one.
    """
    after = query_int("after", 0)
    tag = tag_arg()
    status = _status(job_id)
    lines = logs.after(job_id, after, tag=tag)
    more = len(lines) >= logs.POLL_MAX_LINES
    polling = status in ACTIVE_STATUSES or more
    if not lines and polling:
        return "", 204  # nothing new: htmx leaves the page alone, the poller keeps its trigger
    return render_template(
        "backup/_log_update.html", job_id=job_id, lines=lines, tag=tag,
        after=lines[-1].id if lines else after, polling=polling,
    )


@bp.get("/backup/jobs/<int:job_id>/log/earlier")
@requires(VIEWER)
def job_log_earlier(job_id: int):
    tag = tag_arg()
    page = logs.before(job_id, query_int("before", 0), tag=tag)
    return render_template("backup/_log_earlier.html", job_id=job_id, page=page, tag=tag)


@bp.get("/backup/jobs/<int:job_id>/log/later")
@requires(VIEWER)
def job_log_later(job_id: int):
    """The next page after a window; at the end of the log, the live poller takes over (out of band)."""
    tag = tag_arg()
    status = _status(job_id)  # before the lines, as in job_log
    page = logs.later(job_id, query_int("after", 0), tag=tag)
    return render_template("backup/_log_later.html", job_id=job_id, page=page, tag=tag,
                           polling=status in ACTIVE_STATUSES)


@bp.get("/backup/jobs/<int:job_id>/log/download")
@requires(VIEWER)
def job_log_download(job_id: int):
    """The whole log as text, streamed batch by batch (a long log never becomes one string)."""
    _status(job_id)

    def text():
        for rows in logs.batches(job_id):
            yield "".join(f"{localtime_filter(row.at)} [{row.tag}] {row.message}\n" for row in rows)

    return Response(stream_with_context(text()), content_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="job-{job_id}.log"'})
