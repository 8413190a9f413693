"""Cron schedules as pure functions: check an expression and a time zone, the next run times, presets.

Expressions are the classic 5 fields (minute hour day-of-month month day-of-week) in the project's time zone,
read by APScheduler 3's ``CronTrigger``. Two places where APScheduler reads crontab text differently from cron
are bridged here, so ``0 2 * * 0`` means Sunday as everywhere else:

- day-of-week numbers: cron counts 0 (or 7) = Sunday, APScheduler 0 = Monday. Numbers are rewritten as names.
- a restricted day-of-month *and* day-of-week: cron runs when either matches, APScheduler when both do. Such
  an expression is refused rather than run on other days than the operator expects.

Clock changes (see the DST tests): a wall-clock time that does not exist on the spring-forward day (02:30 in
Europe/Berlin or America/New_York) runs once, at the same instant as the time one hour earlier in the old
offset, i.e. 03:30 new local time (APScheduler's behaviour). A wall-clock time that happens twice on the
fall-back day runs once, the first time (``WallClockCronTrigger`` skips the repeat).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from ..errors import N_, ValidationError

FIELD_COUNT = 5
TIMEZONE_MAX = 64
NEXT_RUN_COUNT = 3
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's numbering: 0 (and 7) is Sunday
PRESET_KINDS = ("daily", "weekly", "monthly")
_RANGES = (  # the first four fields: (lowest, highest, message)
    (0, 59, N_("minute %(value)s is out of range (0-59)")),
    (0, 23, N_("hour %(value)s is out of range (0-23)")),
    (1, 31, N_("day of month %(value)s is out of range (1-31)")),
    (1, 12, N_("month %(value)s is out of range (1-12)")),
)
_NUMBER = r"(\d{1,2})"
_PRESETS = {
    "daily": re.compile(rf"^{_NUMBER} {_NUMBER} \* \* \*$"),
    "weekly": re.compile(rf"^{_NUMBER} {_NUMBER} \* \* ([0-7])$"),
    "monthly": re.compile(rf"^{_NUMBER} {_NUMBER} {_NUMBER} \* \*$"),
}


class WallClockCronTrigger(CronTrigger):
    """A CronTrigger that runs a wall-clock time once on the day clocks fall back (it happens twice)."""

    def get_next_fire_time(self, previous_fire_time, now):
        following = super().get_next_fire_time(previous_fire_time, now)
        while following is not None and previous_fire_time is not None and (
                self._wall(following) == self._wall(previous_fire_time)):
            following = super().get_next_fire_time(following, following)
        return following

    def _wall(self, moment: datetime) -> datetime:
        return moment.astimezone(self.timezone).replace(tzinfo=None, second=0, microsecond=0)


@dataclass(frozen=True)
class Preset:
    """A schedule the form offers as a choice: daily, weekly (``weekday`` 0 = Sunday) or monthly (``day``)."""

    kind: str
    hour: int
    minute: int
    weekday: int | None = None
    day: int | None = None

    def cron(self) -> str:
        if self.kind == "weekly":
            return f"{self.minute} {self.hour} * * {self.weekday}"
        if self.kind == "monthly":
            return f"{self.minute} {self.hour} {self.day} * *"
        return f"{self.minute} {self.hour} * * *"

    @property
    def time(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d}"


def preset_of(expr: str | None) -> Preset | None:
    """The preset an expression is, or None for any other (or no) expression."""
    for kind, pattern in _PRESETS.items():
        match = pattern.match(normalize(expr or ""))
        if not match:
            continue
        minute, hour, *rest = (int(group) for group in match.groups())
        if minute > 59 or hour > 23:
            return None
        if kind == "weekly":
            return Preset(kind, hour, minute, weekday=rest[0] % 7)
        if kind == "monthly":
            return Preset(kind, hour, minute, day=rest[0]) if 1 <= rest[0] <= 31 else None
        return Preset(kind, hour, minute)
    return None


def normalize(expr: str) -> str:
    return " ".join(expr.split())


def server_timezone() -> str:
    """The IANA name of this host's time zone (``TZ`` or /etc/localtime); UTC when it cannot be told."""
    try:
        import tzlocal

        return tzlocal.get_localzone_name() or "UTC"
    except Exception:  # noqa: BLE001 - an odd /etc/localtime must not stop a project from saving
        return "UTC"


def zone(name: str) -> ZoneInfo:
    if not name or len(name) > TIMEZONE_MAX or name != name.strip():
        raise _unknown_zone(name)
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise _unknown_zone(name) from None


def _unknown_zone(name: str) -> ValidationError:
    return ValidationError(N_("unknown time zone '%(tz)s' (use an IANA name such as Asia/Shanghai)"),
                           field="schedule_timezone", tz=name)


