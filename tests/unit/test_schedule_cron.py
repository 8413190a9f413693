"""Cron schedules: what runs when (clock changes, weekday numbering) and what is refused, with which field."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from stagebackup.errors import ValidationError
from stagebackup.schedule import cron


def local(run, zone):
    return run.astimezone(UTC).astimezone(zone)


def runs_between(expr, tz, start, end):
    """Every run time in [start, end), as APScheduler asks the trigger for them one after another."""
    trigger = cron.trigger(expr, tz)
    runs, previous, moment = [], None, start
    while True:
        following = trigger.get_next_fire_time(previous, moment)
        if following is None or following >= end:
            return runs
        runs.append(following)
        previous = moment = following


@pytest.mark.parametrize(("tz", "day"), [("America/New_York", datetime(2026, 3, 8)),
                                         ("Europe/Berlin", datetime(2026, 3, 29))])
def test_a_time_skipped_by_spring_forward_runs_once_an_hour_later_in_new_local_time(tz, day):
    zone = ZoneInfo(tz)
    start = day.replace(tzinfo=zone) - timedelta(days=1)
    runs = runs_between("30 2 * * *", tz, start, start + timedelta(days=3))
    on_the_day = [run for run in runs if local(run, zone).date() == day.date()]
    assert len(runs) == 3 and len(on_the_day) == 1
    # 02:30 does not exist that day: the run happens at the instant 02:30 would have been in the old offset.
    assert local(on_the_day[0], zone).strftime("%H:%M") == "03:30"
    utc = [run.astimezone(UTC) for run in runs]
    assert (utc[1] - utc[0], utc[2] - utc[1]) == (timedelta(hours=24), timedelta(hours=23))


@pytest.mark.parametrize(("tz", "day", "hour"), [("America/New_York", datetime(2026, 11, 1), 1),
                                                 ("Europe/Berlin", datetime(2026, 10, 25), 2)])
def test_a_time_repeated_by_fall_back_runs_once(tz, day, hour):
    zone = ZoneInfo(tz)
    start = day.replace(tzinfo=zone) - timedelta(days=1)
    end = start + timedelta(days=3)
    runs = runs_between(f"30 {hour} * * *", tz, start, end)
    assert [local(run, zone).strftime("%m-%d %H:%M") for run in runs] == [
        (day + timedelta(days=d)).strftime(f"%m-%d {hour:02d}:30") for d in (-1, 0, 1)]
    # What plain APScheduler does, and why the trigger is wrapped: the repeated 01:30 would run twice.
    plain = CronTrigger.from_crontab(f"30 {hour} * * *", timezone=zone)
    twice, previous, moment = [], None, start
    while (following := plain.get_next_fire_time(previous, moment)) < end:
        twice.append(following)
        previous = moment = following
    assert len(twice) == 4


@pytest.mark.parametrize(("expr", "weekdays"), [
    ("0 2 * * 0", {"Sun"}), ("0 2 * * 7", {"Sun"}), ("0 2 * * sun", {"Sun"}), ("0 2 * * 1-5", {"Mon", "Tue", "Wed",
     "Thu", "Fri"}), ("0 2 * * 5-7", {"Fri", "Sat", "Sun"}), ("0 2 * * */3", {"Sun", "Wed", "Sat"}),
    ("0 2 * * 1,3", {"Mon", "Wed"}),
])
def test_day_of_week_numbers_mean_what_they_mean_to_cron(expr, weekdays):
    runs = cron.next_runs(expr, "UTC", count=14, after=datetime(2026, 12, 1, tzinfo=UTC))
    assert {run.strftime("%a") for run in runs} == weekdays


@pytest.mark.parametrize(("expr", "tz", "field", "words"), [
    ("61 * * * *", "UTC", "schedule_cron", "minute 61 is out of range (0-59)"),
    ("0-60 * * * *", "UTC", "schedule_cron", "minute 60 is out of range"),
    ("0 24 * * *", "UTC", "schedule_cron", "hour 24 is out of range (0-23)"),
    ("0 0 0 * *", "UTC", "schedule_cron", "day of month 0 is out of range (1-31)"),
    ("0 0 1 13 *", "UTC", "schedule_cron", "month 13 is out of range (1-12)"),
    ("*/61 * * * *", "UTC", "schedule_cron", "invalid schedule"),
    ("* * * * * *", "UTC", "schedule_cron", "has 6"),
    ("garbage", "UTC", "schedule_cron", "has 1"),
    ("", "UTC", "schedule_cron", "empty"),
    ("   ", "UTC", "schedule_cron", "empty"),
    ("a b c d e", "UTC", "schedule_cron", "invalid schedule"),
    ("*/0 * * * *", "UTC", "schedule_cron", "invalid schedule"),
    ("0 0 30 2 *", "UTC", "schedule_cron", "never runs"),
    ("0 0 31 4,6,9,11 *", "UTC", "schedule_cron", "never runs"),
    ("0 2 * * 8", "UTC", "schedule_cron", "day of week"),
    ("0 2 * * 5-1", "UTC", "schedule_cron", "day of week"),
    ("0 2 * * 1/2", "UTC", "schedule_cron", "day of week"),
    ("0 2 13 * 5", "UTC", "schedule_cron", "not both"),
    ("0 2 * * *", "Mars/Olympus", "schedule_timezone", "Mars/Olympus"),
    ("0 2 * * *", "../../etc/passwd", "schedule_timezone", "unknown time zone"),
    ("0 2 * * *", "/etc/localtime", "schedule_timezone", "unknown time zone"),
    ("0 2 * * *", "Asia", "schedule_timezone", "unknown time zone"),
    ("0 2 * * *", "x" * 65, "schedule_timezone", "unknown time zone"),
])
def test_bad_schedules_are_refused_with_a_message_on_their_field(expr, tz, field, words):
    with pytest.raises(ValidationError) as raised:
        cron.check(expr, tz)
    assert raised.value.field == field and words in str(raised.value), str(raised.value)


def test_29_february_is_a_date_that_exists():
    assert cron.check(" 0  0 29 2 * ", "UTC") == "0 0 29 2 *"
    assert [run.year for run in cron.next_runs("0 0 29 2 *", "UTC", after=datetime(2026, 1, 1, tzinfo=UTC))] == [
        2028, 2032, 2036]


def test_next_runs_are_in_the_schedules_time_zone():
    runs = cron.next_runs("0 2 * * *", "Asia/Shanghai", after=datetime(2026, 12, 4, 17, 0, tzinfo=UTC))
    assert [run.isoformat() for run in runs] == [
        "2026-12-05T02:00:00+08:00", "2026-12-06T02:00:00+08:00", "2026-12-07T02:00:00+08:00"]


@pytest.mark.parametrize(("expr", "preset"), [
    ("0 2 * * *", cron.Preset("daily", 2, 0)),
    ("30 23 * * 0", cron.Preset("weekly", 23, 30, weekday=0)),
    ("5 4 * * 3", cron.Preset("weekly", 4, 5, weekday=3)),
    ("0 1 15 * *", cron.Preset("monthly", 1, 0, day=15)),
])
def test_presets_round_trip_through_their_cron_expression(expr, preset):
    assert cron.preset_of(expr) == preset and preset.cron() == expr


@pytest.mark.parametrize("expr", ["*/5 * * * *", "0 2 * * 1-5", "0 2 1 1 *", "99 2 * * *", None, ""])
def test_other_expressions_are_no_preset(expr):
    assert cron.preset_of(expr) is None
