"""The backup page's live regions besides the job cards: the drive card, each project's last backup and
the recently finished jobs. The page renders them in place; the live poll renders the very same partials
(out of band) in a bounded number of indexed statements whatever the number of projects: the drive card
two (three with a tape loaded, five while a job holds a drive), the last backups one, the recent jobs one.

The poll answers "nothing changed" (204) when the rendered regions hash to the digest the page already
shows, so an idle page is not redrawn every second. The regions are the same for every open page, so one
rendering per language serves every poll for ``LIVE_REGIONS_SHARED_S`` (half a second): 200 open pages cost
the server two renderings a second, not 200 (docs/performance.md, "Web polling").
"""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass

from cachetools import TTLCache
from flask import current_app, render_template
from flask_babel import get_locale
from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import FINAL_STATUSES, Job, Project
from . import drives

RECENT_FINISHED = 10


@dataclass(frozen=True)
class LiveRegions:
    drive_panel: drives.DrivePanel
    last_backups: dict[int, Job]  # project id -> its newest backup or sync job (never a restore or verify)
    recent: list[Job]


@functools.cache  # built once: constructing this correlated statement cost a poll more than running it
def last_backups_query() -> Select:
    """Each project's newest backup job (sync runs are backups too), queued, running or finished: per
    project, one backwards seek in the (project_id, created_at) index."""
    newer = aliased(Job)
    newest = (
        select(newer.id).where(newer.project_id == Project.id, newer.kind == "backup")
        .order_by(newer.created_at.desc(), newer.id.desc()).limit(1)
        .correlate(Project).scalar_subquery()
    )
    return select(Job).join(Project, Job.id == newest).order_by(Project.id)


def last_backups() -> dict[int, Job]:
    """project id -> its last backup: one statement whatever the number of projects."""
    return {job.project_id: job for job in db.session.scalars(last_backups_query())}


def recent_finished(limit: int = RECENT_FINISHED) -> list[Job]:
    return list(db.session.scalars(
        select(Job).where(Job.status.in_(FINAL_STATUSES)).order_by(Job.id.desc()).limit(limit)
    ))


def load() -> LiveRegions:
    return LiveRegions(drives.panel(), last_backups(), recent_finished())


def render_regions(regions: LiveRegions) -> str:
    """The regions as the poll swaps them in (out of band)."""
    return render_template("backup/_live_regions.html", live=regions)


def digest(html: str) -> str:
    return hashlib.blake2b(html.encode(), digest_size=8).hexdigest()


def shared_rendering() -> tuple[str, str]:
    """The regions as the poll swaps them in and their digest, rendered at most ``LIVE_REGIONS_SHARED_S`` ago
    for the page's language (per server process; nothing in them depends on who asks)."""
    shared = _shared_renderings()
    if shared is None:
        return _rendering()
    renderings, lock = shared
    language = str(get_locale())
    with lock:
        found = renderings.get(language)
    if found is None:  # two threads may both render on a miss: cheaper than holding the lock while rendering
        found = _rendering()
        with lock:
            renderings[language] = found
    return found


def _rendering() -> tuple[str, str]:
    html = render_regions(load())
    return html, digest(html)


def _shared_renderings() -> tuple[TTLCache, threading.Lock] | None:
    """This app's renderings by language (one store per app: tests build many apps in one process)."""
    max_age_s = float(current_app.config["LIVE_REGIONS_SHARED_S"])
    if max_age_s <= 0:
        return None
    found = current_app.extensions.get("stagebackup_live_regions")
    if found is None:
        found = current_app.extensions.setdefault(
            "stagebackup_live_regions", (TTLCache(maxsize=32, ttl=max_age_s), threading.Lock()))
    return found
