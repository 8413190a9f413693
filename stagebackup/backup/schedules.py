"""A project's schedule as text for the page (每天 02:00 (Asia/Shanghai)) and its next run times."""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _

from .. import projects
from ..errors import N_
from ..models import Project
from ..schedule import cron
from . import bp

WEEKLY = (N_("每周日 %(time)s"), N_("每周一 %(time)s"), N_("每周二 %(time)s"), N_("每周三 %(time)s"),
          N_("每周四 %(time)s"), N_("每周五 %(time)s"), N_("每周六 %(time)s"))


def describe(expr: str) -> str:
    """The schedule in words when it is a preset, else the cron expression itself."""
    preset = cron.preset_of(expr)
    if preset is None:
        return _("cron %(expr)s", expr=expr)
    if preset.kind == "weekly":
        return _(WEEKLY[preset.weekday], time=preset.time)
    if preset.kind == "monthly":
        return _("每月 %(day)s 日 %(time)s", day=preset.day, time=preset.time)
    return _("每天 %(time)s", time=preset.time)


@bp.app_template_filter("schedule_text")
def schedule_text(project: Project) -> str:
    if not project.schedule_cron:
        return _("不定时")
    text = f"{describe(project.schedule_cron)} ({project.schedule_timezone or cron.server_timezone()})"
    return text if project.schedule_enabled else _("%(schedule)s · 已停用", schedule=text)


@bp.app_template_global("next_runs")
def next_runs(project: Project) -> list[datetime]:
    return projects.next_runs(project)