def _weekday_names(field: str) -> str:
    """Cron's day-of-week field in day names, which APScheduler reads the way cron means them."""
    days: list[str] = []
    for token in field.lower().split(","):
        for day in _weekday_token(token):
            if DAY_NAMES[day] not in days:
                days.append(DAY_NAMES[day])
    return ",".join(days)


def _weekday_token(token: str) -> list[int]:
    match = re.fullmatch(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?", token)
    if not match or (match.group(2) and "-" not in match.group(1) and match.group(1) != "*"):
        raise _bad_weekday(token)  # "a/n" means different things to different crons
    span, step = match.group(1), int(match.group(2) or 1)
    if span == "*":
        first, last = 0, 6
    elif "-" in span:
        first, last = (_day_number(part, token) for part in span.split("-"))
    else:
        first = last = _day_number(span, token)
    if step < 1 or first > last:
        raise _bad_weekday(token)
    return [day % 7 for day in range(first, last + 1, step)]


def _day_number(part: str, token: str) -> int:
    if part in DAY_NAMES:
        return DAY_NAMES.index(part)
    if part.isdigit() and int(part) <= 7:
        return int(part)
    raise _bad_weekday(token)


def _bad_weekday(token: str) -> ValidationError:
    return ValidationError(N_("invalid day of week '%(value)s' (0-7 or sun-sat; 0 and 7 are Sunday)"),
                           field="schedule_cron", value=token)


def trigger(expr: str, tz: str) -> WallClockCronTrigger:
    """The APScheduler trigger of a checked expression; raises ValidationError naming the field at fault."""
    fields = normalize(expr).split()
    if not fields:
        raise ValidationError(N_("the schedule is empty: give 5 cron fields, e.g. 0 2 * * *"), field="schedule_cron")
    if len(fields) != FIELD_COUNT:
        raise ValidationError(
            N_("a schedule has 5 fields (minute hour day month weekday), '%(expr)s' has %(n)s"),
            field="schedule_cron", expr=normalize(expr), n=len(fields),
        )
    tzinfo = zone(tz)
    _check_ranges(fields[:4])
    _from_crontab(" ".join([*fields[:4], "*"]), tzinfo, expr)  # the first four fields, as APScheduler reads them
    weekdays = _weekday_names(fields[4]) if fields[4] != "*" else "*"
    if fields[2] != "*" and fields[4] != "*":
        raise ValidationError(
            N_("restrict the day of the month or the day of the week, not both ('%(expr)s')"),
            field="schedule_cron", expr=normalize(expr),
        )
    return _from_crontab(" ".join([*fields[:4], weekdays]), tzinfo, expr)


def _check_ranges(fields: list[str]) -> None:
    """Numbers outside a field's range, in the operator's words (APScheduler's own message is English)."""
    for (low, high, template), text in zip(_RANGES, fields, strict=True):
        for number in re.findall(r"\d+", re.sub(r"/\d+", "", text)):
            if not low <= int(number) <= high:
                raise ValidationError(template, field="schedule_cron", value=number)


def _from_crontab(crontab: str, tzinfo: ZoneInfo, expr: str) -> WallClockCronTrigger:
    try:
        return WallClockCronTrigger.from_crontab(crontab, timezone=tzinfo)
    except ValueError as exc:
        raise ValidationError(N_("invalid schedule '%(expr)s': %(reason)s"), field="schedule_cron",
                              expr=normalize(expr), reason=str(exc)) from None


def check(expr: str, tz: str, now: datetime | None = None) -> str:
    """The normalized expression; refuses one that can never run (30 February), since that is a mistake."""
    if trigger(expr, tz).get_next_fire_time(None, now or datetime.now(UTC)) is None:
        raise ValidationError(N_("the schedule '%(expr)s' never runs (there is no such date)"),
                              field="schedule_cron", expr=normalize(expr))
    return normalize(expr)


def next_runs(expr: str, tz: str, count: int = NEXT_RUN_COUNT, after: datetime | None = None) -> list[datetime]:
    """The next ``count`` run times after ``after`` (default now), in the schedule's time zone."""
    cron = trigger(expr, tz)
    runs: list[datetime] = []
    previous = None
    moment = after or datetime.now(UTC)
    while len(runs) < count:
        following = cron.get_next_fire_time(previous, moment)
        if following is None:
            break
        runs.append(following)
        previous = moment = following
    return runs


def first_run_after(expr: str, tz: str, last: datetime) -> datetime | None:
    """The first run time strictly after ``last`` (the last run, or when the schedule was set)."""
    return trigger(expr, tz).get_next_fire_time(last, last)
