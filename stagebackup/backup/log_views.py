"""A job's terminal log on the web: the lines ``after`` a sequence number that the card's poll appends
(views.job_card), pages of earlier and later lines, one tag's lines (``?tag=ERROR``), a window from the
first error, and the whole log as a text download. Every answer is a bounded range scan (see logs.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, abort, render_template, request, stream_with_context
from sqlalchemy import Row, select

from ..auth.roles import VIEWER, requires
from ..extensions import db
from ..httpguard import query_int
from ..models import LOG_TAGS, Job
from . import bp, logs
from .web import localtime_filter


def tag_arg() -> str | None:
    """The validated ``tag`` argument; a tag we do not know is a 400 that names the ones we do."""
    try:
        return logs.parse_tag(request.args.get("tag"))
    except logs.BadLogTag as exc:
        abort(400, str(exc))


def _must_exist(job_id: int) -> None:
    if db.session.scalar(select(Job.id).where(Job.id == job_id)) is None:
        abort(404)


def log_panel(job_id: int) -> dict:
    """What the job page's log shows: the tail, or ``limit`` lines from ``?start=seq`` (the first-error
    link), of every line or of one ``?tag=``; plus what the toolbar needs."""
    tag = tag_arg()
    start = query_int("start", 0)
    page = logs.window(job_id, start, tag=tag) if start else logs.tail(job_id, tag=tag)
    return {"log_page": page, "log_tag": tag, "log_start": start, "log_tags": LOG_TAGS,
            "first_error": logs.first_error(job_id)}


@dataclass(frozen=True)
class LogPoll:
    """The lines a card poll appends to the page's log (see views.job_card), and the next cursor."""

    lines: list[Row]
    tag: str | None
    after: int
    more: bool  # a full batch: more lines wait, and the card keeps polling even if the job has ended


def poll_lines(job_id: int) -> LogPoll:
    """The lines after the page's cursor (``after``, ``tag``), at most ``logs.POLL_MAX_LINES`` of them."""
    after = query_int("after", 0)
    tag = tag_arg()
    lines = logs.after(job_id, after, tag=tag)
    return LogPoll(lines, tag, lines[-1].id if lines else after, len(lines) >= logs.POLL_MAX_LINES)


@bp.get("/backup/jobs/<int:job_id>/log/earlier")
@requires(VIEWER)
def job_log_earlier(job_id: int):
    tag = tag_arg()
    page = logs.before(job_id, query_int("before", 0), tag=tag)
    return render_template("backup/_log_earlier.html", job_id=job_id, page=page, tag=tag)


@bp.get("/backup/jobs/<int:job_id>/log/later")
@requires(VIEWER)
def job_log_later(job_id: int):
    """The next page after a window; at the end of the log, the cursor the card's poll follows (out of band)."""
    tag = tag_arg()
    _must_exist(job_id)
    page = logs.later(job_id, query_int("after", 0), tag=tag)
    return render_template("backup/_log_later.html", job_id=job_id, page=page, tag=tag)


@bp.get("/backup/jobs/<int:job_id>/log/download")
@requires(VIEWER)
def job_log_download(job_id: int):
    """The whole log as text, streamed batch by batch (a long log never becomes one string)."""
    _must_exist(job_id)

    def text():
        for rows in logs.batches(job_id):
            yield "".join(f"{localtime_filter(row.at)} [{row.tag}] {row.message}\n" for row in rows)

    return Response(stream_with_context(text()), content_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="job-{job_id}.log"'})
